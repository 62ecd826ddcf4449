//! PostgreSQL queries. Times are `timestamptz`.

use chrono::{DateTime, Utc};
use pica_actors::{Change, Interval, Reservation, ReservationId, SeatNumber, UserId, ZoneId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

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

fn reservation_from(row: &PgRow) -> Result<Reservation, sqlx::Error> {
    Ok(Reservation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        seat: SeatNumber(row.try_get("seat_number")?),
        zone: ZoneId(row.try_get("zone_id")?),
        interval: Interval::new(row.try_get("starts_at")?, row.try_get("ends_at")?)
            .ok_or_else(|| sqlx::Error::Decode("reservation with empty interval".into()))?,
        status: parse_status(row.try_get("status")?)?,
        created_at: row.try_get("created_at")?,
    })
}

fn user_from(row: &PgRow) -> Result<UserRecord, sqlx::Error> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(row.try_get("role")?),
        token_version: row.try_get("token_version")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn load_active(
    pool: &PgPool,
    zone: &ZoneId,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!(
        "WHERE zone_id = $1 AND status IN ('confirmed', 'checked_in') AND ends_at > $2"
    );
    let rows = sqlx::query(sql)
        .bind(&zone.0)
        .bind(now)
        .fetch_all(pool)
        .await?;
    rows.iter().map(reservation_from).collect()
}

pub async fn commit(pool: &PgPool, changes: &[Change]) -> Result<(), sqlx::Error> {
    // Runs of reservation inserts (and of status changes) go out as one statement each,
    // the rows bound as arrays: a batch costs a few round trips rather than one per
    // change, and the statements' text never varies (prepared once per connection).
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
                super::live::apply_postgres(&mut tx, change).await?;
                1
            }
            change @ (Change::AddSeat { .. } | Change::SetSeatService { .. }) => {
                super::layout::apply_postgres(&mut tx, change).await?;
                1
            }
            change @ (Change::CreateBookReservation { .. }
            | Change::SetBookReservationStatus { .. }
            | Change::SetBookTotal { .. }) => {
                super::books::postgres_apply(&mut tx, change).await?;
                1
            }
        };
        rest = &rest[done..];
    }
    super::idempotency::insert_postgres(&mut tx, &records, Utc::now()).await?;
    tx.commit().await
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

async fn insert_reservations(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    creates: &[&Reservation],
) -> Result<(), sqlx::Error> {
    let n = creates.len();
    let (mut ids, mut users, mut seats, mut zones) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut starts, mut ends, mut statuses, mut created) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in creates {
        ids.push(r.id);
        users.push(r.user_id);
        seats.push(r.seat.0.as_str());
        zones.push(r.zone.0.as_str());
        starts.push(r.interval.start);
        ends.push(r.interval.end);
        statuses.push(r.status.as_str());
        created.push(r.created_at);
    }
    sqlx::query(
        "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
         status, created_at, updated_at) \
         SELECT id, user_id, seat, zone, s, e, status, c, c FROM UNNEST(\
         $1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[], \
         $6::timestamptz[], $7::text[], $8::timestamptz[]) \
         AS t(id, user_id, seat, zone, s, e, status, c)",
    )
    .bind(ids)
    .bind(users)
    .bind(seats)
    .bind(zones)
    .bind(starts)
    .bind(ends)
    .bind(statuses)
    .bind(created)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_reservation_statuses(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    updates: &[Change],
) -> Result<(), sqlx::Error> {
    // One primary-key update per row. A single `UPDATE … FROM UNNEST(…)` was tried: with
    // a generic plan the planner cannot see the array's length and may join against the
    // whole table, which made cancels slower as the table grew.
    for change in updates {
        if let Change::SetReservationStatus { id, from, to, at } = change {
            let done = sqlx::query(
                "UPDATE reservations SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
            )
            .bind(to.as_str())
            .bind(*at)
            .bind(id)
            .bind(from.as_str())
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                // The unit of work then retries each intent alone, naming the culprit.
                return Err(stale(*id));
            }
        }
    }
    Ok(())
}

pub async fn create_user(pool: &PgPool, user: &NewUser<'_>) -> Result<UserId, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (username, email, password_hash, role, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user.username)
    .bind(user.email)
    .bind(user.password_hash)
    .bind(user.role.as_str())
    .bind(user.created_at)
    .fetch_one(pool)
    .await
}

pub async fn find_user_by_name(
    pool: &PgPool,
    username: &str,
) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM users WHERE username = $1 AND deleted_at IS NULL")
        .bind(username)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub async fn find_user(pool: &PgPool, id: UserId) -> Result<Option<UserRecord>, sqlx::Error> {
    sqlx::query("SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(user_from)
        .transpose()
}

pub async fn reservation(
    pool: &PgPool,
    id: ReservationId,
) -> Result<Option<Reservation>, sqlx::Error> {
    let sql = select_reservations!("WHERE id = $1");
    sqlx::query(sql)
        .bind(id)
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(reservation_from)
        .transpose()
}

pub async fn reservations_of(
    pool: &PgPool,
    q: &ReservationQuery,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!(
        "WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    );
    let rows = sqlx::query(sql)
        .bind(q.user_id)
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.before)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(reservation_from).collect()
}

pub async fn all_reservations(pool: &PgPool) -> Result<Vec<Reservation>, sqlx::Error> {
    let sql = select_reservations!("ORDER BY id");
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter().map(reservation_from).collect()
}
