//! Secure endpoints of the waitlist: joining, reading and leaving it, and confirming a
//! hold on a freed seat.
//!
//! Like every edge handler they only authenticate, validate and route: the zone actor
//! decides. Another member's entry or hold is answered exactly like a missing one (404;
//! docs/architecture.md, invariant 5).

use axum::extract::State;
use axum::http::StatusCode;
use chrono_tz::Tz;
use pica_actors::{Created, WaitStatus, WaitlistEntry, WaitlistId, ZoneId};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::{Paged, r};
use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, OwnListing, Page};
use super::views::{ReservationView, local};
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Path, Query};
use crate::storage::WaitlistQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join, list))
        .routes(routes!(read, leave))
        .routes(routes!(confirm))
}

fn not_found(what: &str) -> ApiError {
    ApiError::NotFound(format!("{what} not found"))
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
    let listing = OwnListing::parse(
        &query,
        WaitStatus::parse,
        "waiting, offered, fulfilled, expired, cancelled",
    )?;
    let rows = state
        .db
        .waitlist_of(&WaitlistQuery {
            user_id: user.id,
            status: listing.status,
            before: listing.before,
            limit: listing.fetch_limit(),
        })
        .await?;
    let tz = state.settings.calendar.timezone;
    Ok(Json(listing.page(
        rows,
        |r| r.id,
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
