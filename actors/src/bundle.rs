//! Bundles: a seat interval and book copies in one request, all or nothing.
//!
//! The protocol is a two-phase prepare driven by the engine handle, with the commit done
//! by the unit of work in one transaction:
//!
//! 1. **Prepare** (in parallel): the zone and the book stock actor each decide and hold
//!    their part *prepared* — applied tentatively in memory exactly like a pending
//!    change, so later requests see it taken — and each schedules a deadline
//!    (`send_after` → `ReleasePrepared`) that drops the hold if it was not submitted in
//!    time. If either refuses, the other is released at once and the reply names the
//!    refusing part.
//! 2. **Seal and submit**: the engine sends the sealed bundle to the book actor, which
//!    takes its hold off the deadline (if the hold is already gone, the bundle fails
//!    with `PrepareExpired`) and forwards it to the zone, which does the same with its
//!    hold and submits ONE [`Intent`] carrying both parts' changes and events to the
//!    unit of work. Sealing and forwarding happen in one actor turn, and the deadline of
//!    a hold only acts on holds that are not sealed, so a deadline can never undo a part
//!    that is already on its way to the database.
//! 3. **Decide**: the intent's outcome settles both parts (commit) or undoes both
//!    (failure), then answers the client.
//!
//! Nothing can be left holding forever: a prepared part that never gets sealed is
//! released by its deadline (the client went away, the edge task or the other actor
//! died); a sealed bundle is owned by a [`BundleGuard`] that undoes both parts if it is
//! dropped undecided (a mailbox closed, an actor died holding it). An actor that
//! restarts rebuilds from the database, where nothing uncommitted exists.
//!
//! The edge side runs in its own task, so a client that disconnects mid-way does not
//! cancel the protocol half-way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::SubsecRound;
use ractor::{ActorRef, MessagingErr, RpcReplyPort};
use serde::Serialize;
use tracing::warn;
use uuid::Uuid;

use crate::book_stock::{BookActorState, BookMsg, commit_refusal};
use crate::domain::{
    BookId, BookReservation, DomainEvent, Reservation, ReservationId, ReservationStatus,
    ReserveRequest, UserId,
};
use crate::engine::{Engine, unwrap_call};
use crate::error::EngineError;
use crate::storage::{Change, Created, IdempotencyTag};
use crate::unit_of_work::{Intent, Outcome};
use crate::user_ledger::UserLedger;
use crate::zone::{Reply, ZoneActorState, ZoneMsg};

/// A seat interval and book copies to book together.
#[derive(Debug, Clone)]
pub struct BundleRequest {
    pub seat: ReserveRequest,
    pub book_id: BookId,
    pub copies: u32,
    /// Recorded with both parts, so a retry finds them.
    pub idempotency: Option<IdempotencyTag>,
}

/// Both parts, committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub seat: Reservation,
    pub book: BookReservation,
}

/// Which part of a bundle failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BundlePart {
    Seat,
    Book,
    /// Both parts were accepted, but the transaction did not commit.
    Commit,
}

impl BundlePart {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seat => "seat",
            Self::Book => "book",
            Self::Commit => "commit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct BundleError {
    pub part: BundlePart,
    pub error: EngineError,
}

impl BundleError {
    fn new(part: BundlePart, error: EngineError) -> Self {
        Self { part, error }
    }
}

/// Prepared seat holds of a zone that are not sealed yet: reservation → its user.
pub(crate) type PreparedSeats = HashMap<ReservationId, UserId>;

/// Decides a sealed bundle exactly once: on commit both parts settle, otherwise both
/// undo (the seat's user-ledger claim is released too); then the client is answered.
/// Dropped undecided, it undoes both.
pub struct BundleGuard {
    zone: ActorRef<ZoneMsg>,
    books: ActorRef<BookMsg>,
    ledger: Arc<UserLedger>,
    seat: Reservation,
    book: BookReservation,
    reply: Option<RpcReplyPort<Result<Bundle, BundleError>>>,
}

impl BundleGuard {
    fn decide(mut self, outcome: Result<(), BundleError>) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Result<(), BundleError>) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let committed = outcome.is_ok();
        if !committed {
            self.ledger.release(self.seat.user_id, &self.seat.id);
        }
        // Settle before replying: the client's next request lands behind it.
        let _ = self.zone.cast(ZoneMsg::CreateDecided {
            reservation: self.seat.clone(),
            committed,
        });
        let _ = self.books.cast(BookMsg::Decided {
            op: self.book.id,
            committed,
        });
        let _ = reply.send(outcome.map(|()| Bundle {
            seat: self.seat.clone(),
            book: self.book.clone(),
        }));
    }
}

impl Drop for BundleGuard {
    fn drop(&mut self) {
        if self.reply.is_some() {
            warn!(seat = %self.seat.id, book = %self.book.id, "bundle dropped undecided; undoing both parts");
            self.finish(Err(BundleError::new(
                BundlePart::Commit,
                EngineError::Unavailable,
            )));
        }
    }
}

/// Both parts prepared, on their way to the unit of work (engine → book actor → zone).
pub struct SealedBundle {
    idempotency: Option<IdempotencyTag>,
    guard: BundleGuard,
}

impl SealedBundle {
    fn fail(self, part: BundlePart, error: EngineError) {
        self.guard.decide(Err(BundleError::new(part, error)));
    }

    fn into_intent(self) -> Intent {
        let seat = self.guard.seat.clone();
        let book = self.guard.book.clone();
        let guard = self.guard;
        Intent {
            changes: [
                Change::CreateReservation {
                    reservation: seat.clone(),
                },
                Change::CreateBookReservation {
                    reservation: book.clone(),
                },
            ]
            .into_iter()
            .chain(Change::record(
                self.idempotency,
                Created::Bundle {
                    seat: seat.id,
                    book: book.id,
                },
            ))
            .collect(),
            events: vec![
                DomainEvent::ReservationCreated { reservation: seat },
                DomainEvent::BookReservationCreated { reservation: book },
            ],
            on_outcome: Box::new(move |outcome: Outcome| {
                guard.decide(
                    outcome.map_err(|e| BundleError::new(BundlePart::Commit, commit_refusal(e))),
                );
            }),
        }
    }
}

/// Zone side of phase one: decide like a reservation, hold it prepared until sealed or
/// `ttl` passes.
pub(crate) fn zone_prepare(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    request: ReserveRequest,
    ttl: Duration,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    if let Err(refusal) = state.book.check_create(&request.seat, &request.interval) {
        let _ = reply.send(Err(refusal));
        return;
    }
    let reservation = Reservation {
        id,
        user_id: request.user_id,
        seat: request.seat,
        zone: state.book.zone().clone(),
        interval: request.interval,
        status: ReservationStatus::Confirmed,
        created_at: now,
    };
    let claimed = state.ledger.try_claim(
        reservation.user_id,
        reservation.id,
        &reservation.zone,
        reservation.interval,
        now,
    );
    if let Err(refusal) = claimed {
        let _ = reply.send(Err(refusal));
        return;
    }
    state.book.apply_create(reservation.clone());
    state.prepared.insert(id, reservation.user_id);
    myself.send_after(ttl, move || ZoneMsg::ReleasePrepared { id });
    let _ = reply.send(Ok(reservation));
}

/// Zone side: a prepared hold's deadline passed, or the bundle was aborted.
pub(crate) fn zone_release(state: &mut ZoneActorState, id: ReservationId) {
    if let Some(user) = state.prepared.remove(&id) {
        warn!(reservation = %id, "prepared seat hold released before submission");
        state.book.undo_create(&id);
        state.ledger.release(user, &id);
    }
}

/// Zone side of phase two: seal the hold and submit the bundle's one intent.
pub(crate) fn zone_submit(state: &mut ZoneActorState, bundle: SealedBundle) {
    if state.prepared.remove(&bundle.guard.seat.id).is_none() {
        bundle.fail(BundlePart::Seat, EngineError::PrepareExpired);
        return;
    }
    // Sealed but not queued: the guard undoes both parts if there is no room.
    let Some(pass) = state.uow.admit() else {
        state.stats.overloaded += 1;
        bundle.fail(BundlePart::Commit, EngineError::Overloaded);
        return;
    };
    state.uow.submit(bundle.into_intent(), Some(pass));
}

/// Book side of phase two: seal the hold and pass the bundle on to the zone.
pub(crate) fn book_commit(state: &mut BookActorState, bundle: SealedBundle) {
    if !state.prepared.remove(&bundle.guard.book.id) {
        bundle.fail(BundlePart::Book, EngineError::PrepareExpired);
        return;
    }
    let zone = bundle.guard.zone.clone();
    if let Err(MessagingErr::SendErr(ZoneMsg::SubmitPrepared(bundle))) =
        zone.cast(ZoneMsg::SubmitPrepared(bundle))
    {
        bundle.fail(BundlePart::Seat, EngineError::Unavailable);
    }
}

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
            BookMsg::CommitBundle(SealedBundle {
                idempotency,
                guard: BundleGuard {
                    zone: zone.clone(),
                    books: books.clone(),
                    ledger,
                    seat,
                    book,
                    reply: Some(reply),
                },
            })
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
