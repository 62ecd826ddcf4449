//! The notifier's picture of the committed state, kept in step with the events it
//! numbers, so that a snapshot and the events after it fit together exactly.
//!
//! Each zone actor hands over its state when it (re)starts (after every write it ever
//! submitted was decided and announced); from then on the notifier applies that zone's
//! events in commit order. Because the snapshot is taken inside the notifier, in the
//! same turn that hands out the live receiver, a subscriber sees every committed change
//! either in the snapshot (sequence ≤ `head`) or as an event (> `head`) — never both,
//! never neither.

use std::ops::Bound;
use std::sync::Arc;

use imbl::OrdMap;

use crate::domain::{DomainEvent, Reservation, ReservationId, SeatLayout, UserId, ZoneId};
use crate::waitlist::{WaitStatus, WaitlistEntry, WaitlistId};

mod layered;
use layered::{Keyed, Layered};

/// Reservations are ordered by id: as a number, which orders exactly like the id's
/// bytes (`as_u128` reads them big-endian) and compares in one instruction.
impl Keyed for Reservation {
    type Key = u128;
    fn key(&self) -> u128 {
        self.id.as_u128()
    }
}

/// Whose view a snapshot is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Anyone: seats, active reservations and holds of one zone or all zones.
    Public { zone: Option<ZoneId> },
    /// One member: their own active reservations and open waitlist entries.
    User(UserId),
}

/// One zone in a snapshot: a frozen copy of the zone's committed state.
///
/// Taking it costs a few reference-count increments, whatever the zone's size: the
/// maps are shared (a slice as loaded, under persistent trees of the changes since), so
/// the projection's later changes copy only the few nodes they touch and never disturb
/// a snapshot being rendered.
/// What the scope may see is filtered when the snapshot is read, off the notifier.
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    pub zone: ZoneId,
    /// The layout (public scope; empty for a member).
    pub seats: Arc<Vec<SeatLayout>>,
    reservations: Layered<Reservation>,
    waitlist: OrdMap<WaitlistId, WaitlistEntry>,
    user: Option<UserId>,
}

impl ZoneSnapshot {
    /// Active (`confirmed`, `checked_in`) reservations the scope may see (a member's
    /// own), in id order.
    pub fn reservations(&self) -> impl Iterator<Item = &Reservation> + '_ {
        self.reservations_after(None)
    }

    /// Like [`reservations`](Self::reservations), starting after the id `after`: a
    /// reader can take them a piece at a time without holding a borrow in between.
    pub fn reservations_after(
        &self,
        after: Option<ReservationId>,
    ) -> impl Iterator<Item = &Reservation> + '_ {
        let user = self.user;
        self.reservations
            .after(after.map(|id| id.as_u128()))
            .filter(move |r| user.is_none_or(|u| r.user_id == u))
    }

    /// Public scope: the offered entries (holds). User scope: the member's open
    /// entries. In id order.
    pub fn waitlist(&self) -> impl Iterator<Item = &WaitlistEntry> + '_ {
        self.waitlist_after(None)
    }

    /// Like [`waitlist`](Self::waitlist), starting after the id `after`.
    pub fn waitlist_after(
        &self,
        after: Option<WaitlistId>,
    ) -> impl Iterator<Item = &WaitlistEntry> + '_ {
        let user = self.user;
        self.waitlist
            .range((
                after.map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
            ))
            .map(|(_, e)| e)
            .filter(move |e| match user {
                None => e.status == WaitStatus::Offered,
                Some(u) => e.user_id == u,
            })
    }
}

#[derive(Debug, Clone, Default)]
struct ZoneView {
    seats: Arc<Vec<SeatLayout>>,
    reservations: Layered<Reservation>,
    waitlist: OrdMap<WaitlistId, WaitlistEntry>,
}

/// A zone's state as its actor loaded it, made ready for the projection on the zone's
/// own task: sorting a big zone's reservations is the costly part of taking it in, and
/// the notifier is one thread for every zone, so it only installs what arrives.
#[derive(Debug)]
pub struct LoadedZone {
    zone: ZoneId,
    view: ZoneView,
}

impl LoadedZone {
    pub fn new(
        zone: ZoneId,
        seats: Vec<SeatLayout>,
        mut reservations: Vec<Reservation>,
        waitlist: Vec<WaitlistEntry>,
    ) -> Self {
        reservations.retain(|r| r.status.is_active());
        let view = ZoneView {
            seats: Arc::new(seats),
            reservations: Layered::from_entries(reservations),
            waitlist: waitlist
                .into_iter()
                .filter(|e| e.status.is_open())
                .map(|e| (e.id, e))
                .collect(),
        };
        Self { zone, view }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Projection {
    /// In the layout's order (see [`set_order`](Self::set_order)); a zone the order does
    /// not name (added later by an admin) goes after the others.
    zones: Vec<(ZoneId, ZoneView)>,
    /// Each zone's place in the layout, told by the supervisor before the zones load:
    /// they load concurrently, so the order they arrive in is not the display order.
    order: std::collections::HashMap<ZoneId, usize>,
}

impl Projection {
    pub fn set_order(&mut self, order: Vec<ZoneId>) {
        self.order = order.into_iter().enumerate().map(|(i, z)| (z, i)).collect();
        let mut zones = std::mem::take(&mut self.zones);
        zones.sort_by_key(|(id, _)| self.rank(id));
        self.zones = zones;
    }

    /// A zone's place in the layout; a zone the order does not name comes last.
    fn rank(&self, zone: &ZoneId) -> usize {
        self.order.get(zone).copied().unwrap_or(usize::MAX)
    }

    /// Replaces a zone's state with what its actor loaded from the database.
    pub fn load(&mut self, loaded: LoadedZone) {
        let LoadedZone { zone, view } = loaded;
        match self.zones.iter_mut().find(|(id, _)| id == &zone) {
            Some((_, slot)) => *slot = view,
            None => {
                let mine = self.rank(&zone);
                let at = self
                    .zones
                    .iter()
                    .position(|(id, _)| self.rank(id) > mine)
                    .unwrap_or(self.zones.len());
                self.zones.insert(at, (zone, view));
            }
        }
    }

    pub fn has_zone(&self, zone: &ZoneId) -> bool {
        self.zones.iter().any(|(id, _)| id == zone)
    }

    /// Applies one committed event. Events of zones that have not loaded yet, and
    /// events that do not change seats (books), are ignored.
    pub fn apply(&mut self, event: &DomainEvent) {
        let Some(view) = self.view_mut(event.zone()) else {
            return;
        };
        match event {
            DomainEvent::ReservationCreated { reservation }
            | DomainEvent::ReservationStatusChanged { reservation, .. } => {
                if reservation.status.is_active() {
                    view.reservations.insert(reservation.clone());
                } else {
                    view.reservations.remove(&reservation.id.as_u128());
                }
            }
            DomainEvent::WaitlistUpdated { entry, .. } => {
                if entry.status.is_open() {
                    view.waitlist.insert(entry.id, entry.clone());
                } else {
                    view.waitlist.remove(&entry.id);
                }
            }
            DomainEvent::SeatAdded { seat, .. }
                if !view.seats.iter().any(|s| s.number == seat.number) =>
            {
                // Copies the layout only while a snapshot still holds the old one.
                Arc::make_mut(&mut view.seats).push(seat.clone());
            }
            DomainEvent::SeatServiceChanged { seat, service, .. } => {
                if let Some(s) = Arc::make_mut(&mut view.seats)
                    .iter_mut()
                    .find(|s| &s.number == seat)
                {
                    s.service = *service;
                }
            }
            DomainEvent::SeatMoved { seat, spot, .. } => {
                if let Some(s) = Arc::make_mut(&mut view.seats)
                    .iter_mut()
                    .find(|s| &s.number == seat)
                {
                    s.spot = *spot;
                }
            }
            _ => {}
        }
    }

    /// The zones `scope` may see, frozen now. Cheap whatever their size (see
    /// [`ZoneSnapshot`]): it runs inside the notifier's turn.
    pub fn snapshot(&self, scope: &Scope) -> Vec<ZoneSnapshot> {
        self.zones
            .iter()
            .filter(|(id, _)| match scope {
                Scope::Public { zone } => zone.as_ref().is_none_or(|z| z == id),
                Scope::User(_) => true,
            })
            .map(|(id, view)| {
                let (seats, user) = match scope {
                    Scope::Public { .. } => (view.seats.clone(), None),
                    Scope::User(user) => (Arc::default(), Some(*user)),
                };
                ZoneSnapshot {
                    zone: id.clone(),
                    seats,
                    reservations: view.reservations.clone(),
                    waitlist: view.waitlist.clone(),
                    user,
                }
            })
            .collect()
    }

    fn view_mut(&mut self, zone: &ZoneId) -> Option<&mut ZoneView> {
        self.zones
            .iter_mut()
            .find(|(id, _)| id == zone)
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interval, ReservationStatus, SeatNumber, SeatService};
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    fn zone(z: &str) -> ZoneId {
        ZoneId(z.into())
    }

    fn booking(user: UserId, z: &str) -> Reservation {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        Reservation {
            id: Uuid::now_v7(),
            user_id: user,
            seat: SeatNumber("A1".into()),
            zone: zone(z),
            interval: Interval::new(at(9), at(10)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: at(8),
            series: None,
        }
    }

    fn seats() -> Vec<SeatLayout> {
        vec![SeatLayout {
            number: SeatNumber("A1".into()),
            service: SeatService::InService,
            spot: Default::default(),
        }]
    }

    #[test]
    fn zones_loading_in_any_order_are_listed_in_the_layouts() {
        let mut p = Projection::default();
        p.set_order(vec![zone("coworking"), zone("cafe"), zone("quiet")]);
        for z in ["quiet", "coworking", "lab", "cafe"] {
            p.load(LoadedZone::new(zone(z), seats(), vec![], vec![]));
        }
        let all = p.snapshot(&Scope::Public { zone: None });
        assert_eq!(
            all.iter().map(|z| z.zone.0.as_str()).collect::<Vec<_>>(),
            // A zone the order does not know (added later) comes last.
            ["coworking", "cafe", "quiet", "lab"]
        );
    }

    #[test]
    fn events_keep_the_projection_equal_to_the_committed_state() {
        let mut p = Projection::default();
        let kept = booking(1, "coworking");
        p.load(LoadedZone::new(
            zone("coworking"),
            seats(),
            vec![kept.clone()],
            vec![],
        ));
        p.load(LoadedZone::new(zone("cafe"), vec![], vec![], vec![]));
        let made = booking(2, "coworking");
        p.apply(&DomainEvent::ReservationCreated {
            reservation: made.clone(),
        });
        let cancelled = Reservation {
            status: ReservationStatus::Cancelled,
            ..kept.clone()
        };
        p.apply(&DomainEvent::ReservationStatusChanged {
            reservation: cancelled,
            from: ReservationStatus::Confirmed,
        });
        p.apply(&DomainEvent::SeatServiceChanged {
            zone: zone("coworking"),
            seat: SeatNumber("A1".into()),
            service: SeatService::OutOfService,
        });
        let all = p.snapshot(&Scope::Public { zone: None });
        assert_eq!(
            all.iter().map(|z| z.zone.0.as_str()).collect::<Vec<_>>(),
            ["coworking", "cafe"]
        );
        assert_eq!(all[0].reservations().collect::<Vec<_>>(), vec![&made]);
        assert_eq!(all[0].seats[0].service, SeatService::OutOfService);
        let one = p.snapshot(&Scope::Public {
            zone: Some(zone("cafe")),
        });
        assert_eq!(one.len(), 1);
        assert_eq!(p.snapshot(&Scope::User(1))[0].reservations().count(), 0);
        assert_eq!(
            p.snapshot(&Scope::User(2))[0]
                .reservations()
                .collect::<Vec<_>>(),
            vec![&made]
        );
    }

    #[test]
    fn a_snapshot_stays_as_it_was_while_the_projection_moves_on() {
        let mut p = Projection::default();
        let first = booking(1, "quiet");
        p.load(LoadedZone::new(
            zone("quiet"),
            seats(),
            vec![first.clone()],
            vec![],
        ));
        let before = p.snapshot(&Scope::Public { zone: None });
        let second = booking(2, "quiet");
        p.apply(&DomainEvent::ReservationCreated {
            reservation: second.clone(),
        });
        p.apply(&DomainEvent::ReservationStatusChanged {
            reservation: Reservation {
                status: ReservationStatus::Cancelled,
                ..first.clone()
            },
            from: ReservationStatus::Confirmed,
        });
        p.apply(&DomainEvent::SeatServiceChanged {
            zone: zone("quiet"),
            seat: SeatNumber("A1".into()),
            service: SeatService::OutOfService,
        });
        assert_eq!(before[0].reservations().collect::<Vec<_>>(), vec![&first]);
        assert_eq!(before[0].seats[0].service, SeatService::InService);
        let after = p.snapshot(&Scope::Public { zone: None });
        assert_eq!(after[0].reservations().collect::<Vec<_>>(), vec![&second]);
        assert_eq!(after[0].seats[0].service, SeatService::OutOfService);
        // Paging by id sees the same rows as one pass.
        let firsts: Vec<_> = after[0].reservations_after(None).take(1).collect();
        assert_eq!(
            after[0].reservations_after(Some(firsts[0].id)).count(),
            0,
            "nothing after the last one"
        );
    }

    #[test]
    fn a_moved_seat_stands_at_its_new_spot_and_older_snapshots_keep_the_old_one() {
        let mut p = Projection::default();
        p.load(LoadedZone::new(zone("quiet"), seats(), vec![], vec![]));
        let before = p.snapshot(&Scope::Public { zone: None });
        let spot = crate::floor_plan::Spot::new(420, 310).unwrap();
        p.apply(&DomainEvent::SeatMoved {
            zone: zone("quiet"),
            seat: SeatNumber("A1".into()),
            spot,
        });
        // A move of a seat the zone does not have changes nothing.
        p.apply(&DomainEvent::SeatMoved {
            zone: zone("quiet"),
            seat: SeatNumber("Z9".into()),
            spot: Default::default(),
        });
        assert_eq!(before[0].seats[0].spot, Default::default());
        let after = p.snapshot(&Scope::Public { zone: None });
        assert_eq!(after[0].seats.len(), 1);
        assert_eq!(after[0].seats[0].spot, spot);
    }

    #[test]
    fn a_reload_replaces_the_zone_and_unknown_zones_are_ignored() {
        let mut p = Projection::default();
        p.apply(&DomainEvent::ReservationCreated {
            reservation: booking(1, "quiet"),
        });
        assert!(!p.has_zone(&zone("quiet")));
        p.load(LoadedZone::new(
            zone("quiet"),
            seats(),
            vec![booking(1, "quiet")],
            vec![],
        ));
        p.load(LoadedZone::new(zone("quiet"), seats(), vec![], vec![]));
        assert_eq!(
            p.snapshot(&Scope::Public { zone: None })[0]
                .reservations()
                .count(),
            0
        );
    }
}
