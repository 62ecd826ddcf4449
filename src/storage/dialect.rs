//! What SQLite and PostgreSQL do differently, and nothing else: connecting and
//! migrating, how times are stored, the unit of work's multi-row statements and the
//! seed lock. Every other query in `storage` is written once, with `$N` placeholders
//! (sqlx binds `$N` by number on SQLite too), inside [`on_pool!`] or [`both!`], which
//! compile it once per backend.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pica_actors::{Change, Reservation};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgValueFormat, PgValueRef};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, Decode, Encode, PgConnection, Postgres, Sqlite, SqliteConnection, Type};

use super::idempotency::{Record, id_columns};
use super::sqlite_rows::{self as rows, SqlxArgs};
use super::{Db, DbError, stale};

/// Evaluates `$body` with `$pool` bound to the pool of `$db`'s backend. The body is
/// compiled once per backend, so the queries in it are written once for both.
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::storage::Db::Sqlite($pool) => $body,
            $crate::storage::Db::Postgres($pool) => $body,
        }
    };
}
pub(super) use on_pool;

/// Runs `$query` on `$db`'s pool and decodes the rows with their method `$decode`:
/// all of them (`all`) or the first, if any (`optional`).
macro_rules! fetch {
    ($db:expr, all $decode:ident, $query:expr) => {
        $crate::storage::dialect::on_pool!($db, |pool| {
            let rows = $query.fetch_all(pool).await?;
            rows.iter()
                .map(|r| r.$decode())
                .collect::<Result<Vec<_>, sqlx::Error>>()
        })
    };
    ($db:expr, optional $decode:ident, $query:expr) => {
        $crate::storage::dialect::on_pool!($db, |pool| {
            $query
                .fetch_optional(pool)
                .await?
                .map(|r| r.$decode())
                .transpose()
        })
    };
}
pub(super) use fetch;

/// Runs `$query` on `$db`'s pool; the number of rows it changed.
macro_rules! execute {
    ($db:expr, $query:expr) => {
        $crate::storage::dialect::on_pool!($db, |pool| {
            $query.execute(pool).await.map(|done| done.rows_affected())
        })
    };
}
pub(super) use execute;

/// Declares a trait of methods with bodies and implements it for both backends'
/// connections (`connection`) or rows (`row`) from those bodies, in which `self` is the
/// one backend's connection or row.
macro_rules! both {
    (connection: $($trait:tt)*) => {
        $crate::storage::dialect::both!(sqlx::SqliteConnection, sqlx::PgConnection, $($trait)*);
    };
    (row: $($trait:tt)*) => {
        $crate::storage::dialect::both!(
            sqlx::sqlite::SqliteRow, sqlx::postgres::PgRow, $($trait)*
        );
    };
    ($sqlite:ty, $postgres:ty, $vis:vis trait $name:ident {
        $($(#[$doc:meta])* $($word:ident)* ($($params:tt)*) -> $ret:ty $body:block)*
    }) => {
        $vis trait $name {
            $($(#[$doc])* $($word)* ($($params)*) -> $ret;)*
        }
        impl $name for $sqlite {
            $($($word)* ($($params)*) -> $ret $body)*
        }
        impl $name for $postgres {
            $($($word)* ($($params)*) -> $ret $body)*
        }
    };
}
pub(super) use both;

impl Db {
    /// Connects to `url` (`sqlite://file.db` or `postgres://...`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        Self::connect_with_timeout(url, max_connections, Duration::from_secs(5)).await
    }

    /// Like [`Db::connect`]; `acquire_timeout` is how long a request waits for a free
    /// connection before it is answered 503.
    pub async fn connect_with_timeout(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<Db, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            // WAL lets readers run beside the unit of work's writer; FULL makes every
            // acknowledged commit durable (fsync per group commit, not per request).
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(acquire_timeout)
                .connect_with(options)
                .await?;
            Ok(Db::Sqlite(pool))
        }
    }

    /// A pool of connections to the same database, opened now and kept open: the unit
    /// of work's writer (see `EngineStorage`). One connection on SQLite, which commits
    /// one transaction at a time anyway; `pg_connections` on PostgreSQL, one per
    /// transaction in flight (`PICA_PG_COMMITS_IN_FLIGHT`). They come on top of
    /// `PICA_DB_MAX_CONNECTIONS`. A broken connection is replaced on the next commit.
    pub async fn writer(&self, pg_connections: u32) -> Result<Db, DbError> {
        fn kept<DB: Database>(
            options: &sqlx::pool::PoolOptions<DB>,
            connections: u32,
        ) -> sqlx::pool::PoolOptions<DB> {
            sqlx::pool::PoolOptions::new()
                .max_connections(connections)
                .min_connections(connections)
                .acquire_timeout(options.get_acquire_timeout())
                .idle_timeout(None)
                .max_lifetime(None)
        }
        Ok(match self {
            Db::Sqlite(pool) => Db::Sqlite(
                kept(pool.options(), 1)
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
            Db::Postgres(pool) => Db::Postgres(
                kept(pool.options(), pg_connections.max(1))
                    .connect_with((*pool.connect_options()).clone())
                    .await?,
            ),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }
}

/// A stamp (created, updated, expiry, revocation): unix microseconds in an SQLite
/// INTEGER, a `timestamptz` in PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stamp(pub DateTime<Utc>);

/// A bound of a reservation's or waitlist entry's interval: unix seconds in an SQLite
/// INTEGER (the overlap trigger compares them), a `timestamptz` in PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bound(pub DateTime<Utc>);

macro_rules! time_column {
    ($name:ident, $to_int:expr, $from_int:expr) => {
        impl Type<Sqlite> for $name {
            fn type_info() -> <Sqlite as Database>::TypeInfo {
                <i64 as Type<Sqlite>>::type_info()
            }
            fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
                <i64 as Type<Sqlite>>::compatible(ty)
            }
        }
        impl Encode<'_, Sqlite> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Sqlite as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                Encode::<Sqlite>::encode($to_int(&self.0), buf)
            }
        }
        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                let n = <i64 as Decode<Sqlite>>::decode(value)?;
                Ok($name($from_int(n).ok_or("timestamp out of range")?))
            }
        }
        impl Type<Postgres> for $name {
            fn type_info() -> <Postgres as Database>::TypeInfo {
                <DateTime<Utc> as Type<Postgres>>::type_info()
            }
        }
        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <Postgres as Database>::ArgumentBuffer,
            ) -> Result<IsNull, BoxDynError> {
                Encode::<Postgres>::encode_by_ref(&self.0, buf)
            }
        }
        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                pg_timestamptz(value).map($name)
            }
        }
    };
}

/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00 UTC.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A `timestamptz` read straight from PostgreSQL's binary format, microseconds since its
/// epoch. chrono's decoder gets there by calendar arithmetic (adding days to a date, then
/// the rest), which was ~8% of a PostgreSQL start on a big space: two per reservation.
/// A value in text format (not what sqlx asks for) goes to chrono's decoder.
fn pg_timestamptz(value: PgValueRef<'_>) -> Result<DateTime<Utc>, BoxDynError> {
    if value.format() != PgValueFormat::Binary {
        return <DateTime<Utc> as Decode<Postgres>>::decode(value);
    }
    let bytes: [u8; 8] = value
        .as_bytes()?
        .try_into()
        .map_err(|_| "a timestamptz is 8 bytes")?;
    // `infinity` and `-infinity` (i64::MAX and MIN) fall out of range here.
    i64::from_be_bytes(bytes)
        .checked_add(PG_EPOCH_MICROS)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| "timestamp out of range".into())
}

time_column! { Stamp, DateTime::timestamp_micros, DateTime::from_timestamp_micros }
time_column! { Bound, DateTime::timestamp, |s| DateTime::from_timestamp(s, 0) }

/// The statements whose shape differs between the backends, run on a connection inside
/// the transaction of a unit of work (or of a seed).
pub(super) trait Dialect {
    /// Inserts reservations, as few statements as the backend allows.
    async fn insert_reservations(&mut self, creates: &[&Reservation]) -> Result<(), sqlx::Error>;
    /// Compare-and-sets reservation statuses (a round without repeated ids); a row not
    /// in its expected status fails the round, and the unit of work then retries each
    /// intent alone, which names the culprit.
    async fn set_reservation_statuses(&mut self, updates: &[&Change]) -> Result<(), sqlx::Error>;
    /// Inserts idempotency records, stamped `now`, last in their transaction (after the
    /// rows they point to). A key already taken violates the primary key and fails the
    /// transaction: a request racing another with the same key on another server
    /// creates nothing.
    async fn insert_idempotency_keys(
        &mut self,
        records: &[Record<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error>;
    /// Keeps another server from seeding the same empty database at the same time.
    async fn lock_for_seeding(&mut self) -> Result<(), sqlx::Error>;
}

// ---------------------------------------------------------------- SQLite

/// Row counts of SQLite's multi-row statements. Each statement is a round trip to the
/// connection's worker thread, so a run of changes goes out in pieces of at most the
/// largest count, each as one statement of the smallest size that holds it, padded with
/// NULL rows the statement skips: five statements per kind of write (reservation
/// inserts, status changes, key records), each prepared once per connection, serve
/// every batch size.
pub(super) const ROW_CLASSES: [usize; 5] = [1, 4, 16, 64, 256];

/// The id of a round's first status change: the one a stale round names (which row
/// was stale is found when each intent is retried alone).
pub(super) fn first_id(piece: &[&Change]) -> pica_actors::ReservationId {
    piece
        .iter()
        .find_map(|change| match change {
            Change::SetReservationStatus { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap_or_default()
}

/// `changes` in pieces, each with the index of its row class.
pub(super) fn pieces<T>(changes: &[T]) -> impl Iterator<Item = (usize, &[T])> {
    changes
        .chunks(ROW_CLASSES[ROW_CLASSES.len() - 1])
        .map(|piece| {
            let class = ROW_CLASSES
                .iter()
                .position(|&rows| rows >= piece.len())
                .unwrap_or(ROW_CLASSES.len() - 1);
            (class, piece)
        })
}

/// One statement per row class: `head`, that many `row`s separated by commas, `tail`.
fn multi_row_statements(head: &str, row: &str, tail: &str) -> Vec<String> {
    let rows = |n| vec![row; n].join(", ");
    ROW_CLASSES
        .iter()
        .map(|&n| format!("{head}{}{tail}", rows(n)))
        .collect()
}

pub(super) static INSERT_RESERVATIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    multi_row_statements(
        "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
         status, created_at, updated_at, series_id) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, \
         column9, column10 FROM (VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ") WHERE column1 IS NOT NULL",
    )
});

pub(super) static SET_RESERVATION_STATUSES: LazyLock<Vec<String>> = LazyLock::new(|| {
    multi_row_statements(
        "UPDATE reservations SET status = v.column3, updated_at = v.column4 FROM (VALUES ",
        "(?, ?, ?, ?)",
        ") AS v WHERE reservations.id = v.column1 AND reservations.status = v.column2",
    )
});

pub(super) static INSERT_IDEMPOTENCY_KEYS: LazyLock<Vec<String>> = LazyLock::new(|| {
    multi_row_statements(
        "INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, reservation_id, \
         book_reservation_id, waitlist_entry_id, api_key_id, created_at) \
         SELECT column1, column2, column3, column4, column5, column6, column7, column8, \
         column9 FROM (VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ") WHERE column1 IS NOT NULL",
    )
});

impl Dialect for SqliteConnection {
    async fn insert_reservations(&mut self, creates: &[&Reservation]) -> Result<(), sqlx::Error> {
        for (class, piece) in pieces(creates) {
            let mut args = SqlxArgs::default();
            rows::piece(
                &mut args,
                piece,
                class,
                rows::RESERVATION_COLUMNS,
                |to, r| rows::reservation(to, r),
            );
            let sql = sqlx::AssertSqlSafe(INSERT_RESERVATIONS[class].as_str());
            sqlx::query_with(sql, args.finish()?)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn set_reservation_statuses(&mut self, updates: &[&Change]) -> Result<(), sqlx::Error> {
        for (class, piece) in pieces(updates) {
            let mut args = SqlxArgs::default();
            rows::piece(
                &mut args,
                piece,
                class,
                rows::STATUS_COLUMNS,
                |to, change| rows::status(to, change),
            );
            let sql = sqlx::AssertSqlSafe(SET_RESERVATION_STATUSES[class].as_str());
            let done = sqlx::query_with(sql, args.finish()?)
                .execute(&mut *self)
                .await?;
            if done.rows_affected() != piece.len() as u64 {
                return Err(stale(first_id(piece)));
            }
        }
        Ok(())
    }

    async fn insert_idempotency_keys(
        &mut self,
        records: &[Record<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        for (class, piece) in pieces(records) {
            let mut args = SqlxArgs::default();
            rows::piece(&mut args, piece, class, rows::KEY_COLUMNS, |to, record| {
                rows::key(to, record, now)
            });
            let sql = sqlx::AssertSqlSafe(INSERT_IDEMPOTENCY_KEYS[class].as_str());
            sqlx::query_with(sql, args.finish()?)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    /// Nothing to lock: SQLite has one writer at a time.
    async fn lock_for_seeding(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// Compare-and-sets a round of reservation statuses on PostgreSQL (see
/// [`Dialect::set_reservation_statuses`]); public so that a test can check its generic
/// plan.
pub const SET_RESERVATION_STATUSES_PG: &str = "UPDATE reservations AS r \
     SET status = t.next, updated_at = t.at \
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[]) AS t(id, prev, next, at) \
     WHERE r.id = t.id AND r.status = t.prev AND r.id = ANY($1::uuid[])";

/// One column of an `UNNEST` insert.
fn column<'a, R, T>(rows: &'a [R], value: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(value).collect()
}

impl Dialect for PgConnection {
    /// One statement, the rows bound as arrays: its text never varies, so it is
    /// prepared once per connection.
    async fn insert_reservations(&mut self, creates: &[&Reservation]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
             status, created_at, updated_at, series_id) \
             SELECT id, user_id, seat, zone, s, e, status, c, c, series FROM UNNEST(\
             $1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], \
             $6::timestamptz[], $7::text[], $8::timestamptz[], $9::uuid[]) \
             AS t(id, user_id, seat, zone, s, e, status, c, series)",
        )
        .bind(column(creates, |r| r.id))
        .bind(column(creates, |r| r.user_id))
        .bind(column(creates, |r| r.seat.0.as_str()))
        .bind(column(creates, |r| r.zone.0.as_str()))
        .bind(column(creates, |r| r.interval.start))
        .bind(column(creates, |r| r.interval.end))
        .bind(column(creates, |r| r.status.as_str()))
        .bind(column(creates, |r| r.created_at))
        .bind(column(creates, |r| r.series))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    /// One statement, the rows bound as arrays. With a generic plan the planner cannot
    /// see the arrays' length; the `id = ANY($1)` repeats the join's key as a condition
    /// on the primary key alone, so that whatever join it picks, the table is reached
    /// through that index, never scanned (`tests/api/batch_writes.rs` checks the
    /// generic plan on a table of 20,000 rows).
    async fn set_reservation_statuses(&mut self, updates: &[&Change]) -> Result<(), sqlx::Error> {
        if updates.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = updates
            .iter()
            .filter_map(|change| match change {
                Change::SetReservationStatus { id, from, to, at } => Some((*id, *from, *to, *at)),
                _ => None,
            })
            .collect();
        let done = sqlx::query(SET_RESERVATION_STATUSES_PG)
            .bind(column(&rows, |r| r.0))
            .bind(column(&rows, |r| r.1.as_str()))
            .bind(column(&rows, |r| r.2.as_str()))
            .bind(column(&rows, |r| r.3))
            .execute(&mut *self)
            .await?;
        if done.rows_affected() != updates.len() as u64 {
            // Which row was stale is found when each intent is retried alone.
            return Err(stale(rows.first().map(|r| r.0).unwrap_or_default()));
        }
        Ok(())
    }

    /// All records in one statement.
    async fn insert_idempotency_keys(
        &mut self,
        records: &[Record<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        if records.is_empty() {
            return Ok(());
        }
        let ids = |i: usize| column(records, move |(_, created)| id_columns(*created)[i]);
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, reservation_id, \
             book_reservation_id, waitlist_entry_id, api_key_id, created_at) \
             SELECT u, s, k, f, r, b, w, a, $9 FROM UNNEST($1::int8[], $2::text[], $3::text[], \
             $4::text[], $5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[]) \
             AS t(u, s, k, f, r, b, w, a)",
        )
        .bind(column(records, |(tag, _)| tag.user_id))
        .bind(column(records, |(tag, _)| tag.scope.as_str()))
        .bind(column(records, |(tag, _)| tag.key.as_str()))
        .bind(column(records, |(tag, _)| tag.fingerprint.as_str()))
        .bind(ids(0))
        .bind(ids(1))
        .bind(ids(2))
        .bind(ids(3))
        .bind(now)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    /// Two servers starting on one empty database must not both seed.
    async fn lock_for_seeding(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("LOCK TABLE zones IN EXCLUSIVE MODE")
            .execute(&mut *self)
            .await
            .map(drop)
    }
}
