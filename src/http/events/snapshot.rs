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
use crate::http::live::WaitlistView;
use crate::http::views::{ReservationView, local};

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
            per_part: per_part.max(1),
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
        while budget > 0 && self.zone < self.zones.len() {
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
