//! Secure endpoints of the reservation lifecycle: check-in and check-out.
//!
//! Like every edge handler they only authenticate, validate and route: the zone actor
//! decides. Another member's reservation is answered exactly like a missing one (404;
//! docs/architecture.md, invariant 5).

use axum::extract::State;
use chrono::{DateTime, Duration, Timelike, Utc};
use pica_actors::ReservationStatus;
use tracing::{info, instrument};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::doc::r;
use super::reservations::own_reservation;
use super::views::ReservationView;
use crate::auth::AuthUser;
use crate::config::Calendar;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Json, Path};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(check_in))
        .routes(routes!(check_out))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveTime, TimeZone};
    use chrono_tz::Tz;

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
