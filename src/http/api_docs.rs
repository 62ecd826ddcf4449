//! The API's own description: the OpenAPI 3.1 document, derived at startup from the
//! handlers' `#[utoipa::path]` annotations and their types' `ToSchema` (see `doc.rs`),
//! and an interactive page (`static/docs.html`) that renders it with no network access.

use std::sync::LazyLock;

use super::doc::r;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// Rendered once: the document depends only on the code.
static OPENAPI: LazyLock<String> = LazyLock::new(|| {
    super::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
});
const DOCS_PAGE: &str = include_str!("../../static/docs.html");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi))
        .routes(routes!(docs))
}

#[utoipa::path(
    get, path = "/openapi.json",
    tag = "Operations", operation_id = "openapi",
    summary = "This OpenAPI document",
    responses(
        (status = 200, description = "OpenAPI 3.1 document", body = Object),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI.as_str(),
    )
        .into_response()
}

#[utoipa::path(
    get, path = "/docs",
    tag = "Operations", operation_id = "docs",
    summary = "Interactive API documentation (HTML, works offline)",
    responses(
        (status = 200, description = "HTML page", body = String, content_type = "text/html"),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn docs() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // Everything the page needs is inline or same-origin.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
                ),
            ),
        ],
        DOCS_PAGE,
    )
        .into_response()
}
