//! The browser's session: signing in sets the two cookies of `auth::cookie`, a refresh
//! rotates both, signing out revokes the refresh token and clears them. The bodies
//! answered here hold no credential, so a page script never has one to leak.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use std::time::Duration;

use crate::auth::TokenPair;
use crate::auth::cookie::{self, REFRESH, REFRESH_PATH, SESSION};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::http::public::{Login, sign_in};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/app/session", post(start).delete(end))
        .route("/app/session/refresh", post(refresh))
}

/// What the page learns about its session: when to refresh it, never the tokens.
#[derive(Serialize)]
struct Session {
    expires_in: u64,
}

/// Signs in with a username and password (throttled exactly like the API's login).
async fn start(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<Login>,
) -> Result<Response, ApiError> {
    cookie::same_origin_headers(&headers)?;
    let pair = sign_in(&state, client.ip(), body).await?;
    Ok(with_cookies(&state, &headers, pair))
}

/// Rotates the session: the refresh cookie is spent and both cookies are replaced.
async fn refresh(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    cookie::same_origin_headers(&headers)?;
    let token = cookie::read(&headers, REFRESH).ok_or(ApiError::InvalidToken)?;
    let pair = state.auth.refresh(token).await?;
    Ok(with_cookies(&state, &headers, pair))
}

/// Signs out: the refresh token is revoked and both cookies are removed.
async fn end(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    cookie::same_origin_headers(&headers)?;
    if let Some(token) = cookie::read(&headers, REFRESH) {
        state.auth.end_session(token).await?;
    }
    let secure = cookie::over_https(&headers);
    let mut response = StatusCode::NO_CONTENT.into_response();
    let set = response.headers_mut();
    set.append(
        SET_COOKIE,
        cookie::set(SESSION, "", "/", Duration::ZERO, secure),
    );
    set.append(
        SET_COOKIE,
        cookie::set(REFRESH, "", REFRESH_PATH, Duration::ZERO, secure),
    );
    Ok(response)
}

fn with_cookies(state: &AppState, request: &HeaderMap, pair: TokenPair) -> Response {
    let secure = cookie::over_https(request);
    // The access cookie outlives its token a little, so an expired token is presented
    // and answered 401 (which tells the page to refresh) rather than silently missing.
    let access = state.auth.access_ttl();
    let refresh = state.settings.refresh_ttl;
    let mut response = Json(Session {
        expires_in: access.as_secs(),
    })
    .into_response();
    let set = response.headers_mut();
    set.append(
        SET_COOKIE,
        cookie::set(SESSION, &pair.access_token, "/", refresh, secure),
    );
    set.append(
        SET_COOKIE,
        cookie::set(REFRESH, &pair.refresh_token, REFRESH_PATH, refresh, secure),
    );
    response
}
