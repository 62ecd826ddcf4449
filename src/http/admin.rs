//! Admin endpoints (`/api/admin`, role `admin`): users, zones, seats.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use pica_actors::{SeatLayout, SeatNumber, SeatService, ZoneId, ZoneLayout};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use super::views::{ReservationView, local};
use crate::app::AppState;
use crate::auth::AdminUser;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::storage::DbError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/users", get(users))
        .route("/api/admin/zones", post(create_zone))
        .route("/api/admin/zones/{zone}", patch(update_zone))
        .route("/api/admin/zone-stats", get(zone_stats))
        .route("/api/admin/zones/{zone}/seats", post(add_seat))
        .route("/api/admin/seats/{seat}", patch(set_seat_status))
        .route("/api/admin/books/{id}/stock", patch(set_book_stock))
}

#[derive(Deserialize)]
struct Page {
    limit: Option<u32>,
    cursor: Option<i64>,
}

async fn users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = super::paging::page_limit(page.limit)?;
    let mut rows = state.db.list_users(page.cursor, limit + 1).await?;
    let next = (rows.len() > limit as usize).then(|| {
        rows.truncate(limit as usize);
        rows.last().map(|u| u.id)
    });
    let tz = state.settings.calendar.timezone;
    let items: Vec<Value> = rows
        .iter()
        .map(|u| json!({"id": u.id, "username": u.username, "email": u.email, "role": u.role, "created_at": local(u.created_at, tz)}))
        .collect();
    Ok(Json(
        json!({ "items": items, "next_cursor": next.flatten() }),
    ))
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

#[derive(Deserialize)]
struct NewZone {
    id: String,
    name: String,
    kind: String,
}

#[instrument(skip_all, fields(admin = admin.0.id))]
async fn create_zone(
    State(state): State<AppState>,
    admin: AdminUser,
    Json(body): Json<NewZone>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        Json(json!({ "id": id.0, "name": name, "kind": kind, "seats": [] })),
    ))
}

#[derive(Deserialize)]
struct ZoneEdit {
    name: Option<String>,
    kind: Option<String>,
}

async fn update_zone(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(zone): Path<String>,
    Json(body): Json<ZoneEdit>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({ "id": current.id.0, "name": name, "kind": kind }),
    ))
}

#[derive(Deserialize)]
struct NewSeat {
    seat_number: String,
}

#[instrument(skip_all, fields(admin = admin.0.id, zone = %zone))]
async fn add_seat(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(zone): Path<String>,
    Json(body): Json<NewSeat>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let zone = ZoneId(zone);
    if !state.engine.has_zone(&zone) {
        return Err(ApiError::NotFound(format!(
            "Zone '{}' does not exist",
            zone.0
        )));
    }
    let number = super::reservations::seat_number(&body.seat_number)?;
    let seat = SeatLayout {
        number: number.clone(),
        service: SeatService::InService,
    };
    state
        .engine
        .add_seat(&zone, seat)
        .await
        .map_err(ApiError::from)?;
    info!(seat = %number, "seat added");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "seat_number": number.0, "zone": zone.0, "status": "in_service" })),
    ))
}

#[derive(Deserialize)]
struct SeatStatus {
    status: String,
}

/// Puts a seat in or out of service through its zone actor. Out of service cancels the
/// seat's confirmed reservations that have not ended; they are returned and announced.
#[instrument(skip_all, fields(admin = admin.0.id, seat = %seat))]
async fn set_seat_status(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(seat): Path<String>,
    Json(body): Json<SeatStatus>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(
        json!({ "seat_number": seat.0, "status": service.as_str(), "cancelled_reservations": cancelled }),
    ))
}

#[derive(Deserialize)]
struct Stock {
    total_copies: u32,
}

/// Sets a book's total copies, through the book stock actor (never straight to the
/// database): refused below the copies currently reserved.
#[instrument(skip_all, fields(admin = admin.0.id, book = %id))]
async fn set_book_stock(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
    Json(body): Json<Stock>,
) -> Result<Json<super::books::BookJson>, ApiError> {
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
async fn zone_stats(State(state): State<AppState>, _admin: AdminUser) -> Json<Value> {
    let zones: Vec<Value> = state
        .engine
        .zone_stats()
        .await
        .into_iter()
        .map(|(zone, stats)| match stats {
            Ok(stats) => json!({ "zone": zone.0, "up": true, "stats": stats }),
            Err(_) => json!({ "zone": zone.0, "up": false, "stats": null }),
        })
        .collect();
    Json(json!({ "items": zones }))
}
