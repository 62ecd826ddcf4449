//! What the workers of one point ask for, decided without any I/O: the scenario's mix
//! of requests, which seat, day and slots a reservation wants, which user a worker is,
//! and how far apart its requests are due under `--rate`. Everything is drawn from a
//! seeded generator, so a seed and the answers a worker got fix its requests.
//! `load.rs` sends them.

use std::ops::Add;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Every client wants the same few seats on the same day; winners cancel at once,
    /// so the seats are fought over for the whole run.
    Hot,
    /// Random seats, days and slots across all zones; winners cancel at once.
    Spread,
    /// Availability reads, listing, reserving and cancelling in realistic proportions.
    Mixed,
    /// The ceiling: the same requests against an echo server that does no work.
    Echo,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hot" => Ok(Scenario::Hot),
            "spread" => Ok(Scenario::Spread),
            "mixed" => Ok(Scenario::Mixed),
            "echo" => Ok(Scenario::Echo),
            other => Err(format!("unknown scenario {other:?} (hot, spread, mixed)")),
        }
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Hot => "hot",
            Scenario::Spread => "spread",
            Scenario::Mixed => "mixed",
            Scenario::Echo => "echo",
        }
    }
}

/// How a reservation is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The seed's form `{seat_number, reservation_date}`: the whole opening day.
    Day,
    /// `{seat_number, start, end}` on 30-minute slot boundaries.
    Slot,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(Shape::Day),
            "slot" => Ok(Shape::Slot),
            other => Err(format!("unknown shape {other:?} (day, slot)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve,
    Cancel,
    List,
    Availability,
    Echo,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Reserve => "reserve",
            Op::Cancel => "cancel",
            Op::List => "list",
            Op::Availability => "availability",
            Op::Echo => "echo",
        }
    }
}

/// When a point stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

/// The space's bookable calendar as the generator needs it (the server's defaults:
/// Asia/Jakarta, 08:00-22:00, 30-minute slots, 30 days ahead).
#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: Tz,
    pub opens: u32,
    pub closes: u32,
    pub horizon_days: u64,
}

impl Calendar {
    /// The local date `n` days after today. Days from 1 on are used, so a run late in
    /// the evening never asks for a closed day.
    pub fn day(&self, n: u64) -> NaiveDate {
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        today.checked_add_days(Days::new(n)).unwrap_or(today)
    }

    fn slots_per_day(&self) -> u32 {
        (self.closes - self.opens) * 2
    }

    fn at(&self, day: NaiveDate, slot: u32) -> String {
        let minutes = self.opens * 60 + slot * 30;
        let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or_default();
        match self.tz.from_local_datetime(&day.and_time(time)).single() {
            Some(t) => t.to_rfc3339(),
            None => format!("{day}T{time}Z"),
        }
    }

    /// The JSON body of `booking`, its day counted from today.
    pub fn body(&self, booking: &Booking) -> String {
        self.body_on(booking, self.day(booking.day))
    }

    fn body_on(&self, booking: &Booking, day: NaiveDate) -> String {
        let seat = &booking.seat;
        match booking.slots {
            None => format!(r#"{{"seat_number":"{seat}","reservation_date":"{day}"}}"#),
            Some((first, len)) => {
                let last = (first + len).min(self.slots_per_day());
                format!(
                    r#"{{"seat_number":"{seat}","start":"{}","end":"{}"}}"#,
                    self.at(day, first),
                    self.at(day, last)
                )
            }
        }
    }
}

pub struct Space {
    /// (zone, seat numbers) as the server lists them.
    pub zones: Vec<(String, Vec<String>)>,
}

impl Space {
    pub fn seats(&self) -> Vec<String> {
        self.zones
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }
}

/// What every worker of one point of the matrix asks for.
pub struct Plan {
    pub scenario: Scenario,
    pub shape: Shape,
    pub connections: usize,
    pub stop: Stop,
    pub warmup: Duration,
    /// Seats the `hot` scenario fights over.
    pub hot_seats: Vec<String>,
    /// Whether `hot`/`spread` winners cancel at once (keeps the seats contended and
    /// the durable write path busy for the whole run).
    pub cancel_winners: bool,
    pub calendar: Calendar,
    pub space: Arc<Space>,
    /// The point's seed (see [`point_seed`]); each worker draws from its own.
    pub seed: u64,
    /// Requests per second offered by all workers together (each paces itself to its
    /// share); `None`: every worker sends its next request as soon as it has an answer.
    pub rate: Option<f64>,
}

/// Reservations a `mixed` worker holds at most: the server's default limit per user,
/// so the run needs no raised limit.
pub const MIXED_HOLD_LIMIT: usize = 3;

/// The seed of one point, so the points of a matrix do not repeat each other's draws.
pub fn point_seed(seed: u64, connections: usize, scenario: Scenario) -> u64 {
    seed ^ (connections as u64) << 32 ^ scenario as u64
}

/// The user worker `worker` logs in as: users are shared round-robin when there are
/// fewer than workers (`None` when there are none, for the echo ceiling).
pub fn user_for(worker: usize, users: usize) -> Option<usize> {
    (users > 0).then(|| worker % users)
}

/// With `--rate`: how far apart one worker's requests are due, so that `connections`
/// workers together offer `rate` requests per second.
pub fn pacing_interval(connections: usize, rate: Option<f64>) -> Option<Duration> {
    rate.map(|rate| Duration::from_secs_f64(connections as f64 / rate))
}

/// When the request after one due at `due` is due, `now` being when that one's answer
/// came. A worker whose answer came late sends at once but does not catch up with a
/// burst, so a server that only slows down (instead of refusing) is offered less.
pub fn next_due<T: Add<Duration, Output = T> + Ord>(due: T, interval: Duration, now: T) -> T {
    (due + interval).max(now)
}

/// What one reservation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub seat: String,
    /// Days after today (from 1).
    pub day: u64,
    /// `(first slot, number of slots)` for [`Shape::Slot`]; `None`: the whole day.
    pub slots: Option<(u32, u32)>,
}

/// A worker's next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Reserve(Booking),
    /// Cancel the reservation at this index of those the worker holds (oldest first).
    Cancel(usize),
    /// Read the availability of zone `zone` (an index into the space) `day` days ahead.
    Availability {
        zone: usize,
        day: u64,
    },
    /// List the user's own reservations.
    List,
    /// The reserve request's body, to the echo server.
    Echo(Booking),
}

/// One worker's draws: the same plan, worker index and answers give the same steps.
pub struct WorkerPlan {
    plan: Arc<Plan>,
    rng: StdRng,
}

impl WorkerPlan {
    pub fn new(plan: Arc<Plan>, worker: usize) -> WorkerPlan {
        let seed = plan.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        WorkerPlan {
            plan,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// With `--rate`, when the worker's first request is due after the start: a random
    /// point of the first interval, so the workers do not fire together.
    pub fn first_offset(&mut self, interval: Duration) -> Duration {
        interval.mul_f64(self.rng.gen_range(0.0..1.0))
    }

    /// The next request of a worker that holds `held` reservations.
    pub fn next(&mut self, held: usize) -> Step {
        match self.plan.scenario {
            Scenario::Hot | Scenario::Spread => {
                if self.plan.cancel_winners && held > 0 {
                    Step::Cancel(held - 1)
                } else {
                    Step::Reserve(self.booking())
                }
            }
            Scenario::Mixed => self.mixed(held),
            Scenario::Echo => Step::Echo(self.booking()),
        }
    }

    /// 40% availability reads, 20% listing, 25% reserve, 15% cancel of a random held
    /// reservation; a reserve at the hold limit cancels instead, and a cancel with
    /// nothing held reserves instead.
    fn mixed(&mut self, held: usize) -> Step {
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..40 => {
                let zone = self.rng.gen_range(0..self.plan.space.zones.len());
                let day = self.rng.gen_range(1..=self.plan.calendar.horizon_days);
                Step::Availability { zone, day }
            }
            40..60 => Step::List,
            _ => {
                let wants_cancel = roll >= 85;
                if (wants_cancel && held > 0) || held >= MIXED_HOLD_LIMIT {
                    Step::Cancel(self.rng.gen_range(0..held))
                } else {
                    Step::Reserve(self.booking())
                }
            }
        }
    }

    fn booking(&mut self) -> Booking {
        let plan = &self.plan;
        match plan.scenario {
            Scenario::Hot => Booking {
                seat: plan.hot_seats[self.rng.gen_range(0..plan.hot_seats.len())].clone(),
                day: 1,
                // Everyone wants 10:00-12:00.
                slots: (plan.shape == Shape::Slot).then_some((4, 4)),
            },
            _ => {
                let zones = &plan.space.zones;
                let (_, zone_seats) = &zones[self.rng.gen_range(0..zones.len())];
                let seat = zone_seats[self.rng.gen_range(0..zone_seats.len())].clone();
                let day = self.rng.gen_range(1..=plan.calendar.horizon_days);
                let slots = match plan.shape {
                    Shape::Day => None,
                    Shape::Slot => {
                        let len = self.rng.gen_range(1..=4);
                        let first = self.rng.gen_range(0..=plan.calendar.slots_per_day() - len);
                        Some((first, len))
                    }
                };
                Booking { seat, day, slots }
            }
        }
    }
}

#[cfg(test)]
mod tests;
