//! Secure reservation endpoints: create (two body forms, idempotent), list mine, read,
//! cancel.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use pica_actors::{Created, ReservationStatus, ReserveRequest, SeatNumber};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, instrument};
use uuid::Uuid;

use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, Page, page_limit, status_filter, uuid_cursor};
use super::views::ReservationView;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::storage::ReservationQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/secure/", get(secure_index))
        .route("/api/secure/reservations", post(create))
        .route("/api/secure/reservations/{id}", get(read).delete(cancel))
        .route("/api/secure/my-reservations", get(mine))
}

async fn secure_index(user: AuthUser) -> Json<Value> {
    Json(json!({ "message": "Secure endpoint accessed successfully!", "user": user }))
}

/// The endpoint's scope for idempotency keys.
const SCOPE: &str = "reservations";

/// Either `{seat_number, reservation_date}` or `{seat_number, start, end}`.
#[derive(Deserialize)]
struct CreateReservation {
    seat_number: String,
    reservation_date: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

/// A seat number such as `A1`: 1-16 letters and digits.
pub(super) fn seat_number(raw: &str) -> Result<SeatNumber, ApiError> {
    let raw = raw.trim();
    if (1..=16).contains(&raw.len()) && raw.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(SeatNumber(raw.to_ascii_uppercase()))
    } else {
        Err(ApiError::Unprocessable(
            "seat_number must be 1-16 letters and digits, like A1".into(),
        ))
    }
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Keyed { body, key }: Keyed<CreateReservation>,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
    let tz = state.settings.calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, SCOPE));
    let replay = async |created| match created {
        Created::Reservation(id) => {
            let first = state.db.reservation(id).await?.ok_or_else(lost)?;
            Ok((StatusCode::CREATED, Json(ReservationView::new(&first, tz))))
        }
        _ => Err(lost()),
    };
    let reserve = async |tag| {
        let seat = seat_number(&body.seat_number)?;
        let now = state.engine.clock().now();
        let calendar = &state.settings.calendar;
        let interval = match (&body.reservation_date, &body.start, &body.end) {
            (Some(date), None, None) => calendar.whole_day(date, now)?,
            (None, Some(start), Some(end)) => calendar.explicit(start, end, now)?,
            _ => {
                return Err(ApiError::Unprocessable(
                    "give either `reservation_date` or both `start` and `end`".into(),
                ));
            }
        };
        let request = ReserveRequest {
            user_id: user.id,
            seat,
            interval,
            idempotency_key: tag,
        };
        let reservation = state
            .engine
            .reserve(request)
            .await
            .map_err(|e| ApiError::engine(e, tz))?;
        debug!(reservation = %reservation.id, seat = %reservation.seat, "reserved");
        Ok((
            StatusCode::CREATED,
            Json(ReservationView::new(&reservation, tz)),
        ))
    };
    once(&state, tag, replay, reserve).await
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("Reservation not found".into()))
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = parse_id(&id)?;
    match state.db.reservation(id).await? {
        Some(r) if r.user_id == user.id => Ok(Json(ReservationView::new(
            &r,
            state.settings.calendar.timezone,
        ))),
        // Someone else's reservation is reported exactly like a missing one.
        _ => Err(ApiError::NotFound("Reservation not found".into())),
    }
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = parse_id(&id)?;
    let tz = state.settings.calendar.timezone;
    // The zones hold every active reservation: ask them first, and read the database
    // only to explain a refusal.
    let cancelled = match state
        .engine
        .change_status_anywhere(id, user.id, ReservationStatus::Cancelled)
        .await
    {
        Ok(cancelled) => cancelled,
        Err(pica_actors::EngineError::ReservationNotFound) => {
            return Err(match state.db.reservation(id).await? {
                Some(r) if r.user_id == user.id => ApiError::Conflict {
                    detail: if r.status.is_active() {
                        "Reservation has already ended".to_string()
                    } else {
                        format!("Reservation is already {}", r.status)
                    },
                    conflict: None,
                },
                // Someone else's reservation is reported exactly like a missing one.
                _ => ApiError::NotFound("Reservation not found".into()),
            });
        }
        Err(other) => return Err(ApiError::engine(other, tz)),
    };
    debug!(reservation = %id, "cancelled");
    Ok(Json(ReservationView::new(&cancelled, tz)))
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<ReservationView>>, ApiError> {
    let status = status_filter(
        query.status.as_deref(),
        ReservationStatus::parse,
        "confirmed, checked_in, completed, cancelled, no_show",
    )?;
    let limit = page_limit(query.limit)?;
    let before = uuid_cursor(query.cursor.as_deref())?;
    let rows = state
        .db
        .reservations_of(&ReservationQuery {
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
        |r| ReservationView::new(r, tz),
    )))
}
