//! A QR code per seat, for a label on the desk: it opens the seat's page in the web app
//! (`/app/seat/{seat}`), where a member checks in with one tap or books the seat.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qrcode::QrCode;
use qrcode::render::svg;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::doc::r;
use crate::auth::cookie::over_https;
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Path;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(seat_code))
}

/// The address a code points at: the seat's page at the server's public address
/// (`PICA_PUBLIC_URL`), or else on the host the request was sent to.
pub fn seat_page(state: &AppState, headers: &HeaderMap, seat: &str) -> Result<String, ApiError> {
    Ok(format!("{}/app/seat/{seat}", origin(state, headers)?))
}

/// `scheme://host` members reach the server at: `PICA_PUBLIC_URL` when it is set (behind
/// a proxy the request's own host may be an internal name), else the request's host.
pub fn origin(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = &state.settings.public_url {
        return Ok(url.clone());
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .ok_or_else(|| {
            ApiError::Rejected(
                StatusCode::BAD_REQUEST,
                "The request's Host is not a host name".into(),
            )
        })?;
    let scheme = if over_https(headers) { "https" } else { "http" };
    Ok(format!("{scheme}://{host}"))
}

/// The code as SVG, black on white with its quiet zone.
pub fn render(text: &str) -> Result<String, ApiError> {
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("QR code for {text}: {e}")))?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[utoipa::path(
    get, path = "/api/public/seats/{seat}/qr",
    tag = "Zones", operation_id = "seatCode",
    summary = "A QR code (SVG) that opens the seat's page in the web app",
    params(("seat" = String, Path, description = "Seat number", example = "A3")),
    responses(
        (status = 200, description = "The code", content_type = "image/svg+xml", body = String),
        (status = 400, response = r::BadRequest),
        (status = 404, description = "Unknown seat", body = ErrorBody, example = json!({"detail": "Seat 'Z9' does not exist"})),
    ),
)]
async fn seat_code(
    State(state): State<AppState>,
    Path(seat): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state
        .engine
        .zone_of(&pica_actors::SeatNumber(seat.clone()))
        .is_none()
    {
        return Err(ApiError::NotFound(format!("Seat '{seat}' does not exist")));
    }
    let svg = render(&seat_page(&state, &headers, &seat)?)?;
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static("image/svg+xml")),
        (
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ),
    ];
    Ok((headers, svg).into_response())
}
