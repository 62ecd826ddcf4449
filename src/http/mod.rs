//! The HTTP edge: one router per feature, merged here.

mod account;
mod admin;
mod api_docs;
mod books;
mod bundles;
mod drugs;
mod events;
mod health;
pub mod listener;
mod idempotency;
mod live;
pub mod metrics;
mod paging;
mod public;
mod reservations;
pub use idempotency::IdempotencyLocks;
pub use public::{Email, Password, Username};
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
        .merge(account::router())
        .merge(admin::router())
        .merge(drugs::router())
        .merge(events::router())
        .merge(live::router())
        .merge(books::router())
        .merge(bundles::router())
        .merge(api_docs::router())
        .merge(metrics::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
}
