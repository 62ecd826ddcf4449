//! Extractors whose rejections are [`ApiError`]s, so malformed input always gets a JSON
//! `detail` and a 4xx, and which refuse control characters in any text they carry.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::storage::Role;

/// A JSON body. Besides parsing, it refuses any string (value or key) carrying a control
/// character, so a NUL or an escape sequence never reaches a handler or a database: this
/// is the one place text from a body is checked for them.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::Rejected(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected a request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "Request body is too large".to_string()
            } else {
                format!("Could not read the request body: {}", rejection.body_text())
            };
            ApiError::Rejected(status, detail)
        })?;
        if may_hold_control_characters(&bytes)
            && let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && let Some(field) = control_character_in(&value, "")
        {
            return Err(control_character_error(&field));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(Json(value))
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// Raw control characters are not valid inside JSON strings, so one can only arrive
/// escaped (`\u0000`, `\n`, ...), as a raw DEL, or as a raw C1 character (U+0080-U+009F,
/// encoded `C2 80`-`C2 9F`). Bodies with none of these are not parsed twice.
fn may_hold_control_characters(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'\\'
            || b == 0x7f
            || (b == 0xc2 && bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)))
    })
}

/// The path of the first string (value or key) in `value` with a control character.
fn control_character_in(value: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    let bad = |s: &str| s.chars().any(char::is_control);
    match value {
        Value::String(s) if bad(s) => Some(if path.is_empty() {
            "body".into()
        } else {
            path.into()
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| control_character_in(item, &format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if bad(key) {
                Some(if path.is_empty() {
                    "a field name".into()
                } else {
                    format!("a field name in {path}")
                })
            } else {
                control_character_in(item, &here)
            }
        }),
        _ => None,
    }
}

fn control_character_error(field: &str) -> ApiError {
    ApiError::Unprocessable(format!(
        "{field} must not contain control characters (such as NUL, tab or newline)"
    ))
}

/// Percent-decoded text with a control character in it (`%00`, `%0A`, ...).
fn decodes_to_control(raw: &str) -> bool {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .chars()
        .any(char::is_control)
}

/// Path parameters, refused with 400 when a decoded segment holds a control character.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // 400 like every other unusable path (the API documents path errors as 400).
        if decodes_to_control(parts.uri.path()) {
            return Err(ApiError::Rejected(
                StatusCode::BAD_REQUEST,
                "Invalid path: the path must not contain control characters".into(),
            ));
        }
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// Query parameters, refused with 422 when a decoded name or value holds a control
/// character.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.chars().chain(v.chars()).any(char::is_control))
        {
            return Err(control_character_error(&format!(
                "Query parameter `{}`",
                name.escape_debug()
            )));
        }
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

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

/// Field deserializers that make the server accept exactly what the OpenAPI document
/// describes: JSON Schema counts `40.0` as an integer, an empty `cursor=` is an absent
/// one, and an optional field that is not nullable refuses `null` (serde's `Option`
/// would take it as "absent").
pub mod de {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::Deserialize;
    use serde::de::{Deserializer, Error, Visitor};

    /// An optional field that may be left out but not set to `null`. Use with
    /// `#[serde(default, deserialize_with = "de::some")]`.
    pub fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }

    /// An optional query string value where `name=` (empty) means absent.
    pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let raw = String::deserialize(d)?;
        Ok((!raw.is_empty()).then_some(raw))
    }

    /// A JSON integer, written `40` or `40.0`.
    pub fn int<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(IntVisitor::<T, false>(PhantomData))
    }

    /// An optional, non-null JSON integer, written `40` or `40.0`.
    pub fn opt_int<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        int(d).map(Some)
    }

    /// An optional integer in a query string (`limit=40`, `limit=40.0`; `limit=` is
    /// absent).
    pub fn query_int<'de, D: Deserializer<'de>, T: TryFrom<i64>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let raw = String::deserialize(d)?;
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        IntVisitor::<T, true>(PhantomData).visit_str(raw).map(Some)
    }

    struct IntVisitor<T, const TEXT: bool>(PhantomData<T>);

    impl<T: TryFrom<i64>, const TEXT: bool> IntVisitor<T, TEXT> {
        fn fit<E: Error>(v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::custom(format!("integer {v} is out of range")))
        }
    }

    impl<T: TryFrom<i64>, const TEXT: bool> Visitor<'_> for IntVisitor<T, TEXT> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<T, E> {
            Self::fit(v)
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<T, E> {
            i64::try_from(v)
                .map_err(|_| E::custom(format!("integer {v} is out of range")))
                .and_then(Self::fit)
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<T, E> {
            // Integral and inside i64 (2^63 is exactly representable, so `<` is exact).
            if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
                Self::fit(v as i64)
            } else {
                Err(E::custom(format!("expected an integer, found {v}")))
            }
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<T, E> {
            if !TEXT {
                return Err(E::invalid_type(serde::de::Unexpected::Str(v), &self));
            }
            if let Ok(n) = v.parse::<i64>() {
                return Self::fit(n);
            }
            match v.parse::<f64>() {
                Ok(f) if f.is_finite() => self.visit_f64(f),
                _ => Err(E::custom(format!("expected an integer, found `{v}`"))),
            }
        }
    }
}

/// The caller of a secure endpoint: a bearer JWT or an API key (`auth::Auth::authenticate`).
impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.auth.authenticate(parts).await
    }
}

/// A caller with the `admin` role; members get 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = state.auth.authenticate(parts).await?;
        if user.role == Role::Admin {
            Ok(AdminUser(user))
        } else {
            Err(ApiError::Forbidden("Admin role required".into()))
        }
    }
}
