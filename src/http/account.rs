//! The caller's own account: profile, password, deletion, logout, API keys.

use super::doc::r;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pica_actors::{Created, IdempotencyTag, ReservationStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::doc::Message;
use super::idempotency::{Keyed, lost, once};
use super::public::{Password, RefreshBody};
use super::views::{AccountView, local};
use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::error::ErrorBody;
use crate::http::extract::de;
use crate::http::extract::{Json, Path};
use crate::storage::{ApiKeyRecord, ReservationQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, delete_account))
        .routes(routes!(change_password))
        .routes(routes!(logout))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[utoipa::path(
    get, path = "/api/secure/me",
    tag = "Account", operation_id = "me",
    summary = "Your account",
    responses(
        (status = 200, description = "Your account", body = AccountView),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<AccountView>, ApiError> {
    let record = state
        .db
        .find_user(user.id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    Ok(Json(AccountView::new(
        &record,
        state.settings.calendar.timezone,
    )))
}

/// Checks the caller's current password (for changes that need re-authentication).
async fn confirm_password(
    state: &AppState,
    user: &AuthUser,
    password: String,
) -> Result<(), ApiError> {
    let record = state
        .db
        .find_user(user.id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    if state
        .auth
        .passwords
        .verify(password, Some(record.password_hash))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::Forbidden("Current password is incorrect".into()))
    }
}

#[derive(Deserialize, ToSchema)]
#[schema(as = ChangePasswordRequest)]
struct ChangePassword {
    current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Changes the password; every token and refresh token issued before stops working.
#[utoipa::path(
    post, path = "/api/secure/me/password",
    tag = "Account", operation_id = "changePassword",
    summary = "Change your password",
    description = "Every earlier token and refresh token stops working. Wrong current password → 403.",
    request_body(content = ChangePassword, example = json!({"current_password": "sunny-day-42", "new_password": "rainy-night-7"})),
    responses(
        (status = 200, description = "Changed", body = Message, example = json!({"message": "Password changed; sign in again"})),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<ChangePassword>,
) -> Result<Json<Message>, ApiError> {
    let new = Password::parse(body.new_password)?;
    confirm_password(&state, &user, body.current_password).await?;
    let hash = state.auth.passwords.hash(new.0).await?;
    state
        .db
        .reset_credentials(user.id, Some(&hash), false, Utc::now())
        .await?;
    state.auth.invalidate_user(user.id);
    info!("password changed");
    Ok(Json(Message::new("Password changed; sign in again")))
}

#[derive(Deserialize, ToSchema)]
#[schema(as = DeleteAccountRequest)]
struct DeleteAccount {
    password: String,
}

#[derive(Serialize, ToSchema)]
struct AccountDeleted {
    message: &'static str,
    cancelled_reservations: u32,
}

/// Deletes the caller's account: its future reservations are cancelled (through the
/// zone actors, so seats free up and the change is announced), every credential is
/// revoked, and the username stays reserved.
#[utoipa::path(
    delete, path = "/api/secure/me",
    tag = "Account", operation_id = "deleteAccount",
    summary = "Delete your account",
    description = "Cancels your confirmed reservations that have not ended and revokes every credential; the username stays taken. Wrong password → 403.",
    request_body(content = DeleteAccount, example = json!({"password": "sunny-day-42"})),
    responses(
        (status = 200, description = "Deleted", body = AccountDeleted, example = json!({"message": "Account deleted", "cancelled_reservations": 1})),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn delete_account(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<DeleteAccount>,
) -> Result<Json<AccountDeleted>, ApiError> {
    confirm_password(&state, &user, body.password).await?;
    let mut cancelled = 0;
    let mut before = None;
    loop {
        let query = ReservationQuery {
            user_id: user.id,
            status: Some(ReservationStatus::Confirmed),
            before,
            limit: 100,
        };
        let page = state.db.reservations_of(&query).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for r in &page {
            match state
                .engine
                .change_status(&r.zone, r.id, user.id, ReservationStatus::Cancelled)
                .await
            {
                Ok(_) => cancelled += 1,
                Err(
                    pica_actors::EngineError::AlreadyEnded
                    | pica_actors::EngineError::ReservationNotFound,
                ) => {}
                Err(other) => {
                    warn!(reservation = %r.id, error = %other, "could not cancel while deleting an account");
                    return Err(ApiError::engine(other, state.settings.calendar.timezone));
                }
            }
        }
    }
    state
        .db
        .reset_credentials(user.id, None, true, Utc::now())
        .await?;
    state.auth.invalidate_user(user.id);
    info!(cancelled, "account deleted");
    Ok(Json(AccountDeleted {
        message: "Account deleted",
        cancelled_reservations: cancelled,
    }))
}

/// Revokes a refresh token of the caller.
#[utoipa::path(
    post, path = "/api/secure/logout",
    tag = "Account", operation_id = "logout",
    summary = "Revoke a refresh token",
    request_body(content = RefreshBody, example = json!({"refresh_token": "..."})),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<RefreshBody>,
) -> Result<StatusCode, ApiError> {
    state
        .auth
        .logout(user.id, body.refresh_token.trim())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[schema(as = CreateApiKeyRequest)]
struct CreateKey {
    #[serde(default, deserialize_with = "de::some")]
    #[schema(nullable = false, max_length = 64, default = "default")]
    name: Option<String>,
    /// RFC 3339, in the future; the key stops working then.
    #[serde(default, deserialize_with = "de::some")]
    #[schema(nullable = false, format = DateTime)]
    expires_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ApiKey)]
struct KeyView {
    #[schema(format = Uuid)]
    id: String,
    name: String,
    prefix: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime, required = true)]
    last_used_at: Option<String>,
    #[schema(format = DateTime, required = true)]
    expires_at: Option<String>,
}

/// A new key: its record and, this once, the key itself.
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyCreated)]
struct KeyCreated {
    #[serde(flatten)]
    record: KeyView,
    /// `pica_` + 256 random bits; shown only here
    key: String,
}

/// All of the caller's keys (at most 20, so one page).
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyPage)]
struct KeyPage {
    items: Vec<KeyView>,
    #[schema(required = true)]
    next_cursor: Option<String>,
}

impl KeyView {
    fn new(k: &ApiKeyRecord, tz: chrono_tz::Tz) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            created_at: local(k.created_at, tz),
            last_used_at: k.last_used_at.map(|t| local(t, tz)),
            expires_at: k.expires_at.map(|t| local(t, tz)),
        }
    }
}

const MAX_KEYS: usize = 20;

/// The scope of idempotency keys on `POST /api/secure/api-keys`.
const KEYS_SCOPE: &str = "api-keys";

/// Creates an API key; the key itself is in this answer only.
///
/// With an `Idempotency-Key`, a retry does not create a second key, but neither can it
/// show the secret again: only its hash is stored, and keeping the secret to replay it
/// would turn the database (and its backups) into a store of working credentials. So a
/// retry answers 409 with the first key's id, name and prefix (and whether it has been
/// revoked since): a client that lost the secret revokes that key and creates a new one.
#[utoipa::path(
    post, path = "/api/secure/api-keys",
    tag = "Account", operation_id = "createApiKey",
    summary = "Create an API key (shown once)",
    description = "The key is in this answer only; it is stored as a SHA-256 digest. At most 20 live keys (409 beyond).",
    params(("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters, per user and endpoint; a retry with the same key and body gets the first result back (for API keys: 409 naming the first key, without its secret); the same key with another body gets 422", example = "7f1c2d")),
    request_body(content = CreateKey, example = json!({"name": "booking bot", "expires_at": "2027-01-01T00:00:00+07:00"})),
    responses(
        (status = 201, description = "Created", body = KeyCreated),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 409, description = "Too many keys, or a retry of a creation with the same `Idempotency-Key` (the body then names the first key, without its secret, under `api_key`)", body = ErrorBody, example = json!({"detail": "You already have 20 API keys; revoke one first"})),
        (status = 413, response = r::PayloadTooLarge),
        (status = 415, response = r::UnsupportedMediaType),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn create_key(
    State(state): State<AppState>,
    user: AuthUser,
    Keyed { body, key }: Keyed<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tz = state.settings.calendar.timezone;
    let tag = key.map(|k| k.tag(user.id, KEYS_SCOPE));
    let replay = async |created| {
        let Created::ApiKey(id) = created else {
            return Err(lost());
        };
        let first = state.db.api_key(user.id, id).await?.ok_or_else(lost)?;
        let mut view =
            serde_json::to_value(KeyView::new(&first, tz)).map_err(anyhow::Error::from)?;
        view["revoked"] = json!(first.revoked);
        Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "detail": "An API key was already created with this Idempotency-Key; its secret \
                           was shown only once. If it was lost, revoke this key and create a new one",
                "api_key": view,
            })),
        ))
    };
    let create = async |tag: Option<IdempotencyTag>| {
        let name = body
            .name
            .unwrap_or_else(|| "default".into())
            .trim()
            .to_string();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ApiError::Unprocessable(
                "name must be 1-64 printable characters".into(),
            ));
        }
        let expires_at = body
            .expires_at
            .map(|raw| {
                DateTime::parse_from_rfc3339(raw.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::Unprocessable("expires_at must be an RFC 3339 time".into())
                    })
            })
            .transpose()?;
        if expires_at.is_some_and(|t| t <= state.engine.clock().now()) {
            return Err(ApiError::Unprocessable(
                "expires_at must be in the future".into(),
            ));
        }
        if state.db.api_keys_of(user.id).await?.len() >= MAX_KEYS {
            return Err(ApiError::Conflict {
                detail: format!("You already have {MAX_KEYS} API keys; revoke one first"),
                conflict: None,
            });
        }
        let (record, key) = state
            .auth
            .create_api_key(user.id, name, expires_at, tag.as_ref())
            .await?;
        info!(key_id = %record.id, "API key created");
        let mut view =
            serde_json::to_value(KeyView::new(&record, tz)).map_err(anyhow::Error::from)?;
        view["key"] = json!(key);
        Ok((StatusCode::CREATED, Json(view)))
    };
    once(&state, tag, replay, create).await
}

#[utoipa::path(
    get, path = "/api/secure/api-keys",
    tag = "Account", operation_id = "listApiKeys",
    summary = "Your live API keys",
    responses(
        (status = 200, description = "Your keys", body = KeyPage),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
async fn list_keys(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<KeyPage>, ApiError> {
    let tz = state.settings.calendar.timezone;
    let keys: Vec<KeyView> = state
        .db
        .api_keys_of(user.id)
        .await?
        .iter()
        .map(|k| KeyView::new(k, tz))
        .collect();
    Ok(Json(KeyPage {
        items: keys,
        next_cursor: None,
    }))
}

/// Revokes one of the caller's keys, effective immediately; someone else's → 404.
#[utoipa::path(
    delete, path = "/api/secure/api-keys/{id}",
    tag = "Account", operation_id = "revokeApiKey",
    summary = "Revoke an API key at once",
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, response = r::BadRequest),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Not one of your keys", body = ErrorBody, example = json!({"detail": "API key not found"})),
        (status = 503, response = r::Unavailable),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
#[instrument(skip_all, fields(user_id = user.id))]
async fn revoke_key(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::NotFound("API key not found".into());
    let id = Uuid::parse_str(&id).map_err(|_| not_found())?;
    if state.auth.revoke_api_key(user.id, id).await? {
        info!(key_id = %id, "API key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found())
    }
}
