//! The zone actor: one per seat zone, serializing every request for its seats.
//!
//! It decides in memory (see [`ZoneState`]), marks the change pending, hands the write
//! to the unit of work together with the client's reply port and moves on: it never
//! waits for a commit. The unit of work later sends `*Decided` back so the zone settles
//! or undoes the change, and only then answers the client.

use std::sync::Arc;

use chrono::SubsecRound;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use tracing::{info, instrument};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::{
    DomainEvent, Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest,
    SeatNumber, SeatService, UserId, ZoneId,
};
use crate::error::EngineError;
use crate::storage::{Change, Storage};
use crate::unit_of_work::{CommitError, Intent, Outcome, UowMsg};
use crate::user_ledger::UserLedger;
use crate::zone_state::{SeatView, ZoneState};

pub type Reply<T> = RpcReplyPort<Result<T, EngineError>>;
pub type FreeIntervals = Vec<(SeatNumber, SeatService, Vec<Interval>)>;

pub enum ZoneMsg {
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
}

pub struct ZoneActor;

pub struct ZoneArgs {
    pub zone: ZoneId,
    pub storage: Arc<dyn Storage>,
    pub uow: ActorRef<UowMsg>,
    pub ledger: Arc<UserLedger>,
    pub clock: Arc<dyn Clock>,
    /// How long a (re)starting zone waits for in-flight writes before giving up.
    pub barrier_timeout: Duration,
}

pub struct ZoneActorState {
    book: ZoneState,
    uow: ActorRef<UowMsg>,
    ledger: Arc<UserLedger>,
    clock: Arc<dyn Clock>,
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
        _myself: ActorRef<ZoneMsg>,
        args: ZoneArgs,
    ) -> Result<ZoneActorState, ActorProcessingErr> {
        // Wait until every write submitted before now is decided, so that the database
        // holds everything this zone ever acknowledged before we read it back.
        match args
            .uow
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
        let active = args
            .storage
            .load_active_reservations(&args.zone, args.clock.now())
            .await?;
        args.ledger.reset_zone(&args.zone, &active);
        let book = ZoneState::new(args.zone.clone(), &zone.seats, active);
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
            ZoneMsg::CreateDecided {
                reservation,
                committed,
            } => {
                if committed {
                    state.book.settle_create(reservation);
                } else {
                    state.book.undo_create(&reservation.id);
                }
            }
            ZoneMsg::StatusDecided { id, to, committed } => {
                if committed {
                    state.book.settle_status_change(&id, to);
                } else {
                    state.book.undo_status_change(&id);
                }
            }
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
    if let Err(refusal) = state.book.check_create(&request.seat, &request.interval) {
        let _ = reply.send(Err(refusal));
        return;
    }
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
        let _ = reply.send(Err(refusal));
        return;
    }
    state.book.apply_create(reservation.clone());

    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let decided = reservation.clone();
    let intent = Intent {
        changes: vec![Change::CreateReservation {
            reservation: reservation.clone(),
            idempotency_key: request.idempotency_key,
        }],
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
    submit(&state.uow, intent);
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
    let after = Reservation {
        status: to,
        ..before.clone()
    };
    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let intent = Intent {
        changes: vec![Change::SetReservationStatus {
            id,
            from: before.status,
            to,
            at: now,
        }],
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
            let _ = reply.send(outcome.map(|()| after).map_err(commit_refusal));
        }),
    };
    submit(&state.uow, intent);
}

/// Hands an intent to the unit of work; if it is gone (the engine is restarting), the
/// intent fails at once so its participants undo.
fn submit(uow: &ActorRef<UowMsg>, intent: Intent) {
    if let Err(MessagingErr::SendErr(UowMsg::Submit(intent))) = uow.cast(UowMsg::Submit(intent)) {
        (intent.on_outcome)(Err(CommitError::Overloaded));
    }
}

fn commit_refusal(err: CommitError) -> EngineError {
    match err {
        CommitError::Failed(_) => EngineError::CommitFailed,
        CommitError::Overloaded => EngineError::Overloaded,
    }
}
