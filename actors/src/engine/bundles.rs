//! The engine's side of the bundle protocol (see [`crate::bundle`]): it drives both
//! phases from its own task, so a client that goes away does not stop it half-way.

use std::time::Duration;

use uuid::Uuid;

use crate::book::messages::BookMsg;
use crate::bundle::{Bundle, BundleError, BundlePart, BundleRequest, SealedBundle};
use crate::domain::{BookId, BookReservation, Reservation, ReserveRequest, UserId};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::rpc::unwrap_call;
use crate::zone::messages::ZoneMsg;

impl Engine {
    /// Books a seat interval and book copies together: both commit in one transaction,
    /// or neither changes anything. The error names the part that failed.
    pub async fn reserve_bundle(&self, request: BundleRequest) -> Result<Bundle, BundleError> {
        let engine = self.clone();
        // Its own task: the protocol runs to its end even if the caller is dropped.
        tokio::spawn(async move { engine.run_bundle(request).await })
            .await
            .unwrap_or_else(|_| {
                Err(BundleError::new(
                    BundlePart::Commit,
                    EngineError::Unavailable,
                ))
            })
    }

    /// Phase one only, on the seat side: holds the seat prepared and never submits it,
    /// as if the rest of the bundle had died. Tests use it to watch the deadline work.
    #[doc(hidden)]
    pub async fn prepare_seat_only(
        &self,
        request: ReserveRequest,
        ttl: Duration,
    ) -> Result<Reservation, EngineError> {
        let zone = self
            .zone_of(&request.seat)
            .ok_or_else(|| EngineError::UnknownSeat(request.seat.clone()))?;
        let zone = self.zone_actor(&zone).ok_or(EngineError::Unavailable)?;
        let id = Uuid::now_v7();
        let result = zone
            .call(
                |reply| ZoneMsg::Prepare {
                    id,
                    request,
                    ttl,
                    reply,
                },
                Some(self.config().rpc_timeout),
            )
            .await;
        unwrap_call(result)?
    }

    /// Phase one only, on the book side: holds the copies prepared and never submits
    /// them, as if the rest of the bundle had died.
    #[doc(hidden)]
    pub async fn prepare_book_only(
        &self,
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        ttl: Duration,
    ) -> Result<BookReservation, EngineError> {
        self.call_books(|reply| BookMsg::Prepare {
            user_id,
            book_id,
            copies,
            seat_reservation: Uuid::now_v7(),
            ttl,
            reply,
        })
        .await?
    }

    async fn run_bundle(&self, request: BundleRequest) -> Result<Bundle, BundleError> {
        let seat_err = |e| BundleError::new(BundlePart::Seat, e);
        let book_err = |e| BundleError::new(BundlePart::Book, e);
        let zone_id = self
            .zone_of(&request.seat.seat)
            .ok_or_else(|| seat_err(EngineError::UnknownSeat(request.seat.seat.clone())))?;
        // One place at each actor for the whole protocol, taken before anything is sent.
        let _seat_pass = self.admit_zone(&zone_id).map_err(seat_err)?;
        let _book_pass = self.admit_books().map_err(book_err)?;
        let zone = self
            .zone_actor(&zone_id)
            .ok_or(seat_err(EngineError::Unavailable))?;
        let books = self
            .book_actor()
            .ok_or(book_err(EngineError::Unavailable))?;
        let timeout = Some(self.config().rpc_timeout);
        let ttl = self.config().prepare_timeout;
        let seat_id = Uuid::now_v7();
        let user_id = request.seat.user_id;
        let idempotency = request.idempotency;

        // Phase one: both parts decide and hold, in parallel.
        let (seat, book) = tokio::join!(
            zone.call(
                |reply| ZoneMsg::Prepare {
                    id: seat_id,
                    request: request.seat,
                    ttl,
                    reply,
                },
                timeout,
            ),
            books.call(
                |reply| BookMsg::Prepare {
                    user_id,
                    book_id: request.book_id,
                    copies: request.copies,
                    seat_reservation: seat_id,
                    ttl,
                    reply,
                },
                timeout,
            ),
        );
        let seat = unwrap_call(seat).and_then(|r| r);
        let book = unwrap_call(book).and_then(|r| r);
        let (seat, book) = match (seat, book) {
            (Ok(seat), Ok(book)) => (seat, book),
            (Err(refusal), book) => {
                if let Ok(book) = book {
                    let _ = books.cast(BookMsg::ReleasePrepared { id: book.id });
                }
                return Err(seat_err(refusal));
            }
            (Ok(seat), Err(refusal)) => {
                let _ = zone.cast(ZoneMsg::ReleasePrepared { id: seat.id });
                return Err(book_err(refusal));
            }
        };

        // Phase two: seal both and submit one intent; the guard decides.
        let ledger = self.shared_ledger();
        let sealed = |reply| {
            BookMsg::CommitBundle(Box::new(SealedBundle::new(
                idempotency,
                zone.clone(),
                books.clone(),
                ledger,
                seat,
                book,
                reply,
            )))
        };
        match books.call(sealed, timeout).await {
            Ok(ractor::rpc::CallResult::Success(outcome)) => outcome,
            // The guard answered nothing in time (or was lost with an actor): the
            // outcome is unknown to us, as for any write that times out.
            _ => Err(BundleError::new(
                BundlePart::Commit,
                EngineError::Unavailable,
            )),
        }
    }
}
