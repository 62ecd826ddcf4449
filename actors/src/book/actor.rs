//! The book stock actor: one supervised actor owning the catalog and its stock.
//!
//! Like a zone it decides in memory (the pure [`BookState`](crate::book::state::BookState)), marks the change pending,
//! hands the write to the unit of work with the client's reply port and moves on. When
//! the unit of work reports the outcome (`Decided`), it settles or undoes the change and,
//! once committed, announces the book's new stock on the event stream. Reservation
//! events travel inside the intent like a zone's.
//!
//! It also takes part in bundles (seat + book in one transaction, see [`crate::bundle`]):
//! `Prepare` holds copies tentatively until the bundle is submitted or its deadline
//! passes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::SubsecRound;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, MessagingErr};
use tokio::sync::oneshot;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::book::messages::BookMsg;
use crate::book::state::BookState;
use crate::bundle::{BundlePart, SealedBundle};
use crate::clock::Clock;
use crate::domain::{
    BookId, BookReservation, BookReservationId, BookReservationStatus, DomainEvent, UserId,
};
use crate::error::EngineError;
use crate::notifier::NotifierMsg;
use crate::rpc::{Reply, commit_refusal, submit};
use crate::storage::{Change, Created, IdempotencyTag, Storage};
use crate::unit_of_work::{Intent, Outcome, UowHandle, UowMsg};
use crate::zone::messages::ZoneMsg;

pub struct BookStockActor;

pub struct BookArgs {
    pub storage: Arc<dyn Storage>,
    pub uow: UowHandle,
    pub notifier: Option<ActorRef<NotifierMsg>>,
    pub clock: Arc<dyn Clock>,
    /// How long an uncollected reservation holds its copies.
    pub hold: Duration,
    /// How long a (re)starting actor waits for in-flight writes before giving up.
    pub barrier_timeout: Duration,
}

pub struct BookActorState {
    pub(crate) books: BookState,
    /// Prepared (not yet submitted) bundle holds.
    pub(crate) prepared: HashSet<BookReservationId>,
    pub(crate) uow: UowHandle,
    notifier: Option<ActorRef<NotifierMsg>>,
    clock: Arc<dyn Clock>,
    hold: chrono::Duration,
}

impl Actor for BookStockActor {
    type Msg = BookMsg;
    type State = BookActorState;
    type Arguments = BookArgs;

    #[instrument(name = "book_stock_start", skip_all)]
    async fn pre_start(
        &self,
        _myself: ActorRef<BookMsg>,
        args: BookArgs,
    ) -> Result<BookActorState, ActorProcessingErr> {
        // Like a zone: every write submitted before now is decided before we read back.
        match args
            .uow
            .actor
            .call(UowMsg::Barrier, Some(args.barrier_timeout))
            .await?
        {
            ractor::rpc::CallResult::Success(()) => {}
            _ => return Err("unit of work did not drain in time".into()),
        }
        let books = args.storage.load_books().await?;
        let active = args.storage.load_active_book_reservations().await?;
        let state = BookState::new(books, active);
        info!(books = state.len(), "book stock rebuilt from the database");
        Ok(BookActorState {
            books: state,
            prepared: HashSet::new(),
            uow: args.uow,
            notifier: args.notifier,
            clock: args.clock,
            hold: chrono::Duration::from_std(args.hold)?,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<BookMsg>,
        message: BookMsg,
        state: &mut BookActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            BookMsg::List { query, reply } => {
                let _ = reply.send(state.books.list(&query));
            }
            BookMsg::Get { id, reply } => {
                let _ = reply.send(state.books.view(id));
            }
            BookMsg::Reserve {
                user_id,
                book_id,
                copies,
                idempotency,
                reply,
            } => reserve(&myself, state, user_id, book_id, copies, idempotency, reply),
            BookMsg::ChangeStatus {
                id,
                user_id,
                to,
                reply,
            } => {
                let _ = change_status(&myself, state, id, user_id, to, true, move |outcome| {
                    let _ = reply.send(outcome);
                });
            }
            BookMsg::Restock {
                book_id,
                total,
                reply,
            } => restock(&myself, state, book_id, total, reply),
            BookMsg::ExpireDue { reply } => {
                let now = state.clock.now();
                let mut decided = Vec::new();
                for id in state.books.due(now) {
                    let (tx, rx) = oneshot::channel();
                    let begun = change_status(
                        &myself,
                        state,
                        id,
                        None,
                        BookReservationStatus::Expired,
                        false,
                        move |outcome| {
                            let _ = tx.send(outcome.is_ok());
                        },
                    );
                    if begun {
                        decided.push(rx);
                    }
                }
                if !decided.is_empty() {
                    info!(
                        count = decided.len(),
                        "expiring uncollected book reservations"
                    );
                }
                if let Some(reply) = reply {
                    let _ = reply.send(decided);
                }
            }
            BookMsg::Prepare {
                user_id,
                book_id,
                copies,
                seat_reservation,
                ttl,
                reply,
            } => {
                if let Err(refusal) = state.books.check_reserve(book_id, copies) {
                    let _ = reply.send(Err(refusal));
                    return Ok(());
                }
                let mut reservation = new_reservation(state, user_id, book_id, copies);
                reservation.seat_reservation = Some(seat_reservation);
                state.books.apply_reserve(reservation.clone());
                state.prepared.insert(reservation.id);
                let id = reservation.id;
                myself.send_after(ttl, move || BookMsg::ReleasePrepared { id });
                let _ = reply.send(Ok(reservation));
            }
            BookMsg::ReleasePrepared { id } => {
                if state.prepared.remove(&id) {
                    warn!(reservation = %id, "prepared book hold released before submission");
                    state.books.undo(&id);
                }
            }
            BookMsg::CommitBundle(sealed) => seal_and_forward(state, *sealed),
            BookMsg::Decided { op, committed } => {
                if committed {
                    if let Some(stock) = state.books.settle(&op) {
                        // Committed, so it may be announced; in commit order, because the
                        // unit of work decides (and casts to us) in commit order.
                        if let Some(notifier) = &state.notifier {
                            let event = DomainEvent::BookStockChanged { stock };
                            let _ = notifier.cast(NotifierMsg::Publish(vec![event]));
                        }
                    }
                } else {
                    state.books.undo(&op);
                }
            }
        }
        Ok(())
    }
}

fn new_reservation(
    state: &BookActorState,
    user_id: UserId,
    book_id: BookId,
    copies: u32,
) -> BookReservation {
    // Stored with microsecond precision by both databases: keep memory identical.
    let now = state.clock.now().trunc_subsecs(6);
    BookReservation {
        id: Uuid::now_v7(),
        user_id,
        book_id,
        copies,
        status: BookReservationStatus::Reserved,
        created_at: now,
        expires_at: now + state.hold,
        seat_reservation: None,
    }
}

fn reserve(
    myself: &ActorRef<BookMsg>,
    state: &mut BookActorState,
    user_id: UserId,
    book_id: BookId,
    copies: u32,
    idempotency: Option<IdempotencyTag>,
    reply: Reply<BookReservation>,
) {
    if let Err(refusal) = state.books.check_reserve(book_id, copies) {
        let _ = reply.send(Err(refusal));
        return;
    }
    // A place in the commit queue before anything changes: refused, nothing to undo.
    let Some(pass) = state.uow.admit() else {
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
    };
    let reservation = new_reservation(state, user_id, book_id, copies);
    state.books.apply_reserve(reservation.clone());
    let me = myself.clone();
    let intent = Intent {
        changes: std::iter::once(Change::CreateBookReservation {
            reservation: reservation.clone(),
        })
        .chain(Change::record(
            idempotency,
            Created::BookReservation(reservation.id),
        ))
        .collect(),
        events: vec![DomainEvent::BookReservationCreated {
            reservation: reservation.clone(),
        }],
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            // Settle before replying: the client's next request lands behind it.
            let _ = me.cast(BookMsg::Decided {
                op: reservation.id,
                committed,
            });
            let _ = reply.send(outcome.map(|()| reservation).map_err(commit_refusal));
        }),
    };
    state.uow.submit(intent, Some(pass));
}

/// Begins a status change and submits it; `done` gets the answer. Returns whether the
/// change was submitted (false: refused, and `done` already got the refusal). A
/// client's change (`admit`) needs a place in the commit queue; the engine's own
/// (expiry) is never refused for that.
fn change_status(
    myself: &ActorRef<BookMsg>,
    state: &mut BookActorState,
    id: BookReservationId,
    user_id: Option<UserId>,
    to: BookReservationStatus,
    admit: bool,
    done: impl FnOnce(Result<BookReservation, EngineError>) + Send + 'static,
) -> bool {
    let before = match state.books.begin_status_change(&id, user_id, to) {
        Ok(before) => before,
        Err(refusal) => {
            done(Err(refusal));
            return false;
        }
    };
    let pass = if admit {
        let Some(pass) = state.uow.admit() else {
            state.books.undo(&id);
            done(Err(EngineError::Overloaded));
            return false;
        };
        Some(pass)
    } else {
        None
    };
    let now = state.clock.now().trunc_subsecs(6);
    let after = BookReservation {
        status: to,
        ..before.clone()
    };
    let me = myself.clone();
    let intent = Intent {
        changes: vec![Change::SetBookReservationStatus {
            id,
            book_id: before.book_id,
            copies: before.copies,
            from: before.status,
            to,
            at: now,
        }],
        events: vec![DomainEvent::BookReservationStatusChanged {
            reservation: after.clone(),
            from: before.status,
        }],
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            let _ = me.cast(BookMsg::Decided { op: id, committed });
            done(outcome.map(|()| after).map_err(commit_refusal));
        }),
    };
    state.uow.submit(intent, pass);
    true
}

fn restock(
    myself: &ActorRef<BookMsg>,
    state: &mut BookActorState,
    book_id: BookId,
    total: u32,
    reply: Reply<()>,
) {
    let (op, from) = match state.books.begin_restock(book_id, total) {
        Ok(begun) => begun,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    let me = myself.clone();
    let intent = Intent {
        changes: vec![Change::SetBookTotal {
            book_id,
            from,
            to: total,
        }],
        // The new stock is announced once committed (see `Decided`).
        events: Vec::new(),
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            let _ = me.cast(BookMsg::Decided { op, committed });
            let _ = reply.send(outcome.map_err(commit_refusal));
        }),
    };
    submit(&state.uow, intent);
}

/// Bundle, phase two on the book side: seal the prepared hold (take it off its
/// deadline) and pass the bundle on to the zone, in this one actor turn.
fn seal_and_forward(state: &mut BookActorState, sealed: SealedBundle) {
    if !state.prepared.remove(&sealed.book_id()) {
        sealed.fail(BundlePart::Book, EngineError::PrepareExpired);
        return;
    }
    let zone = sealed.zone().clone();
    if let Err(MessagingErr::SendErr(ZoneMsg::SubmitPrepared(sealed))) =
        zone.cast(ZoneMsg::SubmitPrepared(sealed))
    {
        sealed.fail(BundlePart::Seat, EngineError::Unavailable);
    }
}

/// Spawns the book stock actor under `supervisor`.
pub(crate) async fn spawn_linked(
    supervisor: ActorCell,
    args: BookArgs,
) -> Result<ActorRef<BookMsg>, ActorProcessingErr> {
    let (actor, _) = Actor::spawn_linked(None, BookStockActor, args, supervisor).await?;
    Ok(actor)
}
