//! The zone's waitlist and holds, and the lifecycle decisions, as part of the pure
//! [`ZoneState`].
//!
//! A hold lives in its seat's interval index like a reservation (flagged `hold`), so it
//! blocks the seat for every other booker and shows as `reserved` on the live map;
//! only the code here changes it. The waitlist is the zone's open entries, oldest first.
//! Like everything in `ZoneState`, each change is applied tentatively (pending) and
//! settled or undone once the unit of work knows whether it committed.

use chrono::{DateTime, Utc};

use super::{Pending, WaitChange, WaitSlot, ZoneState};
use crate::domain::{Interval, Reservation, ReservationId, ReservationStatus, SeatNumber, UserId};
use crate::error::EngineError;
use crate::lifecycle::{LifecycleConfig, due_status};
use crate::waitlist::{Hold, WaitStatus, WaitlistEntry, WaitlistId, due_to_expire, match_waiters};

fn refused(detail: impl Into<String>) -> EngineError {
    EngineError::Refused(detail.into())
}

impl ZoneState {
    /// Adds the zone's open entries as stored (after a (re)start), oldest first. An
    /// offered entry holds its seat again; if the seat is taken or out of service (never
    /// expected) the entry keeps no seat and simply expires.
    pub fn load_waitlist(&mut self, entries: Vec<WaitlistEntry>) {
        let mut entries: Vec<WaitlistEntry> = entries
            .into_iter()
            .filter(|e| e.zone == self.zone && e.status.is_open())
            .collect();
        entries.sort_by_key(|e| (e.created_at, e.id));
        for entry in entries {
            if let (WaitStatus::Offered, Some(hold)) = (entry.status, &entry.hold)
                && self.check_create(&hold.seat, &entry.interval).is_ok()
            {
                self.insert_hold(&entry, hold, Pending::None);
            }
            self.waitlist.push(WaitSlot {
                entry,
                pending: false,
            });
        }
    }

    /// The open entries, oldest first (including pending ones).
    pub fn waitlist(&self) -> impl Iterator<Item = &WaitlistEntry> {
        self.waitlist.iter().map(|w| &w.entry)
    }

    /// Active holds (offered entries whose seat is held).
    pub fn holds(&self) -> impl Iterator<Item = &WaitlistEntry> {
        self.waitlist()
            .filter(|e| e.status == WaitStatus::Offered && self.index.contains_key(&e.id))
    }

    /// A reservation (not a hold) held in memory.
    pub fn reservation(&self, id: &ReservationId) -> Option<Reservation> {
        let (book, entry) = self.entry(id)?;
        (!entry.hold).then(|| entry.to_reservation(&book.number, &self.zone))
    }

    /// Whether `user` may join the waitlist for `interval`: not twice for overlapping
    /// times, within the per-user and per-zone caps, and only if no seat is free for the
    /// whole interval anyway (then the answer names it: book it instead).
    pub fn check_join(
        &self,
        user: UserId,
        interval: &Interval,
        config: &LifecycleConfig,
    ) -> Result<(), EngineError> {
        let mine: Vec<&WaitlistEntry> = self.waitlist().filter(|e| e.user_id == user).collect();
        if mine.iter().any(|e| e.interval.overlaps(interval)) {
            return Err(refused(
                "You are already on this zone's waitlist for an overlapping time",
            ));
        }
        if mine.len() >= config.max_waitlist_per_user {
            return Err(refused(format!(
                "You already have the maximum of {} open waitlist entries in this zone",
                config.max_waitlist_per_user
            )));
        }
        if self.waitlist.len() >= config.max_waitlist_per_zone {
            return Err(refused("This zone's waitlist is full"));
        }
        if let Some(seat) = self
            .order
            .iter()
            .find(|s| self.check_create(s, interval).is_ok())
        {
            return Err(refused(format!(
                "Seat '{seat}' is free for that time: reserve it instead"
            )));
        }
        Ok(())
    }

    /// Records a new entry as pending; [`check_join`](Self::check_join) must have
    /// succeeded in the same turn.
    pub fn apply_join(&mut self, entry: WaitlistEntry) {
        self.waitlist.push(WaitSlot {
            entry,
            pending: true,
        });
    }

    /// Which waiting entries get which seat now: see [`match_waiters`].
    pub fn offers(
        &self,
        now: DateTime<Utc>,
        accept: impl FnMut(&WaitlistEntry, &SeatNumber) -> bool,
    ) -> Vec<(WaitlistId, SeatNumber)> {
        let waiting = self
            .waitlist
            .iter()
            .filter(|w| !w.pending)
            .map(|w| &w.entry);
        match_waiters(
            waiting,
            &self.order,
            now,
            |seat, interval| self.check_create(seat, interval).is_ok(),
            accept,
        )
    }

    /// Tentatively offers `hold` to waiting entry `id` (the seat is blocked from now
    /// on); returns the entry as it will be once committed.
    pub fn apply_offer(&mut self, id: &WaitlistId, hold: Hold) -> Option<WaitlistEntry> {
        let slot = self
            .waitlist
            .iter_mut()
            .find(|w| &w.entry.id == id && !w.pending && w.entry.status == WaitStatus::Waiting)?;
        slot.pending = true;
        let after = WaitlistEntry {
            status: WaitStatus::Offered,
            hold: Some(hold.clone()),
            ..slot.entry.clone()
        };
        if self.check_create(&hold.seat, &after.interval).is_err() {
            self.slot_mut(id).expect("slot found above").pending = false;
            return None;
        }
        self.insert_hold(&after, &hold, Pending::Create);
        Some(after)
    }

    /// Entries due to close at `now` (expired holds, waiting entries whose time has
    /// passed), leaving out those being changed.
    pub fn due_waitlist(&self, now: DateTime<Utc>) -> Vec<WaitlistId> {
        due_to_expire(
            self.waitlist
                .iter()
                .filter(|w| !w.pending)
                .map(|w| &w.entry),
            now,
        )
    }

    /// Begins closing entry `id` as `to` (`cancelled` by its owner, `expired` by the
    /// sweep); with `user`, another user's entry is not found (docs/architecture.md,
    /// invariant 5). Returns the entry as it will be.
    pub fn begin_close(
        &mut self,
        id: &WaitlistId,
        user: Option<UserId>,
        to: WaitStatus,
    ) -> Result<WaitlistEntry, EngineError> {
        let slot = self
            .slot_mut(id)
            .filter(|w| user.is_none_or(|u| w.entry.user_id == u))
            .ok_or(EngineError::WaitlistEntryNotFound)?;
        if slot.pending {
            return Err(EngineError::ChangeInProgress);
        }
        slot.pending = true;
        let after = WaitlistEntry {
            status: to,
            ..slot.entry.clone()
        };
        self.mark_hold(id, Pending::Status(ReservationStatus::Cancelled));
        Ok(after)
    }

    /// Begins turning `user`'s hold `id` into a reservation: the entry must be offered,
    /// its hold not expired at `now` and its seat still in service. Returns the hold.
    pub fn begin_confirm(
        &mut self,
        id: &WaitlistId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<(WaitlistEntry, Hold), EngineError> {
        let held = self.index.contains_key(id);
        let slot = self
            .waitlist
            .iter()
            .find(|w| &w.entry.id == id && w.entry.user_id == user)
            .ok_or(EngineError::WaitlistEntryNotFound)?;
        if slot.pending {
            return Err(EngineError::ChangeInProgress);
        }
        let entry = slot.entry.clone();
        let hold = match (&entry.status, &entry.hold) {
            (WaitStatus::Offered, Some(hold)) => hold.clone(),
            (status, _) => {
                return Err(refused(format!(
                    "This waitlist entry holds no seat (it is {status})"
                )));
            }
        };
        if hold.expires_at <= now {
            return Err(refused("The hold has expired"));
        }
        let in_service = self
            .book(&hold.seat)
            .is_some_and(|b| b.service == crate::domain::SeatService::InService);
        if !held || !in_service {
            return Err(refused(format!(
                "Seat '{}' is no longer available",
                hold.seat
            )));
        }
        self.slot_mut(id).expect("slot found above").pending = true;
        self.mark_hold(id, Pending::Status(ReservationStatus::Confirmed));
        Ok((entry, hold))
    }

    /// The waitlist change of entry `id` committed.
    pub fn settle_waitlist(&mut self, id: &WaitlistId, change: &WaitChange) {
        match change {
            WaitChange::Joined => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.pending = false;
                }
            }
            WaitChange::Offered(hold) => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.pending = false;
                    slot.entry.status = WaitStatus::Offered;
                    slot.entry.hold = Some(hold.clone());
                }
                self.mark_hold(id, Pending::None);
            }
            WaitChange::Closed(_) => {
                self.waitlist.retain(|w| &w.entry.id != id);
                self.remove_hold(id);
            }
            WaitChange::Confirmed(reservation) => {
                self.waitlist.retain(|w| &w.entry.id != id);
                self.remove_hold(id);
                if self.index.contains_key(&reservation.id) {
                    self.settle_create(reservation.clone());
                } else if self
                    .check_create(&reservation.seat, &reservation.interval)
                    .is_ok()
                {
                    self.insert(reservation, Pending::None);
                }
            }
        }
    }

    /// The waitlist change of entry `id` did not commit: back to how it was.
    pub fn undo_waitlist(&mut self, id: &WaitlistId, change: &WaitChange) {
        match change {
            WaitChange::Joined => self.waitlist.retain(|w| &w.entry.id != id),
            WaitChange::Offered(_) => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.pending = false;
                }
                self.remove_hold(id);
            }
            WaitChange::Closed(_) | WaitChange::Confirmed(_) => {
                if let Some(slot) = self.slot_mut(id) {
                    slot.pending = false;
                }
                self.mark_hold(id, Pending::None);
            }
        }
    }

    /// Reservations due to move on their own at `now`, with their new status (see
    /// [`due_transition`]); those being changed are left for the next sweep.
    pub fn due_transitions(
        &self,
        now: DateTime<Utc>,
        config: &LifecycleConfig,
    ) -> Vec<(Reservation, ReservationStatus)> {
        self.books
            .iter()
            .flat_map(|book| book.by_start.values().map(move |e| (book, e)))
            .filter(|(_, e)| !e.hold && e.pending == Pending::None)
            .filter_map(|(book, e)| {
                let to = due_status(e.status, e.interval, e.created_at, now, config)?;
                Some((e.to_reservation(&book.number, &self.zone), to))
            })
            .collect()
    }

    /// Begins a lifecycle move of reservation `id` from `from` to `to`, for the system
    /// rather than a user. Settled or undone like any status change.
    pub fn begin_transition(
        &mut self,
        id: &ReservationId,
        from: ReservationStatus,
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        let user = self
            .entry(id)
            .filter(|(_, e)| !e.hold)
            .ok_or(EngineError::ReservationNotFound)?
            .1
            .user_id;
        self.begin_status_change(id, user, &[from], to)
    }

    fn slot_mut(&mut self, id: &WaitlistId) -> Option<&mut WaitSlot> {
        self.waitlist.iter_mut().find(|w| &w.entry.id == id)
    }

    fn insert_hold(&mut self, entry: &WaitlistEntry, hold: &Hold, pending: Pending) {
        let placeholder = Reservation {
            id: entry.id,
            user_id: entry.user_id,
            seat: hold.seat.clone(),
            zone: entry.zone.clone(),
            interval: entry.interval,
            status: ReservationStatus::Confirmed,
            created_at: entry.created_at,
            series: None,
        };
        self.insert(&placeholder, pending);
        if let Some(e) = self.entry_mut(&entry.id) {
            e.hold = true;
        }
    }

    fn mark_hold(&mut self, id: &WaitlistId, pending: Pending) {
        if let Some(e) = self.entry_mut(id).filter(|e| e.hold) {
            e.pending = pending;
        }
    }

    fn remove_hold(&mut self, id: &WaitlistId) {
        if self.entry_mut(id).is_some_and(|e| e.hold) {
            self.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SeatLayout, SeatService, ZoneId};
    use chrono::{Duration, TimeZone};
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

    fn zone() -> ZoneId {
        ZoneId("quiet".into())
    }

    fn reservation(user: UserId, s: &str, interval: Interval) -> Reservation {
        Reservation {
            id: Uuid::now_v7(),
            user_id: user,
            seat: seat(s),
            zone: zone(),
            interval,
            status: ReservationStatus::Confirmed,
            created_at: at(6, 0),
            series: None,
        }
    }

    /// Q1 and Q2, both taken 09:00-11:00 (by users 1 and 2).
    fn full() -> (ZoneState, Reservation, Reservation) {
        let seats: Vec<SeatLayout> = ["Q1", "Q2"]
            .map(|n| SeatLayout {
                number: seat(n),
                service: SeatService::InService,
                spot: Default::default(),
            })
            .to_vec();
        let a = reservation(1, "Q1", iv(9, 11));
        let b = reservation(2, "Q2", iv(9, 11));
        let z = ZoneState::new(zone(), &seats, vec![a.clone(), b.clone()]);
        (z, a, b)
    }

    fn waiter(user: UserId, interval: Interval) -> WaitlistEntry {
        WaitlistEntry {
            id: Uuid::now_v7(),
            user_id: user,
            zone: zone(),
            interval,
            status: WaitStatus::Waiting,
            hold: None,
            reservation_id: None,
            created_at: at(7, 0),
        }
    }

    fn join(z: &mut ZoneState, w: &WaitlistEntry) {
        z.check_join(w.user_id, &w.interval, &LifecycleConfig::default())
            .unwrap();
        z.apply_join(w.clone());
        z.settle_waitlist(&w.id, &WaitChange::Joined);
    }

    fn cancel(z: &mut ZoneState, r: &Reservation) {
        z.begin_status_change(
            &r.id,
            r.user_id,
            &[ReservationStatus::Confirmed],
            ReservationStatus::Cancelled,
        )
        .unwrap();
        z.settle_status_change(&r.id, ReservationStatus::Cancelled);
    }

    fn hold(s: &str, expires: DateTime<Utc>) -> Hold {
        Hold {
            seat: seat(s),
            expires_at: expires,
        }
    }

    #[test]
    fn joining_is_refused_while_a_seat_is_free_or_twice_for_the_same_time() {
        let (z, _, _) = full();
        let c = LifecycleConfig::default();
        assert_eq!(
            z.check_join(3, &iv(11, 12), &c),
            Err(EngineError::Refused(
                "Seat 'Q1' is free for that time: reserve it instead".into()
            ))
        );
        let mut z = z;
        join(&mut z, &waiter(3, iv(9, 10)));
        assert!(z.check_join(3, &iv(9, 11), &c).is_err());
        assert!(z.check_join(4, &iv(9, 11), &c).is_ok());
    }

    #[test]
    fn a_freed_seat_goes_to_the_first_waiter_and_blocks_everyone_else() {
        let (mut z, a, _) = full();
        let first = waiter(3, iv(9, 10));
        let second = waiter(4, iv(9, 11));
        join(&mut z, &first);
        join(&mut z, &second);
        assert!(z.offers(at(8, 0), |_, _| true).is_empty());

        cancel(&mut z, &a);
        let offers = z.offers(at(8, 0), |_, _| true);
        assert_eq!(offers, vec![(first.id, seat("Q1"))]);
        let offered = z.apply_offer(&first.id, hold("Q1", at(8, 10))).unwrap();
        assert_eq!(offered.status, WaitStatus::Offered);
        // Pending already blocks the seat for others; the second waiter gets nothing.
        assert!(z.check_create(&seat("Q1"), &iv(9, 10)).is_err());
        assert!(z.offers(at(8, 0), |_, _| true).is_empty());
        z.settle_waitlist(&first.id, &WaitChange::Offered(hold("Q1", at(8, 10))));
        assert_eq!(z.holds().count(), 1);
        // The hold is not a reservation: its owner cannot cancel it as one, and it does
        // not show up among reservations.
        assert_eq!(
            z.begin_status_change(
                &first.id,
                3,
                &[ReservationStatus::Confirmed],
                ReservationStatus::Cancelled
            ),
            Err(EngineError::ReservationNotFound)
        );
        assert_eq!(z.reservations().count(), 1);
        // 10:00-11:00 on Q1 is still free, but the second waiter needs 09:00-11:00.
        assert!(z.offers(at(8, 0), |_, _| true).is_empty());
    }

    #[test]
    fn an_expired_hold_passes_to_the_next_waiter() {
        let (mut z, a, _) = full();
        let first = waiter(3, iv(9, 11));
        let second = waiter(4, iv(9, 11));
        join(&mut z, &first);
        join(&mut z, &second);
        cancel(&mut z, &a);
        let h = hold("Q1", at(8, 10));
        z.apply_offer(&first.id, h.clone()).unwrap();
        z.settle_waitlist(&first.id, &WaitChange::Offered(h));

        assert!(z.due_waitlist(at(8, 9)).is_empty());
        assert_eq!(z.due_waitlist(at(8, 10)), vec![first.id]);
        let closed = z.begin_close(&first.id, None, WaitStatus::Expired).unwrap();
        assert_eq!(closed.status, WaitStatus::Expired);
        // Still blocked until the expiry commits.
        assert!(z.offers(at(8, 10), |_, _| true).is_empty());
        z.settle_waitlist(&first.id, &WaitChange::Closed(WaitStatus::Expired));
        assert_eq!(
            z.offers(at(8, 10), |_, _| true),
            vec![(second.id, seat("Q1"))]
        );
        assert_eq!(z.waitlist().count(), 1);
    }

    #[test]
    fn confirming_turns_the_hold_into_a_reservation_and_only_for_its_owner() {
        let (mut z, a, _) = full();
        let w = waiter(3, iv(9, 11));
        join(&mut z, &w);
        cancel(&mut z, &a);
        let h = hold("Q1", at(8, 10));
        z.apply_offer(&w.id, h.clone()).unwrap();
        z.settle_waitlist(&w.id, &WaitChange::Offered(h.clone()));

        assert_eq!(
            z.begin_confirm(&w.id, 4, at(8, 0)),
            Err(EngineError::WaitlistEntryNotFound)
        );
        assert_eq!(
            z.begin_confirm(&w.id, 3, at(8, 10)),
            Err(EngineError::Refused("The hold has expired".into()))
        );
        let (entry, got) = z.begin_confirm(&w.id, 3, at(8, 5)).unwrap();
        assert_eq!(got, h);
        assert_eq!(
            z.begin_confirm(&w.id, 3, at(8, 5)),
            Err(EngineError::ChangeInProgress)
        );
        // A failed commit gives the hold back.
        let made = Reservation {
            id: Uuid::now_v7(),
            created_at: at(8, 5),
            ..reservation(3, "Q1", entry.interval)
        };
        z.undo_waitlist(&w.id, &WaitChange::Confirmed(made.clone()));
        assert_eq!(z.holds().count(), 1);
        z.begin_confirm(&w.id, 3, at(8, 6)).unwrap();
        z.settle_waitlist(&w.id, &WaitChange::Confirmed(made.clone()));
        assert_eq!(z.holds().count(), 0);
        assert_eq!(z.waitlist().count(), 0);
        assert_eq!(z.reservation(&made.id), Some(made.clone()));
        assert!(z.check_create(&seat("Q1"), &iv(9, 10)).is_err());
    }

    #[test]
    fn withdrawing_releases_the_hold_and_others_cannot_withdraw_it() {
        let (mut z, a, _) = full();
        let w = waiter(3, iv(9, 11));
        join(&mut z, &w);
        cancel(&mut z, &a);
        let h = hold("Q1", at(8, 10));
        z.apply_offer(&w.id, h.clone()).unwrap();
        z.settle_waitlist(&w.id, &WaitChange::Offered(h));
        assert_eq!(
            z.begin_close(&w.id, Some(4), WaitStatus::Cancelled),
            Err(EngineError::WaitlistEntryNotFound)
        );
        z.begin_close(&w.id, Some(3), WaitStatus::Cancelled)
            .unwrap();
        z.settle_waitlist(&w.id, &WaitChange::Closed(WaitStatus::Cancelled));
        assert!(z.check_create(&seat("Q1"), &iv(9, 11)).is_ok());
    }

    #[test]
    fn a_failed_offer_frees_the_seat_again() {
        let (mut z, a, _) = full();
        let w = waiter(3, iv(9, 11));
        join(&mut z, &w);
        cancel(&mut z, &a);
        let h = hold("Q1", at(8, 10));
        z.apply_offer(&w.id, h.clone()).unwrap();
        z.undo_waitlist(&w.id, &WaitChange::Offered(h));
        assert!(z.check_create(&seat("Q1"), &iv(9, 11)).is_ok());
        assert_eq!(z.offers(at(8, 0), |_, _| true), vec![(w.id, seat("Q1"))]);
    }

    /// A zone keeps its reservations without their seat and zone: rebuilt from stored
    /// reservations of every active kind (confirmed, checked in, an occurrence of a
    /// series, one made after its start) and waitlist entries (waiting, holding), it
    /// gives each back exactly, and leaves out what is not active or not its own.
    #[test]
    fn a_rebuild_gives_back_exactly_what_was_stored() {
        let seats: Vec<SeatLayout> = ["Q1", "Q2", "Q3"]
            .map(|n| SeatLayout {
                number: seat(n),
                service: SeatService::InService,
                spot: Default::default(),
            })
            .to_vec();
        let confirmed = reservation(1, "Q1", iv(9, 11));
        let checked_in = Reservation {
            status: ReservationStatus::CheckedIn,
            ..reservation(2, "Q2", iv(8, 10))
        };
        let occurrence = Reservation {
            series: Some(Uuid::now_v7()),
            ..reservation(3, "Q2", iv(10, 12))
        };
        let late = Reservation {
            created_at: at(9, 20),
            ..reservation(4, "Q1", iv(11, 12))
        };
        let finished = Reservation {
            status: ReservationStatus::Completed,
            ..reservation(5, "Q3", iv(8, 9))
        };
        let elsewhere = reservation(6, "Z9", iv(9, 10));
        let stored = vec![
            confirmed.clone(),
            checked_in.clone(),
            occurrence.clone(),
            late.clone(),
            finished.clone(),
            elsewhere.clone(),
        ];
        let waiting = waiter(7, iv(9, 10));
        let mut holding = waiter(8, iv(9, 12));
        holding.status = WaitStatus::Offered;
        holding.hold = Some(hold("Q3", at(8, 10)));

        let mut z = ZoneState::from_stored(zone(), &seats, &stored);
        z.load_waitlist(vec![waiting.clone(), holding.clone()]);

        let mut held: Vec<Reservation> = z.reservations().collect();
        held.sort_by_key(|r| r.id);
        let mut expected = vec![confirmed, checked_in, occurrence, late];
        expected.sort_by_key(|r| r.id);
        assert_eq!(held, expected);
        for r in &expected {
            assert_eq!(z.reservation(&r.id).as_ref(), Some(r));
        }
        assert_eq!(z.reservation(&finished.id), None);
        assert_eq!(z.reservation(&elsewhere.id), None);
        assert_eq!(z.len(), 5, "four reservations and one hold");
        assert_eq!(
            z.waitlist().cloned().collect::<Vec<_>>(),
            vec![waiting, holding.clone()]
        );
        assert_eq!(z.holds().cloned().collect::<Vec<_>>(), vec![holding]);
        assert!(z.check_create(&seat("Q3"), &iv(11, 12)).is_err());
    }

    #[test]
    fn holds_survive_a_rebuild() {
        let (z, a, b) = full();
        let mut w = waiter(3, iv(9, 11));
        w.status = WaitStatus::Offered;
        w.hold = Some(hold("Q1", at(8, 10)));
        let seats: Vec<SeatLayout> = z
            .live_view(at(8, 0))
            .iter()
            .map(|v| SeatLayout {
                number: v.number.clone(),
                service: v.service,
                spot: Default::default(),
            })
            .collect();
        // Q1's reservation was cancelled before the restart; only Q2's is loaded.
        let _ = a;
        let mut rebuilt = ZoneState::new(zone(), &seats, vec![b]);
        rebuilt.load_waitlist(vec![w.clone()]);
        assert_eq!(rebuilt.holds().count(), 1);
        assert!(rebuilt.check_create(&seat("Q1"), &iv(10, 11)).is_err());
    }

    #[test]
    fn lifecycle_picks_no_shows_and_completions_but_not_holds() {
        let (mut z, a, b) = full();
        let c = LifecycleConfig::default();
        z.begin_status_change(
            &b.id,
            2,
            &[ReservationStatus::Confirmed],
            ReservationStatus::CheckedIn,
        )
        .unwrap();
        z.settle_status_change(&b.id, ReservationStatus::CheckedIn);
        assert!(z.due_transitions(at(9, 14), &c).is_empty());
        let due = z.due_transitions(at(9, 15), &c);
        assert_eq!(due, vec![(a.clone(), ReservationStatus::NoShow)]);
        z.begin_transition(
            &a.id,
            ReservationStatus::Confirmed,
            ReservationStatus::NoShow,
        )
        .unwrap();
        // Being changed: not picked again.
        assert!(z.due_transitions(at(9, 30), &c).is_empty());
        z.settle_status_change(&a.id, ReservationStatus::NoShow);
        let due = z.due_transitions(at(11, 0) + Duration::seconds(1), &c);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, ReservationStatus::Completed);
        assert_eq!(z.reservations().count(), 1);
    }
}
