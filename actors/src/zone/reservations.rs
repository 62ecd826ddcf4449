//! The zone actor's reservation requests: reserving a seat, moving a reservation's
//! status (cancel, check-in, check-out) and settling or undoing either once the unit
//! of work has decided its transaction.
//!
//! Each decides in memory (see [`ZoneState`](crate::zone::state::ZoneState)), marks the
//! change pending, hands the write to the unit of work together with the client's reply
//! port and moves on: the zone never waits for a commit. The unit of work later sends
//! `*Decided` back so the zone settles or undoes the change, and only then is the client
//! answered.

use chrono::{DateTime, SubsecRound, Utc};
use ractor::ActorRef;
use uuid::Uuid;

use crate::admission::Pass;
use crate::domain::{
    DomainEvent, Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest,
    SeatNumber, UserId,
};
use crate::error::EngineError;
use crate::lifecycle::{check_in_allowed, check_in_refusal};
use crate::rpc::{Reply, commit_refusal};
use crate::storage::{Change, Created};
use crate::unit_of_work::{Intent, Outcome};
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::ZoneMsg;
use crate::zone::waitlist::offer_free_seats;

/// Which statuses a reservation may move to `to` from.
fn allowed_from(to: ReservationStatus) -> &'static [ReservationStatus] {
    use ReservationStatus::*;
    match to {
        Cancelled | NoShow | CheckedIn => &[Confirmed],
        Completed => &[CheckedIn, Confirmed],
        Confirmed => &[],
    }
}

/// The claim half of deciding a new reservation, shared by a client's reserve and a
/// bundle's seat; the seat was found free with `check_create` earlier in the same actor
/// turn. The reservation `id` claims its user's time in the ledger (docs/architecture.md,
/// invariant 2) and is applied to the zone state as pending; a refusal changes nothing.
pub(super) fn claim_and_apply(
    state: &mut ZoneActorState,
    id: ReservationId,
    user_id: UserId,
    seat: SeatNumber,
    interval: Interval,
    now: DateTime<Utc>,
) -> Result<Reservation, EngineError> {
    let reservation = Reservation {
        id,
        user_id,
        seat,
        zone: state.seats.zone().clone(),
        interval,
        status: ReservationStatus::Confirmed,
        created_at: now,
        series: None,
    };
    state.ledger.try_claim(
        reservation.user_id,
        reservation.id,
        &reservation.zone,
        reservation.interval,
        now,
    )?;
    state.seats.apply_create(reservation.clone());
    Ok(reservation)
}

pub(super) fn reserve(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    request: ReserveRequest,
    reply: Reply<Reservation>,
) {
    let ReserveRequest {
        user_id,
        seat,
        interval,
        idempotency_key,
    } = request;
    // Stored with microsecond precision by both databases: keep memory identical.
    let now = state.clock.now().trunc_subsecs(6);
    state.stats.reserve_requests += 1;
    if let Err(refusal) = state.seats.check_create(&seat, &interval) {
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
    let reservation = match claim_and_apply(state, Uuid::now_v7(), user_id, seat, interval, now) {
        Ok(reservation) => reservation,
        Err(refusal) => {
            state.stats.user_refusals += 1;
            let _ = reply.send(Err(refusal));
            return;
        }
    };

    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let decided = reservation.clone();
    let intent = Intent {
        changes: std::iter::once(Change::CreateReservation {
            reservation: reservation.clone(),
        })
        .chain(Change::record(
            idempotency_key,
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

/// A create's transaction (a reservation's or a bundle's seat) was decided.
pub(super) fn create_decided(
    state: &mut ZoneActorState,
    reservation: Reservation,
    committed: bool,
) {
    if committed {
        state.stats.committed += 1;
    } else {
        state.stats.commit_failures += 1;
    }
    if committed {
        state.seats.settle_create(reservation);
    } else {
        state.seats.undo_create(&reservation.id);
    }
}

pub(super) fn change_status(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    user_id: UserId,
    to: ReservationStatus,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now();
    let begun = state
        .seats
        .begin_status_change(&id, user_id, allowed_from(to), to);
    let before = match begun {
        Ok(before) => before,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    if to == ReservationStatus::Cancelled && before.interval.end <= now {
        state.seats.undo_status_change(&id);
        let _ = reply.send(Err(EngineError::AlreadyEnded));
        return;
    }
    if to == ReservationStatus::CheckedIn
        && let Err(refusal) = check_in_allowed(&before, now, &state.lifecycle)
    {
        state.seats.undo_status_change(&id);
        let _ = reply.send(Err(check_in_refusal(refusal, &state.lifecycle)));
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

/// Check-out: `checked_in` → `completed`, its end cut to `end_at` (the edge rounds the
/// time up to the slot) unless that is not before the booked end.
pub(super) fn check_out(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    user_id: UserId,
    end_at: DateTime<Utc>,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now();
    let to = ReservationStatus::Completed;
    let before =
        match state
            .seats
            .begin_status_change(&id, user_id, &[ReservationStatus::CheckedIn], to)
        {
            Ok(before) => before,
            Err(EngineError::NotChangeable { status }) => {
                let _ = reply.send(Err(EngineError::Refused(format!(
                    "Reservation is {status}: only a checked-in reservation can be checked out"
                ))));
                return;
            }
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
                return;
            }
        };
    let end = if end_at > before.interval.start && end_at < before.interval.end {
        end_at
    } else {
        before.interval.end
    };
    let after = Reservation {
        status: to,
        interval: Interval {
            start: before.interval.start,
            end,
        },
        ..before.clone()
    };
    let change = Change::EndReservation {
        id,
        from: before.status,
        to,
        ends_at: end,
        at: now,
    };
    let Some(pass) = admit_or_undo(state, &id) else {
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
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

/// A status change's transaction was decided; a seat it freed goes to waiters first.
pub(super) fn status_decided(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    to: ReservationStatus,
    committed: bool,
) {
    if committed {
        state.seats.settle_status_change(&id, to);
        if !to.is_active() {
            // A seat was freed: waiters come first.
            offer_free_seats(myself, state);
        }
    } else {
        state.seats.undo_status_change(&id);
    }
}

/// A place in the commit queue for a client's status change already begun in the zone
/// state; if the queue is full the change is undone (the caller answers 503).
fn admit_or_undo(state: &mut ZoneActorState, id: &ReservationId) -> Option<Pass> {
    let pass = state.uow.admit();
    if pass.is_none() {
        state.stats.overloaded += 1;
        state.seats.undo_status_change(id);
    }
    pass
}

/// Submits a status change of `before` (already begun in the zone state) to `after`,
/// persisted by `change`; settles or undoes it once decided and answers `reply`.
/// `pass` is the client's place in the commit queue (`None`: the engine's own change).
#[allow(clippy::too_many_arguments)]
pub(super) fn submit_status_change(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    before: &Reservation,
    after: Reservation,
    change: Change,
    reply: Option<Reply<Reservation>>,
    pass: Option<Pass>,
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
