//! Bundles: a seat and book copies booked together, all or nothing
//! (`POST /api/secure/bundles`). The engine runs the two-phase protocol; this edge only
//! validates, names the failing part in the answer, and honours `Idempotency-Key` (a
//! retry of a bundle that committed gets both parts back, it does not book again).

use super::doc::r;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono_tz::Tz;
use pica_actors::{
    BookReservation, BundleError, BundlePart, BundleRequest, Created, Reservation, ReserveRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::{info, instrument};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::books::{BookRequest, BookReservationJson};
use super::idempotency::{Keyed, lost, once};
use super::reservations::{CreateReservation, seat_number};
use super::views::{IntervalView, ReservationView};
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Json;

/// The endpoint's scope for idempotency keys.
const SCOPE: &str = "bundles";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create))
}

/// The request: the seat part (`{seat_number, reservation_date}` or `{seat_number,
/// start, end}`, as for a single reservation) and the book part. Each part is read on
/// its own, so that an unreadable part is named in the error like an invalid one.
#[derive(ToSchema)]
#[schema(as = BundleRequest)]
#[allow(dead_code)]
struct CreateBundle {
    #[schema(inline)]
    seat: CreateReservation,
    book: BookRequest,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Bundle)]
struct BundleJson {
    seat_reservation: ReservationView,
    book_reservation: BookReservationJson,
}

/// An error answer naming the part that failed.
#[derive(Serialize, ToSchema)]
#[schema(as = BundleError)]
struct BundleErrorBody {
    detail: String,
    /// The part that failed (`commit`: both were accepted but the booking did not
    /// commit; retry)
    #[schema(inline)]
    part: BundlePart,
    /// The interval in the way, when the seat is taken
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    conflict: Option<IntervalView>,
}

/// One part of the body, decoded on its own: a missing or malformed part is a 422
/// naming it.
fn part<T: DeserializeOwned>(body: &Value, name: &str) -> Result<T, ApiError> {
    let value = body.get(name).ok_or_else(|| {
        ApiError::Unprocessable(format!("Invalid request body: missing field `{name}`"))
    })?;
    T::deserialize(value)
        .map_err(|e| ApiError::Unprocessable(format!("Invalid request body: {name}: {e}")))
}

/// An error answer naming the part that failed: `{"detail", "part", ...}`.
fn in_part(part: BundlePart, err: ApiError) -> Response {
    let status = err.status();
    let conflict = match &err {
        ApiError::Conflict {
            conflict: Some((start, end)),
            ..
        } => Some(IntervalView {
            start: start.clone(),
            end: end.clone(),
        }),
        _ => None,
    };
    let detail = if matches!(err, ApiError::Internal(_)) {
        tracing::error!(error = ?err, "internal error");
        "Internal server error".to_string()
    } else {
        err.to_string()
    };
    let body = BundleErrorBody {
        detail,
        part,
        conflict,
    };
    let mut response = (status, Json(body)).into_response();
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

#[utoipa::path(
    post, path = "/api/secure/bundles",
    tag = "Books", operation_id = "createBundle",
    summary = "Reserve a seat and book copies together, all or nothing",
    description = "Errors name the part that failed (`part`: `seat` or `book`).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint; a retry with the same key and body gets the first result back (for API keys: 409 naming the first key, without its secret); the same key with another body gets 422", example = "7f1c2d")),
    request_body(content = CreateBundle, example = json!({"seat": {"seat_number": "Q3", "start": "2026-11-25T09:00:00+07:00", "end": "2026-11-25T11:30:00+07:00"}, "book": {"book_id": 1, "copies": 1}})),
    responses(
        (status = 201, description = "Both booked", body = BundleJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown seat or book", body = BundleErrorBody, example = json!({"detail": "Book not found", "part": "book"})),
        (status = 409, description = "A part is not available", body = BundleErrorBody, example = json!({"detail": "Seat is already reserved for an overlapping interval", "part": "seat", "conflict": {"start": "2026-11-25T09:00:00+07:00", "end": "2026-11-25T11:30:00+07:00"}})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, description = "Invalid part", body = BundleErrorBody, example = json!({"detail": "copies must be between 1 and 20", "part": "book"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    keyed: Result<Keyed<Value>, ApiError>,
) -> Response {
    // A body the extractor refuses as unprocessable (a control character somewhere)
    // still names a part, as every bundle 422 does: the part its path is in, else the
    // seat, which is read first.
    let Keyed { body, key } = match keyed {
        Ok(keyed) => keyed,
        Err(err) if err.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            let part = if err.to_string().starts_with("book") {
                BundlePart::Book
            } else {
                BundlePart::Seat
            };
            return in_part(part, err);
        }
        Err(err) => return err.into_response(),
    };
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
        // Each part is read on its own, so even an unreadable part is named.
        let seat = part(&body, "seat")
            .and_then(|seat| seat_request(&state, &user, seat))
            .map_err(|e| Failed(in_part(BundlePart::Seat, e)))?;
        let book: BookRequest =
            part(&body, "book").map_err(|e| Failed(in_part(BundlePart::Book, e)))?;
        let copies = book
            .copies()
            .map_err(|e| Failed(in_part(BundlePart::Book, e)))?;
        let request = BundleRequest {
            seat,
            book_id: book.book_id,
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
    seat: CreateReservation,
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
