//! Zones with their seats' live state, and free intervals per date.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use pica_actors::{LiveSeatState, SeatService, ZoneId};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::views::IntervalView;
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/public/zones", get(zones))
        .route("/api/public/zones/{zone}/availability", get(availability))
}

#[derive(Serialize)]
struct SeatLive {
    seat_number: String,
    status: SeatService,
    state: LiveSeatState,
}

#[derive(Serialize)]
struct ZoneView {
    id: String,
    name: String,
    kind: String,
    seats: Vec<SeatLive>,
}

/// All zones (there are few, so no paging), each seat as the live map shows it now.
#[instrument(skip_all)]
async fn zones(State(state): State<AppState>) -> Result<Json<Vec<ZoneView>>, ApiError> {
    let mut views = Vec::new();
    for zone in state.engine.layout() {
        let live = state.engine.live(&zone.id).await?;
        views.push(ZoneView {
            id: zone.id.0.clone(),
            name: zone.name.clone(),
            kind: zone.kind.clone(),
            seats: live
                .into_iter()
                .map(|s| SeatLive {
                    seat_number: s.number.0,
                    status: s.service,
                    state: s.live,
                })
                .collect(),
        });
    }
    Ok(Json(views))
}

#[derive(Deserialize)]
struct AvailabilityQuery {
    date: Option<String>,
}

#[derive(Serialize)]
struct SeatFree {
    seat_number: String,
    status: SeatService,
    free: Vec<IntervalView>,
}

#[derive(Serialize)]
struct Availability {
    zone: String,
    date: String,
    opening: IntervalView,
    seats: Vec<SeatFree>,
}

#[instrument(skip_all, fields(zone = %zone))]
async fn availability(
    State(state): State<AppState>,
    Path(zone): Path<String>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Json<Availability>, ApiError> {
    let zone = ZoneId(zone);
    if !state.engine.layout().iter().any(|z| z.id == zone) {
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
