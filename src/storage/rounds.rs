//! The order in which a batch's reservation inserts and status changes reach the
//! database: in rounds, each round one kind, so that a batch of a few hundred intents
//! costs a few statements rather than one per short run.
//!
//! A batch interleaves creates and cancels from many zones. Sent in their own order,
//! every switch of kind starts a new statement, and each statement is a round trip
//! (to PostgreSQL's server, or to SQLite's connection thread). Sent in rounds (every
//! status change first, then every insert, then whatever had to wait for those), a
//! typical batch is two statements.
//!
//! Moving writes across each other is safe because of two facts about the rows:
//! - A status change never makes a reservation active again (a reservation goes from
//!   confirmed to checked in, or to one of the ends; nothing goes back). So running a
//!   status change earlier than an insert can only free a seat sooner: it never adds
//!   an overlap the database's own wall (invariant 1, docs/architecture.md) would
//!   refuse. An insert, conversely, always runs after every status change that came
//!   before it in the batch, so a seat freed by a cancel earlier in the batch is free
//!   when the insert checks it.
//! - Writes to one reservation keep their order: a status change goes after the
//!   insert of its row, and after that row's previous status change, each in a later
//!   round (a statement cannot apply two changes of one row in order).
//!
//! Anything else in the batch (series, waitlist, layout, book and check-out changes)
//! is a barrier: the rounds gathered so far go out before it, in order.

use std::collections::HashMap;

use pica_actors::{Change, Reservation, ReservationId};

/// One statement's worth of writes.
#[derive(Debug, PartialEq)]
pub(super) enum Round<'a> {
    /// `Change::SetReservationStatus` changes, no reservation twice.
    Statuses(Vec<&'a Change>),
    /// Reservations to insert.
    Creates(Vec<&'a Reservation>),
}

/// Reservation writes gathered since the last barrier. Round `2k` holds status
/// changes and round `2k + 1` inserts; they go out in round order.
#[derive(Default)]
pub(super) struct Rounds<'a> {
    /// Status changes of round `2k`, at index `k`.
    statuses: Vec<Vec<&'a Change>>,
    /// Inserts of round `2k + 1`, at index `k`.
    creates: Vec<Vec<&'a Reservation>>,
    /// The round of the latest write to each reservation written so far.
    last_write: HashMap<ReservationId, usize>,
    /// The latest round holding a status change: the next insert goes after it.
    latest_status: Option<usize>,
}

impl<'a> Rounds<'a> {
    /// Adds a reservation insert.
    pub(super) fn create(&mut self, reservation: &'a Reservation) {
        let round = self.latest_status.map_or(1, |r| after(r, 1));
        self.last_write.insert(reservation.id, round);
        at(&mut self.creates, round / 2).push(reservation);
    }

    /// Adds a status change (of reservation `id`).
    pub(super) fn status(&mut self, id: ReservationId, change: &'a Change) {
        let round = self.last_write.get(&id).map_or(0, |&r| after(r, 0));
        self.last_write.insert(id, round);
        self.latest_status = self.latest_status.max(Some(round));
        at(&mut self.statuses, round / 2).push(change);
    }

    /// The rounds in order, leaving this empty for the next stretch of the batch.
    pub(super) fn take(&mut self) -> Vec<Round<'a>> {
        let mut statuses = std::mem::take(&mut self.statuses).into_iter();
        let mut creates = std::mem::take(&mut self.creates).into_iter();
        self.last_write.clear();
        self.latest_status = None;
        let mut rounds = Vec::new();
        loop {
            let (s, c) = (statuses.next(), creates.next());
            if s.is_none() && c.is_none() {
                return rounds;
            }
            rounds.extend(s.filter(|s| !s.is_empty()).map(Round::Statuses));
            rounds.extend(c.filter(|c| !c.is_empty()).map(Round::Creates));
        }
    }
}

/// The first round after `round` whose number has parity `parity` (0: status
/// changes, 1: inserts).
fn after(round: usize, parity: usize) -> usize {
    let next = round + 1;
    if next % 2 == parity { next } else { next + 1 }
}

/// The list at `index`, adding empty ones up to it.
fn at<T>(lists: &mut Vec<Vec<T>>, index: usize) -> &mut Vec<T> {
    if lists.len() <= index {
        lists.resize_with(index + 1, Vec::new);
    }
    &mut lists[index]
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use pica_actors::{Interval, ReservationStatus, SeatNumber, ZoneId};
    use uuid::Uuid;

    use super::*;

    fn reservation() -> Reservation {
        let start = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        Reservation {
            id: Uuid::now_v7(),
            user_id: 1,
            seat: SeatNumber("A1".into()),
            zone: ZoneId("z".into()),
            interval: Interval::new(start, start + chrono::Duration::hours(1)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: start,
            series: None,
        }
    }

    fn cancel(id: ReservationId) -> Change {
        Change::SetReservationStatus {
            id,
            from: ReservationStatus::Confirmed,
            to: ReservationStatus::Cancelled,
            at: Utc::now(),
        }
    }

    fn ids(round: &Round) -> Vec<ReservationId> {
        match round {
            Round::Creates(rs) => rs.iter().map(|r| r.id).collect(),
            Round::Statuses(cs) => cs
                .iter()
                .map(|c| match c {
                    Change::SetReservationStatus { id, .. } => *id,
                    _ => unreachable!(),
                })
                .collect(),
        }
    }

    #[test]
    fn interleaved_creates_and_cancels_of_other_rows_make_two_rounds() {
        let (a, b, c) = (reservation(), reservation(), reservation());
        let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
        let (cx, cy) = (cancel(x), cancel(y));
        let mut rounds = Rounds::default();
        rounds.create(&a);
        rounds.status(x, &cx);
        rounds.create(&b);
        rounds.status(y, &cy);
        rounds.create(&c);
        let out = rounds.take();
        // The cancel of y came after the insert of b; running it first only frees a
        // seat sooner. The inserts all run after both cancels.
        assert_eq!(out.len(), 2);
        assert_eq!(ids(&out[0]), vec![x, y]);
        assert_eq!(ids(&out[1]), vec![a.id, b.id, c.id]);
    }

    #[test]
    fn writes_to_one_row_keep_their_order_and_inserts_follow_earlier_status_changes() {
        let (a, b) = (reservation(), reservation());
        let x = Uuid::now_v7();
        let (cx, ca) = (cancel(x), cancel(a.id));
        let mut rounds = Rounds::default();
        rounds.create(&a); // round 1
        rounds.status(x, &cx); // round 0
        rounds.status(a.id, &ca); // after a's insert: round 2
        rounds.create(&b); // after the status change in round 2: round 3
        let out = rounds.take();
        assert_eq!(out.len(), 4);
        assert_eq!(ids(&out[0]), vec![x]);
        assert_eq!(ids(&out[1]), vec![a.id]);
        assert_eq!(ids(&out[2]), vec![a.id]);
        assert_eq!(ids(&out[3]), vec![b.id]);
        assert!(matches!(out[3], Round::Creates(_)));
    }

    #[test]
    fn two_changes_of_one_row_go_in_separate_rounds() {
        let x = Uuid::now_v7();
        let check_in = Change::SetReservationStatus {
            id: x,
            from: ReservationStatus::Confirmed,
            to: ReservationStatus::CheckedIn,
            at: Utc::now(),
        };
        let no_show = cancel(x);
        let mut rounds = Rounds::default();
        rounds.status(x, &check_in);
        rounds.status(x, &no_show);
        let out = rounds.take();
        assert_eq!(
            out,
            vec![
                Round::Statuses(vec![&check_in]),
                Round::Statuses(vec![&no_show])
            ]
        );
        // Taken: the next stretch starts afresh.
        assert!(rounds.take().is_empty());
    }
}
