//! The waitlist: members waiting for a seat in a zone for a time range, and the holds
//! offered to them when a seat frees up.
//!
//! A waitlist entry is `waiting` until a seat in its zone is free for its whole range;
//! then the first waiter (oldest entry first) is `offered` a hold on that seat, which
//! blocks the seat for everybody else until it is confirmed (the entry is `fulfilled`
//! and a reservation exists), it expires (`expired`; the seat passes to the next
//! waiter), or the waiter withdraws (`cancelled`). A hold's id is its entry's id.
//!
//! This module holds the pure decisions (who is offered which seat, which holds have
//! expired); the zone actor applies them. The values live in [`crate::domain`], since
//! events and the storage port carry them too.

use chrono::{DateTime, Utc};

use crate::domain::{Interval, SeatNumber};

pub use crate::domain::{Hold, WaitStatus, WaitlistEntry, WaitlistId};

/// Who gets which seat: each open `waiting` entry, oldest first, is offered the first
/// seat (in `seats` order) on which its whole range is free, counting the offers made
/// before it in the same round. `is_free(seat, range)` answers for the seats as they
/// are now; `accept(entry, seat)` may still turn a waiter down (the zone actor asks
/// the user ledger there), and the seat then stays for the waiters after it. Entries
/// whose range has already ended get nothing.
pub fn match_waiters<'a>(
    waiting: impl IntoIterator<Item = &'a WaitlistEntry>,
    seats: &[SeatNumber],
    now: DateTime<Utc>,
    mut is_free: impl FnMut(&SeatNumber, &Interval) -> bool,
    mut accept: impl FnMut(&WaitlistEntry, &SeatNumber) -> bool,
) -> Vec<(WaitlistId, SeatNumber)> {
    let mut offers: Vec<(WaitlistId, SeatNumber, Interval)> = Vec::new();
    for entry in waiting {
        if entry.status != WaitStatus::Waiting || entry.interval.end <= now {
            continue;
        }
        let seat = seats.iter().find(|seat| {
            is_free(seat, &entry.interval)
                && !offers
                    .iter()
                    .any(|(_, s, i)| s == *seat && i.overlaps(&entry.interval))
        });
        if let Some(seat) = seat
            && accept(entry, seat)
        {
            offers.push((entry.id, seat.clone(), entry.interval));
        }
    }
    offers.into_iter().map(|(id, seat, _)| (id, seat)).collect()
}

/// The entries that are due to close at `now`: holds past their expiry, and waiting
/// entries whose range has ended (nobody can use them any more).
pub fn due_to_expire<'a>(
    entries: impl IntoIterator<Item = &'a WaitlistEntry>,
    now: DateTime<Utc>,
) -> Vec<WaitlistId> {
    entries
        .into_iter()
        .filter(|e| match e.status {
            WaitStatus::Offered => e.hold.as_ref().is_none_or(|h| h.expires_at <= now),
            WaitStatus::Waiting => e.interval.end <= now,
            _ => false,
        })
        .map(|e| e.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{UserId, ZoneId};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
    }

    fn iv(a: u32, b: u32) -> Interval {
        Interval::new(at(a, 0), at(b, 0)).unwrap()
    }

    fn seat(s: &str) -> SeatNumber {
        SeatNumber(s.into())
    }

    fn entry(user: UserId, interval: Interval) -> WaitlistEntry {
        WaitlistEntry {
            id: Uuid::now_v7(),
            user_id: user,
            zone: ZoneId("quiet".into()),
            interval,
            status: WaitStatus::Waiting,
            hold: None,
            reservation_id: None,
            created_at: at(6, 0),
        }
    }

    #[test]
    fn the_first_waiter_gets_the_freed_seat_and_the_next_gets_nothing() {
        let first = entry(1, iv(9, 11));
        let second = entry(2, iv(10, 12));
        // Only Q1 is free, and only 09:00-12:00.
        let free = |s: &SeatNumber, i: &Interval| s == &seat("Q1") && iv(9, 12).contains_all(i);
        let offers = match_waiters(
            [&first, &second],
            &[seat("Q1"), seat("Q2")],
            at(7, 0),
            free,
            |_, _| true,
        );
        assert_eq!(offers, vec![(first.id, seat("Q1"))]);
    }

    #[test]
    fn a_waiter_turned_down_leaves_the_seat_to_the_next() {
        let first = entry(1, iv(9, 11));
        let second = entry(2, iv(10, 11));
        let offers = match_waiters(
            [&first, &second],
            &[seat("Q1")],
            at(7, 0),
            |_, _| true,
            |e, _| e.user_id != 1,
        );
        assert_eq!(offers, vec![(second.id, seat("Q1"))]);
    }

    #[test]
    fn waiters_for_disjoint_ranges_can_share_a_seat() {
        let a = entry(1, iv(9, 10));
        let b = entry(2, iv(10, 11));
        let offers = match_waiters([&a, &b], &[seat("Q1")], at(7, 0), |_, _| true, |_, _| true);
        assert_eq!(offers, vec![(a.id, seat("Q1")), (b.id, seat("Q1"))]);
    }

    #[test]
    fn a_waiter_needs_its_whole_range_free_and_not_yet_ended() {
        let partly = entry(1, iv(9, 13));
        let ended = entry(2, iv(6, 7));
        let mut offered = entry(3, iv(9, 10));
        offered.status = WaitStatus::Offered;
        let free = |_: &SeatNumber, i: &Interval| iv(6, 12).contains_all(i);
        let offers = match_waiters(
            [&partly, &ended, &offered],
            &[seat("Q1")],
            at(8, 0),
            free,
            |_, _| true,
        );
        assert!(offers.is_empty(), "{offers:?}");
    }

    #[test]
    fn holds_expire_at_their_deadline_and_stale_waiters_at_their_end() {
        let mut held = entry(1, iv(9, 11));
        held.status = WaitStatus::Offered;
        held.hold = Some(Hold {
            seat: seat("Q1"),
            expires_at: at(8, 10),
        });
        let waiting = entry(2, iv(8, 9));
        let later = entry(3, iv(12, 13));
        let all = [&held, &waiting, &later];
        assert!(due_to_expire(all, at(8, 9)).is_empty());
        assert_eq!(due_to_expire(all, at(8, 10)), vec![held.id]);
        assert_eq!(due_to_expire(all, at(9, 0)), vec![held.id, waiting.id]);
    }

    impl Interval {
        fn contains_all(&self, other: &Interval) -> bool {
            self.start <= other.start && other.end <= self.end
        }
    }
}
