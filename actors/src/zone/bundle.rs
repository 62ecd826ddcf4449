//! The zone's side of the bundle protocol (see [`crate::bundle`]): phase one holds the
//! seat prepared, phase two seals the hold and submits the bundle's one intent.

use std::time::Duration;

use chrono::SubsecRound;
use ractor::ActorRef;
use tracing::warn;

use crate::bundle::{BundlePart, SealedBundle};
use crate::domain::{Reservation, ReservationId, ReserveRequest};
use crate::error::EngineError;
use crate::rpc::Reply;
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::ZoneMsg;
use crate::zone::reservations::claim_and_apply;

/// Phase one: decide like a reservation, hold it prepared until sealed or `ttl` passes.
pub(super) fn prepare(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: ReservationId,
    request: ReserveRequest,
    ttl: Duration,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    if let Err(refusal) = state.seats.check_create(&request.seat, &request.interval) {
        let _ = reply.send(Err(refusal));
        return;
    }
    let claimed = claim_and_apply(
        state,
        id,
        request.user_id,
        request.seat,
        request.interval,
        now,
    );
    let reservation = match claimed {
        Ok(reservation) => reservation,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    state.prepared.insert(id, reservation.user_id);
    myself.send_after(ttl, move || ZoneMsg::ReleasePrepared { id });
    let _ = reply.send(Ok(reservation));
}

/// A prepared hold's deadline passed, or the bundle was aborted.
pub(super) fn release(state: &mut ZoneActorState, id: ReservationId) {
    if let Some(user) = state.prepared.remove(&id) {
        warn!(reservation = %id, "prepared seat hold released before submission");
        state.seats.undo_create(&id);
        state.ledger.release(user, &id);
    }
}

/// Phase two: seal the hold and submit the bundle's one intent.
pub(super) fn submit(state: &mut ZoneActorState, sealed: SealedBundle) {
    if state.prepared.remove(&sealed.seat_id()).is_none() {
        sealed.fail(BundlePart::Seat, EngineError::PrepareExpired);
        return;
    }
    // Sealed but not queued: the guard undoes both parts if there is no room.
    let Some(pass) = state.uow.admit() else {
        state.stats.overloaded += 1;
        sealed.fail(BundlePart::Commit, EngineError::Overloaded);
        return;
    };
    state.uow.submit(sealed.into_intent(), Some(pass));
}
