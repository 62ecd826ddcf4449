//! What the API returns: domain values rendered in the space's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pica_actors::{Interval, Reservation};
use serde::Serialize;
use utoipa::ToSchema;

use super::doc::Paged;
use crate::storage::{Role, UserRecord, UserSummary};

/// Half-open `[start, end)`, in the space's time zone
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Interval)]
pub struct IntervalView {
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
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

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Reservation, example = json!({"id": "019abc12-3456-7def-8901-23456789abcd", "seat_number": "Q3", "zone": "quiet", "reservation_date": "2026-11-25", "start": "2026-11-25T09:00:00+07:00", "end": "2026-11-25T11:30:00+07:00", "status": "confirmed", "created_at": "2026-11-24T10:00:00+07:00"}))]
pub struct ReservationView {
    #[schema(format = Uuid)]
    pub id: String,
    pub seat_number: String,
    pub zone: String,
    #[schema(format = Date)]
    pub reservation_date: String,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    #[schema(value_type = pica_actors::ReservationStatus)]
    pub status: &'static str,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The weekly series this reservation is an occurrence of
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid, nullable = false)]
    pub series_id: Option<String>,
}

impl Paged for ReservationView {}

pub type ReservationPage = super::paging::Page<ReservationView>;

/// A user account as its owner (or an admin) sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Account)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub role: Role,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl AccountView {
    pub fn new(u: &UserRecord, tz: Tz) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role,
            created_at: local(u.created_at, tz),
        }
    }

    pub fn summary(u: &UserSummary, tz: Tz) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            role: u.role,
            created_at: local(u.created_at, tz),
        }
    }
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
            series_id: r.series.map(|id| id.to_string()),
        }
    }
}
