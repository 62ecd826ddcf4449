//! The rows of SQLite's three multi-row writes (reservation inserts, status changes,
//! idempotency records), written once for the two places that bind them: sqlx's
//! arguments (`Dialect for SqliteConnection`, inside a transaction that also holds
//! other writes) and a prepared statement of the unit of work's own connection
//! (`sqlite_writer`). The column order is the one of `INSERT_RESERVATIONS`,
//! `SET_RESERVATION_STATUSES` and `INSERT_IDEMPOTENCY_KEYS` in `dialect`.

use chrono::{DateTime, Utc};
use pica_actors::{Change, Reservation};
use sqlx::Arguments;
use sqlx::error::BoxDynError;
use sqlx::sqlite::SqliteArguments;
use uuid::Uuid;

use super::dialect::ROW_CLASSES;
use super::idempotency::{Record, id_columns};

/// Where a row's values go, one after another. A store remembers its first failure
/// (none is expected: these values always encode) and reports it when asked.
pub(super) trait Binds {
    fn int(&mut self, value: i64);
    fn text(&mut self, value: &str);
    /// A UUID as its 16 bytes (sqlx's encoding), or NULL.
    fn uuid(&mut self, value: Option<Uuid>);
    fn null(&mut self);
}

/// Values per row of each write.
pub(super) const RESERVATION_COLUMNS: usize = 10;
pub(super) const STATUS_COLUMNS: usize = 4;
pub(super) const KEY_COLUMNS: usize = 9;

/// A reservation to insert: times as the `Bound` and `Stamp` columns store them
/// (seconds, microseconds).
pub(super) fn reservation(to: &mut impl Binds, r: &Reservation) {
    to.uuid(Some(r.id));
    to.int(r.user_id);
    to.text(&r.seat.0);
    to.text(&r.zone.0);
    to.int(r.interval.start.timestamp());
    to.int(r.interval.end.timestamp());
    to.text(r.status.as_str());
    to.int(r.created_at.timestamp_micros());
    to.int(r.created_at.timestamp_micros());
    to.uuid(r.series);
}

/// A status change: id, expected status, new status, when. Anything else binds
/// nothing (rounds hold only status changes).
pub(super) fn status(to: &mut impl Binds, change: &Change) {
    if let Change::SetReservationStatus {
        id,
        from,
        to: next,
        at,
    } = change
    {
        to.uuid(Some(*id));
        to.text(from.as_str());
        to.text(next.as_str());
        to.int(at.timestamp_micros());
    }
}

/// An idempotency record stamped `now`.
pub(super) fn key(to: &mut impl Binds, (tag, created): &Record<'_>, now: DateTime<Utc>) {
    to.int(tag.user_id);
    to.text(&tag.scope);
    to.text(&tag.key);
    to.text(&tag.fingerprint);
    for id in id_columns(*created) {
        to.uuid(id);
    }
    to.int(now.timestamp_micros());
}

/// A piece of rows for the statement of row class `class` (`dialect::pieces`): each
/// row bound by `row`, then the NULL rows (`columns` each) the statement skips.
pub(super) fn piece<B: Binds, T>(
    to: &mut B,
    piece: &[T],
    class: usize,
    columns: usize,
    mut row: impl FnMut(&mut B, &T),
) {
    for item in piece {
        row(to, item);
    }
    for _ in 0..(ROW_CLASSES[class] - piece.len()) * columns {
        to.null();
    }
}

/// sqlx's argument list, for a statement run through sqlx.
#[derive(Default)]
pub(super) struct SqlxArgs {
    pub(super) args: SqliteArguments,
    failed: Option<BoxDynError>,
}

impl SqlxArgs {
    fn add<'q, T: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'q>(
        &mut self,
        value: T,
    ) {
        if let Err(err) = self.args.add(value) {
            self.failed.get_or_insert(err);
        }
    }

    /// The arguments, or the first value that did not encode.
    pub(super) fn finish(self) -> Result<SqliteArguments, sqlx::Error> {
        match self.failed {
            Some(err) => Err(sqlx::Error::Encode(err)),
            None => Ok(self.args),
        }
    }
}

impl Binds for SqlxArgs {
    fn int(&mut self, value: i64) {
        self.add(value);
    }
    fn text(&mut self, value: &str) {
        self.add(value.to_owned());
    }
    fn uuid(&mut self, value: Option<Uuid>) {
        self.add(value);
    }
    fn null(&mut self) {
        self.add(None::<i64>);
    }
}
