//! Seat reservations: the engine's rebuild read and check-out's cut end, the edge's
//! reads. Inserts and status changes go out in runs, through the dialect.

use chrono::{DateTime, Utc};
use pica_actors::{Change, Interval, Reservation, ReservationId, ReservationStatus, UserId};
use pica_actors::{SeatNumber, ZoneId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use futures_util::TryStreamExt;

use super::dialect::{Bound, Stamp, both, fetch};
use super::sqlite_scan;
use super::{Db, DbError, ReservationQuery, decode_error, fetch_page, one_row, stale};

/// `SELECT` of a reservation's columns followed by the rest of the statement; a macro so
/// the SQL stays a literal (sqlx refuses dynamic strings).
macro_rules! select_reservations {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, seat_number, zone_id, starts_at, ends_at, status, created_at, \
             series_id FROM reservations ",
            $rest
        )
    };
}
pub(super) use select_reservations;

both!(row: pub(super) trait ReservationRow {
    fn reservation(&self) -> Result<Reservation, sqlx::Error> {
        let (start, end): (Bound, Bound) = (self.try_get("starts_at")?, self.try_get("ends_at")?);
        let status: &str = self.try_get("status")?;
        Ok(Reservation {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            seat: SeatNumber(self.try_get("seat_number")?),
            zone: ZoneId(self.try_get("zone_id")?),
            interval: Interval::new(start.0, end.0)
                .ok_or_else(|| decode_error("reservation with empty interval"))?,
            status: ReservationStatus::parse(status)
                .ok_or_else(|| decode_error(format!("unknown status {status}")))?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
            series: self.try_get("series_id")?,
        })
    }
});

/// The zone's reservations that hold their seat at or after `$2`: what a zone rebuilds
/// from. On PostgreSQL the partial index `reservations_zone_active` serves the filter;
/// on SQLite `reservations_zone_active_covering` serves the whole read (migration
/// 0011), one ordered walk of the index. The zone is known, so not read back.
pub const ACTIVE_RESERVATIONS: &str = "SELECT id, user_id, seat_number, starts_at, ends_at, status, created_at, series_id \
     FROM reservations \
     WHERE zone_id = $1 AND status IN ('confirmed', 'checked_in') AND ends_at > $2";

/// A row of [`ACTIVE_RESERVATIONS`] on PostgreSQL, of `zone`, by column position.
fn active_reservation(row: &PgRow, zone: &ZoneId) -> Result<Reservation, sqlx::Error> {
    let (start, end): (Bound, Bound) = (row.try_get(3)?, row.try_get(4)?);
    let status: &str = row.try_get(5)?;
    let seat: &str = row.try_get(2)?;
    Ok(Reservation {
        id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        seat: SeatNumber(seat.to_owned()),
        zone: zone.clone(),
        interval: Interval::new(start.0, end.0)
            .ok_or_else(|| decode_error("reservation with empty interval"))?,
        status: ReservationStatus::parse(status)
            .ok_or_else(|| decode_error(format!("unknown status {status}")))?,
        created_at: row.try_get::<Stamp, _>(6)?.0,
        series: row.try_get(7)?,
    })
}

both!(connection: pub(super) trait ReservationWrites {
    /// Check-out: the reservation ends early, if it is still in status `from`.
    async fn end_reservation(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        let Change::EndReservation { id, from, to, ends_at, at } = change else {
            unreachable!("not a reservation's end: {change:?}");
        };
        let done = sqlx::query(
            "UPDATE reservations SET status = $1, ends_at = $2, updated_at = $3 \
             WHERE id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(Bound(*ends_at))
        .bind(Stamp(*at))
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *self)
        .await?;
        one_row(done.rows_affected(), || stale(*id))
    }
});

impl Db {
    /// The zone's reservations that hold their seat at or after `now`.
    pub(super) async fn active_reservations(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, sqlx::Error> {
        match self {
            // Through SQLite's C API: see `sqlite_scan` for why.
            Db::Sqlite(pool) => sqlite_scan::active_reservations(pool, zone, now).await,
            Db::Postgres(pool) => {
                // Decoded as the rows stream in (by position), never all held as rows.
                let query = sqlx::query(ACTIVE_RESERVATIONS);
                let mut rows = query.bind(&zone.0).bind(Bound(now)).fetch(pool);
                let mut active = Vec::new();
                while let Some(row) = rows.try_next().await? {
                    active.push(active_reservation(&row, zone)?);
                }
                Ok(active)
            }
        }
    }

    pub async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, DbError> {
        let sql = select_reservations!("WHERE id = $1");
        Ok(fetch!(self, optional reservation, sqlx::query(sql).bind(id))?)
    }

    pub async fn reservations_of(&self, q: &ReservationQuery) -> Result<Vec<Reservation>, DbError> {
        Ok(fetch_page!(self, select_reservations, reservation, q)?)
    }

    /// The user's reservations that hold their seat at or after `now`, soonest first
    /// (at most `limit`).
    pub async fn upcoming_reservations_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Reservation>, DbError> {
        let sql = select_reservations!(
            "WHERE user_id = $1 AND status IN ('confirmed', 'checked_in') AND ends_at > $2 \
             ORDER BY starts_at LIMIT $3"
        );
        Ok(fetch!(
            self,
            all reservation,
            sqlx::query(sql).bind(user).bind(Bound(now)).bind(limit)
        )?)
    }

    /// Every reservation, oldest first (audits in tests and benchmarks).
    pub async fn all_reservations(&self) -> Result<Vec<Reservation>, DbError> {
        let sql = select_reservations!("ORDER BY id");
        Ok(fetch!(self, all reservation, sqlx::query(sql))?)
    }
}
