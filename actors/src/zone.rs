//! The zone actor: one per seat zone, serializing every request for its seats.
//!
//! It decides in memory (see [`ZoneState`]), marks the change pending, hands the write
//! to the unit of work together with the client's reply port and moves on: it never
//! waits for a commit. The unit of work later sends `*Decided` back so the zone settles
//! or undoes the change, and only then answers the client.

use std::sync::Arc;

use chrono::SubsecRound;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tracing::{info, instrument};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::{
    DomainEvent, Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest,
    SeatNumber, SeatService, UserId, ZoneId,
};
use crate::error::EngineError;
use crate::storage::{Change, Created, IdempotencyTag, Storage};
use crate::unit_of_work::{CommitError, Intent, Outcome, UowHandle, UowMsg};
use crate::user_ledger::UserLedger;
use crate::zone_state::{SeatView, ZoneState};

pub type Reply<T> = RpcReplyPort<Result<T, EngineError>>;
pub type FreeIntervals = Vec<(SeatNumber, SeatService, Vec<Interval>)>;

/// How contended a zone is, counted by its actor since it (re)started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ZoneStats {
    /// Reserve requests decided by the zone.
    pub reserve_requests: u64,
    /// Refused because the seat was taken (or pending) for an overlapping interval.
    pub seat_conflicts: u64,
    /// Refused by the user ledger (overlap with the user's own reservation, or limit).
    pub user_refusals: u64,
    /// Creates whose transaction committed / failed.
    pub committed: u64,
    pub commit_failures: u64,
    /// Writes refused with 503 because the unit of work's queue was full.
    pub overloaded: u64,
    /// Active reservations (and holds) held in memory now.
    pub held: usize,
}

pub enum ZoneMsg {
    /// Admin: the zone's contention counters.
    Stats {
        reply: RpcReplyPort<ZoneStats>,
    },
    Reserve {
        request: ReserveRequest,
        reply: Reply<Reservation>,
    },
    ChangeStatus {
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
        reply: Reply<Reservation>,
    },
    Availability {
        window: Interval,
        reply: RpcReplyPort<FreeIntervals>,
    },
    Live {
        reply: RpcReplyPort<Vec<SeatView>>,
    },
    /// Bundle phase one: hold the seat prepared until sealed or `ttl` passes.
    Prepare {
        id: ReservationId,
        request: ReserveRequest,
        ttl: Duration,
        reply: Reply<Reservation>,
    },
    /// Bundle: drop a prepared hold that was not sealed (deadline or abort).
    ReleasePrepared {
        id: ReservationId,
    },
    /// Bundle phase two: seal the hold and submit the bundle's one intent.
    SubmitPrepared(crate::bundle::SealedBundle),
    /// Internal, from the unit of work: the create's transaction was decided.
    CreateDecided {
        reservation: Reservation,
        committed: bool,
    },
    /// Internal, from the unit of work: the status change's transaction was decided.
    StatusDecided {
        id: ReservationId,
        to: ReservationStatus,
        committed: bool,
    },
    /// Admin: add a seat to this zone.
    AddSeat {
        seat: crate::domain::SeatLayout,
        reply: Reply<()>,
    },
    /// Admin: put a seat in or out of service; out of service cancels the seat's
    /// confirmed reservations that have not ended (they are returned).
    SetSeatService {
        seat: crate::domain::SeatNumber,
        service: crate::domain::SeatService,
        reply: Reply<Vec<Reservation>>,
    },
    /// Internal, from the unit of work: an admin seat change was decided.
    SeatDecided {
        change: crate::zone_admin::SeatChange,
        committed: bool,
    },
    /// Check-out of a checked-in reservation: `completed`, its end cut to `end_at`.
    CheckOut {
        id: ReservationId,
        user_id: UserId,
        end_at: chrono::DateTime<chrono::Utc>,
        reply: Reply<Reservation>,
    },
    /// The lifecycle: move due reservations, expire holds, offer freed seats. With a
    /// reply port, answers once the sweep's writes are decided.
    Sweep {
        reply: Option<RpcReplyPort<crate::zone_live::SweepReport>>,
    },
    /// Answers once every write this zone submitted so far is decided.
    Flush {
        reply: RpcReplyPort<()>,
    },
    JoinWaitlist {
        user_id: UserId,
        interval: Interval,
        idempotency: Option<IdempotencyTag>,
        reply: Reply<crate::waitlist::WaitlistEntry>,
    },
    LeaveWaitlist {
        id: crate::waitlist::WaitlistId,
        user_id: UserId,
        reply: Reply<crate::waitlist::WaitlistEntry>,
    },
    ConfirmHold {
        id: crate::waitlist::WaitlistId,
        user_id: UserId,
        reply: Reply<Reservation>,
    },
    /// Internal, from the unit of work: a waitlist change was decided.
    WaitlistDecided {
        id: crate::waitlist::WaitlistId,
        change: crate::zone_state::WaitChange,
        committed: bool,
    },
}

pub struct ZoneActor;

pub struct ZoneArgs {
    pub zone: ZoneId,
    pub storage: Arc<dyn Storage>,
    pub uow: UowHandle,
    pub ledger: Arc<UserLedger>,
    pub clock: Arc<dyn Clock>,
    /// How long a (re)starting zone waits for in-flight writes before giving up.
    pub barrier_timeout: Duration,
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// Told the zone's committed state on every (re)start, for snapshots.
    pub notifier: Option<ActorRef<crate::notifier::NotifierMsg>>,
}

pub struct ZoneActorState {
    pub(crate) book: ZoneState,
    pub(crate) uow: UowHandle,
    pub(crate) ledger: Arc<UserLedger>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lifecycle: crate::lifecycle::LifecycleConfig,
    /// Bundle seat holds that are prepared but not sealed yet.
    pub(crate) prepared: crate::bundle::PreparedSeats,
    pub(crate) stats: ZoneStats,
}

/// Which statuses a reservation may move to `to` from.
fn allowed_from(to: ReservationStatus) -> &'static [ReservationStatus] {
    use ReservationStatus::*;
    match to {
        Cancelled | NoShow | CheckedIn => &[Confirmed],
        Completed => &[CheckedIn, Confirmed],
        Confirmed => &[],
    }
}

impl Actor for ZoneActor {
    type Msg = ZoneMsg;
    type State = ZoneActorState;
    type Arguments = ZoneArgs;

    #[instrument(name = "zone_start", skip_all, fields(zone = %args.zone))]
    async fn pre_start(
        &self,
        myself: ActorRef<ZoneMsg>,
        args: ZoneArgs,
    ) -> Result<ZoneActorState, ActorProcessingErr> {
        // Wait until every write submitted before now is decided, so that the database
        // holds everything this zone ever acknowledged before we read it back.
        match args
            .uow
            .actor
            .call(UowMsg::Barrier, Some(args.barrier_timeout))
            .await?
        {
            ractor::rpc::CallResult::Success(()) => {}
            _ => return Err("unit of work did not drain in time".into()),
        }
        let layout = args.storage.load_layout().await?;
        let zone = layout
            .into_iter()
            .find(|z| z.id == args.zone)
            .ok_or_else(|| format!("zone {} is not in the database", args.zone))?;
        // Reservations that ended while the server was down are loaded too, so that
        // the first sweep can finish them (no-show or completed).
        let now = args.clock.now();
        let active = args
            .storage
            .load_active_reservations(&args.zone, now - crate::zone_live::CATCH_UP)
            .await?;
        let waitlist = args.storage.load_open_waitlist(&args.zone).await?;
        args.ledger.reset_zone(&args.zone, &active);
        let mut book = ZoneState::new(args.zone.clone(), &zone.seats, active.clone());
        book.load_waitlist(waitlist.clone());
        for hold in book.holds() {
            let _ = args
                .ledger
                .try_claim(hold.user_id, hold.id, &args.zone, hold.interval, now);
        }
        if let Some(notifier) = &args.notifier {
            let _ = notifier.cast(crate::notifier::NotifierMsg::ZoneLoaded {
                zone: args.zone.clone(),
                seats: zone.seats.clone(),
                reservations: active,
                waitlist,
            });
        }
        // Catch up with whatever fell due while the zone was down.
        let _ = myself.cast(ZoneMsg::Sweep { reply: None });
        info!(
            seats = zone.seats.len(),
            reservations = book.len(),
            "zone rebuilt from the database"
        );
        Ok(ZoneActorState {
            book,
            uow: args.uow,
            ledger: args.ledger,
            clock: args.clock,
            lifecycle: args.lifecycle,
            prepared: Default::default(),
            stats: ZoneStats::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ZoneMsg>,
        message: ZoneMsg,
        state: &mut ZoneActorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ZoneMsg::Reserve { request, reply } => reserve(&myself, state, request, reply),
            ZoneMsg::ChangeStatus {
                id,
                user_id,
                to,
                reply,
            } => change_status(&myself, state, id, user_id, to, reply),
            ZoneMsg::Availability { window, reply } => {
                let _ = reply.send(state.book.free_intervals(&window));
            }
            ZoneMsg::Live { reply } => {
                let _ = reply.send(state.book.live_view(state.clock.now()));
            }
            ZoneMsg::Stats { reply } => {
                let _ = reply.send(ZoneStats {
                    held: state.book.len(),
                    ..state.stats
                });
            }
            ZoneMsg::CreateDecided {
                reservation,
                committed,
            } => {
                if committed {
                    state.stats.committed += 1;
                } else {
                    state.stats.commit_failures += 1;
                }
                if committed {
                    state.book.settle_create(reservation);
                } else {
                    state.book.undo_create(&reservation.id);
                }
            }
            ZoneMsg::AddSeat { seat, reply } => {
                crate::zone_admin::add_seat(&myself, state, seat, reply)
            }
            ZoneMsg::SetSeatService {
                seat,
                service,
                reply,
            } => crate::zone_admin::set_seat_service(&myself, state, seat, service, reply),
            ZoneMsg::SeatDecided { change, committed } => {
                crate::zone_admin::decided(state, change, committed)
            }
            ZoneMsg::Prepare {
                id,
                request,
                ttl,
                reply,
            } => crate::bundle::zone_prepare(&myself, state, id, request, ttl, reply),
            ZoneMsg::ReleasePrepared { id } => crate::bundle::zone_release(state, id),
            ZoneMsg::SubmitPrepared(bundle) => crate::bundle::zone_submit(state, bundle),
            ZoneMsg::StatusDecided { id, to, committed } => {
                if committed {
                    state.book.settle_status_change(&id, to);
                    if !to.is_active() {
                        // A seat was freed: waiters come first.
                        crate::zone_live::offer_free_seats(&myself, state);
                    }
                } else {
                    state.book.undo_status_change(&id);
                }
            }
            ZoneMsg::CheckOut {
                id,
                user_id,
                end_at,
                reply,
            } => crate::zone_live::check_out(&myself, state, id, user_id, end_at, reply),
            ZoneMsg::Sweep { reply } => crate::zone_live::sweep(&myself, state, reply),
            ZoneMsg::Flush { reply } => crate::zone_live::flush(state, reply),
            ZoneMsg::JoinWaitlist {
                user_id,
                interval,
                idempotency,
                reply,
            } => crate::zone_live::join_waitlist(
                &myself,
                state,
                user_id,
                interval,
                idempotency,
                reply,
            ),
            ZoneMsg::LeaveWaitlist { id, user_id, reply } => {
                crate::zone_live::leave_waitlist(&myself, state, id, user_id, reply)
            }
            ZoneMsg::ConfirmHold { id, user_id, reply } => {
                crate::zone_live::confirm_hold(&myself, state, id, user_id, reply)
            }
            ZoneMsg::WaitlistDecided {
                id,
                change,
                committed,
            } => crate::zone_live::waitlist_decided(&myself, state, id, change, committed),
        }
        Ok(())
    }
}

fn reserve(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    request: ReserveRequest,
    reply: Reply<Reservation>,
) {
    // Stored with microsecond precision by both databases: keep memory identical.
    let now = state.clock.now().trunc_subsecs(6);
    state.stats.reserve_requests += 1;
    if let Err(refusal) = state.book.check_create(&request.seat, &request.interval) {
        if matches!(refusal, EngineError::SeatTaken { .. }) {
            state.stats.seat_conflicts += 1;
        }
        let _ = reply.send(Err(refusal));
        return;
    }
    // A place in the commit queue before anything changes: refused, nothing to undo.
    let Some(pass) = state.uow.admit() else {
        state.stats.overloaded += 1;
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
    };
    let reservation = Reservation {
        id: Uuid::now_v7(),
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
        state.stats.user_refusals += 1;
        let _ = reply.send(Err(refusal));
        return;
    }
    state.book.apply_create(reservation.clone());

    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let decided = reservation.clone();
    let intent = Intent {
        changes: std::iter::once(Change::CreateReservation {
            reservation: reservation.clone(),
        })
        .chain(Change::record(
            request.idempotency_key,
            Created::Reservation(reservation.id),
        ))
        .collect(),
        events: vec![DomainEvent::ReservationCreated {
            reservation: reservation.clone(),
        }],
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            if !committed {
                ledger.release(decided.user_id, &decided.id);
            }
            // Settle before replying: the client's next request lands behind it.
            let _ = zone.cast(ZoneMsg::CreateDecided {
                reservation: decided,
                committed,
            });
            let _ = reply.send(outcome.map(|()| reservation).map_err(commit_refusal));
        }),
    };
    state.uow.submit(intent, Some(pass));
}

fn change_status(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    user_id: UserId,
    to: ReservationStatus,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now();
    let begun = state
        .book
        .begin_status_change(&id, user_id, allowed_from(to), to);
    let before = match begun {
        Ok(before) => before,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    if to == ReservationStatus::Cancelled && before.interval.end <= now {
        state.book.undo_status_change(&id);
        let _ = reply.send(Err(EngineError::AlreadyEnded));
        return;
    }
    if to == ReservationStatus::CheckedIn
        && let Err(refusal) = crate::lifecycle::check_in_allowed(&before, now, &state.lifecycle)
    {
        state.book.undo_status_change(&id);
        let _ = reply.send(Err(crate::zone_live::check_in_refusal(
            refusal,
            &state.lifecycle,
        )));
        return;
    }
    let Some(pass) = admit_or_undo(state, &id) else {
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
    };
    let after = Reservation {
        status: to,
        ..before.clone()
    };
    let change = Change::SetReservationStatus {
        id,
        from: before.status,
        to,
        at: now,
    };
    submit_status_change(
        myself,
        state,
        &before,
        after,
        change,
        Some(reply),
        Some(pass),
    );
}

/// A place in the commit queue for a client's status change already begun in the zone
/// state; if the queue is full the change is undone (the caller answers 503).
pub(crate) fn admit_or_undo(
    state: &mut ZoneActorState,
    id: &ReservationId,
) -> Option<crate::admission::Pass> {
    let pass = state.uow.admit();
    if pass.is_none() {
        state.stats.overloaded += 1;
        state.book.undo_status_change(id);
    }
    pass
}

/// Submits a status change of `before` (already begun in the zone state) to `after`,
/// persisted by `change`; settles or undoes it once decided and answers `reply`.
/// `pass` is the client's place in the commit queue (`None`: the engine's own change).
#[allow(clippy::too_many_arguments)]
pub(crate) fn submit_status_change(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    before: &Reservation,
    after: Reservation,
    change: Change,
    reply: Option<Reply<Reservation>>,
    pass: Option<crate::admission::Pass>,
) {
    let (id, to) = (after.id, after.status);
    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let intent = Intent {
        changes: vec![change],
        events: vec![DomainEvent::ReservationStatusChanged {
            reservation: after.clone(),
            from: before.status,
        }],
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            if committed && !to.is_active() {
                ledger.release(after.user_id, &after.id);
            }
            let _ = zone.cast(ZoneMsg::StatusDecided { id, to, committed });
            if let Some(reply) = reply {
                let _ = reply.send(outcome.map(|()| after).map_err(commit_refusal));
            }
        }),
    };
    state.uow.submit(intent, pass);
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
