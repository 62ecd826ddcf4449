//! Secure reservation endpoints: create (two body forms, idempotent), list mine, read,
//! cancel.

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use pica_actors::{Created, Reservation, ReservationStatus, ReserveRequest, SeatNumber};
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};
use utoipa::openapi::{OneOfBuilder, Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, OwnListing, Page};
use super::views::{ReservationPage, ReservationView};
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::error::{ConflictBody, ErrorBody};
use crate::http::extract::de;
use crate::http::extract::{Json, Path, Query};
use crate::storage::ReservationQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(secure_index))
        .routes(routes!(create))
        .routes(routes!(read, cancel))
        .routes(routes!(mine))
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"message": "Secure endpoint accessed successfully!", "user": {"id": 1, "username": "ana", "role": "member"}}))]
struct SecureIndex {
    message: &'static str,
    user: AuthUser,
}

/// The endpoint's scope for idempotency keys.
const SCOPE: &str = "reservations";

#[utoipa::path(
    get, path = "/api/secure/",
    tag = "Account", operation_id = "secureIndex",
    summary = "Check credentials: who you are",
    responses(
        (status = 200, description = "Authenticated", body = SecureIndex),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn secure_index(user: AuthUser) -> Json<SecureIndex> {
    Json(SecureIndex {
        message: "Secure endpoint accessed successfully!",
        user,
    })
}

/// Either `{seat_number, reservation_date}` or `{seat_number, start, end}` (see
/// [`ReserveWholeDay`] and [`ReserveInterval`], which describe the two forms).
#[derive(Deserialize)]
pub(super) struct CreateReservation {
    pub seat_number: String,
    #[serde(default, deserialize_with = "de::some")]
    pub reservation_date: Option<String>,
    #[serde(default, deserialize_with = "de::some")]
    pub start: Option<String>,
    #[serde(default, deserialize_with = "de::some")]
    pub end: Option<String>,
}

/// The whole-day form of a seat request (documentation of [`CreateReservation`]).
#[derive(ToSchema)]
#[schema(title = "Whole opening day")]
#[allow(dead_code)]
pub(super) struct ReserveWholeDay {
    #[schema(example = "A1")]
    seat_number: String,
    #[schema(format = Date)]
    reservation_date: String,
}

/// The interval form of a seat request (documentation of [`CreateReservation`]).
#[derive(ToSchema)]
#[schema(title = "Interval")]
#[allow(dead_code)]
pub(super) struct ReserveInterval {
    seat_number: String,
    #[schema(format = DateTime)]
    start: String,
    #[schema(format = DateTime)]
    end: String,
}

impl PartialSchema for CreateReservation {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name(ReserveWholeDay::name()))
            .item(Ref::from_schema_name(ReserveInterval::name()))
            .into()
    }
}

impl ToSchema for CreateReservation {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (name, schema) in [
            (ReserveWholeDay::name(), ReserveWholeDay::schema()),
            (ReserveInterval::name(), ReserveInterval::schema()),
        ] {
            schemas.push((name.into_owned(), schema));
        }
    }
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

#[utoipa::path(
    post, path = "/api/secure/reservations",
    tag = "Reservations", operation_id = "createReservation",
    summary = "Reserve a seat",
    description = "Either `{seat_number, reservation_date}` (the whole opening day) or `{seat_number, start, end}` (RFC 3339 with offset, on slot boundaries, within one day's opening hours and the booking horizon). With an `Idempotency-Key` header a retry returns the first result.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint; a retry with the same key and body gets the first reservation back; the same key with another body gets 422", example = "7f1c2d")),
    request_body(content = inline(CreateReservation), example = json!({"seat_number": "A1", "reservation_date": "2026-11-25"})),
    responses(
        (status = 201, description = "Reserved (or the first result of an idempotent retry)", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown seat", body = ErrorBody, example = json!({"detail": "Seat 'Z9' does not exist"})),
        (status = 409, description = "Seat taken (with the conflicting interval), overlapping reservation of yours, limit reached or seat out of service", body = ConflictBody, example = json!({"detail": "Seat is already reserved for an overlapping interval", "conflict": {"start": "2026-11-25T08:00:00+07:00", "end": "2026-11-25T22:00:00+07:00"}})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
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

/// The caller's stored reservation `raw`. Someone else's reservation is reported
/// exactly like a missing one.
pub(super) async fn own_reservation(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
) -> Result<Reservation, ApiError> {
    match state.db.reservation(parse_id(raw)?).await? {
        Some(r) if r.user_id == user.id => Ok(r),
        _ => Err(ApiError::NotFound("Reservation not found".into())),
    }
}

#[utoipa::path(
    get, path = "/api/secure/reservations/{id}",
    tag = "Reservations", operation_id = "getReservation",
    summary = "One of your reservations",
    description = "Someone else's reservation is a 404, as if it did not exist.",
    params(("id" = String, Path, description = "Reservation id (UUID)")),
    responses(
        (status = 200, description = "The reservation", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Reservation not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<ReservationView>, ApiError> {
    let r = own_reservation(&state, &user, &id).await?;
    Ok(Json(ReservationView::new(
        &r,
        state.settings.calendar.timezone,
    )))
}

#[utoipa::path(
    delete, path = "/api/secure/reservations/{id}",
    tag = "Reservations", operation_id = "cancelReservation",
    summary = "Cancel a reservation",
    description = "Status becomes `cancelled`; the reservation stays in history.",
    params(("id" = String, Path, description = "Reservation id (UUID)")),
    responses(
        (status = 200, description = "Cancelled", body = ReservationView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Reservation not found"})),
        (status = 409, description = "Not active", body = ErrorBody, example = json!({"detail": "Reservation is already cancelled"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
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

#[utoipa::path(
    get, path = "/api/secure/my-reservations",
    tag = "Reservations", operation_id = "myReservations",
    summary = "Your reservations, newest first",
    params(("status" = Option<ReservationStatus>, Query, description = "Only this status"), ListQuery),
    responses(
        (status = 200, description = "A page of reservations", body = ReservationPage),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<ReservationView>>, ApiError> {
    let listing = OwnListing::parse(
        &query,
        ReservationStatus::parse,
        "confirmed, checked_in, completed, cancelled, no_show",
    )?;
    let rows = state
        .db
        .reservations_of(&ReservationQuery {
            user_id: user.id,
            status: listing.status,
            before: listing.before,
            limit: listing.fetch_limit(),
        })
        .await?;
    let tz = state.settings.calendar.timezone;
    Ok(Json(listing.page(
        rows,
        |r| r.id,
        |r| ReservationView::new(r, tz),
    )))
}
