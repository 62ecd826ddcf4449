//! What the API returns: domain values rendered in the space's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pica_actors::{Interval, Reservation};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct IntervalView {
    pub start: String,
    pub end: String,
}

pub fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339()
}

impl IntervalView {
    pub fn new(interval: &Interval, tz: Tz) -> Self {
        Self {
            start: local(interval.start, tz),
            end: local(interval.end, tz),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReservationView {
    pub id: String,
    pub seat_number: String,
    pub zone: String,
    pub reservation_date: String,
    pub start: String,
    pub end: String,
    pub status: &'static str,
    pub created_at: String,
}

impl ReservationView {
    pub fn new(r: &Reservation, tz: Tz) -> Self {
        Self {
            id: r.id.to_string(),
            seat_number: r.seat.0.clone(),
            zone: r.zone.0.clone(),
            reservation_date: r.interval.start.with_timezone(&tz).date_naive().to_string(),
            start: local(r.interval.start, tz),
            end: local(r.interval.end, tz),
            status: r.status.as_str(),
            created_at: local(r.created_at, tz),
        }
    }
}
