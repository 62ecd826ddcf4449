//! The deterministic heart of a zone: per seat, an interval index of its active
//! reservations, and the decisions to create or cancel them.
//!
//! A decision is applied *tentatively* (the entry is marked pending, so later requests see
//! the seat as taken) and later made final by `settle_*` or rolled back by `undo_*` once
//! the unit of work knows whether the transaction committed. Nothing here does I/O.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::domain::{
    Interval, LiveSeatState, Reservation, ReservationId, ReservationStatus, SeatLayout, SeatNumber,
    SeatService, UserId, ZoneId,
};
use crate::error::EngineError;
use crate::series::SeriesId;
use crate::waitlist::{Hold, WaitStatus, WaitlistEntry};

/// The zone's maps are keyed by what the server made (seat numbers from the layout,
/// reservation ids it generated), never by a key a client picks, so they need no
/// defence against colliding keys: foldhash (seeded per process) instead of SipHash.
/// Rebuilding a big space hashes every reservation twice.
type FastHash = foldhash::fast::RandomState;

mod holds;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Create,
    Status(ReservationStatus),
}

/// A reservation as its seat's index holds it: everything but the seat and the zone,
/// which the index already knows. A zone may hold a million of these, so each costs no
/// allocation of its own; [`to_reservation`](Self::to_reservation) gives the whole
/// value back.
#[derive(Debug, Clone)]
struct Entry {
    id: ReservationId,
    user_id: UserId,
    interval: Interval,
    status: ReservationStatus,
    created_at: DateTime<Utc>,
    series: Option<SeriesId>,
    pending: Pending,
    /// A waitlist hold rather than a reservation: it blocks the seat like one, but only
    /// the waitlist code changes it (see [`holds`]).
    hold: bool,
}

impl Entry {
    fn new(reservation: &Reservation, pending: Pending) -> Self {
        Self {
            id: reservation.id,
            user_id: reservation.user_id,
            interval: reservation.interval,
            status: reservation.status,
            created_at: reservation.created_at,
            series: reservation.series,
            pending,
            hold: false,
        }
    }

    fn to_reservation(&self, seat: &SeatNumber, zone: &ZoneId) -> Reservation {
        Reservation {
            id: self.id,
            user_id: self.user_id,
            seat: seat.clone(),
            zone: zone.clone(),
            interval: self.interval,
            status: self.status,
            created_at: self.created_at,
            series: self.series,
        }
    }
}

#[derive(Debug, Clone)]
struct SeatBook {
    number: SeatNumber,
    service: SeatService,
    /// Active reservations keyed by start. They never overlap, so the only candidate
    /// for a conflict with `[s, e)` is the last entry starting before `e`.
    by_start: BTreeMap<DateTime<Utc>, Entry>,
}

impl SeatBook {
    fn new(seat: &SeatLayout) -> Self {
        Self {
            number: seat.number.clone(),
            service: seat.service,
            by_start: BTreeMap::new(),
        }
    }
}

/// Where a seat's book is in [`ZoneState::books`].
type Slot = u32;

#[derive(Debug, Clone)]
struct WaitSlot {
    entry: WaitlistEntry,
    /// A change of this entry is waiting for its commit.
    pending: bool,
}

/// What a waitlist change does in memory once its transaction is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitChange {
    /// A new entry joins the queue.
    Joined,
    /// The entry is offered a hold on a seat.
    Offered(Hold),
    /// The entry closes (`expired` or `cancelled`), releasing its hold if it had one.
    Closed(WaitStatus),
    /// The hold became this reservation.
    Confirmed(Reservation),
}

#[derive(Debug, Clone)]
pub struct ZoneState {
    zone: ZoneId,
    /// Seat numbers in layout order (A1, A2, ..., A10), for views.
    order: Vec<SeatNumber>,
    /// Each seat's book, by slot. A seat removed again (the undo of an added one) leaves
    /// its emptied book behind unless it is the last, so every other slot stays put.
    books: Vec<SeatBook>,
    slots: HashMap<SeatNumber, Slot, FastHash>,
    index: HashMap<ReservationId, (Slot, DateTime<Utc>), FastHash>,
    /// Open waitlist entries, oldest first (see [`holds`]).
    waitlist: Vec<WaitSlot>,
}

/// One seat's state for the live map and the availability view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatView {
    pub number: SeatNumber,
    pub service: SeatService,
    pub live: LiveSeatState,
}

impl ZoneState {
    /// Builds the state from the layout and the zone's active reservations as stored.
    /// Reservations on unknown seats or that are not active are ignored.
    pub fn new(zone: ZoneId, seats: &[SeatLayout], active: Vec<Reservation>) -> Self {
        Self::from_stored(zone, seats, &active)
    }

    /// [`new`](Self::new) from borrowed reservations: a restarting zone hands the same
    /// ones to the notifier afterwards, so it need not copy them.
    pub fn from_stored<'a>(
        zone: ZoneId,
        seats: &[SeatLayout],
        active: impl IntoIterator<Item = &'a Reservation>,
    ) -> Self {
        let slots: HashMap<SeatNumber, Slot, FastHash> = seats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.number.clone(), i as Slot))
            .collect();
        // Each seat's entries are gathered first and its index built from them at once:
        // a tree built from many keys has full nodes, one filled key by key has them
        // half empty.
        let active = active.into_iter();
        let rows = active.size_hint().0;
        let mut index = HashMap::with_capacity_and_hasher(rows, FastHash::default());
        // Sized for an even spread, so that most runs never grow (each growth copies).
        let per_seat = rows / seats.len().max(1);
        let mut runs: Vec<Vec<(DateTime<Utc>, Entry)>> = (0..seats.len())
            .map(|_| Vec::with_capacity(per_seat))
            .collect();
        for r in active {
            if !r.status.is_active() {
                continue;
            }
            let Some(&slot) = slots.get(&r.seat) else {
                continue;
            };
            // Stored active reservations of a seat never overlap (the database refuses
            // it), so no two share a start.
            index.insert(r.id, (slot, r.interval.start));
            runs[slot as usize].push((r.interval.start, Entry::new(r, Pending::None)));
        }
        let books = seats
            .iter()
            .zip(runs)
            .map(|(seat, run)| SeatBook {
                by_start: run.into_iter().collect(),
                ..SeatBook::new(seat)
            })
            .collect();
        Self {
            zone,
            order: seats.iter().map(|s| s.number.clone()).collect(),
            books,
            slots,
            index,
            waitlist: Vec::new(),
        }
    }

    pub fn zone(&self) -> &ZoneId {
        &self.zone
    }

    pub fn has_seat(&self, seat: &SeatNumber) -> bool {
        self.slots.contains_key(seat)
    }

    /// Number of active (or pending) reservations held in memory.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Checks whether `interval` on `seat` could be reserved, without changing anything.
    pub fn check_create(&self, seat: &SeatNumber, interval: &Interval) -> Result<(), EngineError> {
        let book = self
            .book(seat)
            .ok_or_else(|| EngineError::UnknownSeat(seat.clone()))?;
        if book.service == SeatService::OutOfService {
            return Err(EngineError::SeatOutOfService(seat.clone()));
        }
        if let Some((_, entry)) = book.by_start.range(..interval.end).next_back() {
            let taken = entry.interval;
            if taken.overlaps(interval) {
                return Err(EngineError::SeatTaken { conflict: taken });
            }
        }
        Ok(())
    }

    /// Records `reservation` as pending creation. The caller must have had
    /// [`check_create`](Self::check_create) succeed for it in the same turn.
    pub fn apply_create(&mut self, reservation: Reservation) {
        debug_assert!(
            self.check_create(&reservation.seat, &reservation.interval)
                .is_ok()
        );
        self.insert(&reservation, Pending::Create);
    }

    /// The create committed. If this state was rebuilt while the commit was in flight
    /// the entry may be missing; the committed reservation is then inserted.
    pub fn settle_create(&mut self, reservation: Reservation) {
        match self.entry_mut(&reservation.id) {
            Some(entry) => entry.pending = Pending::None,
            None => {
                if self
                    .check_create(&reservation.seat, &reservation.interval)
                    .is_ok()
                {
                    self.insert(&reservation, Pending::None);
                }
            }
        }
    }

    /// The create did not commit: forget it.
    pub fn undo_create(&mut self, id: &ReservationId) {
        if self
            .entry_mut(id)
            .is_some_and(|e| e.pending == Pending::Create)
        {
            self.remove(id);
        }
    }

    /// Begins moving a reservation of `user` to `to` (`cancelled`, `checked_in`, ...).
    /// Another user's reservation is reported as not found (docs/architecture.md,
    /// invariant 5).
    pub fn begin_status_change(
        &mut self,
        id: &ReservationId,
        user: UserId,
        allowed_from: &[ReservationStatus],
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        let &(slot, start) = self.index.get(id).ok_or(EngineError::ReservationNotFound)?;
        let book = &mut self.books[slot as usize];
        let entry = book
            .by_start
            .get_mut(&start)
            .filter(|e| e.user_id == user && !e.hold)
            .ok_or(EngineError::ReservationNotFound)?;
        if entry.pending != Pending::None {
            return Err(EngineError::ChangeInProgress);
        }
        if !allowed_from.contains(&entry.status) {
            return Err(EngineError::NotChangeable {
                status: entry.status,
            });
        }
        entry.pending = Pending::Status(to);
        Ok(entry.to_reservation(&book.number, &self.zone))
    }

    /// The status change committed. A reservation that is no longer active leaves the
    /// index, which frees its seat.
    pub fn settle_status_change(&mut self, id: &ReservationId, to: ReservationStatus) {
        if to.is_active() {
            if let Some(entry) = self.entry_mut(id) {
                entry.status = to;
                entry.pending = Pending::None;
            }
        } else {
            self.remove(id);
        }
    }

    pub fn undo_status_change(&mut self, id: &ReservationId) {
        if let Some(entry) = self.entry_mut(id)
            && matches!(entry.pending, Pending::Status(_))
        {
            entry.pending = Pending::None;
        }
    }

    /// Adds a seat (admin). False if the number is taken.
    pub fn add_seat(&mut self, seat: SeatLayout) -> bool {
        if self.slots.contains_key(&seat.number) {
            return false;
        }
        self.order.push(seat.number.clone());
        self.slots
            .insert(seat.number.clone(), self.books.len() as Slot);
        self.books.push(SeatBook::new(&seat));
        true
    }

    /// Removes a seat that holds no reservations (undo of [`add_seat`](Self::add_seat)).
    pub fn remove_empty_seat(&mut self, seat: &SeatNumber) {
        if self.book(seat).is_some_and(|b| b.by_start.is_empty()) {
            if let Some(slot) = self.slots.remove(seat)
                && slot as usize + 1 == self.books.len()
            {
                self.books.pop();
            }
            self.order.retain(|n| n != seat);
        }
    }

    /// Sets a seat's service status, returning the previous one.
    pub fn set_service(
        &mut self,
        seat: &SeatNumber,
        service: SeatService,
    ) -> Result<SeatService, EngineError> {
        let book = self
            .book_mut(seat)
            .ok_or_else(|| EngineError::UnknownSeat(seat.clone()))?;
        Ok(std::mem::replace(&mut book.service, service))
    }

    /// Confirmed reservations on `seat` that have not ended by `now` and are not being
    /// changed: what putting the seat out of service cancels.
    pub fn cancellable_on_seat(&self, seat: &SeatNumber, now: DateTime<Utc>) -> Vec<Reservation> {
        self.book(seat).map_or_else(Vec::new, |book| {
            book.by_start
                .values()
                .filter(|e| e.pending == Pending::None && !e.hold)
                .filter(|e| e.status == ReservationStatus::Confirmed && e.interval.end > now)
                .map(|e| e.to_reservation(&book.number, &self.zone))
                .collect()
        })
    }

    /// Free sub-intervals of `window` for every seat in service.
    pub fn free_intervals(
        &self,
        window: &Interval,
    ) -> Vec<(SeatNumber, SeatService, Vec<Interval>)> {
        self.in_order()
            .map(|book| {
                let free = match book.service {
                    SeatService::OutOfService => Vec::new(),
                    SeatService::InService => free_in(book, window),
                };
                (book.number.clone(), book.service, free)
            })
            .collect()
    }

    /// What each seat looks like at `now`.
    pub fn live_view(&self, now: DateTime<Utc>) -> Vec<SeatView> {
        self.in_order()
            .map(|book| {
                let live = match book.service {
                    SeatService::OutOfService => LiveSeatState::OutOfService,
                    SeatService::InService => match covering(book, now) {
                        Some(ReservationStatus::CheckedIn) => LiveSeatState::Occupied,
                        Some(_) => LiveSeatState::Reserved,
                        None => LiveSeatState::Available,
                    },
                };
                SeatView {
                    number: book.number.clone(),
                    service: book.service,
                    live,
                }
            })
            .collect()
    }

    /// What each seat of a zone looks like at `now`, from its committed reservations
    /// and waitlist, without building the whole zone: only what covers `now` can
    /// decide a seat's state, so only that goes through the zone's own rules. Memory
    /// grows with the seats, not with the reservations (an event-stream snapshot calls
    /// this on a zone of any size).
    pub fn live_view_at<'a>(
        zone: &ZoneId,
        seats: &[SeatLayout],
        reservations: impl IntoIterator<Item = &'a Reservation>,
        waitlist: impl IntoIterator<Item = &'a WaitlistEntry>,
        now: DateTime<Utc>,
    ) -> Vec<SeatView> {
        let covering = reservations
            .into_iter()
            .filter(|r| r.interval.contains(now));
        let mut state = Self::from_stored(zone.clone(), seats, covering);
        state.load_waitlist(
            waitlist
                .into_iter()
                .filter(|e| e.interval.contains(now))
                .cloned()
                .collect(),
        );
        state.live_view(now)
    }

    /// All reservations held, including pending ones (for audits and tests).
    pub fn reservations(&self) -> impl Iterator<Item = Reservation> + '_ {
        self.in_order().flat_map(|book| {
            book.by_start
                .values()
                .filter(|e| !e.hold)
                .map(|e| e.to_reservation(&book.number, &self.zone))
        })
    }

    fn book(&self, seat: &SeatNumber) -> Option<&SeatBook> {
        let slot = *self.slots.get(seat)?;
        Some(&self.books[slot as usize])
    }

    fn book_mut(&mut self, seat: &SeatNumber) -> Option<&mut SeatBook> {
        let slot = *self.slots.get(seat)?;
        Some(&mut self.books[slot as usize])
    }

    fn in_order(&self) -> impl Iterator<Item = &SeatBook> {
        self.order.iter().filter_map(|n| self.book(n))
    }

    fn insert(&mut self, reservation: &Reservation, pending: Pending) {
        let Some(&slot) = self.slots.get(&reservation.seat) else {
            return;
        };
        let start = reservation.interval.start;
        self.index.insert(reservation.id, (slot, start));
        self.books[slot as usize]
            .by_start
            .insert(start, Entry::new(reservation, pending));
    }

    fn remove(&mut self, id: &ReservationId) {
        if let Some((slot, start)) = self.index.remove(id) {
            self.books[slot as usize].by_start.remove(&start);
        }
    }

    fn entry_mut(&mut self, id: &ReservationId) -> Option<&mut Entry> {
        let (slot, start) = self.index.get(id)?;
        self.books[*slot as usize].by_start.get_mut(start)
    }

    /// The entry of `id` with the seat it is on.
    fn entry(&self, id: &ReservationId) -> Option<(&SeatBook, &Entry)> {
        let (slot, start) = self.index.get(id)?;
        let book = &self.books[*slot as usize];
        Some((book, book.by_start.get(start)?))
    }
}

fn covering(book: &SeatBook, now: DateTime<Utc>) -> Option<ReservationStatus> {
    let (_, entry) = book.by_start.range(..=now).next_back()?;
    entry.interval.contains(now).then_some(entry.status)
}

fn free_in(book: &SeatBook, window: &Interval) -> Vec<Interval> {
    let mut free = Vec::new();
    let mut cursor = window.start;
    // Start from the last reservation beginning before the window: it may reach into it.
    let first = book
        .by_start
        .range(..window.start)
        .next_back()
        .map(|(k, _)| *k);
    let from = first.unwrap_or(window.start);
    for entry in book.by_start.range(from..window.end).map(|(_, e)| e) {
        let taken = entry.interval;
        if taken.end <= cursor {
            continue;
        }
        if let Some(gap) = Interval::new(cursor, taken.start.min(window.end)) {
            free.push(gap);
        }
        cursor = cursor.max(taken.end);
    }
    if let Some(gap) = Interval::new(cursor, window.end) {
        free.push(gap);
    }
    free
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }

    fn iv(a: u32, b: u32) -> Interval {
        Interval::new(at(a), at(b)).unwrap()
    }

    fn seat(n: &str) -> SeatNumber {
        SeatNumber(n.into())
    }

    fn state() -> ZoneState {
        let seats = ["A1", "A2"].map(|n| SeatLayout {
            number: seat(n),
            service: SeatService::InService,
            spot: Default::default(),
        });
        let mut seats = seats.to_vec();
        seats.push(SeatLayout {
            number: seat("A3"),
            service: SeatService::OutOfService,
            spot: Default::default(),
        });
        ZoneState::new(ZoneId("coworking".into()), &seats, vec![])
    }

    fn reservation(user: UserId, s: &str, interval: Interval) -> Reservation {
        Reservation {
            id: Uuid::now_v7(),
            user_id: user,
            seat: seat(s),
            zone: ZoneId("coworking".into()),
            interval,
            status: ReservationStatus::Confirmed,
            created_at: at(0),
            series: None,
        }
    }

    fn create(state: &mut ZoneState, r: &Reservation) -> Result<(), EngineError> {
        state.check_create(&r.seat, &r.interval)?;
        state.apply_create(r.clone());
        Ok(())
    }

    #[test]
    fn pending_create_already_blocks_overlapping_requests() {
        let mut z = state();
        let first = reservation(1, "A1", iv(9, 11));
        create(&mut z, &first).unwrap();
        let err = z.check_create(&seat("A1"), &iv(10, 12)).unwrap_err();
        assert_eq!(
            err,
            EngineError::SeatTaken {
                conflict: iv(9, 11)
            }
        );
        // Touching intervals and other seats are free.
        assert!(z.check_create(&seat("A1"), &iv(11, 12)).is_ok());
        assert!(z.check_create(&seat("A1"), &iv(8, 9)).is_ok());
        assert!(z.check_create(&seat("A2"), &iv(9, 11)).is_ok());
    }

    #[test]
    fn conflict_found_for_enclosing_and_enclosed_requests() {
        let mut z = state();
        create(&mut z, &reservation(1, "A1", iv(10, 11))).unwrap();
        create(&mut z, &reservation(1, "A1", iv(13, 15))).unwrap();
        assert!(z.check_create(&seat("A1"), &iv(8, 20)).is_err());
        assert!(z.check_create(&seat("A1"), &iv(14, 15)).is_err());
        assert!(z.check_create(&seat("A1"), &iv(11, 13)).is_ok());
    }

    #[test]
    fn unknown_and_out_of_service_seats_are_refused() {
        let z = state();
        assert_eq!(
            z.check_create(&seat("Z9"), &iv(9, 10)),
            Err(EngineError::UnknownSeat(seat("Z9")))
        );
        assert_eq!(
            z.check_create(&seat("A3"), &iv(9, 10)),
            Err(EngineError::SeatOutOfService(seat("A3")))
        );
    }

    #[test]
    fn undo_create_frees_the_seat_but_settled_ones_stay() {
        let mut z = state();
        let a = reservation(1, "A1", iv(9, 10));
        create(&mut z, &a).unwrap();
        z.undo_create(&a.id);
        assert!(z.is_empty());
        assert!(z.check_create(&seat("A1"), &iv(9, 10)).is_ok());

        create(&mut z, &a).unwrap();
        z.settle_create(a.clone());
        z.undo_create(&a.id); // a late undo must not remove a settled reservation
        assert_eq!(z.len(), 1);
    }

    #[test]
    fn settle_of_unknown_create_inserts_it_after_a_rebuild() {
        let mut z = state();
        let a = reservation(1, "A1", iv(9, 10));
        z.settle_create(a.clone());
        assert!(z.check_create(&seat("A1"), &iv(9, 10)).is_err());
        z.settle_create(a); // idempotent
        assert_eq!(z.len(), 1);
    }

    #[test]
    fn cancel_keeps_the_seat_until_it_commits() {
        let mut z = state();
        let a = reservation(7, "A1", iv(9, 10));
        create(&mut z, &a).unwrap();
        z.settle_create(a.clone());
        let cancel = [ReservationStatus::Confirmed];
        z.begin_status_change(&a.id, 7, &cancel, ReservationStatus::Cancelled)
            .unwrap();
        assert!(z.check_create(&seat("A1"), &iv(9, 10)).is_err());
        assert_eq!(
            z.begin_status_change(&a.id, 7, &cancel, ReservationStatus::Cancelled),
            Err(EngineError::ChangeInProgress)
        );
        z.undo_status_change(&a.id);
        z.begin_status_change(&a.id, 7, &cancel, ReservationStatus::Cancelled)
            .unwrap();
        z.settle_status_change(&a.id, ReservationStatus::Cancelled);
        assert!(z.check_create(&seat("A1"), &iv(9, 10)).is_ok());
        assert!(z.is_empty());
    }

    #[test]
    fn another_users_reservation_is_not_found() {
        let mut z = state();
        let a = reservation(7, "A1", iv(9, 10));
        create(&mut z, &a).unwrap();
        z.settle_create(a.clone());
        let cancel = [ReservationStatus::Confirmed];
        assert_eq!(
            z.begin_status_change(&a.id, 8, &cancel, ReservationStatus::Cancelled),
            Err(EngineError::ReservationNotFound)
        );
        assert_eq!(z.len(), 1);
    }

    #[test]
    fn free_intervals_are_the_gaps_inside_the_window() {
        let mut z = state();
        create(&mut z, &reservation(1, "A1", iv(7, 9))).unwrap();
        create(&mut z, &reservation(1, "A1", iv(12, 13))).unwrap();
        create(&mut z, &reservation(1, "A1", iv(21, 23))).unwrap();
        let window = iv(8, 22);
        let free = z.free_intervals(&window);
        let a1 = &free.iter().find(|(s, _, _)| s == &seat("A1")).unwrap().2;
        assert_eq!(a1, &vec![iv(9, 12), iv(13, 21)]);
        let a2 = &free.iter().find(|(s, _, _)| s == &seat("A2")).unwrap().2;
        assert_eq!(a2, &vec![window]);
        let a3 = &free.iter().find(|(s, _, _)| s == &seat("A3")).unwrap().2;
        assert!(a3.is_empty());
    }

    #[test]
    fn live_view_shows_reserved_occupied_and_out_of_service() {
        let mut z = state();
        let a = reservation(1, "A1", iv(9, 11));
        create(&mut z, &a).unwrap();
        z.settle_create(a.clone());
        let b = reservation(2, "A2", iv(9, 11));
        create(&mut z, &b).unwrap();
        z.settle_create(b.clone());
        z.begin_status_change(
            &b.id,
            2,
            &[ReservationStatus::Confirmed],
            ReservationStatus::CheckedIn,
        )
        .unwrap();
        z.settle_status_change(&b.id, ReservationStatus::CheckedIn);
        let view = z.live_view(at(10));
        let live: Vec<_> = view.iter().map(|v| v.live).collect();
        assert_eq!(
            live,
            vec![
                LiveSeatState::Reserved,
                LiveSeatState::Occupied,
                LiveSeatState::OutOfService
            ]
        );
        let later = z.live_view(at(11));
        assert_eq!(later[0].live, LiveSeatState::Available);
    }

    #[test]
    fn live_view_at_agrees_with_the_whole_zone() {
        let layout: Vec<SeatLayout> = ["A1", "A2", "A3"]
            .iter()
            .enumerate()
            .map(|(i, n)| SeatLayout {
                number: seat(n),
                service: if i == 2 {
                    SeatService::OutOfService
                } else {
                    SeatService::InService
                },
                spot: Default::default(),
            })
            .collect();
        let mut reservations = vec![
            reservation(1, "A1", iv(9, 11)),
            reservation(1, "A1", iv(11, 12)),
            reservation(2, "A2", iv(8, 9)),
            reservation(2, "A2", iv(10, 12)),
            reservation(3, "A3", iv(9, 12)),
        ];
        reservations[3].status = ReservationStatus::CheckedIn;
        let zone = ZoneId("coworking".into());
        let whole = ZoneState::new(zone.clone(), &layout, reservations.clone());
        for hour in [8, 9, 10, 11, 12] {
            assert_eq!(
                ZoneState::live_view_at(&zone, &layout, &reservations, [], at(hour)),
                whole.live_view(at(hour)),
                "at {hour}:00"
            );
        }
    }

    /// A brute-force model check: after any sequence of creates and cancels, no two
    /// held reservations on a seat overlap, and every refusal was justified.
    #[test]
    fn random_sequences_never_produce_overlaps() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut z = state();
            let mut held: Vec<Reservation> = Vec::new();
            for _ in 0..60 {
                let s = if next() % 2 == 0 { "A1" } else { "A2" };
                let a = (next() % 14) as u32 + 8;
                let b = a + 1 + (next() % 3) as u32;
                let r = reservation(1, s, iv(a, b.min(23)));
                let expected_free = !held
                    .iter()
                    .any(|h| h.seat == r.seat && h.interval.overlaps(&r.interval));
                let outcome = create(&mut z, &r);
                assert_eq!(
                    outcome.is_ok(),
                    expected_free,
                    "decision disagrees with the model"
                );
                if outcome.is_ok() {
                    match next() % 3 {
                        0 => z.undo_create(&r.id),
                        _ => {
                            z.settle_create(r.clone());
                            held.push(r);
                        }
                    }
                }
                if next() % 4 == 0 && !held.is_empty() {
                    let victim = held.remove((next() as usize) % held.len());
                    z.begin_status_change(
                        &victim.id,
                        1,
                        &[ReservationStatus::Confirmed],
                        ReservationStatus::Cancelled,
                    )
                    .unwrap();
                    z.settle_status_change(&victim.id, ReservationStatus::Cancelled);
                }
            }
            let all: Vec<_> = z.reservations().collect();
            assert_eq!(all.len(), held.len());
            for (i, x) in all.iter().enumerate() {
                for y in &all[i + 1..] {
                    assert!(!(x.seat == y.seat && x.interval.overlaps(&y.interval)));
                }
            }
        }
    }
}
