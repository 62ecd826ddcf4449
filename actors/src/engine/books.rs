//! The book stock through the [`Engine`] handle: the catalog, book reservations,
//! restocking and the expiry of uncollected reservations.

use crate::book::messages::BookMsg;
use crate::book::state::{BookQuery, BookView};
use crate::domain::{BookId, BookReservation, BookReservationId, BookReservationStatus, UserId};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::storage::IdempotencyTag;

/// The book side of the engine handle.
impl Engine {
    /// Books matching `query`, with the copies a new reservation could take.
    pub async fn books(&self, query: BookQuery) -> Result<Vec<BookView>, EngineError> {
        self.call_books(|reply| BookMsg::List { query, reply })
            .await
    }

    pub async fn book(&self, id: BookId) -> Result<Option<BookView>, EngineError> {
        self.call_books(|reply| BookMsg::Get { id, reply }).await
    }

    /// Reserves `copies` of a book for a user until picked up, cancelled or expired.
    pub async fn reserve_book(
        &self,
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        idempotency: Option<IdempotencyTag>,
    ) -> Result<BookReservation, EngineError> {
        self.call_books(|reply| BookMsg::Reserve {
            user_id,
            book_id,
            copies,
            idempotency,
            reply,
        })
        .await?
    }

    /// Moves a `reserved` book reservation to `to`. With `user_id` set only its owner's
    /// reservation is found (cancel); without, any (admin pick-up, expiry).
    pub async fn change_book_reservation(
        &self,
        id: BookReservationId,
        user_id: Option<UserId>,
        to: BookReservationStatus,
    ) -> Result<BookReservation, EngineError> {
        self.call_books(|reply| BookMsg::ChangeStatus {
            id,
            user_id,
            to,
            reply,
        })
        .await?
    }

    /// Sets a book's total copies (admin). Refused below the copies currently reserved.
    /// Returns the book as it is once the change committed.
    pub async fn adjust_book_stock(
        &self,
        book_id: BookId,
        new_total: u32,
    ) -> Result<BookView, EngineError> {
        self.call_books_unbounded(|reply| BookMsg::Restock {
            book_id,
            total: new_total,
            reply,
        })
        .await??;
        self.book(book_id).await?.ok_or(EngineError::BookNotFound)
    }

    /// Expires every uncollected reservation whose hold has ended (by the engine's
    /// clock) and returns how many expired, once their transactions are decided. The
    /// scheduler calls it; tests call it after moving the clock.
    pub async fn expire_book_reservations(&self) -> Result<usize, EngineError> {
        let pending = self
            .call_books_unbounded(|reply| BookMsg::ExpireDue { reply: Some(reply) })
            .await?;
        let mut expired = 0;
        for decided in pending {
            if decided.await.unwrap_or(false) {
                expired += 1;
            }
        }
        Ok(expired)
    }

    /// Asks the book stock actor to expire what is due, without waiting (the
    /// scheduler's tick). A restarting actor is skipped: the next tick catches up.
    pub fn trigger_book_expiry(&self) {
        if let Some(actor) = self.book_actor() {
            let _ = actor.cast(BookMsg::ExpireDue { reply: None });
        }
    }
}
