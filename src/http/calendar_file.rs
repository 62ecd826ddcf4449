//! A reservation as an iCalendar file (`.ics`), for a member's calendar app: written by
//! the `icalendar` crate, times in the space's time zone (`TZID`), and a `UID` derived
//! from the reservation's id, so importing the file again updates the same entry.

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use icalendar::{Calendar, CalendarDateTime, Component, Event, EventLike, EventStatus};
use pica_actors::{Reservation, ReservationStatus};
use tracing::instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::r;
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Path;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(reservation_calendar))
}

fn local(t: DateTime<Utc>, tz: Tz) -> CalendarDateTime {
    CalendarDateTime::WithTimezone {
        date_time: t.with_timezone(&tz).naive_local(),
        tzid: tz.name().to_owned(),
    }
}

/// The calendar entry of one reservation.
pub fn event(r: &Reservation, zone_name: &str, tz: Tz) -> Event {
    let status = match r.status {
        ReservationStatus::Cancelled | ReservationStatus::NoShow => EventStatus::Cancelled,
        _ => EventStatus::Confirmed,
    };
    Event::new()
        .uid(&format!("{}@pica", r.id))
        .summary(&format!("Seat {}, {zone_name}", r.seat.0))
        .location(zone_name)
        .starts(local(r.interval.start, tz))
        .ends(local(r.interval.end, tz))
        .timestamp(r.created_at)
        .status(status)
        .done()
}

#[utoipa::path(
    get, path = "/api/secure/reservations/{id}/calendar",
    tag = "Reservations", operation_id = "reservationCalendar",
    summary = "One of your reservations as an iCalendar (.ics) file",
    description = "Times carry the space's time zone (`TZID`); the `UID` stays the same for the reservation, so importing it again updates the entry.",
    params(("id" = String, Path, description = "Reservation id (UUID)")),
    responses(
        (status = 200, description = "The calendar file", content_type = "text/calendar", body = String),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Reservation not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn reservation_calendar(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("Reservation not found".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    // Someone else's reservation is reported exactly like a missing one.
    let r = match state.db.reservation(id).await? {
        Some(r) if r.user_id == user.id => r,
        _ => return Err(not_found()),
    };
    let layout = state.engine.layout();
    let zone = layout.iter().find(|z| z.id == r.zone);
    let zone_name = zone.map_or(r.zone.0.as_str(), |z| z.name.as_str());
    let tz = state.settings.calendar.timezone;
    let calendar = Calendar::new()
        .name("Pica")
        .push(event(&r, zone_name, tz))
        .done();
    let file = format!(
        "attachment; filename=\"pica-{}-{}.ics\"",
        r.seat.0,
        r.interval.start.with_timezone(&tz).date_naive()
    );
    let headers = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/calendar; charset=utf-8"),
        ),
        (CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
        (
            CONTENT_DISPOSITION,
            HeaderValue::from_str(&file).map_err(|e| ApiError::Internal(e.into()))?,
        ),
    ];
    Ok((headers, calendar.to_string()).into_response())
}
