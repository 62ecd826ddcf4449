//! The zone actor's side of a weekly series: every occurrence decided in one turn and
//! committed as one intent, so the series is booked whole or not at all
//! (docs/architecture.md, invariant 15).

use chrono::SubsecRound;
use ractor::ActorRef;
use uuid::Uuid;

use crate::domain::{DomainEvent, Reservation, ReservationStatus};
use crate::error::{EngineError, OccurrenceConflict};
use crate::rpc::{Reply, commit_refusal};
use crate::series::SeriesRequest;
use crate::storage::{Change, Created};
use crate::unit_of_work::{Intent, Outcome};
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::ZoneMsg;

pub(super) fn reserve_series(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    request: SeriesRequest,
    reply: Reply<Vec<Reservation>>,
) {
    let SeriesRequest {
        mut series,
        occurrences,
        idempotency_key,
    } = request;
    // Stored with microsecond precision by both databases: keep memory identical.
    let now = state.clock.now().trunc_subsecs(6);
    state.stats.reserve_requests += 1;
    // The seat first: an unknown or out-of-service seat refuses every date alike, so it
    // is said once; a seat taken on some dates names those dates.
    let mut conflicts = Vec::new();
    for interval in &occurrences {
        match state.seats.check_create(&series.seat, interval) {
            Ok(()) => {}
            Err(EngineError::SeatTaken { conflict }) => conflicts.push(OccurrenceConflict {
                interval: *interval,
                reason: Box::new(EngineError::SeatTaken { conflict }),
            }),
            Err(refusal) => {
                let _ = reply.send(Err(refusal));
                return;
            }
        }
    }
    if !conflicts.is_empty() {
        state.stats.seat_conflicts += 1;
        let _ = reply.send(Err(EngineError::SeriesConflict { conflicts }));
        return;
    }
    // A place in the commit queue before anything changes: refused, nothing to undo.
    let Some(pass) = state.uow.admit() else {
        state.stats.overloaded += 1;
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
    };
    series.zone = state.seats.zone().clone();
    let claims: Vec<_> = occurrences.iter().map(|iv| (Uuid::now_v7(), *iv)).collect();
    if let Err(refusal) = state
        .ledger
        .try_claim_series(series.user_id, &series.zone, &claims, now)
    {
        state.stats.user_refusals += 1;
        let _ = reply.send(Err(refusal));
        return;
    }
    let made: Vec<Reservation> = claims
        .iter()
        .map(|(id, interval)| Reservation {
            id: *id,
            user_id: series.user_id,
            seat: series.seat.clone(),
            zone: series.zone.clone(),
            interval: *interval,
            status: ReservationStatus::Confirmed,
            created_at: now,
            series: Some(series.id),
        })
        .collect();
    for reservation in &made {
        state.seats.apply_create(reservation.clone());
    }

    // The key points at the first occurrence; a retry finds the series through it.
    let record = Change::record(idempotency_key, Created::Reservation(made[0].id));
    let changes = std::iter::once(Change::CreateSeries { series })
        .chain(made.iter().map(|r| Change::CreateReservation {
            reservation: r.clone(),
        }))
        .chain(record)
        .collect();
    let events = made
        .iter()
        .map(|r| DomainEvent::ReservationCreated {
            reservation: r.clone(),
        })
        .collect();
    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let intent = Intent {
        changes,
        events,
        on_outcome: Box::new(move |outcome: Outcome| {
            let committed = outcome.is_ok();
            for reservation in &made {
                if !committed {
                    ledger.release(reservation.user_id, &reservation.id);
                }
                // Settle before replying: the client's next request lands behind it.
                let _ = zone.cast(ZoneMsg::CreateDecided {
                    reservation: reservation.clone(),
                    committed,
                });
            }
            let _ = reply.send(outcome.map(|()| made).map_err(commit_refusal));
        }),
    };
    state.uow.submit(intent, Some(pass));
}
