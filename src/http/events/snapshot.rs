//! The snapshot that opens an event stream, rendered a part at a time.
//!
//! A space can hold a million active reservations: rendered whole, its snapshot was one
//! event of over a hundred megabytes, built as a JSON tree several times that size on
//! an async worker, for every subscriber. Here a public snapshot is a series of
//! `snapshot` events of at most [`PART_ITEMS`] items (seats, reservations, holds) each,
//! read from the notifier's frozen, structurally shared copy of the committed state
//! ([`ZoneSnapshot`]) and rendered one part at a time, so that a snapshot in progress
//! holds a part or two, whatever the size of the space. A member's snapshot holds only
//! their own entries (bounded by the per-member limits) and stays one event.

use std::io::Write;

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pica_actors::projection::ZoneSnapshot;
use pica_actors::zone_state::{SeatView, ZoneState};
use pica_actors::{LiveSeatState, ReservationId, SeatService, WaitlistId};
use serde::Serialize;
use serde_json::Value;

use super::{Audience, PublicReservation, public_hold};
use crate::http::views::{ReservationView, local};
use crate::http::waitlist::WaitlistView;

/// Items per public snapshot part: about 150 KB of JSON.
pub(super) const PART_ITEMS: usize = 1000;

/// A snapshot being rendered: call [`next_part`](Self::next_part) until it says the
/// part was the last.
pub(super) struct Parts {
    zones: Vec<ZoneSnapshot>,
    public: bool,
    head: u64,
    now: DateTime<Utc>,
    at: String,
    tz: Tz,
    per_part: usize,
    /// The zone being rendered, and where in it.
    zone: usize,
    cursor: Cursor,
    /// The current zone's seats with their live state, worked out on entering it.
    seats: Option<Vec<SeatView>>,
    part: usize,
    done: bool,
}

#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// The next seat's index.
    Seats(usize),
    /// Reservations after this id.
    Reservations(Option<ReservationId>),
    /// Holds after this waitlist entry's id.
    Holds(Option<WaitlistId>),
}

#[derive(Serialize)]
struct SeatSnapshot {
    seat_number: String,
    status: SeatService,
    state: LiveSeatState,
}

/// A piece of one zone: its seats, reservations and holds in this part.
#[derive(Serialize)]
struct Fragment {
    id: String,
    seats: Vec<SeatSnapshot>,
    reservations: Vec<PublicReservation>,
    holds: Vec<Value>,
}

#[derive(Serialize)]
struct PublicPart<'a> {
    seq: u64,
    at: &'a str,
    part: usize,
    last: bool,
    zones: Vec<Fragment>,
}

#[derive(Serialize)]
struct UserSnapshot<'a> {
    seq: u64,
    at: &'a str,
    reservations: Vec<ReservationView>,
    waitlist: Vec<WaitlistView>,
}

impl Parts {
    pub(super) fn new(
        audience: &Audience,
        zones: Vec<ZoneSnapshot>,
        head: u64,
        now: DateTime<Utc>,
        tz: Tz,
        per_part: usize,
    ) -> Self {
        Self {
            zones,
            public: matches!(audience, Audience::Public(_)),
            head,
            now,
            at: local(now, tz),
            tz,
            per_part: per_part.max(2),
            zone: 0,
            cursor: Cursor::Seats(0),
            seats: None,
            part: 0,
            done: false,
        }
    }

    /// The next part as an SSE frame, and whether it is the last; `None` after it.
    /// Only the last part carries the `id` (the snapshot's head): a stream cut in
    /// the middle of a snapshot resumes into a fresh one, not past a half.
    pub(super) fn next_part(&mut self) -> Option<(Bytes, bool)> {
        if self.done {
            return None;
        }
        let (data, last) = if self.public {
            self.next_public()
        } else {
            (self.user_snapshot(), true)
        };
        self.done = last;
        self.part += 1;
        let mut frame = Vec::with_capacity(data.len() + 64);
        frame.extend_from_slice(b"event: snapshot\n");
        if last {
            // Writing to a Vec cannot fail.
            let _ = writeln!(frame, "id: {}", self.head);
        }
        frame.extend_from_slice(b"data: ");
        frame.extend_from_slice(&data);
        frame.extend_from_slice(b"\n\n");
        Some((Bytes::from(frame), last))
    }

    fn next_public(&mut self) -> (Vec<u8>, bool) {
        let mut budget = self.per_part;
        let mut fragments = Vec::new();
        let tz = self.tz;
        let now = self.now;
        // A fragment is only begun with room for one item besides itself, so every
        // part makes progress.
        while budget >= 2 && self.zone < self.zones.len() {
            let z = &self.zones[self.zone];
            let mut fragment = Fragment {
                id: z.zone.0.clone(),
                seats: Vec::new(),
                reservations: Vec::new(),
                holds: Vec::new(),
            };
            // The fragment counts too, so that a part of many empty zones is bounded.
            budget -= 1;
            let mut zone_done = false;
            loop {
                match self.cursor {
                    Cursor::Seats(from) => {
                        let seats = self.seats.get_or_insert_with(|| {
                            ZoneState::live_view_at(
                                &z.zone,
                                &z.seats,
                                z.reservations(),
                                z.waitlist(),
                                now,
                            )
                        });
                        let take = budget.min(seats.len() - from);
                        fragment
                            .seats
                            .extend(seats[from..from + take].iter().map(|s| SeatSnapshot {
                                seat_number: s.number.0.clone(),
                                status: s.service,
                                state: s.live,
                            }));
                        budget -= take;
                        if from + take < seats.len() {
                            self.cursor = Cursor::Seats(from + take);
                            break;
                        }
                        self.cursor = Cursor::Reservations(None);
                    }
                    Cursor::Reservations(after) => {
                        let mut last = after;
                        let mut exhausted = true;
                        for r in z.reservations_after(after) {
                            if fragment.reservations.len() == budget {
                                exhausted = false;
                                break;
                            }
                            last = Some(r.id);
                            // Ended ones wait for the sweep; they are of no interest now.
                            if r.interval.end > now {
                                fragment.reservations.push(PublicReservation::new(r, tz));
                            }
                        }
                        budget -= fragment.reservations.len();
                        if !exhausted {
                            self.cursor = Cursor::Reservations(last);
                            break;
                        }
                        self.cursor = Cursor::Holds(None);
                    }
                    Cursor::Holds(after) => {
                        let mut last = after;
                        let mut exhausted = true;
                        for e in z.waitlist_after(after) {
                            if fragment.holds.len() == budget {
                                exhausted = false;
                                break;
                            }
                            last = Some(e.id);
                            fragment.holds.extend(public_hold(e, tz));
                        }
                        budget -= fragment.holds.len();
                        if !exhausted {
                            self.cursor = Cursor::Holds(last);
                            break;
                        }
                        zone_done = true;
                        break;
                    }
                }
            }
            fragments.push(fragment);
            if zone_done {
                self.zone += 1;
                self.cursor = Cursor::Seats(0);
                self.seats = None;
            }
        }
        let last = self.zone >= self.zones.len();
        let part = PublicPart {
            seq: self.head,
            at: &self.at,
            part: self.part,
            last,
            zones: fragments,
        };
        (to_json(&part), last)
    }

    fn user_snapshot(&self) -> Vec<u8> {
        let tz = self.tz;
        let snapshot = UserSnapshot {
            seq: self.head,
            at: &self.at,
            reservations: self
                .zones
                .iter()
                .flat_map(|z| z.reservations())
                .map(|r| ReservationView::new(r, tz))
                .collect(),
            waitlist: self
                .zones
                .iter()
                .flat_map(|z| z.waitlist())
                .map(|e| WaitlistView::new(e, tz))
                .collect(),
        };
        to_json(&snapshot)
    }
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise; JSON text never holds a
    // raw newline, so the frame's `data` stays one line.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use pica_actors::projection::{LoadedZone, Projection, Scope};
    use pica_actors::{
        Hold, Interval, Reservation, ReservationStatus, SeatLayout, SeatNumber, WaitStatus,
        WaitlistEntry, ZoneId,
    };
    use serde_json::Value;
    use uuid::Uuid;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }

    fn booking(zone: &str, seat: &str, from: u32, to: u32, user: i64) -> Reservation {
        Reservation {
            id: Uuid::now_v7(),
            user_id: user,
            seat: SeatNumber(seat.into()),
            zone: ZoneId(zone.into()),
            interval: Interval::new(at(from), at(to)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: at(1),
            series: None,
        }
    }

    fn layout(seats: &[&str]) -> Vec<SeatLayout> {
        seats
            .iter()
            .map(|n| SeatLayout {
                number: SeatNumber((*n).into()),
                service: SeatService::InService,
                spot: Default::default(),
            })
            .collect()
    }

    /// Two zones: "big" with 4 seats, 7 reservations (one already ended) and a hold;
    /// "empty" with nothing at all.
    fn projection() -> Projection {
        let mut p = Projection::default();
        let mut reservations: Vec<Reservation> = (0..6)
            .map(|i| {
                booking(
                    "big",
                    ["B1", "B2", "B3"][i % 3],
                    10 + i as u32,
                    11 + i as u32,
                    1,
                )
            })
            .collect();
        reservations.push(booking("big", "B4", 2, 3, 2));
        let hold = WaitlistEntry {
            id: Uuid::now_v7(),
            user_id: 3,
            zone: ZoneId("big".into()),
            interval: Interval::new(at(20), at(21)).unwrap(),
            status: WaitStatus::Offered,
            hold: Some(Hold {
                seat: SeatNumber("B4".into()),
                expires_at: at(9),
            }),
            reservation_id: None,
            created_at: at(1),
        };
        p.load(LoadedZone::new(
            ZoneId("big".into()),
            layout(&["B1", "B2", "B3", "B4"]),
            reservations,
            vec![hold],
        ));
        p.load(LoadedZone::new(
            ZoneId("empty".into()),
            Vec::new(),
            Vec::new(),
            Vec::new(),
        ));
        p
    }

    fn all_frames(mut parts: Parts) -> Vec<(String, bool)> {
        std::iter::from_fn(|| parts.next_part())
            .map(|(frame, last)| (String::from_utf8(frame.to_vec()).unwrap(), last))
            .collect()
    }

    fn data(frame: &str) -> Value {
        let line = frame
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn public_parts_are_bounded_and_together_the_whole_snapshot() {
        let zones = projection().snapshot(&Scope::Public { zone: None });
        let tz = chrono_tz::UTC;
        let parts = Parts::new(&Audience::Public(None), zones, 77, at(9), tz, 3);
        let frames = all_frames(parts);
        assert!(frames.len() > 3, "split: {frames:?}");
        let (mut seats, mut reservations, mut holds, mut ids) = (0, 0, 0, Vec::new());
        for (n, (frame, last)) in frames.iter().enumerate() {
            assert!(frame.starts_with("event: snapshot\n"), "{frame}");
            assert!(frame.ends_with("\n\n"));
            assert_eq!(*last, n + 1 == frames.len());
            assert_eq!(
                frame.contains("\nid: 77\n"),
                *last,
                "only the last has the id"
            );
            let part = data(frame);
            assert_eq!(part["part"], n);
            assert_eq!(part["last"], *last);
            assert_eq!(part["seq"], 77);
            let mut items = 0;
            for z in part["zones"].as_array().unwrap() {
                let count = |key: &str| z[key].as_array().unwrap().len();
                items += 1 + count("seats") + count("reservations") + count("holds");
                seats += count("seats");
                reservations += count("reservations");
                holds += count("holds");
                let id = z["id"].as_str().unwrap().to_string();
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
            assert!(items <= 3, "part {n} has {items} items: {frame}");
        }
        assert_eq!(ids, ["big", "empty"]);
        assert_eq!(seats, 4);
        assert_eq!(reservations, 6, "the one that ended at 03:00 is left out");
        assert_eq!(holds, 1);
        // A large budget: one part, the whole snapshot, as small spaces always had.
        let zones = projection().snapshot(&Scope::Public { zone: None });
        let whole = all_frames(Parts::new(
            &Audience::Public(None),
            zones,
            77,
            at(9),
            tz,
            1000,
        ));
        assert_eq!(whole.len(), 1);
        let part = data(&whole[0].0);
        assert_eq!(part["zones"][0]["seats"].as_array().unwrap().len(), 4);
        assert_eq!(part["zones"][0]["seats"][0]["state"], "available");
        assert_eq!(
            part["zones"][0]["reservations"].as_array().unwrap().len(),
            6
        );
        assert_eq!(part["zones"][1]["id"], "empty");
        assert!(!whole[0].0.contains("user_id"), "no owners in public");
    }

    #[test]
    fn seat_states_are_those_at_the_snapshots_time() {
        let zones = projection().snapshot(&Scope::Public {
            zone: Some(ZoneId("big".into())),
        });
        let frames = all_frames(Parts::new(
            &Audience::Public(None),
            zones,
            1,
            at(10),
            chrono_tz::UTC,
            1000,
        ));
        let part = data(&frames[0].0);
        let states: Vec<&str> = part["zones"][0]["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        // B1 is booked 10:00-11:00; the rest are free at 10:00.
        assert_eq!(states, ["reserved", "available", "available", "available"]);
    }

    #[test]
    fn a_members_snapshot_is_one_event_of_their_own() {
        let zones = projection().snapshot(&Scope::User(2));
        let frames = all_frames(Parts::new(
            &Audience::User(2),
            zones,
            5,
            at(9),
            chrono_tz::UTC,
            1,
        ));
        assert_eq!(frames.len(), 1, "not split, whatever the budget");
        assert!(frames[0].1);
        assert!(frames[0].0.contains("\nid: 5\n"));
        let snapshot = data(&frames[0].0);
        assert_eq!(snapshot["reservations"].as_array().unwrap().len(), 1);
        assert_eq!(snapshot["waitlist"].as_array().unwrap().len(), 0);
    }
}
