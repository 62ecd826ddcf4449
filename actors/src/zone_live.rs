//! The zone actor's lifecycle and waitlist requests: check-out, the periodic sweep
//! (no-shows, completions, expired holds), joining and leaving the waitlist, offering
//! freed seats to waiters, and confirming holds.
//!
//! Every decision is made by the pure [`ZoneState`](crate::zone_state::ZoneState) and
//! [`lifecycle`](crate::lifecycle) functions; this module turns them into intents for
//! the unit of work, exactly like a reservation: mark pending, submit, settle or undo.

use chrono::{DateTime, SubsecRound, Utc};
use ractor::{ActorRef, RpcReplyPort};
use tracing::debug;
use uuid::Uuid;

use crate::domain::{DomainEvent, Interval, Reservation, ReservationId, ReservationStatus, UserId};
use crate::error::EngineError;
use crate::lifecycle::{CheckInRefusal, LifecycleConfig};
use crate::storage::{Change, Created, IdempotencyTag};
use crate::unit_of_work::{Intent, Outcome};
use crate::waitlist::{Hold, WaitStatus, WaitlistEntry, WaitlistId};
use crate::zone::{Reply, ZoneActorState, ZoneMsg, commit_refusal, submit, submit_status_change};
use crate::zone_state::WaitChange;

/// How far back a (re)starting zone loads reservations that are still `confirmed` or
/// `checked_in`, so that those which ended while the server was down get finished.
pub const CATCH_UP: chrono::Duration = chrono::Duration::days(7);

/// The refusal of a check-in outside its window, worded for the member.
pub(crate) fn check_in_refusal(refusal: CheckInRefusal, config: &LifecycleConfig) -> EngineError {
    EngineError::Refused(match refusal {
        CheckInRefusal::NotYetOpen { .. } => format!(
            "Check-in is not open yet: it opens {} minutes before the start",
            config.check_in_opens_before.num_minutes()
        ),
        CheckInRefusal::Closed { .. } => format!(
            "Check-in has closed: a reservation must be checked in within {} minutes of its start",
            config.no_show_after.num_minutes()
        ),
    })
}

/// What one sweep of a zone set in motion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Reservations moved to `no_show` or `completed`.
    pub transitions: usize,
    /// Waitlist entries closed as `expired` (holds past their deadline, waits whose
    /// time has passed).
    pub expired: usize,
    /// Holds offered to waiters.
    pub offers: usize,
}

impl std::ops::AddAssign for SweepReport {
    fn add_assign(&mut self, other: Self) {
        self.transitions += other.transitions;
        self.expired += other.expired;
        self.offers += other.offers;
    }
}

/// Check-out: `checked_in` → `completed`, its end cut to `end_at` (the edge rounds the
/// time up to the slot) unless that is not before the booked end.
pub(crate) fn check_out(
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
            .book
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
    let Some(pass) = crate::zone::admit_or_undo(state, &id) else {
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

/// One sweep at the clock's `now`: due lifecycle moves, expired holds and stale waits,
/// then offers for whatever is free. With `reply`, answers once every intent of the
/// sweep has been decided.
pub(crate) fn sweep(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    reply: Option<RpcReplyPort<SweepReport>>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    let mut report = SweepReport::default();
    for (reservation, to) in state.book.due_transitions(now, &state.lifecycle) {
        let Ok(before) = state
            .book
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
    for id in state.book.due_waitlist(now) {
        if close(myself, state, &id, None, WaitStatus::Expired, None) {
            report.expired += 1;
        }
    }
    report.offers = offer_free_seats(myself, state);
    if report != SweepReport::default() {
        debug!(zone = %state.book.zone(), ?report, "swept");
    }
    if let Some(reply) = reply {
        after_everything_submitted(state, move || {
            let _ = reply.send(report);
        });
    }
}

/// Answers once every intent this zone has submitted so far has been decided.
pub(crate) fn flush(state: &ZoneActorState, reply: RpcReplyPort<()>) {
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

pub(crate) fn join_waitlist(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    user_id: UserId,
    interval: Interval,
    idempotency: Option<IdempotencyTag>,
    reply: Reply<WaitlistEntry>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    if let Err(refusal) = state.book.check_join(user_id, &interval, &state.lifecycle) {
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
        zone: state.book.zone().clone(),
        interval,
        status: WaitStatus::Waiting,
        hold: None,
        reservation_id: None,
        created_at: now,
    };
    state.book.apply_join(entry.clone());
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

pub(crate) fn leave_waitlist(
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
fn close(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: &WaitlistId,
    user: Option<UserId>,
    to: WaitStatus,
    reply: Option<Reply<WaitlistEntry>>,
) -> bool {
    let now = state.clock.now().trunc_subsecs(6);
    let from = state
        .book
        .waitlist()
        .find(|e| &e.id == id)
        .map(|e| e.status);
    let after = match state.book.begin_close(id, user, to) {
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
pub(crate) fn offer_free_seats(myself: &ActorRef<ZoneMsg>, state: &mut ZoneActorState) -> usize {
    let now = state.clock.now().trunc_subsecs(6);
    let zone_id = state.book.zone().clone();
    let ledger = state.ledger.clone();
    let offers = state.book.offers(now, |entry, _| {
        ledger
            .try_claim(entry.user_id, entry.id, &zone_id, entry.interval, now)
            .is_ok()
    });
    let mut offered = 0;
    for (id, seat) in offers {
        let user = state
            .book
            .waitlist()
            .find(|e| e.id == id)
            .map(|e| e.user_id);
        let hold = Hold {
            seat,
            expires_at: now + state.lifecycle.hold_for,
        };
        let Some(after) = state.book.apply_offer(&id, hold.clone()) else {
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
pub(crate) fn confirm_hold(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: WaitlistId,
    user_id: UserId,
    reply: Reply<Reservation>,
) {
    let now = state.clock.now().trunc_subsecs(6);
    let (entry, hold) = match state.book.begin_confirm(&id, user_id, now) {
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
        let _ = ledger.try_claim(user_id, id, &entry.zone, entry.interval, now);
        state
            .book
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
                    let _ = ledger.try_claim(user_id, id, &entry.zone, entry.interval, now);
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
pub(crate) fn waitlist_decided(
    myself: &ActorRef<ZoneMsg>,
    state: &mut ZoneActorState,
    id: WaitlistId,
    change: WaitChange,
    committed: bool,
) {
    if committed {
        state.book.settle_waitlist(&id, &change);
        if !matches!(change, WaitChange::Offered(_)) {
            offer_free_seats(myself, state);
        }
    } else {
        state.book.undo_waitlist(&id, &change);
    }
}
