//! sqlx storage: SQLite (embedded default) or PostgreSQL, chosen by `DATABASE_URL`.
//!
//! [`Db`] implements the engine's [`Storage`](pica_actors::Storage) port (layout, active
//! reservations, atomic commits; `engine`) and the edge's reads and writes. One module
//! per aggregate, each query written once for both backends; what the backends do
//! differently lives in `dialect` alone.

mod accounts;
mod books;
mod calendar_feeds;
mod dialect;
mod engine;
mod idempotency;
mod layout;
mod mail_outbox;
mod reservations;
mod rounds;
mod seed;
mod series;
mod sqlite_rows;
mod sqlite_scan;
mod sqlite_writer;
mod waitlist;

pub use accounts::{ApiKeyRecord, AuthState, KeyOwner, RefreshRecord, UserSummary};
pub use books::BookReservationQuery;
pub use dialect::SET_RESERVATION_STATUSES_PG;
pub use engine::EngineStorage;
pub use idempotency::StoredKey;
pub use mail_outbox::{MailEnd, MailKind, MailQueue, QueuedMail};
pub use reservations::ACTIVE_RESERVATIONS;
pub use waitlist::WaitlistQuery;

use chrono::{DateTime, Utc};
use pica_actors::{ReservationId, ReservationStatus, StorageError, UserId};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use dialect::on_pool;

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

/// A page of a user's reservations, book reservations or waitlist entries, newest first:
/// at most `limit`, with ids below `before`, in `status` if given.
pub struct Page<Status, Id> {
    pub user_id: UserId,
    pub status: Option<Status>,
    pub before: Option<Id>,
    pub limit: u32,
}

pub type ReservationQuery = Page<ReservationStatus, ReservationId>;

/// Fetches a [`Page`] of rows selected by `$select` (the aggregate's `select_…!`) and
/// decoded by their method `$decode`.
macro_rules! fetch_page {
    ($db:expr, $select:ident, $decode:ident, $page:expr) => {{
        let page = $page;
        let sql = $select!(
            "WHERE user_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4"
        );
        $crate::storage::dialect::fetch!($db, all $decode, sqlx::query(sql)
            .bind(page.user_id)
            .bind(page.status.map(|s| s.as_str()))
            .bind(page.before)
            .bind(i64::from(page.limit)))
    }};
}
use fetch_page;

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
    pub async fn ping(&self) -> Result<(), DbError> {
        dialect::execute!(self, sqlx::query("SELECT 1"))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// A stale status (the row was not in the expected state) is reported like a
/// constraint violation: the database refused the change.
fn stale(id: ReservationId) -> sqlx::Error {
    sqlx::Error::Protocol(format!("reservation {id} was not in the expected status"))
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

/// A statement that must change exactly one row; `otherwise` is the error when it did not.
fn one_row(rows: u64, otherwise: impl FnOnce() -> sqlx::Error) -> Result<(), sqlx::Error> {
    if rows == 1 { Ok(()) } else { Err(otherwise()) }
}

fn decode_error(what: impl Into<String>) -> sqlx::Error {
    sqlx::Error::Decode(what.into().into())
}

/// A unique violation (the name or id is taken) as [`DbError::Conflict`].
fn conflict(err: sqlx::Error) -> DbError {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => DbError::Conflict,
        other => DbError::Sqlx(other),
    }
}
