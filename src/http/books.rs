//! The library: the public catalog (read from the book stock actor's memory), book
//! reservations (create, list mine, read, cancel) and the admin pick-up.

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use chrono_tz::Tz;
use pica_actors::{
    BookCondition, BookId, BookQuery, BookReservation, BookReservationStatus, BookView, Created,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::Paged;
use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, OwnListing, Page, page_limit};
use super::views::local;
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::AdminUser;
use crate::http::extract::de;
use crate::http::extract::{Json, Path, Query};
use crate::storage::BookReservationQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(catalog))
        .routes(routes!(book))
        .routes(routes!(create))
        .routes(routes!(read, cancel))
        .routes(routes!(mine))
        .routes(routes!(pick_up))
}

/// The scope of idempotency keys on `POST /api/secure/book-reservations`.
const SCOPE: &str = "book-reservations";

/// Most copies one reservation may hold.
pub const MAX_COPIES: u32 = 20;
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Book)]
pub struct BookJson {
    #[schema(value_type = i64)]
    pub id: BookId,
    pub title: String,
    pub author: String,
    #[schema(required = true)]
    pub isbn: Option<String>,
    pub condition: BookCondition,
    pub total_copies: u32,
    pub reserved_copies: u32,
    pub available_copies: u32,
    #[schema(required = true)]
    pub price_cents: Option<i64>,
}

impl Paged for BookJson {}

pub type BookPage = Page<BookJson>;

impl From<BookView> for BookJson {
    fn from(view: BookView) -> Self {
        let b = view.book;
        Self {
            id: b.id,
            title: b.title,
            author: b.author,
            isbn: b.isbn,
            condition: b.condition,
            total_copies: b.total_copies,
            reserved_copies: b.reserved_copies,
            available_copies: view.available_copies,
            price_cents: b.price_cents,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = BookReservation)]
pub struct BookReservationJson {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(value_type = i64)]
    pub book_id: BookId,
    pub copies: u32,
    pub status: BookReservationStatus,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Uncollected after this, the copies return
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The seat reservation of the same bundle
    #[schema(required = true)]
    pub seat_reservation_id: Option<String>,
}

impl Paged for BookReservationJson {}

pub type BookReservationPage = Page<BookReservationJson>;

impl BookReservationJson {
    pub fn new(r: &BookReservation, tz: Tz) -> Self {
        Self {
            id: r.id.to_string(),
            book_id: r.book_id,
            copies: r.copies,
            status: r.status,
            created_at: local(r.created_at, tz),
            expires_at: local(r.expires_at, tz),
            seat_reservation_id: r.seat_reservation.map(|id| id.to_string()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CatalogQuery {
    /// Words to find in title or author (at most 200 characters)
    q: Option<String>,
    /// Only `new` or `pre_loved` copies
    #[param(value_type = Option<BookCondition>)]
    condition: Option<String>,
    /// Page size, 1-100 (default 50)
    #[serde(default, deserialize_with = "de::query_int")]
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[serde(default, deserialize_with = "de::non_empty")]
    cursor: Option<String>,
}

#[utoipa::path(
    get, path = "/api/public/books",
    tag = "Books", operation_id = "listBooks",
    summary = "The book catalog with available copies",
    params(CatalogQuery),
    responses(
        (status = 200, description = "A page of books", body = BookPage),
        (status = 400, response = r::BadRequest),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all)]
async fn catalog(
    State(state): State<AppState>,
    Query(query): Query<CatalogQuery>,
) -> Result<Json<Page<BookJson>>, ApiError> {
    let q = query
        .q
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty());
    if q.as_ref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::Unprocessable(format!(
            "q must be at most {MAX_QUERY_CHARS} characters"
        )));
    }
    let condition = query
        .condition
        .as_deref()
        .map(|c| {
            BookCondition::parse(c).ok_or_else(|| {
                ApiError::Unprocessable("condition must be `new` or `pre_loved`".into())
            })
        })
        .transpose()?;
    let limit = page_limit(query.limit)?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<BookId>()
                .map_err(|_| ApiError::Unprocessable("cursor is not valid".into()))
        })
        .transpose()?;
    let mut books = state
        .engine
        .books(BookQuery {
            q,
            condition,
            after,
            limit: limit as usize + 1,
        })
        .await?;
    let next_cursor = if books.len() > limit as usize {
        books.truncate(limit as usize);
        books.last().map(|b| b.book.id.to_string())
    } else {
        None
    };
    Ok(Json(Page {
        items: books.into_iter().map(BookJson::from).collect(),
        next_cursor,
    }))
}

fn not_found() -> ApiError {
    ApiError::NotFound("Book not found".into())
}

#[utoipa::path(
    get, path = "/api/public/books/{id}",
    tag = "Books", operation_id = "getBook",
    summary = "One book of the catalog",
    params(("id" = i64, Path, description = "Book id", example = 1)),
    responses(
        (status = 200, description = "The book", body = BookJson),
        (status = 400, response = r::BadRequest),
        (status = 404, description = "Unknown book", body = ErrorBody, example = json!({"detail": "Book not found"})),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all)]
async fn book(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<BookJson>, ApiError> {
    let id: BookId = id.parse().map_err(|_| not_found())?;
    let view = state.engine.book(id).await?.ok_or_else(not_found)?;
    Ok(Json(view.into()))
}

/// `{book_id, copies}`; `copies` defaults to 1.
#[derive(Deserialize, ToSchema)]
pub struct BookRequest {
    #[serde(deserialize_with = "de::int")]
    #[schema(value_type = i64)]
    pub book_id: BookId,
    #[serde(default, deserialize_with = "de::opt_int")]
    #[schema(nullable = false, minimum = 1, maximum = 20, default = 1)]
    pub copies: Option<u32>,
}

impl BookRequest {
    /// The copies asked for, validated.
    pub fn copies(&self) -> Result<u32, ApiError> {
        let copies = self.copies.unwrap_or(1);
        if (1..=MAX_COPIES).contains(&copies) {
            Ok(copies)
        } else {
            Err(ApiError::Unprocessable(format!(
                "copies must be between 1 and {MAX_COPIES}"
            )))
        }
    }
}

#[utoipa::path(
    post, path = "/api/secure/book-reservations",
    tag = "Books", operation_id = "reserveBook",
    summary = "Reserve copies of a book",
    description = "Holds the copies until picked up, cancelled, or the hold expires.",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint; a retry with the same key and body gets the first result back (for API keys: 409 naming the first key, without its secret); the same key with another body gets 422", example = "7f1c2d")),
    request_body(content = BookRequest, example = json!({"book_id": 1, "copies": 1})),
    responses(
        (status = 201, description = "Reserved", body = BookReservationJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown book", body = ErrorBody, example = json!({"detail": "Book not found"})),
        (status = 409, description = "Not enough copies available", body = ErrorBody, example = json!({"detail": "Not enough copies available: 0 left"})),
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
    Keyed { body, key }: Keyed<BookRequest>,
) -> Result<(StatusCode, Json<BookReservationJson>), ApiError> {
    let tz = state.settings.calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, SCOPE));
    let replay = async |created| match created {
        Created::BookReservation(id) => {
            let first = state.db.book_reservation(id).await?.ok_or_else(lost)?;
            Ok((
                StatusCode::CREATED,
                Json(BookReservationJson::new(&first, tz)),
            ))
        }
        _ => Err(lost()),
    };
    let reserve = async |tag| {
        let copies = body.copies()?;
        let reservation = state
            .engine
            .reserve_book(user.id, body.book_id, copies, tag)
            .await?;
        info!(reservation = %reservation.id, book = reservation.book_id, copies, "book reserved");
        Ok((
            StatusCode::CREATED,
            Json(BookReservationJson::new(&reservation, tz)),
        ))
    };
    once(&state, tag, replay, reserve).await
}

fn reservation_not_found() -> ApiError {
    ApiError::NotFound("Book reservation not found".into())
}

fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| reservation_not_found())
}

/// The stored reservation `id` if `owner` may see it (`None`: any owner, for admins).
/// Someone else's reservation is reported exactly like a missing one
/// (docs/architecture.md, invariant 5).
async fn stored(
    state: &AppState,
    id: &str,
    owner: Option<pica_actors::UserId>,
) -> Result<BookReservation, ApiError> {
    let id = parse_id(id)?;
    match state.db.book_reservation(id).await? {
        Some(r) if owner.is_none_or(|u| r.user_id == u) => Ok(r),
        _ => Err(reservation_not_found()),
    }
}

#[utoipa::path(
    get, path = "/api/secure/book-reservations/{id}",
    tag = "Books", operation_id = "getBookReservation",
    summary = "One of your book reservations",
    params(("id" = String, Path, description = "Book reservation id (UUID)")),
    responses(
        (status = 200, description = "The book reservation", body = BookReservationJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Book reservation not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<BookReservationJson>, ApiError> {
    let r = stored(&state, &id, Some(user.id)).await?;
    Ok(Json(BookReservationJson::new(
        &r,
        state.settings.calendar.timezone,
    )))
}

/// Moves a stored reservation to `to` through the book stock actor.
async fn change(
    state: &AppState,
    stored: BookReservation,
    owner: Option<pica_actors::UserId>,
    to: BookReservationStatus,
) -> Result<Json<BookReservationJson>, ApiError> {
    if !stored.status.is_active() {
        return Err(ApiError::Conflict {
            detail: format!("Book reservation is already {}", stored.status),
            conflict: None,
        });
    }
    let changed = state
        .engine
        .change_book_reservation(stored.id, owner, to)
        .await?;
    info!(reservation = %changed.id, status = %changed.status, "book reservation changed");
    Ok(Json(BookReservationJson::new(
        &changed,
        state.settings.calendar.timezone,
    )))
}

#[utoipa::path(
    delete, path = "/api/secure/book-reservations/{id}",
    tag = "Books", operation_id = "cancelBookReservation",
    summary = "Cancel a book reservation",
    params(("id" = String, Path, description = "Book reservation id (UUID)")),
    responses(
        (status = 200, description = "Cancelled", body = BookReservationJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Book reservation not found"})),
        (status = 409, description = "Not active", body = ErrorBody, example = json!({"detail": "Book reservation is already picked_up"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<BookReservationJson>, ApiError> {
    let r = stored(&state, &id, Some(user.id)).await?;
    change(&state, r, Some(user.id), BookReservationStatus::Cancelled).await
}

#[utoipa::path(
    post, path = "/api/admin/book-reservations/{id}/pick-up",
    tag = "Admin", operation_id = "pickUpBookReservation",
    summary = "Mark a book reservation picked up",
    params(("id" = String, Path, description = "Book reservation id (UUID)")),
    responses(
        (status = 200, description = "Picked up", body = BookReservationJson),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::AdminRequired),
        (status = 404, description = "Not found", body = ErrorBody, example = json!({"detail": "Book reservation not found"})),
        (status = 409, description = "Not active", body = ErrorBody, example = json!({"detail": "Book reservation is already cancelled"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(admin = admin.0.id))]
async fn pick_up(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<BookReservationJson>, ApiError> {
    let r = stored(&state, &id, None).await?;
    change(&state, r, None, BookReservationStatus::PickedUp).await
}

#[utoipa::path(
    get, path = "/api/secure/my-book-reservations",
    tag = "Books", operation_id = "myBookReservations",
    summary = "Your book reservations, newest first",
    params(("status" = Option<BookReservationStatus>, Query, description = "Only this status"), ListQuery),
    responses(
        (status = 200, description = "A page of book reservations", body = BookReservationPage),
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
) -> Result<Json<Page<BookReservationJson>>, ApiError> {
    let listing = OwnListing::parse(
        &query,
        BookReservationStatus::parse,
        "reserved, picked_up, cancelled, expired",
    )?;
    let rows = state
        .db
        .book_reservations_of(&BookReservationQuery {
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
        |r| BookReservationJson::new(r, tz),
    )))
}
