//! SQLite queries. Reservation bounds are unix seconds, stamps unix microseconds.

use std::sync::LazyLock;

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
    // The unit of work is the only writer, so a plain BEGIN never waits. Runs of
    // reservation inserts (and of status changes) go out as multi-row statements: each
    // statement is a round trip to the connection's worker thread, so a batch costs a
    // few of them rather than one per change.
    let mut tx = pool.begin().await?;
    let mut rest = changes;
    // Idempotency keys go in last, after the rows they point to; collecting them keeps
    // the records between reservation inserts from cutting those into short runs.
    let mut records = Vec::new();
    while let Some(change) = rest.first() {
        let done = match change {
            Change::CreateReservation { .. } => {
                let (creates, n) = super::idempotency::reservation_run(rest, &mut records);
                insert_reservations(&mut tx, &creates).await?;
                n
            }
            Change::RecordIdempotency { tag, created } => {
                records.push((tag, *created));
                1
            }
            Change::SetReservationStatus { .. } => {
                let n = status_run_len(rest);
                set_reservation_statuses(&mut tx, &rest[..n]).await?;
                n
            }
            change @ (Change::EndReservation { .. }
            | Change::CreateWaitlistEntry { .. }
            | Change::UpdateWaitlistEntry { .. }) => {
                super::live::apply_sqlite(&mut tx, change).await?;
                1
            }
            change @ (Change::AddSeat { .. } | Change::SetSeatService { .. }) => {
                super::layout::apply_sqlite(&mut tx, change).await?;
                1
            }
            change @ (Change::CreateBookReservation { .. }
            | Change::SetBookReservationStatus { .. }
            | Change::SetBookTotal { .. }) => {
                super::books::sqlite_apply(&mut tx, change).await?;
                1
            }
        };
        rest = &rest[done..];
    }
    super::idempotency::insert_sqlite(&mut tx, &records, Utc::now()).await?;
    tx.commit().await
}

/// Row counts of the multi-row statements. A run of changes is cut into pieces of at
/// most the largest; each piece goes out as one statement of the smallest size that
/// holds it, padded with NULL rows the statement skips. So five statements, each
/// prepared once per connection, serve every batch size.
const ROW_CLASSES: [usize; 5] = [1, 4, 16, 64, 256];

/// `changes` in pieces, each with the index of its row class.
fn pieces<T>(changes: &[T]) -> impl Iterator<Item = (usize, &[T])> {
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

/// The leading run of status changes, cut before a reservation appears a second time
/// (one statement could not apply both changes in order).
fn status_run_len(changes: &[Change]) -> usize {
    let mut seen = std::collections::HashSet::new();
    changes
        .iter()
        .take_while(|c| matches!(c, Change::SetReservationStatus { id, .. } if seen.insert(*id)))
        .count()
}

/// `head`, then `rows` copies of `row` separated by commas, then `tail`.
fn multi_row_sql(head: &str, row: &str, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * (row.len() + 2) + tail.len());
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row);
    }
    sql.push_str(tail);
    sql
}

static INSERT_RESERVATIONS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ROW_CLASSES
        .iter()
        .map(|&rows| {
            multi_row_sql(
                "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
                 status, created_at, updated_at) \
                 SELECT column1, column2, column3, column4, column5, column6, column7, column8, \
                 column9 FROM (VALUES ",
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
                ") WHERE column1 IS NOT NULL",
            )
        })
        .collect()
});

/// Compare-and-set of many statuses at once; the caller checks every row matched.
static SET_RESERVATION_STATUSES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ROW_CLASSES
        .iter()
        .map(|&rows| {
            multi_row_sql(
                "UPDATE reservations SET status = v.column3, updated_at = v.column4 FROM (VALUES ",
                "(?, ?, ?, ?)",
                rows,
                ") AS v WHERE reservations.id = v.column1 AND reservations.status = v.column2",
            )
        })
        .collect()
});

async fn insert_reservations(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    creates: &[&Reservation],
) -> Result<(), sqlx::Error> {
    for (class, piece) in pieces(creates) {
        let sql = INSERT_RESERVATIONS[class].as_str();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in piece {
            query = query
                .bind(r.id)
                .bind(r.user_id)
                .bind(r.seat.0.as_str())
                .bind(r.zone.0.as_str())
                .bind(secs(r.interval.start))
                .bind(secs(r.interval.end))
                .bind(r.status.as_str())
                .bind(micros(r.created_at))
                .bind(micros(r.created_at));
        }
        for _ in piece.len()..ROW_CLASSES[class] {
            for _ in 0..9 {
                query = query.bind(None::<i64>);
            }
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn set_reservation_statuses(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    updates: &[Change],
) -> Result<(), sqlx::Error> {
    for (class, piece) in pieces(updates) {
        let sql = SET_RESERVATION_STATUSES[class].as_str();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let mut first = None;
        for change in piece {
            if let Change::SetReservationStatus { id, from, to, at } = change {
                first.get_or_insert(*id);
                query = query
                    .bind(*id)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(micros(*at));
            }
        }
        for _ in piece.len()..ROW_CLASSES[class] {
            for _ in 0..4 {
                query = query.bind(None::<i64>);
            }
        }
        let done = query.execute(&mut **tx).await?;
        if done.rows_affected() != piece.len() as u64 {
            // A row was not in its expected status. The unit of work then retries each
            // intent alone, which names the culprit.
            return Err(stale(first.unwrap_or_default()));
        }
    }
    Ok(())
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
