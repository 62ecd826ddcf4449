//! Secure reservation endpoints: create (two body forms, idempotent), list mine, read,
//! cancel.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use dashmap::DashMap;
use pica_actors::{ReservationStatus, ReserveRequest, SeatNumber, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, instrument};
use uuid::Uuid;

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

/// An `Idempotency-Key`: 1-255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_string())).ok_or_else(|| {
        ApiError::Rejected(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1-255 visible ASCII characters".into(),
        )
    })
}

/// Serializes requests carrying the same (user, Idempotency-Key), so a retry racing
/// its original waits for it and then finds its result.
#[derive(Default)]
pub struct IdempotencyLocks(DashMap<(UserId, String), Arc<tokio::sync::Mutex<()>>>);

impl IdempotencyLocks {
    async fn run<T>(&self, user: UserId, key: &str, work: impl Future<Output = T>) -> T {
        let slot = (user, key.to_string());
        let lock = self.0.entry(slot.clone()).or_default().clone();
        let result = {
            let _held = lock.lock().await;
            work.await
        };
        drop(lock);
        // Forget the lock once nobody else holds or waits for it.
        self.0.remove_if(&slot, |_, l| Arc::strong_count(l) == 1);
        result
    }
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    Json(body): Json<CreateReservation>,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
    let key = idempotency_key(&headers)?;
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
        idempotency_key: key.clone(),
    };
    let tz = calendar.timezone;
    let reserve = async {
        if let Some(key) = &key
            && let Some(first) = state
                .db
                .reservation_by_idempotency_key(user.id, key)
                .await?
        {
            return Ok((StatusCode::CREATED, Json(ReservationView::new(&first, tz))));
        }
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
    match &key {
        Some(key) => state.idempotency.run(user.id, key, reserve).await,
        None => reserve.await,
    }
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
