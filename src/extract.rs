//! Extractors whose rejections are [`ApiError`]s, so malformed input always gets a JSON
//! `detail` and a 4xx.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;

use crate::error::ApiError;

#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

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
