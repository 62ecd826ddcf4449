//! Weekly series: "this seat, 09:00–12:00, every Monday and Wednesday for 4 weeks".
//!
//! The edge turns the pattern into its occurrences (intervals in the space's time zone,
//! each inside one opening day and the booking horizon). The seat's zone decides all of
//! them in one turn and commits them, with the pattern, as one intent: a series is
//! booked whole or not at all (docs/architecture.md, invariant 15). Afterwards each
//! occurrence is an ordinary reservation that carries its series' id, so it is
//! cancelled, checked in and swept on its own.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Interval, SeatNumber, UserId, ZoneId};
use crate::storage::IdempotencyTag;

pub type SeriesId = Uuid;

/// The pattern a series was booked from, stored beside its occurrences (the calendar
/// file's recurrence rule is written from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationSeries {
    pub id: SeriesId,
    pub user_id: UserId,
    pub seat: SeatNumber,
    /// The seat's zone; set by the zone actor that decides the series.
    pub zone: ZoneId,
    /// Local days of the week, Monday first, each once.
    pub weekdays: Vec<Weekday>,
    /// Local start and end of every occurrence.
    pub starts: NaiveTime,
    pub ends: NaiveTime,
    /// The first local day the pattern covers, and for how many weeks from it.
    pub first_date: NaiveDate,
    pub weeks: u32,
    pub created_at: DateTime<Utc>,
}

/// A series to book, already validated and expanded by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRequest {
    pub series: ReservationSeries,
    /// Every occurrence, in time order, pairwise disjoint (one per day).
    pub occurrences: Vec<Interval>,
    /// Recorded with the series' first occurrence, so a retry finds it.
    pub idempotency_key: Option<IdempotencyTag>,
}

/// The iCalendar `BYDAY` code of a weekday (`MO`, `TU`, ...).
pub fn ical_day(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "MO",
        Weekday::Tue => "TU",
        Weekday::Wed => "WE",
        Weekday::Thu => "TH",
        Weekday::Fri => "FR",
        Weekday::Sat => "SA",
        Weekday::Sun => "SU",
    }
}
