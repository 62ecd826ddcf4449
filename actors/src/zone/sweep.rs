//! The zone actor's periodic sweep (no-shows, completions, expired holds and stale
//! waits, then offers for whatever is free) and the flush that waits for every write
//! the zone has submitted.
//!
//! The rules are the pure [`lifecycle`](crate::lifecycle) and
//! [`ZoneState`](crate::zone::state::ZoneState) functions; the scheduler only triggers
//! sweeps, the zone decides at its clock's time.

use chrono::SubsecRound;
use ractor::{ActorRef, RpcReplyPort};
use tracing::debug;

use crate::domain::Reservation;
use crate::rpc::submit;
use crate::storage::Change;
use crate::unit_of_work::Intent;
use crate::waitlist::WaitStatus;
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::{SweepReport, ZoneMsg};
use crate::zone::reservations::submit_status_change;
use crate::zone::waitlist::{close, offer_free_seats};

/// How far back a (re)starting zone loads reservations that are still `confirmed` or
/// `checked_in`, so that those which ended while the server was down get finished.
pub const CATCH_UP: chrono::Duration = chrono::Duration::days(7);

/// One sweep at the clock's `now`: due lifecycle moves, expired holds and stale waits,
/// then offers for whatever is free. With `reply`, answers once every intent of the
/// sweep has been decided.
pub(super) fn sweep(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    reply: Option<RpcReplyPort<SweepReport>>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    let mut report = SweepReport::default();
    for (reservation, to) in state.seats.due_transitions(now, &state.lifecycle) {
        let Ok(before) = state
            .seats
            .begin_transition(&reservation.id, reservation.status, to)
        else {
            continue;
        };
        let after = Reservation {
            status: to,
            ..before.clone()
        };
        let change = Change::SetReservationStatus {
            id: before.id,
            from: before.status,
            to,
            at: now,
        };
        submit_status_change(myself, state, &before, after, change, None, None);
        report.transitions += 1;
    }
    for id in state.seats.due_waitlist(now) {
        if close(myself, state, &id, None, WaitStatus::Expired, None) {
            report.expired += 1;
        }
    }
    report.offers = offer_free_seats(myself, state);
    if report != SweepReport::default() {
        debug!(zone = %state.seats.zone(), ?report, "swept");
    }
    if let Some(reply) = reply {
        after_everything_submitted(state, move || {
            let _ = reply.send(report);
        });
    }
}

/// Answers once every intent this zone has submitted so far has been decided.
pub(super) fn flush(state: &ZoneActorState, reply: RpcReplyPort<()>) {
    after_everything_submitted(state, move || {
        let _ = reply.send(());
    });
}

/// The unit of work decides intents in submission order, so an empty intent submitted
/// now is decided after everything submitted before it.
fn after_everything_submitted(state: &ZoneActorState, then: impl FnOnce() + Send + 'static) {
    submit(
        &state.uow,
        Intent {
            changes: Vec::new(),
            events: Vec::new(),
            on_outcome: Box::new(move |_| then()),
        },
    );
}
