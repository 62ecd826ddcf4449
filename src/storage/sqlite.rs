//! SQLite queries. Reservation bounds are unix seconds, stamps unix microseconds.

use chrono::{DateTime, Utc};
use pica_actors::{Change, Interval, Reservation, ReservationId, SeatNumber, UserId, ZoneId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::{NewUser, ReservationQuery, Role, UserRecord, parse_status, stale};

/// `SELECT` of a reservation's columns followed by the rest of the statement; a macro so
/// the SQL stays a literal (sqlx refuses dynamic strings).
macro_rules! select_reservations {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, seat_number, zone_id, starts_at, ends_at, status, created_at \
             FROM reservations ",
            $rest
        )
    };
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_secs(s: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp(s, 0)
        .ok_or_else(|| sqlx::Error::Decode("timestamp out of range".into()))
}

fn from_micros(us: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| sqlx::Error::Decode("timestamp out of range".into()))
}

fn reservation_from(row: &SqliteRow) -> Result<Reservation, sqlx::Error> {
    let start = from_secs(row.try_get("starts_at")?)?;
    let end = from_secs(row.try_get("ends_at")?)?;
    Ok(Reservation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        seat: SeatNumber(row.try_get("seat_number")?),
        zone: ZoneId(row.try_get("zone_id")?),
        interval: Interval::new(start, end)
            .ok_or_else(|| sqlx::Error::Decode("reservation with empty interval".into()))?,
        status: parse_status(row.try_get("status")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

fn user_from(row: &SqliteRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(row.try_get("role")?),
        token_version: row.try_get("token_version")?,
        created_at: from_micros(row.try_get("created_at")?)?,
    })
}

pub async fn load_active(
    pool: &SqlitePool,
    zone: &ZoneId,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!(
        "WHERE zone_id = ? AND status IN ('confirmed', 'checked_in') AND ends_at > ?"
    );
    let rows = sqlx::query(sql)
        .bind(&zone.0)
        .bind(secs(now))
        .fetch_all(pool)
        .await?;
    rows.iter().map(reservation_from).collect()
}

pub async fn commit(pool: &SqlitePool, changes: &[Change]) -> Result<(), sqlx::Error> {
    // BEGIN IMMEDIATE would be nicer, but the unit of work is the only writer anyway.
    let mut tx = pool.begin().await?;
    for change in changes {
        match change {
            Change::CreateReservation {
                reservation: r,
                idempotency_key,
            } => {
                sqlx::query(
                    "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
                     status, created_at, updated_at, idempotency_key) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(r.id)
                .bind(r.user_id)
                .bind(&r.seat.0)
                .bind(&r.zone.0)
                .bind(secs(r.interval.start))
                .bind(secs(r.interval.end))
                .bind(r.status.as_str())
                .bind(micros(r.created_at))
                .bind(micros(r.created_at))
                .bind(idempotency_key.as_deref())
                .execute(&mut *tx)
                .await?;
            }
            Change::SetReservationStatus { id, from, to, at } => {
                let done = sqlx::query(
                    "UPDATE reservations SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
                )
                .bind(to.as_str())
                .bind(micros(*at))
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(stale(*id));
                }
            }
            change @ (Change::EndReservation { .. }
            | Change::CreateWaitlistEntry { .. }
            | Change::UpdateWaitlistEntry { .. }) => {
                super::live::apply_sqlite(&mut tx, change).await?
            }
            change @ (Change::AddSeat { .. } | Change::SetSeatService { .. }) => {
                super::layout::apply_sqlite(&mut tx, change).await?
            }
            change @ (Change::CreateBookReservation { .. }
            | Change::SetBookReservationStatus { .. }
            | Change::SetBookTotal { .. }) => super::books::sqlite_apply(&mut tx, change).await?,
        }
    }
    tx.commit().await
}

pub async fn create_user(pool: &SqlitePool, user: &NewUser<'_>) -> Result<UserId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (username, email, password_hash, role, created_at) \
         VALUES (?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(user.username)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.role.as_str())
    .bind(micros(user.created_at))
    .fetch_one(pool)
    .await
}

pub async fn find_user_by_name(
    pool: &SqlitePool,
    username: &str,
) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM users WHERE username = ? AND deleted_at IS NULL")
        .bind(username)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub async fn find_user(pool: &SqlitePool, id: UserId) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM users WHERE id = ? AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub async fn reservation(
    pool: &SqlitePool,
    id: ReservationId,
) -> Result<Option<Reservation>, sqlx::Error> {
    let sql = select_reservations!("WHERE id = ?");
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(reservation_from)
        .transpose()
}

pub async fn reservation_by_key(
    pool: &SqlitePool,
    user_id: UserId,
    key: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let sql = select_reservations!("WHERE user_id = ? AND idempotency_key = ?");
    sqlx::query(sql)
        .bind(user_id)
        .bind(key)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(reservation_from)
        .transpose()
}

pub async fn reservations_of(
    pool: &SqlitePool,
    q: &ReservationQuery,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!(
        "WHERE user_id = ? AND (? IS NULL OR status = ?) AND (? IS NULL OR id < ?) \
         ORDER BY id DESC LIMIT ?"
    );
    let status = q.status.map(|s| s.as_str());
    let rows = sqlx::query(sql)
        .bind(q.user_id)
        .bind(status)
        .bind(status)
        .bind(q.before)
        .bind(q.before)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(reservation_from).collect()
}

pub async fn all_reservations(pool: &SqlitePool) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!("ORDER BY id");
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter().map(reservation_from).collect()
}
