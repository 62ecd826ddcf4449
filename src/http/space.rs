//! The space's booking rules, for clients that draw a calendar (the web app does): its
//! time zone, opening hours, slot grid, horizon and check-in window, and the server's
//! clock, which is the one every rule is judged by.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::views::local;
use crate::http::AppState;
use crate::http::extract::Json;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(space))
}

/// When seats can be booked
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"time_zone": "Asia/Jakarta", "opens": "08:00", "closes": "22:00", "slot_minutes": 30, "horizon_days": 30, "check_in_opens_minutes": 15, "no_show_minutes": 15, "hold_minutes": 10, "now": "2026-11-25T08:03:11+07:00", "today": "2026-11-25"}))]
struct Space {
    /// IANA name of the space's time zone; every time is given in it
    time_zone: String,
    /// Opening and closing time of every day, `HH:MM`
    opens: String,
    closes: String,
    /// Reservations start and end on this grid
    slot_minutes: u32,
    /// How many days ahead (today included) can be booked
    horizon_days: u32,
    /// Check-in opens this long before a reservation starts
    check_in_opens_minutes: u64,
    /// A reservation not checked in this long after its start is released
    no_show_minutes: u64,
    /// How long a waiter's hold on a freed seat lasts
    hold_minutes: u64,
    /// The server's clock
    #[schema(format = DateTime)]
    now: String,
    /// Today's date in the space's time zone
    #[schema(format = Date)]
    today: String,
}

#[utoipa::path(
    get, path = "/api/public/space",
    tag = "Zones", operation_id = "spaceRules",
    summary = "The space's time zone, opening hours, slot grid and horizon",
    responses((status = 200, description = "Booking rules", body = Space)),
)]
async fn space(State(state): State<AppState>) -> Json<Space> {
    let calendar = &state.settings.calendar;
    let lifecycle = &state.settings.lifecycle;
    let now = state.engine.clock().now();
    let minutes = |d: std::time::Duration| d.as_secs() / 60;
    Json(Space {
        time_zone: calendar.timezone.name().to_owned(),
        opens: calendar.opens.format("%H:%M").to_string(),
        closes: calendar.closes.format("%H:%M").to_string(),
        slot_minutes: calendar.slot_minutes,
        horizon_days: calendar.horizon_days,
        check_in_opens_minutes: minutes(lifecycle.check_in_opens_before),
        no_show_minutes: minutes(lifecycle.no_show_after),
        hold_minutes: minutes(lifecycle.hold_for),
        now: local(now, calendar.timezone),
        today: now
            .with_timezone(&calendar.timezone)
            .date_naive()
            .to_string(),
    })
}
