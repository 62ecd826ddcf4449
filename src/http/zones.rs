//! Zones with their seats' live state, and free intervals per date.

use super::doc::r;
use axum::extract::State;
use std::collections::HashMap;

use pica_actors::{LiveSeatState, SeatNumber, SeatService, Spot, ZoneId};
use serde::{Deserialize, Serialize};
use tracing::instrument;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::IntervalView;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Path, Query};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(zones))
        .routes(routes!(availability))
}

#[derive(Serialize, ToSchema)]
struct SeatLive {
    seat_number: String,
    status: SeatService,
    state: LiveSeatState,
    /// Where the seat stands on the zone's floor plan (plan units, about a centimetre,
    /// origin top left)
    x: i32,
    y: i32,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Zone, example = json!({"id": "quiet", "name": "Quiet room", "kind": "quiet", "seats": [{"seat_number": "Q1", "status": "in_service", "state": "available", "x": 90, "y": 80}]}))]
struct ZoneView {
    id: String,
    name: String,
    kind: String,
    #[schema(inline)]
    seats: Vec<SeatLive>,
}

/// All zones (there are few, so no paging), each seat as the live map shows it now.
#[utoipa::path(
    get, path = "/api/public/zones",
    tag = "Zones", operation_id = "listZones",
    summary = "Zones with their seats and each seat's live state",
    responses(
        (status = 200, description = "All zones (not paged)", body = Vec<ZoneView>),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all)]
async fn zones(State(state): State<AppState>) -> Result<Json<Vec<ZoneView>>, ApiError> {
    let mut views = Vec::new();
    for zone in state.engine.layout() {
        let live = state.engine.live(&zone.id).await?;
        let spots: HashMap<&SeatNumber, Spot> =
            zone.seats.iter().map(|s| (&s.number, s.spot)).collect();
        views.push(ZoneView {
            id: zone.id.0.clone(),
            name: zone.name.clone(),
            kind: zone.kind.clone(),
            seats: live
                .into_iter()
                .map(|s| {
                    let spot = spots.get(&s.number).copied().unwrap_or_default();
                    SeatLive {
                        seat_number: s.number.0,
                        status: s.service,
                        state: s.live,
                        x: spot.x,
                        y: spot.y,
                    }
                })
                .collect(),
        });
    }
    Ok(Json(views))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AvailabilityQuery {
    /// Local date `YYYY-MM-DD`, today up to the booking horizon (others: 422)
    #[param(required = true, format = Date, example = "2026-11-25")]
    date: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SeatFree {
    seat_number: String,
    status: SeatService,
    free: Vec<IntervalView>,
}

#[derive(Serialize, ToSchema)]
struct Availability {
    zone: String,
    #[schema(format = Date)]
    date: String,
    opening: IntervalView,
    #[schema(inline)]
    seats: Vec<SeatFree>,
}

#[utoipa::path(
    get, path = "/api/public/zones/{zone}/availability",
    tag = "Zones", operation_id = "zoneAvailability",
    summary = "Free intervals per seat on a date",
    description = "Within that day's opening hours, in the space's time zone.",
    params(("zone" = String, Path, description = "Zone id", example = "quiet"), AvailabilityQuery),
    responses(
        (status = 200, description = "Availability", body = Availability),
        (status = 400, response = r::BadRequest),
        (status = 404, description = "Unknown zone", body = ErrorBody, example = json!({"detail": "Zone 'x' does not exist"})),
        (status = 422, description = "Missing or invalid date", body = ErrorBody, example = json!({"detail": "query parameter `date` (YYYY-MM-DD) is required"})),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all, fields(zone = %zone))]
async fn availability(
    State(state): State<AppState>,
    Path(zone): Path<String>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Json<Availability>, ApiError> {
    let zone = ZoneId(zone);
    if !state.engine.has_zone(&zone) {
        return Err(ApiError::NotFound(format!(
            "Zone '{}' does not exist",
            zone.0
        )));
    }
    let calendar = &state.settings.calendar;
    let raw = query.date.ok_or_else(|| {
        ApiError::Unprocessable("query parameter `date` (YYYY-MM-DD) is required".into())
    })?;
    let date = calendar.bookable_date(&raw, state.engine.clock().now())?;
    let window = calendar.opening_window(date)?;
    let free = state.engine.availability(&zone, window).await?;
    let tz = calendar.timezone;
    Ok(Json(Availability {
        zone: zone.0,
        date: date.to_string(),
        opening: IntervalView::new(&window, tz),
        seats: free
            .into_iter()
            .map(|(seat, status, free)| SeatFree {
                seat_number: seat.0,
                status,
                free: free.iter().map(|i| IntervalView::new(i, tz)).collect(),
            })
            .collect(),
    }))
}
