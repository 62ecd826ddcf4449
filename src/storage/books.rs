//! Books and book reservations: the engine's writes (a reservation's row and its book's
//! counters change together), its rebuild reads, and the edge's reads.

use pica_actors::{
    Book, BookCondition, BookId, BookReservation, BookReservationId, BookReservationStatus, Change,
};
use sqlx::Row;

use super::dialect::{Stamp, both, fetch};
use super::{Db, DbError, Page, decode_error, fetch_page, one_row, stale};

pub type BookReservationQuery = Page<BookReservationStatus, BookReservationId>;

macro_rules! select_book_reservations {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, book_id, copies, status, created_at, expires_at, \
             seat_reservation_id FROM book_reservations ",
            $rest
        )
    };
}

const SELECT_BOOKS: &str = "SELECT id, title, author, isbn, condition, total_copies, \
                            reserved_copies, price_cents FROM books ORDER BY id";

/// A copy count as read: INTEGER on both backends.
fn count(n: i32) -> Result<u32, sqlx::Error> {
    u32::try_from(n).map_err(|_| decode_error("negative or huge copy count"))
}

/// A copy count as written; larger counts than INTEGER holds are refused like a
/// constraint.
fn copies(n: u32) -> Result<i32, sqlx::Error> {
    i32::try_from(n).map_err(|_| sqlx::Error::Protocol(format!("copy count {n} is too large")))
}

/// What a status change does to the book's counters: (reserved, total) decrements.
fn release(copies: u32, from: BookReservationStatus, to: BookReservationStatus) -> (u32, u32) {
    match to {
        _ if !from.is_active() || to.is_active() => (0, 0),
        BookReservationStatus::PickedUp => (copies, copies),
        _ => (copies, 0),
    }
}

fn missing_book(id: BookId) -> sqlx::Error {
    sqlx::Error::Protocol(format!("book {id} does not exist"))
}

both!(row: trait BookRow {
    fn book(&self) -> Result<Book, sqlx::Error> {
        let condition: &str = self.try_get("condition")?;
        Ok(Book {
            id: self.try_get("id")?,
            title: self.try_get("title")?,
            author: self.try_get("author")?,
            isbn: self.try_get("isbn")?,
            condition: BookCondition::parse(condition)
                .ok_or_else(|| decode_error(format!("book condition {condition}")))?,
            total_copies: count(self.try_get("total_copies")?)?,
            reserved_copies: count(self.try_get("reserved_copies")?)?,
            price_cents: self.try_get::<Option<i32>, _>("price_cents")?.map(i64::from),
        })
    }

    fn book_reservation(&self) -> Result<BookReservation, sqlx::Error> {
        let status: &str = self.try_get("status")?;
        Ok(BookReservation {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            book_id: self.try_get("book_id")?,
            copies: count(self.try_get("copies")?)?,
            status: BookReservationStatus::parse(status)
                .ok_or_else(|| decode_error(format!("book status {status}")))?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
            expires_at: self.try_get::<Stamp, _>("expires_at")?.0,
            seat_reservation: self.try_get("seat_reservation_id")?,
        })
    }
});

both!(connection: pub(super) trait BookWrites {
    async fn apply_book_change(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        // Each statement is a compare-and-set or touches one existing row: a count of
        // rows other than one means the engine's view and the database disagree.
        match change {
            Change::CreateBookReservation { reservation: r } => {
                sqlx::query(
                    "INSERT INTO book_reservations (id, user_id, book_id, copies, status, \
                     created_at, expires_at, updated_at, seat_reservation_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8)",
                )
                .bind(r.id)
                .bind(r.user_id)
                .bind(r.book_id)
                .bind(copies(r.copies)?)
                .bind(r.status.as_str())
                .bind(Stamp(r.created_at))
                .bind(Stamp(r.expires_at))
                .bind(r.seat_reservation)
                .execute(&mut *self)
                .await?;
                if r.status.is_active() {
                    let done = sqlx::query(
                        "UPDATE books SET reserved_copies = reserved_copies + $1 WHERE id = $2",
                    )
                    .bind(copies(r.copies)?)
                    .bind(r.book_id)
                    .execute(&mut *self)
                    .await?;
                    one_row(done.rows_affected(), || missing_book(r.book_id))?;
                }
                Ok(())
            }
            Change::SetBookReservationStatus { id, book_id, copies: n, from, to, at } => {
                let done = sqlx::query(
                    "UPDATE book_reservations SET status = $1, updated_at = $2 \
                     WHERE id = $3 AND status = $4",
                )
                .bind(to.as_str())
                .bind(Stamp(*at))
                .bind(id)
                .bind(from.as_str())
                .execute(&mut *self)
                .await?;
                one_row(done.rows_affected(), || stale(*id))?;
                let (reserved, total) = release(*n, *from, *to);
                if reserved > 0 || total > 0 {
                    let done = sqlx::query(
                        "UPDATE books SET reserved_copies = reserved_copies - $1, \
                         total_copies = total_copies - $2 WHERE id = $3",
                    )
                    .bind(copies(reserved)?)
                    .bind(copies(total)?)
                    .bind(book_id)
                    .execute(&mut *self)
                    .await?;
                    one_row(done.rows_affected(), || missing_book(*book_id))?;
                }
                Ok(())
            }
            Change::SetBookTotal { book_id, from, to } => {
                let done = sqlx::query(
                    "UPDATE books SET total_copies = $1 WHERE id = $2 AND total_copies = $3",
                )
                .bind(copies(*to)?)
                .bind(book_id)
                .bind(copies(*from)?)
                .execute(&mut *self)
                .await?;
                one_row(done.rows_affected(), || {
                    sqlx::Error::Protocol(format!(
                        "book {book_id} no longer has {from} copies in total"
                    ))
                })
            }
            _ => unreachable!("not a book change: {change:?}"),
        }
    }
});

impl Db {
    /// The catalog with its committed stock, by id.
    pub async fn books(&self) -> Result<Vec<Book>, sqlx::Error> {
        fetch!(self, all book, sqlx::query(SELECT_BOOKS))
    }

    /// Every book reservation still holding copies.
    pub async fn active_book_reservations(&self) -> Result<Vec<BookReservation>, sqlx::Error> {
        let sql = select_book_reservations!("WHERE status = 'reserved' ORDER BY id");
        fetch!(self, all book_reservation, sqlx::query(sql))
    }

    pub async fn book_reservation(
        &self,
        id: BookReservationId,
    ) -> Result<Option<BookReservation>, DbError> {
        let sql = select_book_reservations!("WHERE id = $1");
        Ok(fetch!(self, optional book_reservation, sqlx::query(sql).bind(id))?)
    }

    pub async fn book_reservations_of(
        &self,
        q: &BookReservationQuery,
    ) -> Result<Vec<BookReservation>, DbError> {
        Ok(fetch_page!(
            self,
            select_book_reservations,
            book_reservation,
            q
        )?)
    }

    /// Every book reservation, oldest first (audits in tests).
    pub async fn all_book_reservations(&self) -> Result<Vec<BookReservation>, DbError> {
        let sql = select_book_reservations!("ORDER BY id");
        Ok(fetch!(self, all book_reservation, sqlx::query(sql))?)
    }
}
