//! Admin endpoints (`/api/admin`, role `admin`): users, zones, seats (their service and
//! their spot on the floor plan).

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use pica_actors::floor_plan::MAX_COORDINATE;
use pica_actors::{SeatLayout, SeatNumber, SeatService, Spot, ZoneId, ZoneLayout, default_spot};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, instrument};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::books::BookJson;
use super::views::{AccountView, ReservationView};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::AdminUser;
use crate::http::extract::de;
use crate::http::extract::{Json, Path, Query};
use crate::storage::DbError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(create_zone))
        .routes(routes!(update_zone))
        .routes(routes!(zone_stats))
        .routes(routes!(add_seat))
        .routes(routes!(set_seat_status))
        .routes(routes!(move_seat))
        .routes(routes!(set_book_stock))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Page size, 1-100 (default 50)
    #[serde(default, deserialize_with = "de::query_int")]
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[serde(default, deserialize_with = "de::query_int")]
    cursor: Option<i64>,
    /// Only users whose username or email contains this (ignoring case), 1-64 characters
    #[param(max_length = 64)]
    q: Option<String>,
}

/// Users, by id; `next_cursor` is the last id shown.
#[derive(Serialize, ToSchema)]
struct UserPage {
    items: Vec<AccountView>,
    #[schema(required = true)]
    next_cursor: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/admin/users",
    tag = "Admin", operation_id = "listUsers",
    summary = "Users, optionally searched by username or email",
    params(Page),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = super::paging::page_limit(page.limit)?;
    let search = page.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > 64) {
        return Err(ApiError::Unprocessable(
            "q must be at most 64 characters".into(),
        ));
    }
    let mut rows = state.db.list_users(page.cursor, limit + 1, search).await?;
    let next = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|u| u.id)
    });
    let tz = state.settings.calendar.timezone;
    Ok(Json(UserPage {
        items: rows.iter().map(|u| AccountView::summary(u, tz)).collect(),
        next_cursor: next.flatten(),
    }))
}

/// A zone slug: 2-32 lowercase letters, digits or `-`.
fn zone_id(raw: &str) -> Result<ZoneId, ApiError> {
    let ok = (2..=32).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| ZoneId(raw.to_string())).ok_or_else(|| {
        ApiError::Unprocessable("zone id must be 2-32 lowercase letters, digits or '-'".into())
    })
}

fn label(field: &str, raw: &str) -> Result<String, ApiError> {
    let value = raw.trim();
    if value.is_empty() || value.chars().count() > 64 || value.chars().any(char::is_control) {
        return Err(ApiError::Unprocessable(format!(
            "{field} must be 1-64 printable characters"
        )));
    }
    Ok(value.to_string())
}

#[derive(Deserialize, ToSchema)]
struct NewZone {
    #[schema(pattern = "^[a-z0-9-]{2,32}$")]
    id: String,
    #[schema(max_length = 64)]
    name: String,
    #[schema(max_length = 64)]
    kind: String,
}

/// A zone as created or edited (a new zone has no seats yet).
#[derive(Serialize, ToSchema)]
struct ZoneSummary {
    id: String,
    name: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    seats: Option<Vec<Value>>,
}

#[utoipa::path(
    post, path = "/api/admin/zones",
    tag = "Admin", operation_id = "createZone",
    summary = "Create a zone (its actor starts at once)",
    request_body(content = NewZone, example = json!({"id": "terrace", "name": "Terrace", "kind": "outdoor"})),
    responses(
        (status = 201, description = "Created", body = ZoneSummary),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 409, description = "Zone exists", body = ErrorBody, example = json!({"detail": "Zone 'terrace' already exists"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id))]
async fn create_zone(
    State(state): State<AppState>,
    admin: AdminUser,
    Json(body): Json<NewZone>,
) -> Result<(StatusCode, Json<ZoneSummary>), ApiError> {
    let id = zone_id(&body.id)?;
    let (name, kind) = (label("name", &body.name)?, label("kind", &body.kind)?);
    match state.db.create_zone(&id, &name, &kind).await {
        Err(DbError::Conflict) => {
            return Err(ApiError::Conflict {
                detail: format!("Zone '{}' already exists", id.0),
                conflict: None,
            });
        }
        other => other?,
    }
    let zone = ZoneLayout {
        id: id.clone(),
        name: name.clone(),
        kind: kind.clone(),
        seats: Vec::new(),
    };
    state.engine.add_zone(zone).await?;
    info!(zone = %id, "zone created");
    Ok((
        StatusCode::CREATED,
        Json(ZoneSummary {
            id: id.0,
            name,
            kind,
            seats: Some(Vec::new()),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
struct ZoneEdit {
    #[serde(default, deserialize_with = "de::some")]
    #[schema(nullable = false, max_length = 64)]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::some")]
    #[schema(nullable = false, max_length = 64)]
    kind: Option<String>,
}

#[utoipa::path(
    patch, path = "/api/admin/zones/{zone}",
    tag = "Admin", operation_id = "updateZone",
    summary = "Rename a zone or change its kind",
    params(("zone" = String, Path, description = "Zone id", example = "quiet")),
    request_body(content = ZoneEdit, example = json!({"name": "Quiet room"})),
    responses(
        (status = 200, description = "Updated", body = ZoneSummary),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Unknown zone", body = ErrorBody, example = json!({"detail": "Zone 'x' does not exist"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn update_zone(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(zone): Path<String>,
    Json(body): Json<ZoneEdit>,
) -> Result<Json<ZoneSummary>, ApiError> {
    let current = state
        .engine
        .layout()
        .into_iter()
        .find(|z| z.id.0 == zone)
        .ok_or_else(|| ApiError::NotFound(format!("Zone '{zone}' does not exist")))?;
    let name = body
        .name
        .as_deref()
        .map(|n| label("name", n))
        .transpose()?
        .unwrap_or(current.name);
    let kind = body
        .kind
        .as_deref()
        .map(|k| label("kind", k))
        .transpose()?
        .unwrap_or(current.kind);
    state.db.update_zone(&current.id, &name, &kind).await?;
    state
        .engine
        .update_zone(&current.id, name.clone(), kind.clone());
    Ok(Json(ZoneSummary {
        id: current.id.0,
        name,
        kind,
        seats: None,
    }))
}

#[derive(Deserialize, ToSchema)]
struct NewSeat {
    #[schema(pattern = "^[A-Za-z0-9]{1,16}$")]
    seat_number: String,
}

#[derive(Serialize, ToSchema)]
struct SeatAdded {
    seat_number: String,
    zone: String,
    status: SeatService,
}

#[utoipa::path(
    post, path = "/api/admin/zones/{zone}/seats",
    tag = "Admin", operation_id = "addSeat",
    summary = "Add a seat to a zone",
    params(("zone" = String, Path, description = "Zone id", example = "quiet")),
    request_body(content = NewSeat, example = json!({"seat_number": "Q9"})),
    responses(
        (status = 201, description = "Added", body = SeatAdded),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Unknown zone", body = ErrorBody, example = json!({"detail": "Zone 'x' does not exist"})),
        (status = 409, description = "Seat number taken", body = ErrorBody, example = json!({"detail": "Seat 'Q9' already exists"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id, zone = %zone))]
async fn add_seat(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(zone): Path<String>,
    Json(body): Json<NewSeat>,
) -> Result<(StatusCode, Json<SeatAdded>), ApiError> {
    let zone = ZoneId(zone);
    if !state.engine.has_zone(&zone) {
        return Err(ApiError::NotFound(format!(
            "Zone '{}' does not exist",
            zone.0
        )));
    }
    let number = super::reservations::seat_number(&body.seat_number)?;
    // A new seat stands after the zone's others on its plan. Two seats added at once may
    // get the same spot; that is cosmetic, and an admin can move either.
    let spot = state
        .engine
        .layout()
        .iter()
        .find(|z| z.id == zone)
        .map(|z| default_spot(&z.kind, z.seats.len()))
        .unwrap_or_default();
    let seat = SeatLayout {
        number: number.clone(),
        service: SeatService::InService,
        spot,
    };
    state
        .engine
        .add_seat(&zone, seat)
        .await
        .map_err(ApiError::from)?;
    info!(seat = %number, "seat added");
    Ok((
        StatusCode::CREATED,
        Json(SeatAdded {
            seat_number: number.0,
            zone: zone.0,
            status: SeatService::InService,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = SeatStatusRequest)]
struct SeatStatus {
    #[schema(value_type = SeatService)]
    status: String,
}

#[derive(Serialize, ToSchema)]
struct SeatStatusResult {
    seat_number: String,
    status: SeatService,
    cancelled_reservations: Vec<ReservationView>,
}

/// Puts a seat in or out of service through its zone actor. Out of service cancels the
/// seat's confirmed reservations that have not ended; they are returned and announced.
#[utoipa::path(
    patch, path = "/api/admin/seats/{seat}",
    tag = "Admin", operation_id = "setSeatStatus",
    summary = "Put a seat in or out of service",
    description = "`out_of_service` cancels the seat's confirmed reservations that have not ended (returned and announced).",
    params(("seat" = String, Path, description = "Seat number", example = "A1")),
    request_body(content = SeatStatus, example = json!({"status": "out_of_service"})),
    responses(
        (status = 200, description = "Changed", body = SeatStatusResult),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Unknown seat", body = ErrorBody, example = json!({"detail": "Seat 'Z9' does not exist"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id, seat = %seat))]
async fn set_seat_status(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(seat): Path<String>,
    Json(body): Json<SeatStatus>,
) -> Result<Json<SeatStatusResult>, ApiError> {
    let service = SeatService::parse(&body.status).ok_or_else(|| {
        ApiError::Unprocessable("status must be in_service or out_of_service".into())
    })?;
    let seat = SeatNumber(seat.to_ascii_uppercase());
    let tz = state.settings.calendar.timezone;
    let cancelled = state
        .engine
        .set_seat_service(&seat, service)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(
        status = service.as_str(),
        cancelled = cancelled.len(),
        "seat status changed"
    );
    let cancelled: Vec<ReservationView> = cancelled
        .iter()
        .map(|r| ReservationView::new(r, tz))
        .collect();
    Ok(Json(SeatStatusResult {
        seat_number: seat.0,
        status: service,
        cancelled_reservations: cancelled,
    }))
}

/// A spot on the zone's floor plan, in plan units (roughly centimetres, origin top left).
#[derive(Deserialize, ToSchema)]
#[schema(as = SeatSpotRequest)]
struct SeatSpot {
    #[serde(deserialize_with = "de::int")]
    #[schema(minimum = 0, maximum = 100000)]
    x: i32,
    #[serde(deserialize_with = "de::int")]
    #[schema(minimum = 0, maximum = 100000)]
    y: i32,
}

#[derive(Serialize, ToSchema)]
struct SeatMoved {
    seat_number: String,
    zone: String,
    x: i32,
    y: i32,
}

/// Moves a seat on its zone's floor plan, through its zone actor and the unit of work;
/// the move is announced (`seat_moved`) once it committed.
#[utoipa::path(
    patch, path = "/api/admin/seats/{seat}/spot",
    tag = "Admin", operation_id = "moveSeat",
    summary = "Move a seat on its zone's floor plan",
    description = "`x` and `y` are plan units (roughly centimetres, origin top left), 0-100000. Every open map sees the move (`seat_moved` on the public event stream).",
    params(("seat" = String, Path, description = "Seat number", example = "A1")),
    request_body(content = SeatSpot, example = json!({"x": 420, "y": 310})),
    responses(
        (status = 200, description = "Moved", body = SeatMoved),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Unknown seat", body = ErrorBody, example = json!({"detail": "Seat 'Z9' does not exist"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, description = "Not integers, or a spot outside the plan", body = ErrorBody, example = json!({"detail": "x and y must be between 0 and 100000"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id, seat = %seat))]
async fn move_seat(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(seat): Path<String>,
    Json(body): Json<SeatSpot>,
) -> Result<Json<SeatMoved>, ApiError> {
    let spot = Spot::new(body.x, body.y).ok_or_else(|| {
        ApiError::Unprocessable(format!("x and y must be between 0 and {MAX_COORDINATE}"))
    })?;
    let seat = SeatNumber(seat.to_ascii_uppercase());
    let tz = state.settings.calendar.timezone;
    let zone = state
        .engine
        .move_seat(&seat, spot)
        .await
        .map_err(|e| ApiError::engine(e, tz))?;
    info!(x = spot.x, y = spot.y, "seat moved");
    Ok(Json(SeatMoved {
        seat_number: seat.0,
        zone: zone.0,
        x: spot.x,
        y: spot.y,
    }))
}

#[derive(Deserialize, ToSchema)]
struct Stock {
    #[serde(deserialize_with = "de::int")]
    #[schema(minimum = 0, maximum = 10000)]
    total_copies: u32,
}

/// Sets a book's total copies, through the book stock actor (never straight to the
/// database): refused below the copies currently reserved.
#[utoipa::path(
    patch, path = "/api/admin/books/{id}/stock",
    tag = "Admin", operation_id = "setBookStock",
    summary = "Set a book's total copies",
    description = "Goes through the book stock actor. Refused (409) below the copies currently reserved, or while another stock change of the book is in flight.",
    params(("id" = i64, Path, description = "Book id", example = 1)),
    request_body(content = inline(Stock), example = json!({"total_copies": 5})),
    responses(
        (status = 200, description = "The book with its new stock", body = BookJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Unknown book", body = ErrorBody, example = json!({"detail": "Book not found"})),
        (status = 409, description = "Below the reserved copies, or a change in flight", body = ErrorBody),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id, book = %id))]
async fn set_book_stock(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<Stock>,
) -> Result<Json<BookJson>, ApiError> {
    let id: pica_actors::BookId = id
        .parse()
        .map_err(|_| ApiError::NotFound("Book not found".into()))?;
    if body.total_copies > 10_000 {
        return Err(ApiError::Unprocessable(
            "total_copies must be at most 10000".into(),
        ));
    }
    let view = state
        .engine
        .adjust_book_stock(id, body.total_copies)
        .await?;
    info!(total = body.total_copies, "book stock adjusted");
    Ok(Json(view.into()))
}

/// Live contention figures per zone, as counted by each zone actor since it started: a
/// zone that is restarting is reported with `"up": false`.
#[utoipa::path(
    get, path = "/api/admin/zone-stats",
    tag = "Admin", operation_id = "zoneStats",
    summary = "Live contention figures per zone",
    description = "Counted by each zone actor since it (re)started: reserve requests, seat conflicts, refusals by the user ledger, commits and commit failures, and the reservations held in memory now. A restarting zone shows `up: false`.",
    responses(
        (status = 200, description = "Per zone", body = inline(ZoneStatsList), example = json!({"items": [{"zone": "cafe", "up": true, "stats": {"reserve_requests": 120, "seat_conflicts": 80, "user_refusals": 3, "committed": 37, "commit_failures": 0, "held": 12}}]})),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn zone_stats(State(state): State<AppState>, _admin: AdminUser) -> Json<ZoneStatsList> {
    let items = state
        .engine
        .zone_stats()
        .await
        .into_iter()
        .map(|(zone, stats)| ZoneStatsView {
            zone: zone.0,
            up: stats.is_ok(),
            stats: stats.ok(),
        })
        .collect();
    Json(ZoneStatsList { items })
}

#[derive(Serialize, ToSchema)]
struct ZoneStatsView {
    zone: String,
    up: bool,
    /// `null` while the zone is restarting
    #[schema(inline)]
    stats: Option<pica_actors::zone::ZoneStats>,
}

#[derive(Serialize, ToSchema)]
struct ZoneStatsList {
    #[schema(inline)]
    items: Vec<ZoneStatsView>,
}
