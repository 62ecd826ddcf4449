//! Authentication: argon2id password hashes, HS256 JWTs, and the [`AuthUser`]
//! extractor guarding `/api/secure`.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm as ArgonAlgorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use pica_actors::UserId;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::config::JwtSecret;
use crate::error::ApiError;
use crate::storage::Role;

const ISSUER: &str = "pica";

/// argon2id with OWASP's recommended minimum: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(ArgonAlgorithm::Argon2id, Version::V0x13, params)
}

/// Hashes off the async runtime: argon2 is deliberately slow.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await
    .context("hashing task panicked")?
}

/// A hash of a password nobody has, verified when the username is unknown so that
/// login takes as long for unknown users as for known ones.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(b"not a real password", &salt)
        .expect("hash")
        .to_string()
});

pub async fn verify_password(password: String, hash: Option<String>) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
            && known)
    })
    .await
    .context("verify task panicked")?
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    username: String,
    role: Role,
    iss: String,
    iat: i64,
    exp: i64,
}

pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl Tokens {
    pub fn new(secret: &JwtSecret, ttl: Duration) -> Self {
        // The algorithm is pinned: a token claiming any other `alg` is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.bytes()),
            decoding: DecodingKey::from_secret(secret.bytes()),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user: &AuthUser) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id.to_string(),
            username: user.username.clone(),
            role: user.role,
            iss: ISSUER.into(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).context("signing token")
    }

    fn verify(&self, token: &str) -> Option<AuthUser> {
        let data = decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        Some(AuthUser {
            id: data.claims.sub.parse().ok()?,
            username: data.claims.username,
            role: data.claims.role,
        })
    }
}

/// The caller of a secure endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct AuthUser {
    pub id: UserId,
    pub username: String,
    pub role: Role,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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
            return state.tokens.verify(token).ok_or(ApiError::InvalidToken);
        }
        if parts.headers.contains_key("api-key") || parts.headers.contains_key("x-api-key") {
            // API keys are not issued yet, so no key can be valid.
            return Err(ApiError::InvalidApiKey);
        }
        Err(ApiError::NotAuthenticated)
    }
}

/// Shared so handlers can issue tokens.
pub type SharedTokens = Arc<Tokens>;
