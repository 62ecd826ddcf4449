//! The library: the public catalog (read from the book stock actor's memory), book
//! reservations (create, list mine, read, cancel) and the admin pick-up.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono_tz::Tz;
use pica_actors::{
    BookCondition, BookId, BookQuery, BookReservation, BookReservationStatus, BookView, Created,
};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use uuid::Uuid;

use super::idempotency::{Keyed, lost, once};
use super::paging::{ListQuery, Page, page_limit, status_filter, uuid_cursor};
use super::views::local;
use crate::app::AppState;
use crate::auth::{AdminUser, AuthUser};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::storage::BookReservationQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/public/books", get(catalog))
        .route("/api/public/books/{id}", get(book))
        .route("/api/secure/book-reservations", post(create))
        .route(
            "/api/secure/book-reservations/{id}",
            get(read).delete(cancel),
        )
        .route("/api/secure/my-book-reservations", get(mine))
        .route("/api/admin/book-reservations/{id}/pick-up", post(pick_up))
}

/// The scope of idempotency keys on `POST /api/secure/book-reservations`.
const SCOPE: &str = "book-reservations";

/// Most copies one reservation may hold.
pub const MAX_COPIES: u32 = 20;
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Serialize)]
pub struct BookJson {
    pub id: BookId,
    pub title: String,
    pub author: String,
    pub isbn: Option<String>,
    pub condition: BookCondition,
    pub total_copies: u32,
    pub reserved_copies: u32,
    pub available_copies: u32,
    pub price_cents: Option<i64>,
}

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

#[derive(Debug, Serialize)]
pub struct BookReservationJson {
    pub id: String,
    pub book_id: BookId,
    pub copies: u32,
    pub status: BookReservationStatus,
    pub created_at: String,
    /// Uncollected after this, the reservation expires and its copies return.
    pub expires_at: String,
    /// The seat reservation booked together with it in a bundle.
    pub seat_reservation_id: Option<String>,
}

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

#[derive(Deserialize)]
struct CatalogQuery {
    q: Option<String>,
    condition: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

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
#[derive(Deserialize)]
pub struct BookRequest {
    pub book_id: BookId,
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
/// Someone else's reservation is reported exactly like a missing one (invariant 5).
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

#[instrument(skip_all, fields(user_id = user.id))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<BookReservationJson>, ApiError> {
    let r = stored(&state, &id, Some(user.id)).await?;
    change(&state, r, Some(user.id), BookReservationStatus::Cancelled).await
}

#[instrument(skip_all, fields(admin = admin.0.id))]
async fn pick_up(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<String>,
) -> Result<Json<BookReservationJson>, ApiError> {
    let r = stored(&state, &id, None).await?;
    change(&state, r, None, BookReservationStatus::PickedUp).await
}

#[instrument(skip_all, fields(user_id = user.id))]
async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<BookReservationJson>>, ApiError> {
    let status = status_filter(
        query.status.as_deref(),
        BookReservationStatus::parse,
        "reserved, picked_up, cancelled, expired",
    )?;
    let limit = page_limit(query.limit)?;
    let before = uuid_cursor(query.cursor.as_deref())?;
    let rows = state
        .db
        .book_reservations_of(&BookReservationQuery {
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
        |r| BookReservationJson::new(r, tz),
    )))
}
