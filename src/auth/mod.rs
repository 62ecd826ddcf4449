//! Authentication and access: argon2id passwords, short-lived HS256 JWTs with refresh
//! tokens, API keys, and login throttling. The extractors that
//! authenticate a request are in `http::extract`.
//!
//! Token and key checks do not hit the database per request: the state that can revoke
//! a credential (a user's token version and deletion, a key's revocation) is cached in
//! memory and invalidated by the endpoints that change it. This assumes one server
//! process per database, which is how the engine's actors work anyway.

pub mod cookie;
pub mod passwords;
pub mod secrets;
pub mod throttle;
mod verified;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use pica_actors::{Clock, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::JwtSecret;
use crate::http::error::ApiError;
use crate::storage::{ApiKeyRecord, AuthState, Db, RefreshRecord, Role};
pub use passwords::{ARGON2_MEMORY_KIB, ARGON2_PASSES, PasswordPool};
use throttle::{Attempt, LoginThrottle, Refusal, ThrottleLimits};
use verified::{MAX_VERIFIED_TOKENS, VerifiedClaims, VerifiedTokens};

const ISSUER: &str = "pica";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    ver: i32,
    iss: String,
    iat: i64,
    exp: i64,
}

/// The caller of a secure endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuthUser {
    #[schema(value_type = i64)]
    pub id: UserId,
    pub username: String,
    pub role: Role,
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9...", "token_type": "bearer", "expires_in": 900, "refresh_token": "..."}))]
pub struct TokenPair {
    /// HS256 JWT
    pub access_token: String,
    #[schema(value_type = String, pattern = "^bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, Clone)]
struct CachedKey {
    id: Uuid,
    user: AuthUser,
    expires_at: Option<DateTime<Utc>>,
}

pub struct AuthSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub throttle: ThrottleLimits,
    /// Threads hashing passwords, and checks that may wait for one.
    pub hash_threads: usize,
    pub hash_queue: usize,
}

pub struct Auth {
    db: Db,
    clock: Arc<dyn Clock>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    settings: AuthSettings,
    /// Token version, deletion and role per user, filled on first sight.
    users: DashMap<UserId, AuthState>,
    /// Access tokens whose signature and claims were checked already.
    verified: VerifiedTokens,
    /// Live API keys by digest.
    keys: DashMap<[u8; 32], CachedKey>,
    /// Last use per key, flushed to the database periodically.
    key_usage: DashMap<Uuid, DateTime<Utc>>,
    pub throttle: LoginThrottle,
    /// Every argon2 run (registration, login, password change) goes through here.
    pub passwords: PasswordPool,
}

impl Auth {
    pub fn new(db: Db, clock: Arc<dyn Clock>, secret: &JwtSecret, settings: AuthSettings) -> Self {
        // The algorithm is pinned: a token claiming any other `alg` is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        // Expiry is checked against the injected clock below, not the wall clock.
        validation.validate_exp = false;
        Self {
            db,
            clock,
            encoding: EncodingKey::from_secret(secret.bytes()),
            decoding: DecodingKey::from_secret(secret.bytes()),
            validation,
            throttle: LoginThrottle::new(settings.throttle),
            passwords: PasswordPool::new(settings.hash_threads, settings.hash_queue),
            settings,
            users: DashMap::new(),
            verified: VerifiedTokens::new(MAX_VERIFIED_TOKENS),
            keys: DashMap::new(),
            key_usage: DashMap::new(),
        }
    }

    pub fn access_ttl(&self) -> Duration {
        self.settings.access_ttl
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Issues an access token and a new refresh token for `user`.
    pub async fn issue(&self, user: UserId, token_version: i32) -> Result<TokenPair, ApiError> {
        let now = self.now();
        let claims = Claims {
            sub: user.to_string(),
            ver: token_version,
            iss: ISSUER.into(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.settings.access_ttl.as_secs() as i64,
        };
        let access_token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing token")?;
        let refresh_token = secrets::generate(secrets::REFRESH_PREFIX);
        let record = RefreshRecord {
            id: Uuid::now_v7(),
            user_id: user,
            expires_at: now
                + chrono::Duration::from_std(self.settings.refresh_ttl)
                    .unwrap_or(chrono::Duration::days(30)),
            revoked: false,
        };
        self.db
            .create_refresh_token(&record, &secrets::digest(&refresh_token), now)
            .await?;
        Ok(TokenPair {
            access_token,
            token_type: "bearer",
            expires_in: self.settings.access_ttl.as_secs(),
            refresh_token,
        })
    }

    /// Exchanges a live refresh token for a new pair; the old token is revoked
    /// (rotation), so each refresh token works once.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, ApiError> {
        let invalid = || ApiError::InvalidToken;
        if !secrets::plausible(refresh_token, secrets::REFRESH_PREFIX) {
            return Err(invalid());
        }
        let record = self
            .db
            .refresh_token_by_hash(&secrets::digest(refresh_token))
            .await?
            .ok_or_else(invalid)?;
        let now = self.now();
        if record.revoked
            || record.expires_at <= now
            || !self.db.revoke_refresh_token(record.id, now).await?
        {
            return Err(invalid());
        }
        let state = self.user_state(record.user_id).await?.ok_or_else(invalid)?;
        if state.deleted {
            return Err(invalid());
        }
        self.issue(record.user_id, state.token_version).await
    }

    /// Revokes a refresh token of `user` (logout). Unknown tokens are ignored.
    pub async fn logout(&self, user: UserId, refresh_token: &str) -> Result<(), ApiError> {
        self.revoke_refresh(refresh_token, Some(user)).await
    }

    /// Revokes a refresh token whoever it belongs to: the web app's logout, which may
    /// come after the access token expired and knows only the cookie.
    pub async fn end_session(&self, refresh_token: &str) -> Result<(), ApiError> {
        self.revoke_refresh(refresh_token, None).await
    }

    async fn revoke_refresh(&self, token: &str, owner: Option<UserId>) -> Result<(), ApiError> {
        if !secrets::plausible(token, secrets::REFRESH_PREFIX) {
            return Ok(());
        }
        if let Some(record) = self
            .db
            .refresh_token_by_hash(&secrets::digest(token))
            .await?
            && owner.is_none_or(|user| record.user_id == user)
        {
            self.db.revoke_refresh_token(record.id, self.now()).await?;
        }
        Ok(())
    }

    async fn user_state(&self, user: UserId) -> Result<Option<AuthState>, ApiError> {
        if let Some(state) = self.users.get(&user) {
            return Ok(Some(state.clone()));
        }
        let state = self.db.auth_state(user).await?;
        if let Some(state) = &state {
            self.users.insert(user, state.clone());
        }
        Ok(state)
    }

    /// Forgets what is cached about `user` after its credentials changed.
    pub fn invalidate_user(&self, user: UserId) {
        self.users.remove(&user);
        self.keys.retain(|_, k| k.user.id != user);
    }

    async fn verify_jwt(&self, token: &str) -> Result<AuthUser, ApiError> {
        let now = self.now().timestamp();
        let cached = self.verified.get(token);
        let claims = match cached {
            Some(hit) => hit,
            None => {
                let claims = decode::<Claims>(token, &self.decoding, &self.validation)
                    .map_err(|_| ApiError::InvalidToken)?
                    .claims;
                VerifiedClaims {
                    user: claims.sub.parse().map_err(|_| ApiError::InvalidToken)?,
                    version: claims.ver,
                    issued_at: claims.iat,
                    expires_at: claims.exp,
                }
            }
        };
        // Time and the user's state are checked on every request, cached or not.
        if !in_force(&claims, now) {
            return Err(ApiError::InvalidToken);
        }
        match self.user_state(claims.user).await? {
            Some(state) if !state.deleted && state.token_version == claims.version => {
                if cached.is_none() {
                    self.verified.insert(token, claims, now);
                }
                Ok(AuthUser {
                    id: claims.user,
                    username: state.username,
                    role: state.role,
                })
            }
            _ => Err(ApiError::InvalidToken),
        }
    }

    async fn verify_api_key(&self, key: &str) -> Result<AuthUser, ApiError> {
        if !secrets::plausible(key, secrets::API_KEY_PREFIX) {
            return Err(ApiError::InvalidApiKey);
        }
        let digest = secrets::digest(key);
        let cached = match self.keys.get(&digest) {
            Some(hit) => hit.clone(),
            None => {
                let owner = self
                    .db
                    .api_key_by_hash(&digest)
                    .await?
                    .ok_or(ApiError::InvalidApiKey)?;
                if owner.key.revoked || owner.user_deleted {
                    return Err(ApiError::InvalidApiKey);
                }
                let entry = CachedKey {
                    id: owner.key.id,
                    user: AuthUser {
                        id: owner.key.user_id,
                        username: owner.username,
                        role: owner.role,
                    },
                    expires_at: owner.key.expires_at,
                };
                self.keys.insert(digest, entry.clone());
                entry
            }
        };
        let now = self.now();
        if cached.expires_at.is_some_and(|e| e <= now) {
            return Err(ApiError::InvalidApiKey);
        }
        self.key_usage.insert(cached.id, now);
        Ok(cached.user)
    }

    /// Creates a key for `user`; returns its record and the plain key (shown once).
    pub async fn create_api_key(
        &self,
        user: UserId,
        name: String,
        expires_at: Option<DateTime<Utc>>,
        idempotency: Option<&pica_actors::IdempotencyTag>,
    ) -> Result<(ApiKeyRecord, String), ApiError> {
        let key = secrets::generate(secrets::API_KEY_PREFIX);
        let record = ApiKeyRecord {
            id: Uuid::now_v7(),
            user_id: user,
            name,
            prefix: secrets::display_prefix(&key),
            created_at: self.now(),
            last_used_at: None,
            expires_at,
            revoked: false,
        };
        self.db
            .create_api_key(&record, &secrets::digest(&key), idempotency)
            .await?;
        Ok((record, key))
    }

    /// Revokes the caller's key at once (database and cache); false if it is not theirs.
    pub async fn revoke_api_key(&self, user: UserId, id: Uuid) -> Result<bool, ApiError> {
        match self.db.revoke_api_key(user, id, self.now()).await? {
            Some(digest) => {
                if let Ok(digest) = <[u8; 32]>::try_from(digest.as_slice()) {
                    self.keys.remove(&digest);
                }
                self.keys.retain(|_, k| k.id != id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Writes the recorded last-use times of keys.
    pub async fn flush_key_usage(&self) -> Result<(), ApiError> {
        let used: Vec<(Uuid, DateTime<Utc>)> = self
            .key_usage
            .iter()
            .map(|e| (*e.key(), *e.value()))
            .collect();
        for (id, at) in &used {
            self.key_usage.remove_if(id, |_, v| v == at);
        }
        self.db.touch_api_keys(&used).await?;
        Ok(())
    }

    /// Resolves the credentials of a request: a Bearer JWT, an API key in `api-key` /
    /// `X-API-Key`, or the web app's session cookie (see [`cookie`]). None at all → 403;
    /// present but invalid → 401.
    pub async fn authenticate(&self, parts: &Parts) -> Result<AuthUser, ApiError> {
        if let Some(value) = parts.headers.get(AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .ok_or(ApiError::InvalidToken)?;
            return self.verify_jwt(token).await;
        }
        for header in ["api-key", "x-api-key"] {
            if let Some(value) = parts.headers.get(header) {
                let key = value.to_str().map_err(|_| ApiError::InvalidApiKey)?;
                return self.verify_api_key(key.trim()).await;
            }
        }
        if let Some(token) = cookie::read(&parts.headers, cookie::SESSION) {
            cookie::same_origin(parts)?;
            return self.verify_jwt(token).await;
        }
        Err(ApiError::NotAuthenticated)
    }

    /// Reserves a login attempt under the throttle before any password is checked:
    /// 429 with `Retry-After` while a limit is reached (attempts in flight count), 503
    /// while the throttle tracks as many keys as it may.
    pub fn begin_login(&self, username: &str, address: IpAddr) -> Result<Attempt<'_>, ApiError> {
        self.throttle
            .reserve(username, address, self.now())
            .map_err(|refusal| match refusal {
                Refusal::Locked(wait) => ApiError::TooManyRequests {
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                },
                Refusal::Full => ApiError::Unavailable(
                    "Too many login attempts in progress; retry shortly".into(),
                ),
            })
    }
}

/// Whether a token's claims hold at `now` (Unix seconds): not expired, and not issued
/// more than a minute in the future (clock skew between servers).
fn in_force(claims: &VerifiedClaims, now: i64) -> bool {
    claims.expires_at > now && claims.issued_at <= now + 60
}
