//! Welcome messages, registration and login.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::app::AppState;
use crate::auth::{AuthUser, hash_password, verify_password};
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
}

#[derive(Deserialize)]
struct Register {
    username: String,
    email: String,
    password: String,
}

/// A username: 3-32 characters of letters, digits, `_`, `.` or `-`.
pub struct Username(String);

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

struct Email(String);

impl Email {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let raw = raw.trim();
        let valid = raw.len() <= 254
            && !raw.chars().any(char::is_whitespace)
            && raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
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

struct Password(String);

impl Password {
    fn parse(raw: String) -> Result<Self, ApiError> {
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
    let hash = hash_password(password.0).await?;
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

#[instrument(skip_all, fields(username = %body.username))]
async fn login(
    State(state): State<AppState>,
    Json(body): Json<Login>,
) -> Result<Json<Value>, ApiError> {
    if body.username.len() > 64 || body.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let user = state.db.find_user_by_name(&body.username).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    if !verify_password(body.password, hash).await? {
        info!("login refused");
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.expect("verified users exist");
    let caller = AuthUser {
        id: user.id,
        username: user.username,
        role: user.role,
    };
    let token = state.tokens.issue(&caller)?;
    Ok(Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": state.tokens.ttl().as_secs(),
    })))
}
