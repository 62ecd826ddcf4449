//! Storage of the lifecycle and the waitlist: check-out's cut end, waitlist entries and
//! the holds offered to them (table `waitlist_entries`, migration 0003).

use chrono::{DateTime, Utc};
use pica_actors::{
    Change, Hold, Interval, ReservationId, SeatNumber, UserId, WaitStatus, WaitlistEntry,
    WaitlistId, ZoneId,
};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};

use super::{Db, DbError, stale};

/// The columns of an entry followed by the rest of the statement (a literal for sqlx).
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, zone_id, starts_at, ends_at, status, seat_number, \
             hold_expires_at, reservation_id, created_at FROM waitlist_entries ",
            $rest
        )
    };
}

fn decode(msg: &str) -> sqlx::Error {
    sqlx::Error::Decode(msg.to_string().into())
}

fn parse_wait_status(s: &str) -> Result<WaitStatus, sqlx::Error> {
    WaitStatus::parse(s).ok_or_else(|| decode("unknown waitlist status"))
}

#[allow(clippy::too_many_arguments)]
fn entry(
    id: WaitlistId,
    user_id: UserId,
    zone: String,
    interval: Option<Interval>,
    status: &str,
    seat: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    reservation_id: Option<ReservationId>,
    created_at: DateTime<Utc>,
) -> Result<WaitlistEntry, sqlx::Error> {
    Ok(WaitlistEntry {
        id,
        user_id,
        zone: ZoneId(zone),
        interval: interval.ok_or_else(|| decode("waitlist entry with empty interval"))?,
        status: parse_wait_status(status)?,
        hold: match (seat, expires_at) {
            (Some(seat), Some(expires_at)) => Some(Hold {
                seat: SeatNumber(seat),
                expires_at,
            }),
            _ => None,
        },
        reservation_id,
        created_at,
    })
}

fn from_secs(s: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp(s, 0).ok_or_else(|| decode("timestamp out of range"))
}

fn from_micros(us: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| decode("timestamp out of range"))
}

fn sqlite_entry(row: &SqliteRow) -> Result<WaitlistEntry, sqlx::Error> {
    let start = from_secs(row.try_get("starts_at")?)?;
    let end = from_secs(row.try_get("ends_at")?)?;
    let expires: Option<i64> = row.try_get("hold_expires_at")?;
    entry(
        row.try_get("id")?,
        row.try_get("user_id")?,
        row.try_get("zone_id")?,
        Interval::new(start, end),
        row.try_get("status")?,
        row.try_get("seat_number")?,
        expires.map(from_micros).transpose()?,
        row.try_get("reservation_id")?,
        from_micros(row.try_get("created_at")?)?,
    )
}

fn postgres_entry(row: &PgRow) -> Result<WaitlistEntry, sqlx::Error> {
    entry(
        row.try_get("id")?,
        row.try_get("user_id")?,
        row.try_get("zone_id")?,
        Interval::new(row.try_get("starts_at")?, row.try_get("ends_at")?),
        row.try_get("status")?,
        row.try_get("seat_number")?,
        row.try_get("hold_expires_at")?,
        row.try_get("reservation_id")?,
        row.try_get("created_at")?,
    )
}

pub(super) async fn apply_sqlite(
    tx: &mut Transaction<'_, Sqlite>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    let done = match change {
        Change::EndReservation {
            id,
            from,
            to,
            ends_at,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE reservations SET status = ?, ends_at = ?, updated_at = ? \
                 WHERE id = ? AND status = ?",
            )
            .bind(to.as_str())
            .bind(ends_at.timestamp())
            .bind(at.timestamp_micros())
            .bind(id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            (done.rows_affected(), *id)
        }
        Change::CreateWaitlistEntry { entry: e } => {
            let hold = e.hold.as_ref();
            sqlx::query(
                "INSERT INTO waitlist_entries (id, user_id, zone_id, starts_at, ends_at, status, \
                 seat_number, hold_expires_at, reservation_id, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(e.id)
            .bind(e.user_id)
            .bind(&e.zone.0)
            .bind(e.interval.start.timestamp())
            .bind(e.interval.end.timestamp())
            .bind(e.status.as_str())
            .bind(hold.map(|h| h.seat.0.as_str()))
            .bind(hold.map(|h| h.expires_at.timestamp_micros()))
            .bind(e.reservation_id)
            .bind(e.created_at.timestamp_micros())
            .bind(e.created_at.timestamp_micros())
            .execute(&mut **tx)
            .await?;
            (1, e.id)
        }
        Change::UpdateWaitlistEntry { entry: e, from, at } => {
            let hold = e.hold.as_ref();
            let done = sqlx::query(
                "UPDATE waitlist_entries SET status = ?, seat_number = ?, hold_expires_at = ?, \
                 reservation_id = ?, updated_at = ? WHERE id = ? AND status = ?",
            )
            .bind(e.status.as_str())
            .bind(hold.map(|h| h.seat.0.as_str()))
            .bind(hold.map(|h| h.expires_at.timestamp_micros()))
            .bind(e.reservation_id)
            .bind(at.timestamp_micros())
            .bind(e.id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            (done.rows_affected(), e.id)
        }
        _ => unreachable!("only lifecycle and waitlist changes are routed here"),
    };
    match done {
        (1, _) => Ok(()),
        (_, id) => Err(stale(id)),
    }
}

pub(super) async fn apply_postgres(
    tx: &mut Transaction<'_, Postgres>,
    change: &Change,
) -> Result<(), sqlx::Error> {
    let done = match change {
        Change::EndReservation {
            id,
            from,
            to,
            ends_at,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE reservations SET status = $1, ends_at = $2, updated_at = $3 \
                 WHERE id = $4 AND status = $5",
            )
            .bind(to.as_str())
            .bind(*ends_at)
            .bind(*at)
            .bind(id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            (done.rows_affected(), *id)
        }
        Change::CreateWaitlistEntry { entry: e } => {
            let hold = e.hold.as_ref();
            sqlx::query(
                "INSERT INTO waitlist_entries (id, user_id, zone_id, starts_at, ends_at, status, \
                 seat_number, hold_expires_at, reservation_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(e.id)
            .bind(e.user_id)
            .bind(&e.zone.0)
            .bind(e.interval.start)
            .bind(e.interval.end)
            .bind(e.status.as_str())
            .bind(hold.map(|h| h.seat.0.as_str()))
            .bind(hold.map(|h| h.expires_at))
            .bind(e.reservation_id)
            .bind(e.created_at)
            .execute(&mut **tx)
            .await?;
            (1, e.id)
        }
        Change::UpdateWaitlistEntry { entry: e, from, at } => {
            let hold = e.hold.as_ref();
            let done = sqlx::query(
                "UPDATE waitlist_entries SET status = $1, seat_number = $2, hold_expires_at = $3, \
                 reservation_id = $4, updated_at = $5 WHERE id = $6 AND status = $7",
            )
            .bind(e.status.as_str())
            .bind(hold.map(|h| h.seat.0.as_str()))
            .bind(hold.map(|h| h.expires_at))
            .bind(e.reservation_id)
            .bind(*at)
            .bind(e.id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            (done.rows_affected(), e.id)
        }
        _ => unreachable!("only lifecycle and waitlist changes are routed here"),
    };
    match done {
        (1, _) => Ok(()),
        (_, id) => Err(stale(id)),
    }
}

pub(super) async fn open_waitlist(
    db: &Db,
    zone: &ZoneId,
) -> Result<Vec<WaitlistEntry>, sqlx::Error> {
    match db {
        Db::Sqlite(pool) => {
            let sql = select_entries!(
                "WHERE zone_id = ? AND status IN ('waiting', 'offered') ORDER BY created_at, id"
            );
            let rows = sqlx::query(sql).bind(&zone.0).fetch_all(pool).await?;
            rows.iter().map(sqlite_entry).collect()
        }
        Db::Postgres(pool) => {
            let sql = select_entries!(
                "WHERE zone_id = $1 AND status IN ('waiting', 'offered') ORDER BY created_at, id"
            );
            let rows = sqlx::query(sql).bind(&zone.0).fetch_all(pool).await?;
            rows.iter().map(postgres_entry).collect()
        }
    }
}

async fn sqlite_one(
    pool: &SqlitePool,
    id: WaitlistId,
) -> Result<Option<WaitlistEntry>, sqlx::Error> {
    let sql = select_entries!("WHERE id = ?");
    let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(sqlite_entry).transpose()
}

async fn postgres_one(pool: &PgPool, id: WaitlistId) -> Result<Option<WaitlistEntry>, sqlx::Error> {
    let sql = select_entries!("WHERE id = $1");
    let row = sqlx::query(sql).bind(id).fetch_optional(pool).await?;
    row.as_ref().map(postgres_entry).transpose()
}

/// A page of a user's waitlist entries, newest first.
pub struct WaitlistQuery {
    pub user_id: UserId,
    pub status: Option<WaitStatus>,
    pub before: Option<WaitlistId>,
    pub limit: u32,
}

impl Db {
    pub async fn waitlist_entry(&self, id: WaitlistId) -> Result<Option<WaitlistEntry>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlite_one(pool, id).await?,
            Db::Postgres(pool) => postgres_one(pool, id).await?,
        })
    }

    pub async fn waitlist_of(&self, q: &WaitlistQuery) -> Result<Vec<WaitlistEntry>, DbError> {
        let status = q.status.map(|s| s.as_str());
        Ok(match self {
            Db::Sqlite(pool) => {
                let sql = select_entries!(
                    "WHERE user_id = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR id < ?) \
                     ORDER BY id DESC LIMIT ?"
                );
                let rows = sqlx::query(sql)
                    .bind(q.user_id)
                    .bind(status)
                    .bind(status)
                    .bind(q.before)
                    .bind(q.before)
                    .bind(i64::from(q.limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(sqlite_entry).collect::<Result<_, _>>()?
            }
            Db::Postgres(pool) => {
                let sql = select_entries!(
                    "WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) \
                     AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
                );
                let rows = sqlx::query(sql)
                    .bind(q.user_id)
                    .bind(status)
                    .bind(q.before)
                    .bind(i64::from(q.limit))
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(postgres_entry).collect::<Result<_, _>>()?
            }
        })
    }
}
