//! Bundles: a seat and book copies booked together, all or nothing
//! (`POST /api/secure/bundles`). The engine runs the two-phase protocol; this edge only
//! validates and names the failing part in the answer.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use pica_actors::{BundleError, BundlePart, BundleRequest, ReserveRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, instrument};

use super::books::{BookRequest, BookReservationJson};
use super::reservations::seat_number;
use super::views::ReservationView;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/secure/bundles", post(create))
}

/// The seat part: `{seat_number, reservation_date}` or `{seat_number, start, end}`,
/// as for a single reservation.
#[derive(Deserialize)]
struct SeatPart {
    seat_number: String,
    reservation_date: Option<String>,
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
struct CreateBundle {
    seat: SeatPart,
    book: BookRequest,
}

#[derive(Serialize)]
struct BundleJson {
    seat_reservation: ReservationView,
    book_reservation: BookReservationJson,
}

/// An error answer naming the part that failed: `{"detail", "part", ...}`.
fn in_part(part: BundlePart, err: ApiError) -> Response {
    let status = err.status();
    let mut body = json!({ "detail": err.to_string(), "part": part.as_str() });
    if let ApiError::Conflict {
        conflict: Some((start, end)),
        ..
    } = &err
    {
        body["conflict"] = json!({ "start": start, "end": end });
    }
    if matches!(err, ApiError::Internal(_)) {
        tracing::error!(error = ?err, "internal error");
        body["detail"] = json!("Internal server error");
    }
    let mut response = (status, axum::Json::<Value>(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<CreateBundle>,
) -> Response {
    let tz = state.settings.calendar.timezone;
    // Validate both parts before anything is held.
    let seat = match seat_request(&state, &user, body.seat) {
        Ok(seat) => seat,
        Err(err) => return in_part(BundlePart::Seat, err),
    };
    let copies = match body.book.copies() {
        Ok(copies) => copies,
        Err(err) => return in_part(BundlePart::Book, err),
    };
    let request = BundleRequest {
        seat,
        book_id: body.book.book_id,
        copies,
    };
    match state.engine.reserve_bundle(request).await {
        Ok(bundle) => {
            info!(seat_reservation = %bundle.seat.id, book_reservation = %bundle.book.id, "bundle booked");
            let json = BundleJson {
                seat_reservation: ReservationView::new(&bundle.seat, tz),
                book_reservation: BookReservationJson::new(&bundle.book, tz),
            };
            (StatusCode::CREATED, Json(json)).into_response()
        }
        Err(BundleError { part, error }) => in_part(part, ApiError::engine(error, tz)),
    }
}

fn seat_request(
    state: &AppState,
    user: &AuthUser,
    seat: SeatPart,
) -> Result<ReserveRequest, ApiError> {
    let number = seat_number(&seat.seat_number)?;
    let now = state.engine.clock().now();
    let calendar = &state.settings.calendar;
    let interval = match (&seat.reservation_date, &seat.start, &seat.end) {
        (Some(date), None, None) => calendar.whole_day(date, now)?,
        (None, Some(start), Some(end)) => calendar.explicit(start, end, now)?,
        _ => {
            return Err(ApiError::Unprocessable(
                "give either `reservation_date` or both `start` and `end`".into(),
            ));
        }
    };
    Ok(ReserveRequest {
        user_id: user.id,
        seat: number,
        interval,
        idempotency_key: None,
    })
}
