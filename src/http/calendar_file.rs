//! Reservations for a member's calendar app, written by the `icalendar` crate: one
//! reservation as an `.ics` file, and a personal feed of the member's upcoming
//! reservations at a secret address a calendar app subscribes to. Times carry the
//! space's time zone (`TZID`); each entry's `UID` derives from the reservation's id, so
//! a re-import or the next poll of the feed updates the same entry.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use icalendar::{
    Calendar, CalendarDateTime, Component, Event, EventLike, EventStatus, Frequency, NWeekday,
    RRule,
};
use pica_actors::{Reservation, ReservationSeries, ReservationStatus, ZoneId};
use serde::Serialize;
use tracing::instrument;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::doc::r;
use crate::auth::{AuthUser, secrets};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reservation_calendar))
        .routes(routes!(create_feed))
        .routes(routes!(feed))
}

/// How many upcoming reservations a feed lists at most.
const FEED_LIMIT: i64 = 500;

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
    let r = super::reservations::own_reservation(&state, &user, &id).await?;
    let tz = state.settings.calendar.timezone;
    let file = format!(
        "pica-{}-{}.ics",
        r.seat.0,
        r.interval.start.with_timezone(&tz).date_naive()
    );
    calendar_response(&state, &[r], &file)
}

/// The display name of `zone` (its id if it is gone from the layout).
fn zone_name(state: &AppState, zone: &ZoneId) -> String {
    state
        .engine
        .zone_name(zone)
        .unwrap_or_else(|| zone.0.clone())
}

/// A calendar of `reservations` as a downloadable `file`.
fn calendar_response(
    state: &AppState,
    reservations: &[Reservation],
    file: &str,
) -> Result<Response, ApiError> {
    let tz = state.settings.calendar.timezone;
    let mut calendar = Calendar::new();
    calendar.name("Pica");
    for r in reservations {
        calendar.push(event(r, &zone_name(state, &r.zone), tz));
    }
    download(calendar, file)
}

/// The recurring calendar entry of a weekly series: the first occurrence's times, a
/// weekly rule over the series' days that yields exactly its occurrences, and an
/// `EXDATE` for each that was cancelled or missed.
pub fn series_event(
    series: &ReservationSeries,
    occurrences: &[Reservation],
    zone_name: &str,
    tz: Tz,
) -> Result<Event, ApiError> {
    let first = occurrences
        .first()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("series without occurrences")))?;
    let count = u32::try_from(occurrences.len()).unwrap_or(u32::MAX);
    let rule = RRule::default()
        .freq(Frequency::Weekly)
        .by_weekday(
            series
                .weekdays
                .iter()
                .map(|d| NWeekday::Every(*d))
                .collect(),
        )
        .count(count);
    let mut event = Event::new();
    event
        .uid(&format!("{}@pica", series.id))
        .summary(&format!("Seat {}, {zone_name} (weekly)", series.seat.0))
        .location(zone_name)
        .starts(local(first.interval.start, tz))
        .ends(local(first.interval.end, tz))
        .timestamp(series.created_at)
        .status(EventStatus::Confirmed);
    event
        .recurrence(rule)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("series recurrence: {e}")))?;
    for r in occurrences.iter().filter(|r| {
        matches!(
            r.status,
            ReservationStatus::Cancelled | ReservationStatus::NoShow
        )
    }) {
        event.exdate(local(r.interval.start, tz));
    }
    Ok(event.done())
}

/// A weekly series as one recurring entry, as a downloadable `file`.
pub fn series_response(
    state: &AppState,
    series: &ReservationSeries,
    occurrences: &[Reservation],
    file: &str,
) -> Result<Response, ApiError> {
    let tz = state.settings.calendar.timezone;
    let mut calendar = Calendar::new();
    calendar.name("Pica");
    calendar.push(series_event(
        series,
        occurrences,
        &zone_name(state, &series.zone),
        tz,
    )?);
    download(calendar, file)
}

fn download(calendar: Calendar, file: &str) -> Result<Response, ApiError> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let headers = [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/calendar; charset=utf-8"),
        ),
        (CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
        (CONTENT_DISPOSITION, disposition),
    ];
    Ok((headers, calendar.to_string()).into_response())
}

/// The feed's address, shown once
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"url": "http://127.0.0.1:8000/api/public/calendar/pica_cal_..."}))]
struct Feed {
    url: String,
}

#[utoipa::path(
    post, path = "/api/secure/calendar-feed",
    tag = "Reservations", operation_id = "createCalendarFeed",
    summary = "A new secret address of your calendar feed; the previous one stops working",
    description = "Subscribe to the address in a calendar app: it lists your upcoming reservations. Anyone with the address can read it, so it is shown only here; call again to replace it.",
    responses(
        (status = 201, description = "The feed's new address", body = Feed),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn create_feed(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<Feed>), ApiError> {
    let base = super::seat_codes::origin(&state, &headers)?;
    let token = secrets::generate(secrets::FEED_PREFIX);
    state
        .db
        .set_calendar_feed(user.id, &secrets::digest(&token))
        .await?;
    let url = format!("{base}/api/public/calendar/{token}");
    Ok((StatusCode::CREATED, Json(Feed { url })))
}

#[utoipa::path(
    get, path = "/api/public/calendar/{token}",
    tag = "Reservations", operation_id = "calendarFeed",
    summary = "A member's calendar feed (its secret address is its credential)",
    params(("token" = String, Path, description = "The feed's secret token")),
    responses(
        (status = 200, description = "The member's upcoming reservations", content_type = "text/calendar", body = String),
        (status = 400, response = r::BadRequest),
        (status = 404, description = "No feed at this address (never made, or replaced)", body = ErrorBody, example = json!({"detail": "No calendar feed at this address"})),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn feed(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let missing = || ApiError::NotFound("No calendar feed at this address".into());
    if !secrets::plausible(&token, secrets::FEED_PREFIX) {
        return Err(missing());
    }
    let owner = state
        .db
        .calendar_feed_owner(&secrets::digest(&token))
        .await?;
    let user = owner.ok_or_else(missing)?;
    let now = state.engine.clock().now();
    let upcoming = state
        .db
        .upcoming_reservations_of(user, now, FEED_LIMIT)
        .await?;
    calendar_response(&state, &upcoming, "pica.ics")
}
