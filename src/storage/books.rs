//! Books and book reservations, both backends side by side: the engine's writes (one
//! function per backend, called from each backend's `commit`), its rebuild reads, and
//! the edge's reads. SQLite stamps are unix microseconds.

use chrono::{DateTime, Utc};
use pica_actors::{
    Book, BookCondition, BookId, BookReservation, BookReservationId, BookReservationStatus, Change,
    UserId,
};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, PgPool, Row, SqliteConnection, SqlitePool};

use super::{Db, DbError, stale};

/// A page of a user's book reservations, newest first.
pub struct BookReservationQuery {
    pub user_id: UserId,
    pub status: Option<BookReservationStatus>,
    pub before: Option<BookReservationId>,
    pub limit: u32,
}

macro_rules! select_book_reservations {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, book_id, copies, status, created_at, expires_at, \
             seat_reservation_id FROM book_reservations ",
            $rest
        )
    };
}

macro_rules! select_books {
    ($rest:literal) => {
        concat!(
            "SELECT id, title, author, isbn, condition, total_copies, reserved_copies, \
             price_cents FROM books ",
            $rest
        )
    };
}

fn decode(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(what.to_string().into())
}

fn count(n: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(n).map_err(|_| decode("negative or huge copy count"))
}

fn status(s: &str) -> Result<BookReservationStatus, sqlx::Error> {
    BookReservationStatus::parse(s).ok_or_else(|| decode(&format!("book status {s}")))
}

fn condition(s: &str) -> Result<BookCondition, sqlx::Error> {
    BookCondition::parse(s).ok_or_else(|| decode(&format!("book condition {s}")))
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| decode("timestamp out of range"))
}

/// What a status change does to the book's counters: (reserved, total) decrements.
fn release(copies: u32, from: BookReservationStatus, to: BookReservationStatus) -> (i64, i64) {
    if !from.is_active() || to.is_active() {
        return (0, 0);
    }
    let copies = i64::from(copies);
    match to {
        BookReservationStatus::PickedUp => (copies, copies),
        _ => (copies, 0),
    }
}

fn missing_book(id: BookId) -> sqlx::Error {
    sqlx::Error::Protocol(format!("book {id} does not exist"))
}

fn stale_total(id: BookId, from: u32) -> sqlx::Error {
    sqlx::Error::Protocol(format!("book {id} no longer has {from} copies in total"))
}

// ---------------------------------------------------------------- SQLite

fn sqlite_book(row: &SqliteRow) -> Result<Book, sqlx::Error> {
    Ok(Book {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        author: row.try_get("author")?,
        isbn: row.try_get("isbn")?,
        condition: condition(row.try_get("condition")?)?,
        total_copies: count(row.try_get("total_copies")?)?,
        reserved_copies: count(row.try_get("reserved_copies")?)?,
        price_cents: row.try_get("price_cents")?,
    })
}

fn sqlite_reservation(row: &SqliteRow) -> Result<BookReservation, sqlx::Error> {
    Ok(BookReservation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        book_id: row.try_get("book_id")?,
        copies: count(row.try_get("copies")?)?,
        status: status(row.try_get("status")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
        seat_reservation: row.try_get("seat_reservation_id")?,
    })
}

/// Applies one book change inside the SQLite transaction of a unit of work.
pub(super) async fn sqlite_apply(
    conn: &mut SqliteConnection,
    change: &Change,
) -> Result<(), sqlx::Error> {
    match change {
        Change::CreateBookReservation { reservation: r } => {
            sqlx::query(
                "INSERT INTO book_reservations (id, user_id, book_id, copies, status, created_at, \
                 expires_at, updated_at, seat_reservation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.id)
            .bind(r.user_id)
            .bind(r.book_id)
            .bind(i64::from(r.copies))
            .bind(r.status.as_str())
            .bind(micros(r.created_at))
            .bind(micros(r.expires_at))
            .bind(micros(r.created_at))
            .bind(r.seat_reservation)
            .execute(&mut *conn)
            .await?;
            if r.status.is_active() {
                let done = sqlx::query(
                    "UPDATE books SET reserved_copies = reserved_copies + ? WHERE id = ?",
                )
                .bind(i64::from(r.copies))
                .bind(r.book_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_book(r.book_id));
                }
            }
        }
        Change::SetBookReservationStatus {
            id,
            book_id,
            copies,
            from,
            to,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE book_reservations SET status = ?, updated_at = ? WHERE id = ? AND status = ?",
            )
            .bind(to.as_str())
            .bind(micros(*at))
            .bind(id)
            .bind(from.as_str())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(stale(*id));
            }
            let (reserved, total) = release(*copies, *from, *to);
            if reserved > 0 || total > 0 {
                let done = sqlx::query(
                    "UPDATE books SET reserved_copies = reserved_copies - ?, \
                     total_copies = total_copies - ? WHERE id = ?",
                )
                .bind(reserved)
                .bind(total)
                .bind(book_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_book(*book_id));
                }
            }
        }
        Change::SetBookTotal { book_id, from, to } => {
            let done =
                sqlx::query("UPDATE books SET total_copies = ? WHERE id = ? AND total_copies = ?")
                    .bind(i64::from(*to))
                    .bind(book_id)
                    .bind(i64::from(*from))
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() != 1 {
                return Err(stale_total(*book_id, *from));
            }
        }
        _ => unreachable!("not a book change: {change:?}"),
    }
    Ok(())
}

async fn sqlite_books(pool: &SqlitePool) -> Result<Vec<Book>, sqlx::Error> {
    let rows = sqlx::query(select_books!("ORDER BY id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(sqlite_book).collect()
}

async fn sqlite_active(pool: &SqlitePool) -> Result<Vec<BookReservation>, sqlx::Error> {
    let sql = select_book_reservations!("WHERE status = 'reserved' ORDER BY id");
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter().map(sqlite_reservation).collect()
}

// ---------------------------------------------------------------- PostgreSQL

fn pg_book(row: &PgRow) -> Result<Book, sqlx::Error> {
    Ok(Book {
        id: row.try_get("id")?,
        title: row.try_get("title")?,
        author: row.try_get("author")?,
        isbn: row.try_get("isbn")?,
        condition: condition(row.try_get("condition")?)?,
        total_copies: count(row.try_get::<i32, _>("total_copies")?.into())?,
        reserved_copies: count(row.try_get::<i32, _>("reserved_copies")?.into())?,
        price_cents: row.try_get::<Option<i32>, _>("price_cents")?.map(i64::from),
    })
}

fn pg_reservation(row: &PgRow) -> Result<BookReservation, sqlx::Error> {
    Ok(BookReservation {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        book_id: row.try_get("book_id")?,
        copies: count(row.try_get::<i32, _>("copies")?.into())?,
        status: status(row.try_get("status")?)?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        seat_reservation: row.try_get("seat_reservation_id")?,
    })
}

/// A copy count as PostgreSQL's INTEGER; larger counts are refused like a constraint.
fn pg_count(n: u32) -> Result<i32, sqlx::Error> {
    i32::try_from(n).map_err(|_| sqlx::Error::Protocol(format!("copy count {n} is too large")))
}

/// Applies one book change inside the PostgreSQL transaction of a unit of work.
pub(super) async fn postgres_apply(
    conn: &mut PgConnection,
    change: &Change,
) -> Result<(), sqlx::Error> {
    match change {
        Change::CreateBookReservation { reservation: r } => {
            sqlx::query(
                "INSERT INTO book_reservations (id, user_id, book_id, copies, status, created_at, \
                 expires_at, updated_at, seat_reservation_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)",
            )
            .bind(r.id)
            .bind(r.user_id)
            .bind(r.book_id)
            .bind(pg_count(r.copies)?)
            .bind(r.status.as_str())
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.seat_reservation)
            .execute(&mut *conn)
            .await?;
            if r.status.is_active() {
                let done = sqlx::query(
                    "UPDATE books SET reserved_copies = reserved_copies + $1 WHERE id = $2",
                )
                .bind(pg_count(r.copies)?)
                .bind(r.book_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_book(r.book_id));
                }
            }
        }
        Change::SetBookReservationStatus {
            id,
            book_id,
            copies,
            from,
            to,
            at,
        } => {
            let done = sqlx::query(
                "UPDATE book_reservations SET status = $1, updated_at = $2 \
                 WHERE id = $3 AND status = $4",
            )
            .bind(to.as_str())
            .bind(*at)
            .bind(id)
            .bind(from.as_str())
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(stale(*id));
            }
            let (reserved, total) = release(*copies, *from, *to);
            if reserved > 0 || total > 0 {
                let done = sqlx::query(
                    "UPDATE books SET reserved_copies = reserved_copies - $1, \
                     total_copies = total_copies - $2 WHERE id = $3",
                )
                .bind(reserved as i32)
                .bind(total as i32)
                .bind(book_id)
                .execute(&mut *conn)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(missing_book(*book_id));
                }
            }
        }
        Change::SetBookTotal { book_id, from, to } => {
            let done = sqlx::query(
                "UPDATE books SET total_copies = $1 WHERE id = $2 AND total_copies = $3",
            )
            .bind(pg_count(*to)?)
            .bind(book_id)
            .bind(pg_count(*from)?)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() != 1 {
                return Err(stale_total(*book_id, *from));
            }
        }
        _ => unreachable!("not a book change: {change:?}"),
    }
    Ok(())
}

async fn pg_books(pool: &PgPool) -> Result<Vec<Book>, sqlx::Error> {
    let rows = sqlx::query(select_books!("ORDER BY id"))
        .fetch_all(pool)
        .await?;
    rows.iter().map(pg_book).collect()
}

async fn pg_active(pool: &PgPool) -> Result<Vec<BookReservation>, sqlx::Error> {
    let sql = select_book_reservations!("WHERE status = 'reserved' ORDER BY id");
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter().map(pg_reservation).collect()
}

// ---------------------------------------------------------------- both

impl Db {
    /// The catalog with its committed stock, by id.
    pub async fn books(&self) -> Result<Vec<Book>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlite_books(pool).await,
            Db::Postgres(pool) => pg_books(pool).await,
        }
    }

    /// Every book reservation still holding copies.
    pub async fn active_book_reservations(&self) -> Result<Vec<BookReservation>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlite_active(pool).await,
            Db::Postgres(pool) => pg_active(pool).await,
        }
    }

    pub async fn book_reservation(
        &self,
        id: BookReservationId,
    ) -> Result<Option<BookReservation>, DbError> {
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(select_book_reservations!("WHERE id = ?"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(sqlite_reservation)
                .transpose()?,
            Db::Postgres(pool) => sqlx::query(select_book_reservations!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(pg_reservation)
                .transpose()?,
        })
    }

    pub async fn book_reservations_of(
        &self,
        q: &BookReservationQuery,
    ) -> Result<Vec<BookReservation>, DbError> {
        let status = q.status.map(|s| s.as_str());
        let limit = i64::from(q.limit);
        Ok(match self {
            Db::Sqlite(pool) => {
                let sql = select_book_reservations!(
                    "WHERE user_id = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3) \
                     ORDER BY id DESC LIMIT ?4"
                );
                let rows = sqlx::query(sql)
                    .bind(q.user_id)
                    .bind(status)
                    .bind(q.before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter()
                    .map(sqlite_reservation)
                    .collect::<Result<_, _>>()?
            }
            Db::Postgres(pool) => {
                let sql = select_book_reservations!(
                    "WHERE user_id = $1 AND ($2::text IS NULL OR status = $2) \
                     AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
                );
                let rows = sqlx::query(sql)
                    .bind(q.user_id)
                    .bind(status)
                    .bind(q.before)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(pg_reservation).collect::<Result<_, _>>()?
            }
        })
    }

    /// Every book reservation, oldest first (audits in tests).
    pub async fn all_book_reservations(&self) -> Result<Vec<BookReservation>, DbError> {
        let sql = select_book_reservations!("ORDER BY id");
        Ok(match self {
            Db::Sqlite(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(sqlite_reservation)
                .collect::<Result<_, _>>()?,
            Db::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await?
                .iter()
                .map(pg_reservation)
                .collect::<Result<_, _>>()?,
        })
    }
}
