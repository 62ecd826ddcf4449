//! The web app: pages, scripts and styles embedded in the binary and served under
//! `/app/`, and the browser session (cookies) it signs in with. The app itself talks to
//! the same JSON API and event streams as any other client.

mod assets;
mod security;
mod session;

use axum::Router;
use axum::routing::get;
use tower_http::compression::CompressionLayer;

use crate::http::AppState;

pub use security::{add_security_headers, is_app_page};

/// `/app/…`: the session endpoints and the assets, compressed for clients that accept
/// it. (Compression is on this router only, so an event stream is never buffered by it.)
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(session::router())
        .route("/app", get(assets::to_app))
        .route("/app/", get(assets::page))
        .route("/app/{*path}", get(assets::asset))
        .layer(CompressionLayer::new().gzip(true).br(true))
}
