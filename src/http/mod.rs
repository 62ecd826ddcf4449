//! The HTTP edge: one router per feature, merged here.

mod health;
mod public;
mod reservations;
pub use reservations::IdempotencyLocks;
pub use views::local;
mod views;
mod zones;

use axum::Router;
use axum::http::StatusCode;

use crate::app::AppState;
use crate::error::ApiError;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(public::router())
        .merge(zones::router())
        .merge(reservations::router())
        .merge(health::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
}
