//! Drug recommendations: forwarded to the partner service MediMatch when
//! `MEDIMATCH_URL` is set, answered by the built-in recommender (the same algorithm
//! over the catalog shipped in `data/drugs.csv`) otherwise. Name autocomplete always
//! uses the shipped catalog.

pub mod breaker;
pub mod builtin;
pub mod catalog;
pub mod client;
pub mod tfidf;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use pica_actors::Clock;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub use builtin::BuiltIn;
pub use catalog::{Catalog, Drug};
pub use client::PartnerClient;

use crate::config::MedimatchSettings;

/// A validated recommendation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrugQuery {
    drug_name: String,
    top_n: u32,
}

impl DrugQuery {
    pub const MAX_NAME_CHARS: usize = 100;
    pub const MAX_TOP_N: i64 = 50;

    /// `drug_name` is trimmed and must keep 1-100 characters; `top_n` is 1-50.
    pub fn new(drug_name: &str, top_n: i64) -> Result<Self, MedimatchError> {
        let invalid =
            |detail: String| MedimatchError::Invalid(StatusCode::UNPROCESSABLE_ENTITY, detail);
        let drug_name = drug_name.trim();
        let chars = drug_name.chars().count();
        if chars == 0 || chars > Self::MAX_NAME_CHARS {
            return Err(invalid(format!(
                "drug_name must be 1-{} characters",
                Self::MAX_NAME_CHARS
            )));
        }
        if drug_name.chars().any(char::is_control) {
            return Err(invalid(
                "drug_name must not contain control characters".into(),
            ));
        }
        if !(1..=Self::MAX_TOP_N).contains(&top_n) {
            return Err(invalid(format!(
                "top_n must be between 1 and {}",
                Self::MAX_TOP_N
            )));
        }
        Ok(Self {
            drug_name: drug_name.to_string(),
            top_n: top_n as u32,
        })
    }

    pub fn drug_name(&self) -> &str {
        &self.drug_name
    }

    pub fn top_n(&self) -> u32 {
        self.top_n
    }
}

/// `data` of a recommendation answer: two objects keyed by product id, best match
/// first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Recommendations {
    pub name: Ranked,
    pub combined_composition: Ranked,
}

/// A JSON object whose key order is kept (best match first) through parsing and
/// serialising.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ranked(pub Vec<(String, Value)>);

impl utoipa::PartialSchema for Ranked {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .additional_properties(Some(String::schema()))
            .description(Some("Keyed by product id, best match first"))
            .into()
    }
}

impl utoipa::ToSchema for Ranked {}

impl Serialize for Ranked {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Ranked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Ranked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object keyed by product id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ranked, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(256));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Ranked(entries))
            }
        }
        deserializer.deserialize_map(Ordered)
    }
}

/// Why no recommendations could be given. Rendered as
/// `{"success": false, "detail": ...}` (MediMatch's own error shape).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MedimatchError {
    /// The request itself is wrong (a 4xx with the given status).
    #[error("{1}")]
    Invalid(StatusCode, String),
    /// No product name contains the query (MediMatch's 404 and its detail).
    #[error("{0}")]
    DrugNotFound(String),
    /// MediMatch answered 401/403: our key is wrong. An operator problem, not the user's.
    #[error("MediMatch rejected our credentials")]
    CredentialsRejected,
    /// MediMatch failed or answered something we cannot use.
    #[error("{0}")]
    BadGateway(String),
    /// MediMatch did not answer within `MEDIMATCH_TIMEOUT_MS`.
    #[error("MediMatch did not answer in time")]
    Timeout,
    /// MediMatch is unreachable, overloaded, or the circuit breaker is open.
    #[error("{detail}")]
    Unavailable {
        detail: String,
        retry_after: Duration,
    },
}

impl MedimatchError {
    pub fn not_found(drug_name: &str) -> Self {
        MedimatchError::DrugNotFound(format!(
            "Drug with name containing '{drug_name}' not found in the dataset."
        ))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            MedimatchError::Invalid(status, _) => *status,
            MedimatchError::DrugNotFound(_) => StatusCode::NOT_FOUND,
            MedimatchError::CredentialsRejected | MedimatchError::BadGateway(_) => {
                StatusCode::BAD_GATEWAY
            }
            MedimatchError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            MedimatchError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whole seconds for a `Retry-After` header (at least 1), when there should be one.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            MedimatchError::Unavailable { retry_after, .. } => {
                Some(retry_after.as_secs_f64().ceil().max(1.0) as u64)
            }
            _ => None,
        }
    }
}

/// Where recommendations come from.
#[derive(Clone)]
pub enum Recommender {
    BuiltIn(Arc<BuiltIn>),
    Partner(Arc<PartnerClient>),
}

impl Recommender {
    pub async fn recommend(&self, query: &DrugQuery) -> Result<Recommendations, MedimatchError> {
        match self {
            Recommender::BuiltIn(builtin) => builtin.recommend(query),
            Recommender::Partner(client) => client.recommend(query).await,
        }
    }

    pub fn source(&self) -> &'static str {
        match self {
            Recommender::BuiltIn(_) => "built-in",
            Recommender::Partner(_) => "medimatch",
        }
    }
}

/// The feature as handlers see it: the recommender, and the shipped catalog for
/// autocomplete.
#[derive(Clone)]
pub struct MediMatch {
    pub recommender: Recommender,
    pub catalog: Arc<BuiltIn>,
}

impl MediMatch {
    /// The partner client when `MEDIMATCH_URL` is set, the built-in recommender
    /// otherwise. `clock` drives the circuit breaker and the response cache.
    pub fn from_settings(
        settings: &MedimatchSettings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let catalog = BuiltIn::shipped();
        let recommender = match &settings.url {
            Some(_) => Recommender::Partner(Arc::new(PartnerClient::new(settings, clock)?)),
            None => Recommender::BuiltIn(catalog.clone()),
        };
        Ok(Self {
            recommender,
            catalog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_validation() {
        assert!(DrugQuery::new("aspirin", 1).is_ok());
        let err = DrugQuery::new("aspirin", 0).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.to_string(), "top_n must be between 1 and 50");
        assert_eq!(
            DrugQuery::new("  aspirin ", 50).unwrap().drug_name(),
            "aspirin"
        );
        assert!(DrugQuery::new(&"é".repeat(100), 5).is_ok());
        for (name, top_n) in [
            ("", 5),
            ("   ", 5),
            (&"x".repeat(101), 5),
            ("asp\u{0}irin", 5),
            ("aspirin", 0),
            ("aspirin", 51),
            ("aspirin", -3),
        ] {
            assert!(DrugQuery::new(name, top_n).is_err(), "{name:?} {top_n}");
        }
    }

    #[test]
    fn ranked_keeps_key_order_both_ways() {
        let text = r#"{"name":{"9":"b","10":"a","2":null},"combined_composition":{}}"#;
        let recs: Recommendations = serde_json::from_str(text).unwrap();
        let keys: Vec<&str> = recs.name.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["9", "10", "2"]);
        assert_eq!(serde_json::to_string(&recs).unwrap(), text);
        assert!(
            serde_json::from_str::<Recommendations>(r#"{"name":[],"combined_composition":{}}"#)
                .is_err()
        );
    }

    #[test]
    fn error_statuses_and_retry_after() {
        assert_eq!(
            MedimatchError::not_found("x").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            MedimatchError::CredentialsRejected.to_string(),
            "MediMatch rejected our credentials"
        );
        assert_eq!(
            MedimatchError::Timeout.status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let unavailable = MedimatchError::Unavailable {
            detail: "down".into(),
            retry_after: Duration::from_millis(1_200),
        };
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.retry_after_secs(), Some(2));
        assert_eq!(MedimatchError::Timeout.retry_after_secs(), None);
    }
}
