//! Which queued intents may go out as a transaction while others are still in flight.
//!
//! A storage that can commit several transactions at once (PostgreSQL, on a writer pool
//! of that many connections) gets more than one batch in flight, so that a commit's
//! round trips and fsync overlap the next batch's instead of leaving a core idle. That
//! is safe only for batches that cannot depend on each other, since they may commit in
//! either order, and one may fail while the other commits:
//!
//! - A batch goes out beside others only if every one of its intents writes nothing but
//!   reservation inserts, reservation status changes and their idempotency keys, and no
//!   reservation that a batch in flight writes. Two such batches touch disjoint rows, so
//!   neither waits on the other's locks and neither can see the other's outcome. (The
//!   zones already refuse a change to a reservation with a change pending, so the check
//!   is a second wall, and the one that keeps the guarantee here.)
//! - The decisions themselves cannot depend on a batch in flight either: a zone counts
//!   a pending create as taken and a pending cancel as not yet free, and the user ledger
//!   releases a member's time only once the cancel has committed (docs/architecture.md,
//!   invariants 1 and 2). Whatever a batch in flight does, the other stays valid.
//! - Anything else (a barrier, waitlist, series, layout, book and check-out changes) is
//!   *exclusive*: its batch goes out only when nothing is in flight, and nothing goes
//!   out beside it. A barrier therefore still answers only once everything submitted
//!   before it is decided.
//!
//! The intents keep their queue order: a batch is always a run from the head of the
//! queue, and stops at the first intent that may not go yet.

use std::collections::HashSet;

use crate::domain::ReservationId;
use crate::storage::Change;
use crate::unit_of_work::Intent;

/// The reservations a batch writes, or `None` if it is exclusive.
type Footprint = Option<HashSet<ReservationId>>;

pub(super) struct Flights {
    /// Most batches in flight at once (1: one after another).
    limit: usize,
    /// The id the next batch gets.
    next: u64,
    /// The batches in flight, by id, with what they write.
    in_flight: Vec<(u64, Footprint)>,
}

impl Flights {
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            next: 0,
            in_flight: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// How many intents from the head of `queue` may go out now as one batch, at most
    /// `max_batch`; 0 if none may.
    pub(super) fn next_batch<'a>(
        &self,
        queue: impl IntoIterator<Item = &'a Intent>,
        max_batch: usize,
    ) -> usize {
        if self.in_flight.len() >= self.limit {
            return 0;
        }
        let queue = queue.into_iter().take(max_batch);
        if self.in_flight.is_empty() {
            return queue.count();
        }
        let mut written: HashSet<ReservationId> = HashSet::new();
        for (_, footprint) in &self.in_flight {
            match footprint {
                Some(ids) => written.extend(ids),
                None => return 0,
            }
        }
        queue
            .take_while(|intent| {
                reservations_written(intent)
                    .is_some_and(|ids| ids.iter().all(|id| !written.contains(id)))
            })
            .count()
    }

    /// Records `batch` as in flight; returns its id for [`land`](Self::land).
    pub(super) fn launch(&mut self, batch: &[Intent]) -> u64 {
        let mut footprint = Some(HashSet::new());
        for intent in batch {
            match (reservations_written(intent), &mut footprint) {
                (Some(ids), Some(all)) => all.extend(ids),
                _ => footprint = None,
            }
        }
        let id = self.next;
        self.next += 1;
        self.in_flight.push((id, footprint));
        id
    }

    /// The batch `id` is decided.
    pub(super) fn land(&mut self, id: u64) {
        self.in_flight.retain(|(flying, _)| *flying != id);
    }
}

/// The reservations `intent` writes, if it writes nothing else (and something at all:
/// an intent without changes is a barrier).
fn reservations_written(intent: &Intent) -> Option<Vec<ReservationId>> {
    if intent.changes.is_empty() {
        return None;
    }
    let mut ids = Vec::with_capacity(intent.changes.len());
    for change in &intent.changes {
        match change {
            Change::CreateReservation { reservation } => ids.push(reservation.id),
            Change::SetReservationStatus { id, .. } => ids.push(*id),
            // Points at rows of the same intent.
            Change::RecordIdempotency { .. } => {}
            _ => return None,
        }
    }
    Some(ids)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{ReservationStatus, SeatNumber};

    fn cancel(id: ReservationId) -> Change {
        Change::SetReservationStatus {
            id,
            from: ReservationStatus::Confirmed,
            to: ReservationStatus::Cancelled,
            at: Utc::now(),
        }
    }

    fn intent(changes: Vec<Change>) -> Intent {
        Intent {
            changes,
            events: Vec::new(),
            on_outcome: Box::new(|_| {}),
        }
    }

    fn cancels(ids: &[ReservationId]) -> Intent {
        intent(ids.iter().map(|id| cancel(*id)).collect())
    }

    fn seat_change() -> Intent {
        intent(vec![Change::SetSeatService {
            seat: SeatNumber("Q1".into()),
            service: crate::domain::SeatService::OutOfService,
        }])
    }

    #[test]
    fn one_at_a_time_unless_the_storage_allows_more() {
        let [a, b] = [Uuid::now_v7(), Uuid::now_v7()];
        let mut flights = Flights::new(1);
        let queue = [cancels(&[a]), cancels(&[b])];
        assert_eq!(flights.next_batch(&queue, 16), 2);
        assert_eq!(flights.next_batch(&queue, 1), 1);
        let first = flights.launch(&queue[..1]);
        assert_eq!(flights.next_batch(&queue[1..], 16), 0);
        flights.land(first);
        assert_eq!(flights.next_batch(&queue[1..], 16), 1);
    }

    #[test]
    fn a_second_batch_goes_beside_the_first_only_on_other_reservations() {
        let [a, b, c] = [Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7()];
        let mut flights = Flights::new(2);
        let first = flights.launch(&[cancels(&[a, b])]);
        // Disjoint: goes at once. The run stops at the first intent writing `a`, and
        // everything behind it waits too (queue order is kept).
        let queue = [cancels(&[c]), cancels(&[a]), cancels(&[Uuid::now_v7()])];
        assert_eq!(flights.next_batch(&queue, 16), 1);
        assert_eq!(flights.next_batch(&queue[1..], 16), 0);
        // At the limit, nothing more goes.
        let second = flights.launch(&queue[..1]);
        assert_eq!(flights.next_batch(&queue[2..], 16), 0);
        flights.land(first);
        assert_eq!(flights.len(), 1);
        assert_eq!(flights.next_batch(&queue[1..], 16), 2);
        flights.land(second);
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn barriers_and_other_changes_go_alone() {
        let [a, b] = [Uuid::now_v7(), Uuid::now_v7()];
        let mut flights = Flights::new(2);
        let first = flights.launch(&[cancels(&[a])]);
        // A barrier (no changes) and a seat change wait for the batch in flight ...
        assert_eq!(flights.next_batch(&[intent(Vec::new())], 16), 0);
        assert_eq!(flights.next_batch(&[seat_change()], 16), 0);
        flights.land(first);
        // ... then go, taking what follows them into their batch ...
        let queue = [seat_change(), cancels(&[b])];
        assert_eq!(flights.next_batch(&queue, 16), 2);
        let exclusive = flights.launch(&queue);
        // ... and nothing goes beside them, however disjoint.
        assert_eq!(flights.next_batch(&[cancels(&[Uuid::now_v7()])], 16), 0);
        flights.land(exclusive);
        // Idempotency keys ride along with the rows they point to.
        let keyed = intent(vec![
            cancel(a),
            Change::RecordIdempotency {
                tag: crate::storage::IdempotencyTag {
                    user_id: 1,
                    scope: "reserve".into(),
                    key: "k".into(),
                    fingerprint: "f".into(),
                },
                created: crate::storage::Created::Reservation(a),
            },
        ]);
        let _ = flights.launch(&[cancels(&[b])]);
        assert_eq!(flights.next_batch(&[keyed], 16), 1);
    }
}
