//! Extractors whose rejections are [`ApiError`]s, so malformed input always gets a JSON
//! `detail` and a 4xx.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;

use crate::error::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let detail = match &rejection {
            JsonRejection::JsonDataError(_) => {
                format!(
                    "Invalid request body: {}",
                    inner_text(&rejection.body_text())
                )
            }
            JsonRejection::JsonSyntaxError(_) => {
                format!("Malformed JSON: {}", inner_text(&rejection.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => {
                "Expected a request with `Content-Type: application/json`".to_string()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => "Request body is too large".to_string(),
            _ => rejection.body_text(),
        };
        ApiError::Rejected(status, detail)
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::Rejected(
            StatusCode::BAD_REQUEST,
            format!("Invalid path: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Rejected(
            StatusCode::BAD_REQUEST,
            format!(
                "Invalid query string: {}",
                inner_text(&rejection.body_text())
            ),
        )
    }
}

/// axum prefixes its messages with a generic sentence; keep the specific part.
fn inner_text(text: &str) -> String {
    text.split_once(": ")
        .map_or(text, |(_, rest)| rest)
        .to_string()
}
