//! Admin changes to a zone's seats, decided by the zone actor like any other request:
//! adding a seat, putting one out of service (which cancels the seat's confirmed
//! reservations that have not ended, in the same transaction, and announces it all), and
//! moving one on the floor plan.

use ractor::ActorRef;

use crate::domain::{
    DomainEvent, Reservation, ReservationStatus, SeatLayout, SeatNumber, SeatService,
};
use crate::error::EngineError;
use crate::floor_plan::Spot;
use crate::rpc::{Reply, commit_refusal, submit};
use crate::storage::Change;
use crate::unit_of_work::{Intent, Outcome};
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::{SeatChange, ZoneMsg};

pub(super) fn add_seat(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    seat: SeatLayout,
    reply: Reply<()>,
) {
    if !state.seats.add_seat(seat.clone()) {
        let _ = reply.send(Err(EngineError::SeatExists(seat.number)));
        return;
    }
    let zone = state.seats.zone().clone();
    let actor = myself.clone();
    let change = SeatChange::Added(seat.number.clone());
    submit(
        &state.uow,
        Intent {
            changes: vec![Change::AddSeat {
                zone: zone.clone(),
                seat: seat.clone(),
            }],
            events: vec![DomainEvent::SeatAdded { zone, seat }],
            on_outcome: Box::new(move |outcome: Outcome| {
                let _ = actor.cast(ZoneMsg::SeatDecided {
                    change,
                    committed: outcome.is_ok(),
                });
                let _ = reply.send(outcome.map_err(commit_refusal));
            }),
        },
    );
}

pub(super) fn set_seat_service(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    seat: SeatNumber,
    service: SeatService,
    reply: Reply<Vec<Reservation>>,
) {
    let now = state.clock.now();
    let previous = match state.seats.set_service(&seat, service) {
        Ok(previous) => previous,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    let zone = state.seats.zone().clone();
    let mut changes = vec![Change::SetSeatService {
        seat: seat.clone(),
        service,
    }];
    let mut events = vec![DomainEvent::SeatServiceChanged {
        zone,
        seat: seat.clone(),
        service,
    }];
    let mut cancelled = Vec::new();
    if service == SeatService::OutOfService {
        let to = ReservationStatus::Cancelled;
        for r in state.seats.cancellable_on_seat(&seat, now) {
            if state
                .seats
                .begin_status_change(&r.id, r.user_id, &[ReservationStatus::Confirmed], to)
                .is_ok()
            {
                changes.push(Change::SetReservationStatus {
                    id: r.id,
                    from: r.status,
                    to,
                    at: now,
                });
                let after = Reservation {
                    status: to,
                    ..r.clone()
                };
                events.push(DomainEvent::ReservationStatusChanged {
                    reservation: after.clone(),
                    from: r.status,
                });
                cancelled.push(after);
            }
        }
    }
    let actor = myself.clone();
    let ledger = state.ledger.clone();
    let change = SeatChange::Service {
        seat,
        previous,
        cancelled: cancelled.clone(),
    };
    submit(
        &state.uow,
        Intent {
            changes,
            events,
            on_outcome: Box::new(move |outcome: Outcome| {
                if outcome.is_ok() {
                    for r in &cancelled {
                        ledger.release(r.user_id, &r.id);
                    }
                }
                let _ = actor.cast(ZoneMsg::SeatDecided {
                    change,
                    committed: outcome.is_ok(),
                });
                let _ = reply.send(outcome.map(|()| cancelled).map_err(commit_refusal));
            }),
        },
    );
}

/// Moves a seat of this zone to `spot`. The zone's decisions never depend on where a
/// seat stands, so nothing is held in memory while the write is decided: the actor only
/// vouches that the seat is its own, and the move is announced once it committed, in
/// commit order with the zone's other changes.
pub(super) fn move_seat(state: &ZoneActorState, seat: SeatNumber, spot: Spot, reply: Reply<()>) {
    if !state.seats.has_seat(&seat) {
        let _ = reply.send(Err(EngineError::UnknownSeat(seat)));
        return;
    }
    let zone = state.seats.zone().clone();
    submit(
        &state.uow,
        Intent {
            changes: vec![Change::MoveSeat {
                seat: seat.clone(),
                spot,
            }],
            events: vec![DomainEvent::SeatMoved { zone, seat, spot }],
            on_outcome: Box::new(move |outcome: Outcome| {
                let _ = reply.send(outcome.map_err(commit_refusal));
            }),
        },
    );
}

pub(super) fn decided(state: &mut ZoneActorState, change: SeatChange, committed: bool) {
    match (change, committed) {
        (SeatChange::Added(_), true) => {}
        (SeatChange::Added(seat), false) => state.seats.remove_empty_seat(&seat),
        (SeatChange::Service { cancelled, .. }, true) => {
            for r in cancelled {
                state
                    .seats
                    .settle_status_change(&r.id, ReservationStatus::Cancelled);
            }
        }
        (
            SeatChange::Service {
                seat,
                previous,
                cancelled,
            },
            false,
        ) => {
            let _ = state.seats.set_service(&seat, previous);
            for r in cancelled {
                state.seats.undo_status_change(&r.id);
            }
        }
    }
}
