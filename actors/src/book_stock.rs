//! The book stock actor: one supervised actor owning the catalog and its stock.
//!
//! Like a zone it decides in memory (the pure [`BookState`]), marks the change pending,
//! hands the write to the unit of work with the client's reply port and moves on. When
//! the unit of work reports the outcome (`Decided`), it settles or undoes the change and,
//! once committed, announces the book's new stock on the event stream. Reservation
//! events travel inside the intent like a zone's.
//!
//! It also takes part in bundles (seat + book in one transaction, see [`crate::bundle`]):
//! `Prepare` holds copies tentatively until the bundle is submitted or its deadline
//! passes.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::SubsecRound;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::oneshot;
use tracing::{info, instrument, warn};
use uuid::Uuid;

use crate::bundle::SealedBundle;
use crate::clock::Clock;
use crate::domain::{
    BookId, BookReservation, BookReservationId, BookReservationStatus, DomainEvent, ReservationId,
    UserId,
};
use crate::engine::{Engine, unwrap_call};
use crate::error::EngineError;
use crate::notifier::NotifierMsg;
use crate::storage::{Change, Created, IdempotencyTag, Storage};
use crate::unit_of_work::{CommitError, Intent, Outcome, UowHandle, UowMsg};

pub use crate::book_state::{BookQuery, BookState, BookView, OpId};

pub type Reply<T> = RpcReplyPort<Result<T, EngineError>>;

/// The live book stock actor, if it is up; shared by the supervisor and the engine.
pub type BookSlot = Arc<RwLock<Option<ActorRef<BookMsg>>>>;

pub enum BookMsg {
    List {
        query: BookQuery,
        reply: RpcReplyPort<Vec<BookView>>,
    },
    Get {
        id: BookId,
        reply: RpcReplyPort<Option<BookView>>,
    },
    Reserve {
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        idempotency: Option<IdempotencyTag>,
        reply: Reply<BookReservation>,
    },
    /// Cancel (by its owner: `user_id` set), pick up or expire (`user_id` is `None`).
    ChangeStatus {
        id: BookReservationId,
        user_id: Option<UserId>,
        to: BookReservationStatus,
        reply: Reply<BookReservation>,
    },
    /// An admin sets a book's total copies.
    Restock {
        book_id: BookId,
        total: u32,
        reply: Reply<()>,
    },
    /// Expires every committed reservation whose hold has ended by the actor's clock.
    /// Replies (if asked) at once with one receiver per expiry submitted, which tells
    /// whether it committed.
    ExpireDue {
        reply: Option<RpcReplyPort<Vec<oneshot::Receiver<bool>>>>,
    },
    /// Bundle, phase one: hold `copies` tentatively until the bundle is submitted or
    /// `ttl` passes.
    Prepare {
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        seat_reservation: ReservationId,
        ttl: Duration,
        reply: Reply<BookReservation>,
    },
    /// Drops a prepared hold that was not submitted (the deadline, or an abort).
    ReleasePrepared { id: BookReservationId },
    /// Bundle, phase two: seal the prepared hold and pass the bundle on to the zone.
    CommitBundle(SealedBundle),
    /// Internal, from the unit of work: a change's transaction was decided.
    Decided { op: OpId, committed: bool },
}

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
            BookMsg::CommitBundle(bundle) => crate::bundle::book_commit(state, bundle),
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

/// Hands one of the engine's own intents to the unit of work (see
/// [`UowHandle::submit`]); a client's write takes its place first with `admit`.
pub(crate) fn submit(uow: &UowHandle, intent: Intent) {
    uow.submit(intent, None);
}

pub(crate) fn commit_refusal(err: CommitError) -> EngineError {
    match err {
        CommitError::Failed(_) => EngineError::CommitFailed,
        CommitError::Overloaded => EngineError::Overloaded,
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

    /// Asks the book actor on behalf of a client: refused at once with `Overloaded`
    /// when it has its bound of requests in flight (see `Engine::call`).
    pub(crate) async fn call_books<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> BookMsg,
    ) -> Result<T, EngineError> {
        let _pass = self.admit_books()?;
        self.call_books_unbounded(build).await
    }

    /// Asks the book actor without taking a place in its bound (admin, scheduler).
    pub(crate) async fn call_books_unbounded<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> BookMsg,
    ) -> Result<T, EngineError> {
        let actor = self.book_actor().ok_or(EngineError::Unavailable)?;
        unwrap_call(actor.call(build, Some(self.config().rpc_timeout)).await)
    }
}
