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
//!
//! This module holds what the actors pass each other: the request, the answer, the
//! guard and the sealed bundle. Each actor's steps live with the actor
//! (`zone/bundle.rs`, `book/actor.rs`, `engine/bundles.rs`); the sealed bundle travels
//! in their messages and its guard answers through them, which is the one place where
//! this module and the actors' messages name each other.

use std::sync::Arc;

use ractor::{ActorRef, RpcReplyPort};
use serde::Serialize;
use tracing::warn;

use crate::book::messages::BookMsg;
use crate::domain::{
    BookId, BookReservation, BookReservationId, DomainEvent, Reservation, ReservationId,
    ReserveRequest,
};
use crate::error::EngineError;
use crate::rpc::commit_refusal;
use crate::storage::{Change, Created, IdempotencyTag};
use crate::unit_of_work::{Intent, Outcome};
use crate::user_ledger::UserLedger;
use crate::zone::messages::ZoneMsg;

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
    pub(crate) fn new(part: BundlePart, error: EngineError) -> Self {
        Self { part, error }
    }
}

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
    /// Both prepared parts, to be decided by the guard; `reply` gets the outcome.
    pub(crate) fn new(
        idempotency: Option<IdempotencyTag>,
        zone: ActorRef<ZoneMsg>,
        books: ActorRef<BookMsg>,
        ledger: Arc<UserLedger>,
        seat: Reservation,
        book: BookReservation,
        reply: RpcReplyPort<Result<Bundle, BundleError>>,
    ) -> Self {
        SealedBundle {
            idempotency,
            guard: BundleGuard {
                zone,
                books,
                ledger,
                seat,
                book,
                reply: Some(reply),
            },
        }
    }

    /// The prepared seat reservation's id.
    pub(crate) fn seat_id(&self) -> ReservationId {
        self.guard.seat.id
    }

    /// The prepared book reservation's id.
    pub(crate) fn book_id(&self) -> BookReservationId {
        self.guard.book.id
    }

    /// The zone that holds the seat and submits the bundle.
    pub(crate) fn zone(&self) -> &ActorRef<ZoneMsg> {
        &self.guard.zone
    }

    /// Decides the bundle as failed by `part`: both parts are undone.
    pub(crate) fn fail(self, part: BundlePart, error: EngineError) {
        self.guard.decide(Err(BundleError::new(part, error)));
    }

    /// The bundle's one intent: both parts' changes and events; its outcome decides
    /// both through the guard.
    pub(crate) fn into_intent(self) -> Intent {
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
