//! The zone actor's waitlist requests: joining and leaving the waitlist, offering
//! freed seats to waiters, confirming holds, and settling or undoing each once decided.
//!
//! Every decision is made by the pure [`ZoneState`](crate::zone::state::ZoneState) and
//! [`waitlist`](crate::waitlist) functions; this module turns them into intents for the
//! unit of work, exactly like a reservation: mark pending, submit, settle or undo.

use chrono::SubsecRound;
use ractor::ActorRef;
use uuid::Uuid;

use crate::domain::{DomainEvent, Interval, Reservation, ReservationStatus, UserId};
use crate::error::EngineError;
use crate::rpc::{Reply, commit_refusal, submit};
use crate::storage::{Change, Created, IdempotencyTag};
use crate::unit_of_work::{Intent, Outcome};
use crate::waitlist::{Hold, WaitStatus, WaitlistEntry, WaitlistId};
use crate::zone::actor_state::ZoneActorState;
use crate::zone::messages::ZoneMsg;
use crate::zone::state::WaitChange;

pub(super) fn join_waitlist(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    user_id: UserId,
    interval: Interval,
    idempotency: Option<IdempotencyTag>,
    reply: Reply<WaitlistEntry>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    if let Err(refusal) = state.seats.check_join(user_id, &interval, &state.lifecycle) {
        let _ = reply.send(Err(refusal));
        return;
    }
    let Some(pass) = state.uow.admit() else {
        state.stats.overloaded += 1;
        let _ = reply.send(Err(EngineError::Overloaded));
        return;
    };
    let entry = WaitlistEntry {
        id: Uuid::now_v7(),
        user_id,
        zone: state.seats.zone().clone(),
        interval,
        status: WaitStatus::Waiting,
        hold: None,
        reservation_id: None,
        created_at: now,
    };
    state.seats.apply_join(entry.clone());
    let zone = myself.clone();
    let id = entry.id;
    let created = entry.clone();
    state.uow.submit(
        Intent {
            changes: std::iter::once(Change::CreateWaitlistEntry {
                entry: entry.clone(),
            })
            .chain(Change::record(idempotency, Created::WaitlistEntry(id)))
            .collect(),
            events: vec![DomainEvent::WaitlistUpdated {
                entry: entry.clone(),
                from: None,
            }],
            on_outcome: Box::new(move |outcome: Outcome| {
                let _ = zone.cast(ZoneMsg::WaitlistDecided {
                    id,
                    change: WaitChange::Joined,
                    committed: outcome.is_ok(),
                });
                let _ = reply.send(outcome.map(|()| created).map_err(commit_refusal));
            }),
        },
        Some(pass),
    );
}

pub(super) fn leave_waitlist(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: WaitlistId,
    user_id: UserId,
    reply: Reply<WaitlistEntry>,
) {
    close(
        myself,
        state,
        &id,
        Some(user_id),
        WaitStatus::Cancelled,
        Some(reply),
    );
}

/// Closes entry `id` as `to` (for its owner `user`, or for the system). Returns whether
/// an intent was submitted; refusals go to `reply`.
pub(super) fn close(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: &WaitlistId,
    user: Option<UserId>,
    to: WaitStatus,
    reply: Option<Reply<WaitlistEntry>>,
) -> bool {
    let now = state.clock.now().trunc_subsecs(6);
    let from = state
        .seats
        .waitlist()
        .find(|e| &e.id == id)
        .map(|e| e.status);
    let after = match state.seats.begin_close(id, user, to) {
        Ok(after) => after,
        Err(refusal) => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(refusal));
            }
            return false;
        }
    };
    let from = from.expect("begin_close found the entry");
    let zone = myself.clone();
    let ledger = state.ledger.clone();
    let closed = after.clone();
    let id = *id;
    submit(
        &state.uow,
        Intent {
            changes: vec![Change::UpdateWaitlistEntry {
                entry: after.clone(),
                from,
                at: now,
            }],
            events: vec![DomainEvent::WaitlistUpdated {
                entry: after.clone(),
                from: Some(from),
            }],
            on_outcome: Box::new(move |outcome: Outcome| {
                let committed = outcome.is_ok();
                if committed && from == WaitStatus::Offered {
                    // The hold's claim on the user's time (docs/architecture.md,
                    // invariant 2) ends with it.
                    ledger.release(closed.user_id, &closed.id);
                }
                let _ = zone.cast(ZoneMsg::WaitlistDecided {
                    id,
                    change: WaitChange::Closed(to),
                    committed,
                });
                if let Some(reply) = reply {
                    let _ = reply.send(outcome.map(|()| closed).map_err(commit_refusal));
                }
            }),
        },
    );
    true
}

/// Offers every seat that is free for a waiter's whole range to the oldest such waiter
/// whose own time is free too (the hold claims it in the user ledger, so invariant 2
/// of docs/architecture.md counts holds). Returns how many holds were offered.
pub(super) fn offer_free_seats(myself: &ActorRef<ZoneMsg>, state: &mut ZoneActorState) -> usize {
    let now = state.clock.now().trunc_subsecs(6);
    let zone_id = state.seats.zone().clone();
    let ledger = state.ledger.clone();
    let offers = state.seats.offers(now, |entry, _| {
        ledger
            .try_claim(entry.user_id, entry.id, &zone_id, entry.interval, now)
            .is_ok()
    });
    let mut offered = 0;
    for (id, seat) in offers {
        let user = state
            .seats
            .waitlist()
            .find(|e| e.id == id)
            .map(|e| e.user_id);
        let hold = Hold {
            seat,
            expires_at: now + state.lifecycle.hold_for,
        };
        let Some(after) = state.seats.apply_offer(&id, hold.clone()) else {
            if let Some(user) = user {
                ledger.release(user, &id);
            }
            continue;
        };
        let zone = myself.clone();
        let ledger = ledger.clone();
        let user = after.user_id;
        submit(
            &state.uow,
            Intent {
                changes: vec![Change::UpdateWaitlistEntry {
                    entry: after.clone(),
                    from: WaitStatus::Waiting,
                    at: now,
                }],
                events: vec![DomainEvent::WaitlistUpdated {
                    entry: after,
                    from: Some(WaitStatus::Waiting),
                }],
                on_outcome: Box::new(move |outcome: Outcome| {
                    let committed = outcome.is_ok();
                    if !committed {
                        ledger.release(user, &id);
                    }
                    let _ = zone.cast(ZoneMsg::WaitlistDecided {
                        id,
                        change: WaitChange::Offered(hold),
                        committed,
                    });
                }),
            },
        );
        offered += 1;
    }
    offered
}

/// Turns `user`'s hold `id` into a confirmed reservation of the held seat and time.
pub(super) fn confirm_hold(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: WaitlistId,
    user_id: UserId,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    let (entry, hold) = match state.seats.begin_confirm(&id, user_id, now) {
        Ok(found) => found,
        Err(refusal) => {
            let _ = reply.send(Err(refusal));
            return;
        }
    };
    let reservation = Reservation {
        id: Uuid::now_v7(),
        user_id,
        seat: hold.seat.clone(),
        zone: entry.zone.clone(),
        interval: entry.interval,
        status: ReservationStatus::Confirmed,
        created_at: now,
        series: None,
    };
    // Swap the hold's claim on the user's time for the reservation's.
    let ledger = state.ledger.clone();
    ledger.release(user_id, &id);
    if let Err(refusal) = ledger.try_claim(
        user_id,
        reservation.id,
        &reservation.zone,
        reservation.interval,
        now,
    ) {
        let _ = ledger.restore(user_id, id, &entry.zone, entry.interval, now);
        state
            .seats
            .undo_waitlist(&id, &WaitChange::Confirmed(reservation));
        let _ = reply.send(Err(refusal));
        return;
    }
    let after = WaitlistEntry {
        status: WaitStatus::Fulfilled,
        reservation_id: Some(reservation.id),
        ..entry.clone()
    };
    let zone = myself.clone();
    let made = reservation.clone();
    submit(
        &state.uow,
        Intent {
            changes: vec![
                Change::CreateReservation {
                    reservation: reservation.clone(),
                },
                Change::UpdateWaitlistEntry {
                    entry: after.clone(),
                    from: WaitStatus::Offered,
                    at: now,
                },
            ],
            events: vec![
                DomainEvent::WaitlistUpdated {
                    entry: after,
                    from: Some(WaitStatus::Offered),
                },
                DomainEvent::ReservationCreated {
                    reservation: reservation.clone(),
                },
            ],
            on_outcome: Box::new(move |outcome: Outcome| {
                let committed = outcome.is_ok();
                if !committed {
                    ledger.release(user_id, &made.id);
                    let _ = ledger.restore(user_id, id, &entry.zone, entry.interval, now);
                }
                let _ = zone.cast(ZoneMsg::WaitlistDecided {
                    id,
                    change: WaitChange::Confirmed(made.clone()),
                    committed,
                });
                let _ = reply.send(outcome.map(|()| made).map_err(commit_refusal));
            }),
        },
    );
}

/// A waitlist change was decided: settle or undo it, then offer whatever it freed.
pub(super) fn waitlist_decided(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: WaitlistId,
    change: WaitChange,
    committed: bool,
) {
    if committed {
        state.seats.settle_waitlist(&id, &change);
        if !matches!(change, WaitChange::Offered(_)) {
            offer_free_seats(myself, state);
        }
    } else {
        state.seats.undo_waitlist(&id, &change);
    }
}
