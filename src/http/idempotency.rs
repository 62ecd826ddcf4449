//! `Idempotency-Key` on every creating POST (reservations, bundles, waitlist, book
//! reservations, API keys), one mechanism for all.
//!
//! A key belongs to a user and an endpoint (its *scope*). It is stored with a
//! fingerprint of the request body and the ids of what the request created, in the same
//! transaction as the creation (see `pica_actors::IdempotencyTag`), so it exists exactly
//! when the creation committed, survives restarts, and is shared by every server on one
//! database. A retry with the same key:
//!
//! * and the same body gets the first result again (rendered from the stored rows, so
//!   it shows their current state), and nothing is created;
//! * and another body is refused with 422, and nothing changes;
//! * while the first is still running waits for it (requests with one key are
//!   serialized in the process); a second server racing the first loses at the primary
//!   key, creates nothing, and answers like a retry.
//!
//! A request that was refused created nothing and stored no key: its retry is
//! evaluated afresh.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use dashmap::DashMap;
use pica_actors::{Created, IdempotencyTag, UserId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::ApiError;

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// An `Idempotency-Key`: 1-255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().map(str::trim).filter(|k| {
        (1..=MAX_KEY_LEN).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
    });
    key.map(|k| Some(k.to_string())).ok_or_else(|| {
        ApiError::Rejected(
            StatusCode::BAD_REQUEST,
            "Idempotency-Key must be 1-255 visible ASCII characters".into(),
        )
    })
}

/// A request's `Idempotency-Key` with its body's fingerprint.
#[derive(Debug, Clone)]
pub struct Key {
    key: String,
    fingerprint: String,
}

impl Key {
    /// The key as stored for `user` on the endpoint `scope`.
    pub fn tag(&self, user: UserId, scope: &str) -> IdempotencyTag {
        IdempotencyTag {
            user_id: user,
            scope: scope.to_string(),
            key: self.key.clone(),
            fingerprint: self.fingerprint.clone(),
        }
    }
}

/// A JSON body (rejected exactly like [`crate::http::extract::Json`]) and the request's
/// `Idempotency-Key`, if any.
pub struct Keyed<T> {
    pub body: T,
    pub key: Option<Key>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Keyed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Some(key) = idempotency_key(req.headers())? else {
            let crate::http::extract::Json(body) =
                crate::http::extract::Json::<T>::from_request(req, state).await?;
            return Ok(Keyed { body, key: None });
        };
        // The body is read once (within the body limit) and then parsed twice: as the
        // handler's type, with the usual rejections, and as plain JSON to fingerprint.
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::Rejected(status, "Request body is too large".into())
                } else {
                    ApiError::Rejected(status, e.body_text())
                }
            })?;
        let again = Request::from_parts(parts, Body::from(bytes.clone()));
        let crate::http::extract::Json(body) =
            crate::http::extract::Json::<T>::from_request(again, state).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::Rejected(StatusCode::BAD_REQUEST, "Malformed JSON".into()))?;
        Ok(Keyed {
            body,
            key: Some(Key {
                key,
                fingerprint: fingerprint(&value),
            }),
        })
    }
}

/// Hex SHA-256 of the canonical form of `value`: object keys sorted, no insignificant
/// whitespace. So the same request sent with its fields in another order or spacing
/// is the same request, and any change of a value is another.
pub fn fingerprint(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Serializes requests carrying the same (user, endpoint, key), so a retry racing its
/// original waits for it and then finds its result.
#[derive(Default)]
pub struct IdempotencyLocks(DashMap<(UserId, String, String), Arc<tokio::sync::Mutex<()>>>);

impl IdempotencyLocks {
    async fn run<T>(&self, tag: &IdempotencyTag, work: impl Future<Output = T>) -> T {
        let slot = (tag.user_id, tag.scope.clone(), tag.key.clone());
        let lock = self.0.entry(slot.clone()).or_default().clone();
        let result = {
            let _held = lock.lock().await;
            work.await
        };
        drop(lock);
        // Forget the lock once nobody else holds or waits for it.
        self.0.remove_if(&slot, |_, l| Arc::strong_count(l) == 1);
        result
    }
}

/// What the key `tag` already created, if anything; a key used before with another
/// body is refused (422).
async fn prior(state: &AppState, tag: &IdempotencyTag) -> Result<Option<Created>, ApiError> {
    let stored = state
        .db
        .idempotency_key(tag.user_id, &tag.scope, &tag.key)
        .await?;
    match stored {
        None => Ok(None),
        Some(s) if s.fingerprint.as_ref().is_none_or(|f| *f == tag.fingerprint) => {
            Ok(Some(s.created))
        }
        Some(_) => Err(ApiError::Unprocessable(
            "This Idempotency-Key was already used with a different request body; \
             send the original body to get its result, or use a new key"
                .into(),
        )),
    }
}

/// A stored key points at something that is not there (or not of its endpoint's kind):
/// the database was changed by hand.
pub fn lost() -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "an idempotency key points at a missing or foreign row"
    ))
}

/// Runs a creating request at most once per key: with no key, `create` runs; with a key
/// already used, `replay` answers from what the first request created (or the request
/// is refused if its body differs); otherwise `create` runs with the tag to commit.
pub async fn once<R, E: From<ApiError>>(
    state: &AppState,
    tag: Option<IdempotencyTag>,
    replay: impl AsyncFnOnce(Created) -> Result<R, E>,
    create: impl AsyncFnOnce(Option<IdempotencyTag>) -> Result<R, E>,
) -> Result<R, E> {
    let Some(tag) = tag else {
        return create(None).await;
    };
    let locks = state.idempotency.clone();
    locks
        .run(&tag, async {
            if let Some(created) = prior(state, &tag).await? {
                return replay(created).await;
            }
            match create(Some(tag.clone())).await {
                Ok(done) => Ok(done),
                // Another server may have committed the same key meanwhile: then this
                // request lost at the primary key, and answers as a retry.
                Err(err) => match prior(state, &tag).await? {
                    Some(created) => replay(created).await,
                    None => Err(err),
                },
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fingerprint_ignores_field_order_and_spacing_only() {
        let a: Value =
            serde_json::from_str(r#"{"b": [1, {"y": 2, "x": "é"}], "a": null}"#).expect("json");
        let b = json!({"a": null, "b": [1, {"x": "é", "y": 2}]});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 64);
        let c = json!({"a": null, "b": [1, {"x": "é", "y": 3}]});
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let reordered = json!({"a": null, "b": [{"x": "é", "y": 2}, 1]});
        assert_ne!(
            fingerprint(&a),
            fingerprint(&reordered),
            "array order counts"
        );
    }
}
