//! Bundles: a seat and book copies booked together, all or nothing
//! (`POST /api/secure/bundles`). The engine runs the two-phase protocol; this edge only
//! validates, names the failing part in the answer, and honours `Idempotency-Key` (a
//! retry of a bundle that committed gets both parts back, it does not book again).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono_tz::Tz;
use pica_actors::{
    BookReservation, BundleError, BundlePart, BundleRequest, Created, Reservation, ReserveRequest,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, instrument};

use super::books::{BookRequest, BookReservationJson};
use super::idempotency::{Keyed, lost, once};
use super::reservations::seat_number;
use super::views::ReservationView;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;

/// The endpoint's scope for idempotency keys.
const SCOPE: &str = "bundles";

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

/// An answer that is not a new bundle: an error naming its part, or a refused key.
struct Failed(Response);

impl From<ApiError> for Failed {
    fn from(err: ApiError) -> Self {
        Failed(err.into_response())
    }
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Keyed { body, key }: Keyed<CreateBundle>,
) -> Response {
    let tz = state.settings.calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, SCOPE));
    let replay = async |created| -> Result<Response, Failed> {
        let Created::Bundle { seat, book } = created else {
            return Err(lost().into());
        };
        let seat = state.db.reservation(seat).await.map_err(ApiError::from)?;
        let book = state
            .db
            .book_reservation(book)
            .await
            .map_err(ApiError::from)?;
        let (Some(seat), Some(book)) = (seat, book) else {
            return Err(lost().into());
        };
        Ok(created_answer(&seat, &book, tz))
    };
    let book = async |tag| -> Result<Response, Failed> {
        // Validate both parts before anything is held.
        let seat = seat_request(&state, &user, body.seat)
            .map_err(|e| Failed(in_part(BundlePart::Seat, e)))?;
        let copies = body
            .book
            .copies()
            .map_err(|e| Failed(in_part(BundlePart::Book, e)))?;
        let request = BundleRequest {
            seat,
            book_id: body.book.book_id,
            copies,
            idempotency: tag,
        };
        match state.engine.reserve_bundle(request).await {
            Ok(bundle) => {
                info!(seat_reservation = %bundle.seat.id, book_reservation = %bundle.book.id, "bundle booked");
                Ok(created_answer(&bundle.seat, &bundle.book, tz))
            }
            Err(BundleError { part, error }) => {
                Err(Failed(in_part(part, ApiError::engine(error, tz))))
            }
        }
    };
    match once(&state, tag, replay, book).await {
        Ok(answer) | Err(Failed(answer)) => answer,
    }
}

fn created_answer(seat: &Reservation, book: &BookReservation, tz: Tz) -> Response {
    let json = BundleJson {
        seat_reservation: ReservationView::new(seat, tz),
        book_reservation: BookReservationJson::new(book, tz),
    };
    (StatusCode::CREATED, Json(json)).into_response()
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
