//! Welcome messages, registration and login.

use axum::Router;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::app::AppState;
use crate::auth::TokenPair;
use crate::error::ApiError;
use crate::extract::Json;
use crate::storage::{DbError, NewUser, Role};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { Json(json!({ "message": "Welcome to the Coworking Space API!" })) }),
        )
        .route(
            "/api/public/",
            get(|| async { Json(json!({ "message": "Welcome to Coworking Space API" })) }),
        )
        .route("/api/public/register", post(register))
        .route("/api/public/login", post(login))
        .route("/api/public/refresh", post(refresh))
}

#[derive(Deserialize)]
struct Register {
    username: String,
    email: String,
    password: String,
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

#[instrument(skip_all, fields(username = %body.username))]
async fn register(
    State(state): State<AppState>,
    Json(body): Json<Register>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
            let body = json!({ "message": "User registered successfully", "username": username.0 });
            Ok((StatusCode::CREATED, Json(body)))
        }
        Err(DbError::Conflict) => Err(ApiError::Conflict {
            detail: "Username already registered".into(),
            conflict: None,
        }),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

/// Checks the password and issues tokens. Each attempt first reserves its place under
/// the throttle (per username and address, per address, per username from anywhere);
/// past a limit, 429 with `Retry-After` before any hashing.
#[instrument(skip_all, fields(username = %body.username, client = %client.ip()))]
async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let attempt = state.auth.begin_login(&body.username, client.ip())?;
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
    Ok(Json(state.auth.issue(user.id, user.token_version).await?))
}

#[derive(Deserialize)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token; the old
/// one stops working.
#[instrument(skip_all)]
async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(state.auth.refresh(body.refresh_token.trim()).await?))
}
