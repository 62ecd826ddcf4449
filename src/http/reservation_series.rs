//! Weekly series: book "this seat, these hours, on these weekdays for N weeks" in one
//! request (all dates or none), read a series, cancel the rest of it, and download it
//! as one recurring calendar entry. One occurrence is cancelled like any reservation,
//! with `DELETE /api/secure/reservations/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use pica_actors::{
    Created, EngineError, Reservation, ReservationSeries, ReservationStatus, SeriesId,
    SeriesRequest,
};
use serde::{Deserialize, Serialize};
use tracing::{debug, instrument};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::r;
use super::idempotency::{Keyed, lost, once};
use super::reservations::seat_number;
use super::views::ReservationView;
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::{ApiError, ConflictBody, ErrorBody, SeriesConflictBody};
use crate::http::extract::{Json, Path, Query};
use crate::series::WeeklyPattern;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(read, cancel_rest))
        .routes(routes!(series_calendar))
}

/// The endpoint's scope for idempotency keys.
const SCOPE: &str = "reservation-series";

/// A weekly series to book
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"seat_number": "A1", "weekdays": ["mon", "wed"], "start_time": "09:00", "end_time": "12:00", "first_date": "2026-12-07", "weeks": 4}))]
pub(super) struct CreateSeries {
    #[schema(example = "A1")]
    seat_number: String,
    /// Days of the week: `mon` … `sun` (or full names)
    #[schema(example = json!(["mon", "wed"]))]
    weekdays: Vec<String>,
    /// Local start of every occurrence, `HH:MM` on the slot grid
    #[schema(example = "09:00")]
    start_time: String,
    /// Local end of every occurrence, `HH:MM` on the slot grid
    #[schema(example = "12:00")]
    end_time: String,
    /// The first day the pattern covers (today up to the booking horizon)
    #[schema(format = Date, example = "2026-12-07")]
    first_date: String,
    /// How many weeks from `first_date` (1-26; every date must be within the horizon)
    #[schema(minimum = 1, maximum = 26, example = 4)]
    weeks: u32,
}

/// A weekly series with its occurrences, in time order
#[derive(Serialize, ToSchema)]
#[schema(as = ReservationSeries)]
pub(super) struct SeriesView {
    #[schema(format = Uuid)]
    id: String,
    seat_number: String,
    zone: String,
    #[schema(example = json!(["mon", "wed"]))]
    weekdays: Vec<String>,
    #[schema(example = "09:00")]
    start_time: String,
    #[schema(example = "12:00")]
    end_time: String,
    #[schema(format = Date)]
    first_date: String,
    weeks: u32,
    /// Every occurrence, whatever its status now
    occurrences: Vec<ReservationView>,
}

impl SeriesView {
    fn new(series: &ReservationSeries, occurrences: &[Reservation], tz: chrono_tz::Tz) -> Self {
        Self {
            id: series.id.to_string(),
            seat_number: series.seat.0.clone(),
            zone: series.zone.0.clone(),
            weekdays: series
                .weekdays
                .iter()
                .map(|d| d.to_string().to_ascii_lowercase())
                .collect(),
            start_time: series.starts.format("%H:%M").to_string(),
            end_time: series.ends.format("%H:%M").to_string(),
            first_date: series.first_date.to_string(),
            weeks: series.weeks,
            occurrences: occurrences
                .iter()
                .map(|r| ReservationView::new(r, tz))
                .collect(),
        }
    }
}

#[utoipa::path(
    post, path = "/api/secure/reservation-series",
    tag = "Reservations", operation_id = "createReservationSeries",
    summary = "Reserve a seat every week on the same days and hours",
    description = "Books every occurrence (each listed weekday in the `weeks` weeks from `first_date`, `start_time`-`end_time` local time) in one decision: all of them or none. When some dates are taken the answer is 409 naming each of them. Each occurrence is then an ordinary reservation (cancel one with `DELETE /api/secure/reservations/{id}`). Occurrences count against the separate limit of series occurrences per member, one each. With an `Idempotency-Key` header a retry returns the first result.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint", example = "7f1c2d")),
    request_body = CreateSeries,
    responses(
        (status = 201, description = "Every occurrence is reserved (or the first result of an idempotent retry)", body = SeriesView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown seat", body = ErrorBody, example = json!({"detail": "Seat 'Z9' does not exist"})),
        (status = 409, description = "Some dates cannot be booked (each named), so none was; or the seat is out of service, or the series limit would be passed", body = SeriesConflictBody, example = json!({"detail": "1 of the series' dates cannot be booked, so none was", "conflicts": [{"date": "2026-12-09", "occurrence": {"start": "2026-12-09T09:00:00+07:00", "end": "2026-12-09T12:00:00+07:00"}, "detail": "Seat is already reserved for an overlapping interval", "conflict": {"start": "2026-12-09T10:00:00+07:00", "end": "2026-12-09T11:00:00+07:00"}}]})),
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
    Keyed { body, key }: Keyed<CreateSeries>,
) -> Result<(StatusCode, Json<SeriesView>), ApiError> {
    let tz = state.settings.calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, SCOPE));
    let replay = async |created| match created {
        // The key points at the series' first occurrence.
        Created::Reservation(id) => {
            let first = state.db.reservation(id).await?.ok_or_else(lost)?;
            let (series, occurrences) = stored(&state, first.series.ok_or_else(lost)?).await?;
            let series = series.ok_or_else(lost)?;
            Ok((
                StatusCode::CREATED,
                Json(SeriesView::new(&series, &occurrences, tz)),
            ))
        }
        _ => Err(lost()),
    };
    let reserve = async |tag| {
        let seat = seat_number(&body.seat_number)?;
        let calendar = &state.settings.calendar;
        let now = state.engine.clock().now();
        let pattern = WeeklyPattern::parse(
            calendar,
            &body.weekdays,
            &body.start_time,
            &body.end_time,
            &body.first_date,
            body.weeks,
            now,
        )?;
        let occurrences = pattern.occurrences(calendar, now)?;
        let series = ReservationSeries {
            id: Uuid::now_v7(),
            user_id: user.id,
            seat,
            zone: pica_actors::ZoneId(String::new()),
            weekdays: pattern.weekdays,
            starts: pattern.starts,
            ends: pattern.ends,
            first_date: pattern.first_date,
            weeks: pattern.weeks,
            created_at: now,
        };
        let made = state
            .engine
            .reserve_series(SeriesRequest {
                series: series.clone(),
                occurrences,
                idempotency_key: tag,
            })
            .await
            .map_err(|e| ApiError::engine(e, tz))?;
        let series = ReservationSeries {
            zone: made[0].zone.clone(),
            ..series
        };
        debug!(series = %series.id, occurrences = made.len(), "series reserved");
        Ok((
            StatusCode::CREATED,
            Json(SeriesView::new(&series, &made, tz)),
        ))
    };
    once(&state, tag, replay, reserve).await
}

/// A stored series and its occurrences.
async fn stored(
    state: &AppState,
    id: SeriesId,
) -> Result<(Option<ReservationSeries>, Vec<Reservation>), ApiError> {
    let series = state.db.series(id).await?;
    let occurrences = match &series {
        Some(_) => state.db.series_occurrences(id).await?,
        None => Vec::new(),
    };
    Ok((series, occurrences))
}

/// The caller's series `raw`; someone else's is reported exactly like a missing one.
pub(super) async fn own_series(
    state: &AppState,
    user: &AuthUser,
    raw: &str,
) -> Result<(ReservationSeries, Vec<Reservation>), ApiError> {
    let missing = || ApiError::NotFound("Series not found".into());
    let id = Uuid::parse_str(raw).map_err(|_| missing())?;
    match stored(state, id).await? {
        (Some(series), occurrences) if series.user_id == user.id => Ok((series, occurrences)),
        _ => Err(missing()),
    }
}

#[utoipa::path(
    get, path = "/api/secure/reservation-series/{id}",
    tag = "Reservations", operation_id = "getReservationSeries",
    summary = "One of your weekly series, with every occurrence",
    params(("id" = String, Path, description = "Series id (UUID)")),
    responses(
        (status = 200, description = "The series", body = SeriesView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Series not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<SeriesView>, ApiError> {
    let (series, occurrences) = own_series(&state, &user, &id).await?;
    let tz = state.settings.calendar.timezone;
    Ok(Json(SeriesView::new(&series, &occurrences, tz)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CancelFrom {
    /// Cancel the occurrences on this local date and after (default: every one that
    /// has not ended)
    #[param(format = Date, example = "2026-12-14")]
    from: Option<String>,
}

#[utoipa::path(
    delete, path = "/api/secure/reservation-series/{id}",
    tag = "Reservations", operation_id = "cancelReservationSeries",
    summary = "Cancel the rest of a weekly series",
    description = "Cancels every occurrence that is still confirmed and has not ended, on `from` and after. Occurrences checked in, finished or already cancelled stay as they are. Answers the series as it is now.",
    params(("id" = String, Path, description = "Series id (UUID)"), CancelFrom),
    responses(
        (status = 200, description = "The series after the cancellation", body = SeriesView),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Series not found"})),
        (status = 409, description = "An occurrence is being changed by another request; retry", body = ConflictBody),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn cancel_rest(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(query): Query<CancelFrom>,
) -> Result<Json<SeriesView>, ApiError> {
    let (series, mut occurrences) = own_series(&state, &user, &id).await?;
    let tz = state.settings.calendar.timezone;
    let from = match &query.from {
        Some(raw) => Some(
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
                ApiError::Unprocessable(format!("Invalid date {raw:?}: expected YYYY-MM-DD"))
            })?,
        ),
        None => None,
    };
    let now = state.engine.clock().now();
    let due: Vec<usize> = occurrences
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let date = r.interval.start.with_timezone(&tz).date_naive();
            r.status == ReservationStatus::Confirmed
                && r.interval.end > now
                && from.is_none_or(|from| date >= from)
        })
        .map(|(i, _)| i)
        .collect();
    // One zone owns them all; it decides each cancel in turn and the unit of work
    // commits them together.
    let cancels = due.iter().map(|&i| {
        state.engine.change_status(
            &series.zone,
            occurrences[i].id,
            user.id,
            ReservationStatus::Cancelled,
        )
    });
    let answers = futures_util::future::join_all(cancels).await;
    for (&i, answer) in due.iter().zip(answers) {
        match answer {
            Ok(cancelled) => occurrences[i] = cancelled,
            // It ended or changed meanwhile: the stored row says what it is now.
            Err(EngineError::ReservationNotFound | EngineError::AlreadyEnded) => {
                if let Some(now) = state.db.reservation(occurrences[i].id).await? {
                    occurrences[i] = now;
                }
            }
            Err(other) => return Err(ApiError::engine(other, tz)),
        }
    }
    debug!(series = %series.id, cancelled = due.len(), "series cancelled");
    Ok(Json(SeriesView::new(&series, &occurrences, tz)))
}

#[utoipa::path(
    get, path = "/api/secure/reservation-series/{id}/calendar",
    tag = "Reservations", operation_id = "reservationSeriesCalendar",
    summary = "A weekly series as one recurring iCalendar (.ics) entry",
    description = "One event with the series' recurrence rule (`RRULE`, weekly, by day, with the count of occurrences) in the space's time zone; cancelled occurrences are left out with `EXDATE`. The `UID` stays the same for the series.",
    params(("id" = String, Path, description = "Series id (UUID)")),
    responses(
        (status = 200, description = "The calendar file", content_type = "text/calendar", body = String),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Series not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn series_calendar(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (series, occurrences) = own_series(&state, &user, &id).await?;
    let file = format!(
        "pica-{}-weekly-from-{}.ics",
        series.seat.0, series.first_date
    );
    super::calendar_file::series_response(&state, &series, &occurrences, &file)
}
