//! sqlx storage: SQLite (embedded default) or PostgreSQL, chosen by `DATABASE_URL`.
//!
//! [`Db`] implements the engine's [`Storage`] port (layout, active reservations, atomic
//! commits) and the edge's reads (users, a user's reservations).

mod accounts;
mod books;
pub use books::BookReservationQuery;
mod idempotency;
pub use idempotency::StoredKey;
mod layout;
mod live;
pub use accounts::{ApiKeyRecord, AuthState, KeyOwner, RefreshRecord, UserSummary};
pub use live::WaitlistQuery;
mod postgres;
mod seed;
mod sqlite;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pica_actors::{
    Change, Reservation, ReservationId, ReservationStatus, SeatLayout, SeatNumber, SeatService,
    Storage, StorageError, UserId, ZoneId, ZoneLayout,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Role {
        if s == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: UserId,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub role: Role,
    /// Bumped on password change and deletion; tokens carrying an older one are refused.
    pub token_version: i32,
    pub created_at: DateTime<Utc>,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A page of a user's reservations, newest first.
pub struct ReservationQuery {
    pub user_id: UserId,
    pub status: Option<ReservationStatus>,
    pub before: Option<ReservationId>,
    pub limit: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("already exists")]
    Conflict,
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

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

    /// Seeds the demo layout and book catalog if the database has no zones yet.
    /// Returns whether it seeded.
    pub async fn seed_if_empty(&self) -> Result<bool, DbError> {
        let count = "SELECT COUNT(*) FROM zones";
        let script = sqlx::AssertSqlSafe(seed::demo_sql());
        match self {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                if sqlx::query_scalar::<_, i64>(count)
                    .fetch_one(&mut *tx)
                    .await?
                    > 0
                {
                    return Ok(false);
                }
                sqlx::raw_sql(script).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                // Two servers starting on one empty database must not both seed.
                sqlx::query("LOCK TABLE zones IN EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                if sqlx::query_scalar::<_, i64>(count)
                    .fetch_one(&mut *tx)
                    .await?
                    > 0
                {
                    return Ok(false);
                }
                sqlx::raw_sql(script).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        };
        Ok(())
    }

    pub async fn create_user(&self, user: NewUser<'_>) -> Result<UserId, DbError> {
        let result = match self {
            Db::Sqlite(pool) => sqlite::create_user(pool, &user).await,
            Db::Postgres(pool) => postgres::create_user(pool, &user).await,
        };
        result.map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
            other => DbError::Sqlx(other),
        })
    }

    pub async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::find_user_by_name(pool, username).await?,
            Db::Postgres(pool) => postgres::find_user_by_name(pool, username).await?,
        })
    }

    pub async fn find_user(&self, id: UserId) -> Result<Option<UserRecord>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::find_user(pool, id).await?,
            Db::Postgres(pool) => postgres::find_user(pool, id).await?,
        })
    }

    pub async fn reservation(&self, id: ReservationId) -> Result<Option<Reservation>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::reservation(pool, id).await?,
            Db::Postgres(pool) => postgres::reservation(pool, id).await?,
        })
    }

    pub async fn reservations_of(
        &self,
        query: &ReservationQuery,
    ) -> Result<Vec<Reservation>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::reservations_of(pool, query).await?,
            Db::Postgres(pool) => postgres::reservations_of(pool, query).await?,
        })
    }

    /// Every reservation, oldest first (audits in tests and benchmarks).
    pub async fn all_reservations(&self) -> Result<Vec<Reservation>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite::all_reservations(pool).await?,
            Db::Postgres(pool) => postgres::all_reservations(pool).await?,
        })
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[async_trait]
impl Storage for Db {
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
        let zones = "SELECT id, name, kind FROM zones ORDER BY position, id";
        let seats = "SELECT number, zone_id, status FROM seats ORDER BY position, number";
        let rows = match self {
            Db::Sqlite(pool) => both(
                sqlx::query_as(zones).fetch_all(pool).await,
                sqlx::query_as(seats).fetch_all(pool).await,
            ),
            Db::Postgres(pool) => both(
                sqlx::query_as(zones).fetch_all(pool).await,
                sqlx::query_as(seats).fetch_all(pool).await,
            ),
        };
        let (zones, seats) = rows.map_err(storage_error)?;
        build_layout(zones, seats).map_err(storage_error)
    }

    async fn load_active_reservations(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        match self {
            Db::Sqlite(pool) => sqlite::load_active(pool, zone, now).await,
            Db::Postgres(pool) => postgres::load_active(pool, zone, now).await,
        }
        .map_err(storage_error)
    }

    async fn load_open_waitlist(
        &self,
        zone: &ZoneId,
    ) -> Result<Vec<pica_actors::WaitlistEntry>, StorageError> {
        live::open_waitlist(self, zone).await.map_err(storage_error)
    }

    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        match self {
            Db::Sqlite(pool) => sqlite::commit(pool, changes).await,
            Db::Postgres(pool) => postgres::commit(pool, changes).await,
        }
        .map_err(storage_error)
    }

    async fn load_books(&self) -> Result<Vec<pica_actors::Book>, StorageError> {
        self.books().await.map_err(storage_error)
    }

    async fn load_active_book_reservations(
        &self,
    ) -> Result<Vec<pica_actors::BookReservation>, StorageError> {
        self.active_book_reservations().await.map_err(storage_error)
    }
}

/// A stale status (the row was not in the expected state) is reported like a
/// constraint violation: the database refused the change.
#[derive(Debug, thiserror::Error)]
#[error("reservation {0} was not in the expected status")]
struct StaleStatus(ReservationId);

fn stale(id: ReservationId) -> sqlx::Error {
    sqlx::Error::Protocol(StaleStatus(id).to_string())
}

fn storage_error(err: sqlx::Error) -> StorageError {
    match err {
        sqlx::Error::Database(db) => StorageError::Rejected(db.message().to_string()),
        sqlx::Error::Protocol(msg) => StorageError::Rejected(msg),
        sqlx::Error::RowNotFound | sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StorageError::Rejected(err.to_string())
        }
        other => StorageError::Unavailable(other.to_string()),
    }
}

fn parse_status(s: &str) -> Result<ReservationStatus, sqlx::Error> {
    ReservationStatus::parse(s)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown status {s}").into()))
}

type Triple = (String, String, String);

fn both(
    zones: Result<Vec<Triple>, sqlx::Error>,
    seats: Result<Vec<Triple>, sqlx::Error>,
) -> Result<(Vec<Triple>, Vec<Triple>), sqlx::Error> {
    Ok((zones?, seats?))
}

/// Zones `(id, name, kind)` and seats `(number, zone, status)`, both in display order,
/// into the layout.
fn build_layout(zones: Vec<Triple>, seats: Vec<Triple>) -> Result<Vec<ZoneLayout>, sqlx::Error> {
    let mut layout: Vec<ZoneLayout> = zones
        .into_iter()
        .map(|(id, name, kind)| ZoneLayout {
            id: ZoneId(id),
            name,
            kind,
            seats: Vec::new(),
        })
        .collect();
    for (number, zone, status) in seats {
        let service = SeatService::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode(format!("seat status {status}").into()))?;
        if let Some(z) = layout.iter_mut().find(|z| z.id.0 == zone) {
            z.seats.push(SeatLayout {
                number: SeatNumber(number),
                service,
            });
        }
    }
    Ok(layout)
}
