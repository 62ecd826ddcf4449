//! The HTTP edge: one router per feature, merged here.

mod account;
mod admin;
mod api_docs;
mod books;
mod bundles;
pub(crate) mod calendar_file;
mod check_in;
pub mod doc;
mod drugs;
pub mod error;
mod events;
pub mod extract;
mod health;
mod idempotency;
pub mod listener;
pub mod load_shed;
pub mod metrics;
mod paging;
pub(crate) mod public;
mod reservation_series;
mod reservations;
pub mod route_guard;
mod seat_codes;
mod space;
mod state;
pub use events::streams::{EventStreams, StreamSettings};
pub use idempotency::IdempotencyLocks;
pub use public::{Email, Password, Username};
pub use state::{AppState, Shared};
pub use views::{IntervalView, local};
mod views;
mod waitlist;
mod zones;

use axum::Router;
use axum::http::StatusCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::http::error::ApiError;

/// Every route, each registered together with its OpenAPI operation.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .merge(public::router())
        .merge(zones::router())
        .merge(space::router())
        .merge(seat_codes::router())
        .merge(reservations::router())
        .merge(reservation_series::router())
        .merge(calendar_file::router())
        .merge(health::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(drugs::router())
        .merge(events::router())
        .merge(check_in::router())
        .merge(waitlist::router())
        .merge(books::router())
        .merge(bundles::router())
        .merge(api_docs::router())
        .merge(metrics::router())
}

pub fn router() -> Router<AppState> {
    documented()
        .split_for_parts()
        .0
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
}

/// The OpenAPI document of [`router`], derived from the same route table.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().split_for_parts().1
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::Rejected(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed".into())
}
