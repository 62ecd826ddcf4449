//! Welcome messages, registration and login.

use super::doc::r;
use std::net::{IpAddr, SocketAddr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::extract::{ConnectInfo, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use utoipa::ToSchema;

use super::doc::Message;
use crate::auth::TokenPair;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::Json;
use crate::storage::{DbError, NewUser, Role};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(welcome))
        .routes(routes!(public_welcome))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
}

#[utoipa::path(
    get, path = "/",
    tag = "Public", operation_id = "root",
    summary = "Welcome message",
    responses(
        (status = 200, description = "Welcome", body = Message, example = json!({"message": "Welcome to the Coworking Space API!"})),
        (status = 303, description = "A browser (`Accept: text/html`) is sent to the web app at `/app/`"),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn welcome(headers: HeaderMap) -> Response {
    // A person who opens the server's address in a browser wants the app; API clients
    // (which do not ask for HTML) keep the welcome message.
    let wants_html = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        return Redirect::to("/app/").into_response();
    }
    Json(Message::new("Welcome to the Coworking Space API!")).into_response()
}

#[utoipa::path(
    get, path = "/api/public/",
    tag = "Public", operation_id = "publicIndex",
    summary = "Welcome message of the public API",
    responses(
        (status = 200, description = "Welcome", body = Message, example = json!({"message": "Welcome to Coworking Space API"})),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn public_welcome() -> Json<Message> {
    Json(Message::new("Welcome to Coworking Space API"))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = RegisterRequest)]
struct Register {
    #[schema(min_length = 3, max_length = 32, pattern = "^[A-Za-z0-9_.-]+$")]
    username: String,
    #[schema(format = Email)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
}

#[derive(Serialize, ToSchema)]
struct Registered {
    message: &'static str,
    username: String,
}

/// A username: 3-32 characters of letters, digits, `_`, `.` or `-`.
pub struct Username(pub String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let ok = (3..=32).contains(&raw.chars().count())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ApiError::Unprocessable(
                "username must be 3-32 characters: letters, digits, '_', '.' or '-'".into(),
            ))
        }
    }
}

pub struct Email(pub String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        let valid = raw.len() <= 254
            && raw.split_once('@').is_some_and(|(local, domain)| {
                plausible_local_part(local) && plausible_domain(domain)
            });
        if valid {
            Ok(Self(raw.to_lowercase()))
        } else {
            Err(ApiError::Unprocessable(
                "email is not a valid address".into(),
            ))
        }
    }
}

/// The part before the `@`: 1-64 of the characters mail systems accept unquoted, with
/// no leading, trailing or doubled dot. Quoted local parts are legal but not accepted:
/// nobody books a desk from one, and they are how odd bytes get into addresses.
fn plausible_local_part(local: &str) -> bool {
    (1..=64).contains(&local.len())
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
}

/// The part after the `@`: at least two dot-separated labels of letters, digits and
/// inner hyphens (1-63 each), the last one alphabetic. Internationalised domains are
/// accepted in their ASCII (`xn--`) form.
fn plausible_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| {
            tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic())
                || tld.starts_with("xn--")
        })
}

pub struct Password(pub String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, ApiError> {
        let n = raw.chars().count();
        if !(8..=128).contains(&n) {
            return Err(ApiError::Unprocessable(
                "password must be 8-128 characters".into(),
            ));
        }
        if raw.chars().all(|c| c.is_ascii_digit()) || raw.chars().all(char::is_alphabetic) {
            return Err(ApiError::Unprocessable(
                "password must mix letters with digits or symbols".into(),
            ));
        }
        Ok(Self(raw))
    }
}

#[utoipa::path(
    post, path = "/api/public/register",
    tag = "Public", operation_id = "register",
    summary = "Register a member account",
    description = "Username 3-32 characters of letters, digits, `_`, `.`, `-`; password 8-128 characters mixing letters with digits or symbols.",
    request_body(content = Register, example = json!({"username": "ana", "email": "ana@example.com", "password": "sunny-day-42"})),
    responses(
        (status = 201, description = "Registered", body = Registered, example = json!({"message": "User registered successfully", "username": "ana"})),
        (status = 400, response = r::BadRequest),
        (status = 409, description = "Username already taken", body = ErrorBody, example = json!({"detail": "Username already registered"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all, fields(username = %body.username))]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let username = Username::parse(&body.username)?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(body.password)?;
    let hash = state.auth.passwords.hash(password.0).await?;
    let user = NewUser {
        username: &username.0,
        email: &email.0,
        password_hash: &hash,
        role: Role::Member,
        created_at: Utc::now(),
    };
    match state.db.create_user(user).await {
        Ok(id) => {
            info!(user_id = id, "user registered");
            let body = Registered {
                message: "User registered successfully",
                username: username.0,
            };
            Ok((StatusCode::CREATED, Json(body)))
        }
        Err(DbError::Conflict) => Err(ApiError::Conflict {
            detail: "Username already registered".into(),
            conflict: None,
        }),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
pub(crate) struct Login {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// Checks the password and issues tokens. Each attempt first reserves its place under
/// the throttle (per username and address, per address, per username from anywhere);
/// past a limit, 429 with `Retry-After` before any hashing.
#[utoipa::path(
    post, path = "/api/public/login",
    tag = "Public", operation_id = "login",
    summary = "Sign in: get an access token and a refresh token",
    description = "Failed logins are throttled per username and per client address (429 with `Retry-After`).",
    request_body(content = Login, example = json!({"username": "ana", "password": "sunny-day-42"})),
    responses(
        (status = 200, description = "Signed in", body = TokenPair),
        (status = 400, response = r::BadRequest),
        (status = 401, description = "Wrong credentials", body = ErrorBody, example = json!({"detail": "Invalid username or password"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 429, response = r::TooManyRequests),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all, fields(username = %body.username, client = %client.ip()))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(sign_in(&state, client.ip(), body).await?))
}

/// Checks a username and password under the login throttle and issues a token pair.
/// The API's login and the web app's session both sign in through here.
pub(crate) async fn sign_in(
    state: &AppState,
    client: IpAddr,
    body: Login,
) -> Result<TokenPair, ApiError> {
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let attempt = state.auth.begin_login(&body.username, client)?;
    let checked = async {
        let user = state.db.find_user_by_name(&body.username).await?;
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        // An unknown username costs the same argon2 run as a wrong password.
        let ok = state.auth.passwords.verify(body.password, hash).await?;
        Ok::<_, ApiError>(user.filter(|_| ok))
    }
    .await;
    let user = match checked {
        Ok(Some(user)) => {
            attempt.succeeded();
            user
        }
        Ok(None) => {
            attempt.failed();
            info!("login refused");
            return Err(ApiError::InvalidCredentials);
        }
        Err(err) => {
            // No answer about the password was reached (hashing pool full, database
            // down): the attempt is given back.
            attempt.refund();
            return Err(err);
        }
    };
    state.auth.issue(user.id, user.token_version).await
}

#[derive(Deserialize, ToSchema)]
#[schema(as = RefreshRequest)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token; the old
/// one stops working.
#[utoipa::path(
    post, path = "/api/public/refresh",
    tag = "Public", operation_id = "refresh",
    summary = "Exchange a refresh token for a new token pair",
    description = "Refresh tokens rotate: the one sent stops working.",
    request_body(content = RefreshBody, example = json!({"refresh_token": "..."})),
    responses(
        (status = 200, description = "A new token pair", body = TokenPair),
        (status = 400, response = r::BadRequest),
        (status = 401, description = "Invalid, expired, used or revoked refresh token", body = ErrorBody, example = json!({"detail": "Invalid or expired token"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
)]
#[instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(state.auth.refresh(body.refresh_token.trim()).await?))
}
