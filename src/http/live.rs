//! Secure endpoints of the reservation lifecycle and the waitlist: check-in, check-out,
//! joining, reading and leaving the waitlist, and confirming a hold.
//!
//! Like every edge handler they only authenticate, validate and route: the zone actor
//! decides. Another member's reservation, entry or hold is answered exactly like a
//! missing one (404; docs/architecture.md, invariant 5).

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use pica_actors::{
    Created, Reservation, ReservationStatus, WaitStatus, WaitlistEntry, WaitlistId, ZoneId,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::Paged;
use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, Page, page_limit, status_filter, uuid_cursor};
use super::views::{ReservationView, local};
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::config::Calendar;
use crate::error::ApiError;
use crate::error::ErrorBody;
use crate::extract::{Json, Path, Query};
use crate::storage::WaitlistQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(check_out))
        .routes(routes!(join, list))
        .routes(routes!(read, leave))
        .routes(routes!(confirm))
}

fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(format!("{what} not found"))
}

/// The caller's stored reservation `raw`; anyone else's is "not found".
async fn own_reservation(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
) -> Result<Reservation, ApiError> {
    let id = Uuid::parse_str(raw).map_err(|_| not_found("Reservation"))?;
    match state.db.reservation(id).await? {
        Some(r) if r.user_id == user.id => Ok(r),
        _ => Err(not_found("Reservation")),
    }
}

/// The caller's stored waitlist entry `raw`; anyone else's is "not found".
async fn own_entry(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
    what: &str,
) -> Result<WaitlistEntry, ApiError> {
    let id: WaitlistId = Uuid::parse_str(raw).map_err(|_| not_found(what))?;
    match state.db.waitlist_entry(id).await? {
        Some(e) if e.user_id == user.id => Ok(e),
        _ => Err(not_found(what)),
    }
}

#[utoipa::path(
    post, path = "/api/secure/reservations/{id}/check-in",
    tag = "Reservations", operation_id = "checkIn",
    summary = "Check in to a confirmed reservation",
    description = "Status becomes `checked_in` (the seat shows `occupied`). A confirmed reservation not checked in within 15 minutes of its start becomes `no_show`.",
    params(("id" = String, Path, description = "Reservation id (UUID)")),
    responses(
        (status = 200, description = "Checked in", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Reservation not found"})),
        (status = 409, description = "Not confirmed, or outside the check-in window", body = ErrorBody, example = json!({"detail": "Check-in is not open yet: it opens 15 minutes before the start"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn check_in(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let stored = own_reservation(&state, &user, &id).await?;
    let tz = state.settings.calendar.timezone;
    if stored.status != ReservationStatus::Confirmed {
        return Err(ApiError::Conflict {
            detail: format!(
                "Reservation is {}: only a confirmed reservation can be checked in",
                stored.status
            ),
            conflict: None,
        });
    }
    let checked_in = state
        .engine
        .change_status(
            &stored.zone,
            stored.id,
            user.id,
            ReservationStatus::CheckedIn,
        )
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(reservation = %stored.id, "checked in");
    Ok(Json(ReservationView::new(&checked_in, tz)))
}

/// The end of the slot `now` falls in (`now` itself on a boundary), in the space's
/// local time.
pub fn slot_ceiling(calendar: &Calendar, now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&calendar.timezone);
    let slot = i64::from(calendar.slot_minutes) * 60;
    let into_day = i64::from(local.num_seconds_from_midnight());
    let into_slot = into_day % slot;
    let floor =
        now - Duration::seconds(into_slot) - Duration::nanoseconds(i64::from(now.nanosecond()));
    if floor == now {
        now
    } else {
        floor + Duration::seconds(slot)
    }
}

/// Check-out ends the reservation now: it becomes `completed` and its end is cut to
/// the end of the slot in progress (at least one slot after its start), so the rest of
/// the booked time is free for others — and waiters — at once.
#[utoipa::path(
    post, path = "/api/secure/reservations/{id}/check-out",
    tag = "Reservations", operation_id = "checkOut",
    summary = "Check out: end a checked-in reservation now",
    description = "Status becomes `completed`; the end is cut to the end of the slot in progress (at least one slot after the start), freeing the rest.",
    params(("id" = String, Path, description = "Reservation id (UUID)")),
    responses(
        (status = 200, description = "Checked out", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Reservation not found"})),
        (status = 409, description = "Not checked in", body = ErrorBody, example = json!({"detail": "Reservation is confirmed: only a checked-in reservation can be checked out"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn check_out(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let stored = own_reservation(&state, &user, &id).await?;
    let calendar = &state.settings.calendar;
    let tz = calendar.timezone;
    if stored.status != ReservationStatus::CheckedIn {
        return Err(ApiError::Conflict {
            detail: format!(
                "Reservation is {}: only a checked-in reservation can be checked out",
                stored.status
            ),
            conflict: None,
        });
    }
    let now = state.engine.clock().now();
    let first_slot = stored.interval.start + Duration::minutes(i64::from(calendar.slot_minutes));
    let end_at = slot_ceiling(calendar, now).max(first_slot);
    let done = state
        .engine
        .check_out(&stored.zone, stored.id, user.id, end_at)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(reservation = %stored.id, "checked out");
    Ok(Json(ReservationView::new(&done, tz)))
}

/// The scope of idempotency keys on `POST /api/secure/waitlist`.
const WAITLIST_SCOPE: &str = "waitlist";

#[derive(Deserialize, ToSchema)]
#[schema(as = JoinWaitlistRequest)]
struct JoinWaitlist {
    zone: String,
    #[schema(format = DateTime)]
    start: String,
    #[schema(format = DateTime)]
    end: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub seat_number: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WaitlistEntry)]
pub struct WaitlistView {
    #[schema(format = Uuid)]
    pub id: String,
    pub zone: String,
    #[schema(format = DateTime)]
    pub start: String,
    #[schema(format = DateTime)]
    pub end: String,
    #[schema(value_type = WaitStatus)]
    pub status: &'static str,
    /// The seat held for this entry (while `offered`; kept afterwards as history)
    #[schema(inline, required = true)]
    pub hold: Option<HoldView>,
    /// The reservation a confirmed hold became
    #[schema(required = true)]
    pub reservation_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl Paged for WaitlistView {
    fn page_name() -> std::borrow::Cow<'static, str> {
        "WaitlistPage".into()
    }
}

pub type WaitlistPage = Page<WaitlistView>;

impl WaitlistView {
    pub fn new(e: &WaitlistEntry, tz: Tz) -> Self {
        Self {
            id: e.id.to_string(),
            zone: e.zone.0.clone(),
            start: local(e.interval.start, tz),
            end: local(e.interval.end, tz),
            status: e.status.as_str(),
            hold: e.hold.as_ref().map(|h| HoldView {
                seat_number: h.seat.0.clone(),
                expires_at: local(h.expires_at, tz),
            }),
            reservation_id: e.reservation_id.map(|id| id.to_string()),
            created_at: local(e.created_at, tz),
        }
    }
}

/// Joins a zone's waitlist for `[start, end)` (same rules as a reservation's times).
/// Refused with 409 while a seat is free for that time: book it instead.
#[utoipa::path(
    post, path = "/api/secure/waitlist",
    tag = "Waitlist", operation_id = "joinWaitlist",
    summary = "Join a zone's waitlist for an interval",
    description = "Same time rules as a reservation. When a seat frees up for that time it is held for you (status `offered`, with `hold`); confirm the hold to book it. Refused with 409 while a seat is free: book it instead.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint; a retry with the same key and body gets the first result back (for API keys: 409 naming the first key, without its secret); the same key with another body gets 422", example = "7f1c2d")),
    request_body(content = JoinWaitlist, example = json!({"zone": "quiet", "start": "2026-11-25T09:00:00+07:00", "end": "2026-11-25T11:00:00+07:00"})),
    responses(
        (status = 201, description = "Joined", body = WaitlistView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown zone", body = ErrorBody, example = json!({"detail": "Zone 'x' does not exist"})),
        (status = 409, description = "A seat is free, or you already wait/hold for that time", body = ErrorBody, example = json!({"detail": "Seat 'Q1' is free for that time: reserve it instead"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    Keyed { body, key }: Keyed<JoinWaitlist>,
) -> Result<(StatusCode, Json<WaitlistView>), ApiError> {
    let calendar = &state.settings.calendar;
    let tz = calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, WAITLIST_SCOPE));
    let replay = async |created| match created {
        Created::WaitlistEntry(id) => {
            let first = state.db.waitlist_entry(id).await?.ok_or_else(lost)?;
            Ok((StatusCode::CREATED, Json(WaitlistView::new(&first, tz))))
        }
        _ => Err(lost()),
    };
    let join = async |tag| {
        let zone = ZoneId(body.zone.trim().to_string());
        if !state.engine.has_zone(&zone) {
            return Err(ApiError::NotFound(format!(
                "Zone '{}' does not exist",
                zone.0
            )));
        }
        let interval = calendar.explicit(&body.start, &body.end, state.engine.clock().now())?;
        let entry = state
            .engine
            .join_waitlist(&zone, user.id, interval, tag)
            .await
            .map_err(|e| ApiError::engine(e, tz))?;
        info!(entry = %entry.id, zone = %zone, "joined the waitlist");
        Ok((StatusCode::CREATED, Json(WaitlistView::new(&entry, tz))))
    };
    once(&state, tag, replay, join).await
}

/// The caller's waitlist entries (with their holds), newest first.
#[utoipa::path(
    get, path = "/api/secure/waitlist",
    tag = "Waitlist", operation_id = "myWaitlist",
    summary = "Your waitlist entries (with their holds), newest first",
    params(("status" = Option<WaitStatus>, Query, description = "Only this status"), ListQuery),
    responses(
        (status = 200, description = "A page of entries", body = WaitlistPage),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<WaitlistView>>, ApiError> {
    let status = status_filter(
        query.status.as_deref(),
        WaitStatus::parse,
        "waiting, offered, fulfilled, expired, cancelled",
    )?;
    let limit = page_limit(query.limit)?;
    let before = uuid_cursor(query.cursor.as_deref())?;
    let rows = state
        .db
        .waitlist_of(&WaitlistQuery {
            user_id: user.id,
            status,
            before,
            limit: limit + 1,
        })
        .await?;
    let tz = state.settings.calendar.timezone;
    Ok(Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.to_string(),
        |r| WaitlistView::new(r, tz),
    )))
}

#[utoipa::path(
    get, path = "/api/secure/waitlist/{id}",
    tag = "Waitlist", operation_id = "getWaitlistEntry",
    summary = "One of your waitlist entries",
    params(("id" = String, Path, description = "Waitlist entry id (UUID)")),
    responses(
        (status = 200, description = "The entry", body = WaitlistView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Waitlist entry not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<WaitlistView>, ApiError> {
    let entry = own_entry(&state, &user, &id, "Waitlist entry").await?;
    Ok(Json(WaitlistView::new(
        &entry,
        state.settings.calendar.timezone,
    )))
}

/// Leaves the waitlist (status `cancelled`); an offered hold is released and passes
/// to the next waiter.
#[utoipa::path(
    delete, path = "/api/secure/waitlist/{id}",
    tag = "Waitlist", operation_id = "leaveWaitlist",
    summary = "Leave the waitlist",
    description = "Status becomes `cancelled`; a hold offered to you passes to the next waiter.",
    params(("id" = String, Path, description = "Waitlist entry id (UUID)")),
    responses(
        (status = 200, description = "Left", body = WaitlistView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Waitlist entry not found"})),
        (status = 409, description = "Already closed", body = ErrorBody, example = json!({"detail": "Waitlist entry is already fulfilled"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn leave(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<WaitlistView>, ApiError> {
    let stored = own_entry(&state, &user, &id, "Waitlist entry").await?;
    let tz = state.settings.calendar.timezone;
    if !stored.status.is_open() {
        return Err(ApiError::Conflict {
            detail: format!("Waitlist entry is already {}", stored.status),
            conflict: None,
        });
    }
    let left = state
        .engine
        .leave_waitlist(&stored.zone, stored.id, user.id)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(entry = %stored.id, "left the waitlist");
    Ok(Json(WaitlistView::new(&left, tz)))
}

/// Confirms a hold (its id is its waitlist entry's): the held seat and time become a
/// confirmed reservation (201).
#[utoipa::path(
    post, path = "/api/secure/holds/{id}/confirm",
    tag = "Waitlist", operation_id = "confirmHold",
    summary = "Confirm a hold: the held seat becomes your reservation",
    description = "The hold's id is its waitlist entry's id. Only while the entry is `offered` and the hold has not expired.",
    params(("id" = String, Path, description = "Waitlist entry id (UUID)")),
    responses(
        (status = 201, description = "Reserved", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Hold not found"})),
        (status = 409, description = "No hold (any more)", body = ErrorBody, example = json!({"detail": "The hold has expired"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
    let stored = own_entry(&state, &user, &id, "Hold").await?;
    let tz = state.settings.calendar.timezone;
    if stored.status != WaitStatus::Offered {
        return Err(ApiError::Conflict {
            detail: format!(
                "This waitlist entry holds no seat (it is {})",
                stored.status
            ),
            conflict: None,
        });
    }
    let reservation = state
        .engine
        .confirm_hold(&stored.zone, stored.id, user.id)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(entry = %stored.id, reservation = %reservation.id, "hold confirmed");
    Ok((
        StatusCode::CREATED,
        Json(ReservationView::new(&reservation, tz)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};

    fn calendar(tz: Tz, slot: u32) -> Calendar {
        Calendar {
            timezone: tz,
            opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            closes: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            slot_minutes: slot,
            horizon_days: 30,
        }
    }

    #[test]
    fn check_out_rounds_up_to_the_local_slot() {
        let c = calendar(chrono_tz::Asia::Jakarta, 30);
        let at = |h, m, s| Utc.with_ymd_and_hms(2030, 3, 10, h, m, s).unwrap();
        assert_eq!(slot_ceiling(&c, at(3, 40, 0)), at(4, 0, 0));
        assert_eq!(slot_ceiling(&c, at(3, 30, 0)), at(3, 30, 0));
        assert_eq!(slot_ceiling(&c, at(3, 30, 1)), at(4, 0, 0));
        // Nepal is UTC+05:45: its local half hours are not UTC half hours.
        let nepal = calendar(chrono_tz::Asia::Kathmandu, 30);
        assert_eq!(slot_ceiling(&nepal, at(3, 40, 0)), at(3, 45, 0));
    }
}
