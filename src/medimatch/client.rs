//! The MediMatch partner client: `POST {MEDIMATCH_URL}/recommend` with our key in the
//! `api-key` header, a connect timeout and a total time budget per call, bounded
//! retries with jitter on transient failures only, a circuit breaker, and a short
//! response cache.
//!
//! How partner behaviour maps to Pica's answers:
//!
//! | MediMatch                                  | retried | breaker | Pica          |
//! |--------------------------------------------|---------|---------|---------------|
//! | 200 `{"success": true, "data": ...}`       | -       | success | 200 (cached)  |
//! | 404 with a `detail`                        | no      | success | 404, its detail |
//! | 401 / 403                                  | no      | success | 502 `MediMatch rejected our credentials` |
//! | 429                                        | no      | success | 503 + `Retry-After` |
//! | other 4xx, 3xx, unreadable 200 body        | no      | failure for a bad body | 502 |
//! | 502 / 503 / 504                            | yes     | failure | 502           |
//! | other 5xx                                  | no      | failure | 502           |
//! | connection refused / unreachable           | yes     | failure | 503 + `Retry-After` |
//! | no full answer within the time budget      | no      | failure | 504           |
//! | circuit open                               | -       | -       | 503 + `Retry-After` |

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use pica_actors::Clock;
use rand::Rng;
use reqwest::{StatusCode, Url, header};
use serde::Deserialize;
use serde_json::json;
use tracing::{error, warn};

use super::breaker::{Admission, BreakerConfig, BreakerState, CircuitBreaker};
use super::{DrugQuery, MedimatchError, Recommendations};
use crate::config::MedimatchSettings;

/// The largest answer read from MediMatch; a bigger one is a bad answer.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How many distinct queries the response cache holds.
const CACHE_CAPACITY: usize = 1024;
/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct PartnerClient {
    http: reqwest::Client,
    endpoint: Url,
    api_key: Option<HeaderValue>,
    budget: Duration,
    retries: u32,
    backoff: Duration,
    breaker: Mutex<CircuitBreaker>,
    cache: Mutex<ResponseCache>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerClient")
            .field("host", &self.endpoint.host_str())
            .finish_non_exhaustive()
    }
}

/// A partner failure: counts against the circuit breaker.
#[derive(Debug)]
enum Failure {
    /// No connection could be made (refused, unresolvable, connect timeout).
    Unreachable(String),
    /// The time budget ran out before a full answer.
    TimedOut,
    /// A 5xx answer.
    ServerError(StatusCode),
    /// The connection broke during the exchange.
    Broken(String),
    /// A 200 answer we cannot use.
    Garbled(String),
}

impl Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::Broken(_) => true,
            Failure::ServerError(status) => matches!(status.as_u16(), 502..=504),
            Failure::TimedOut | Failure::Garbled(_) => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Failure::Unreachable(why) => format!("unreachable: {why}"),
            Failure::TimedOut => "timed out".into(),
            Failure::ServerError(status) => format!("answered HTTP {}", status.as_u16()),
            Failure::Broken(why) => format!("connection broke: {why}"),
            Failure::Garbled(why) => format!("unusable answer: {why}"),
        }
    }

    fn into_error(self, retry_after: Duration) -> MedimatchError {
        match self {
            Failure::Unreachable(_) => MedimatchError::Unavailable {
                detail: "MediMatch is unreachable; try again later".into(),
                retry_after,
            },
            Failure::TimedOut => MedimatchError::Timeout,
            Failure::ServerError(status) => {
                MedimatchError::BadGateway(format!("MediMatch failed (HTTP {})", status.as_u16()))
            }
            Failure::Broken(_) => {
                MedimatchError::BadGateway("MediMatch broke off the connection".into())
            }
            Failure::Garbled(_) => {
                MedimatchError::BadGateway("MediMatch sent an answer Pica cannot read".into())
            }
        }
    }
}

/// An answer from a healthy partner (possibly a refusal), or a partner failure.
type Exchange = Result<Result<Recommendations, MedimatchError>, Failure>;

#[derive(Deserialize)]
struct SuccessBody {
    success: bool,
    data: Recommendations,
}

#[derive(Deserialize)]
struct ErrorBody {
    detail: Option<String>,
}

impl PartnerClient {
    /// Needs `settings.url`.
    pub fn new(settings: &MedimatchSettings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let base = settings.url.as_ref().context("MEDIMATCH_URL is not set")?;
        let endpoint = Url::parse(&format!(
            "{}/recommend",
            base.as_str().trim_end_matches('/')
        ))
        .context("MEDIMATCH_URL")?;
        let api_key = settings
            .api_key
            .as_ref()
            .map(|key| {
                let mut value = HeaderValue::from_str(key.expose()).map_err(|_| {
                    anyhow::anyhow!("MEDIMATCH_API_KEY is not a valid header value")
                })?;
                value.set_sensitive(true);
                anyhow::Ok(value)
            })
            .transpose()?;
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            // Never follow a redirect: it could carry our key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pica/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the MediMatch HTTP client")?;
        Ok(Self {
            http,
            endpoint,
            api_key,
            budget: settings.timeout,
            retries: settings.retries,
            backoff: settings.retry_backoff,
            breaker: Mutex::new(CircuitBreaker::new(BreakerConfig {
                threshold: settings.breaker_threshold,
                open_for: settings.breaker_open,
            })),
            cache: Mutex::new(ResponseCache::new(settings.cache_ttl)),
            clock,
        })
    }

    /// The host MediMatch is reached at, for logs (never the whole URL).
    pub fn host(&self) -> &str {
        self.endpoint.host_str().unwrap_or("?")
    }

    pub fn breaker_state(&self) -> BreakerState {
        lock(&self.breaker).state()
    }

    pub async fn recommend(&self, query: &DrugQuery) -> Result<Recommendations, MedimatchError> {
        let key = (query.drug_name().to_lowercase(), query.top_n());
        if let Some(hit) = lock(&self.cache).get(&key, self.clock.now()) {
            return Ok(hit);
        }
        let admission = lock(&self.breaker)
            .admit(self.clock.now())
            .map_err(|retry_after| MedimatchError::Unavailable {
                detail: "MediMatch is temporarily unavailable; try again later".into(),
                retry_after,
            })?;
        let mut in_flight = InFlight {
            breaker: &self.breaker,
            admission,
            settled: false,
        };
        let exchange = self.with_retries(query).await;
        in_flight.settled = true;
        match exchange {
            Ok(answer) => {
                lock(&self.breaker).record_success(admission);
                if let Ok(recommendations) = &answer {
                    lock(&self.cache).put(key, recommendations.clone(), self.clock.now());
                }
                answer
            }
            Err(failure) => {
                let now = self.clock.now();
                let mut breaker = lock(&self.breaker);
                breaker.record_failure(admission, now);
                let retry_after = match breaker.state() {
                    BreakerState::Open { until } => (until - now).to_std().unwrap_or_default(),
                    _ => Duration::from_secs(1),
                };
                drop(breaker);
                warn!(failure = %failure.describe(), "MediMatch call failed");
                Err(failure.into_error(retry_after))
            }
        }
    }

    /// Tries until an answer, a failure that is not transient, the retry limit, or the
    /// end of the time budget.
    async fn with_retries(&self, query: &DrugQuery) -> Exchange {
        let started = tokio::time::Instant::now();
        let mut tries_done = 0;
        loop {
            let remaining = self.budget.saturating_sub(started.elapsed());
            if remaining.is_zero() {
                return Err(Failure::TimedOut);
            }
            let failure = match self.exchange(query, remaining).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            tries_done += 1;
            if !failure.transient() || tries_done > self.retries {
                return Err(failure);
            }
            let pause = jittered(self.backoff, tries_done - 1);
            if started.elapsed() + pause >= self.budget {
                return Err(failure);
            }
            warn!(
                failure = %failure.describe(),
                attempt = tries_done,
                pause_ms = pause.as_millis() as u64,
                "MediMatch call failed; retrying"
            );
            tokio::time::sleep(pause).await;
        }
    }

    /// One request and its answer, within `timeout`.
    async fn exchange(&self, query: &DrugQuery, timeout: Duration) -> Exchange {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .timeout(timeout)
            .header(header::ACCEPT, "application/json")
            .json(&json!({ "drug_name": query.drug_name(), "top_n": query.top_n() }));
        if let Some(key) = &self.api_key {
            request = request.header("api-key", key.clone());
        }
        let response = request.send().await.map_err(transport_failure)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(3600)));
        let body = read_limited(response).await?;
        match status.as_u16() {
            200 => match serde_json::from_slice::<SuccessBody>(&body) {
                Ok(SuccessBody {
                    success: true,
                    data,
                }) => Ok(Ok(data)),
                Ok(_) => Err(Failure::Garbled("200 with success false".into())),
                Err(e) => Err(Failure::Garbled(format!("200 body: {e}"))),
            },
            404 => match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(ErrorBody {
                    detail: Some(detail),
                }) => Ok(Err(MedimatchError::DrugNotFound(detail))),
                _ => {
                    error!("MediMatch answered 404 without a detail; is MEDIMATCH_URL right?");
                    Ok(Err(MedimatchError::BadGateway(
                        "MediMatch answered 404 without a detail".into(),
                    )))
                }
            },
            401 | 403 => {
                error!(
                    status = status.as_u16(),
                    "MediMatch rejected our credentials; check MEDIMATCH_API_KEY"
                );
                Ok(Err(MedimatchError::CredentialsRejected))
            }
            429 => Ok(Err(MedimatchError::Unavailable {
                detail: "MediMatch is busy; try again later".into(),
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            })),
            500..=599 => Err(Failure::ServerError(status)),
            code => {
                error!(
                    status = code,
                    "MediMatch answered with an unexpected status"
                );
                Ok(Err(MedimatchError::BadGateway(format!(
                    "MediMatch answered with unexpected HTTP status {code}"
                ))))
            }
        }
    }
}

/// Reads at most [`MAX_BODY_BYTES`] of the answer.
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, Failure> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(Failure::Garbled("answer too large".into()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_failure)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Failure::Garbled("answer too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_failure(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    let mut why = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_connect() {
        Failure::Unreachable(why)
    } else if err.is_timeout() {
        Failure::TimedOut
    } else {
        Failure::Broken(why)
    }
}

/// The pause before retry number `retry + 1`: exponential from `base`, capped, with
/// "equal jitter" (half fixed, half random) so callers that failed together spread out.
fn jittered(base: Duration, retry: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(retry).unwrap_or(u32::MAX))
        .min(MAX_BACKOFF);
    let ms = ceiling.as_millis() as u64;
    let half = ms / 2;
    Duration::from_millis(half + rand::thread_rng().gen_range(0..=ms - half))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A call let through by the breaker; if it is dropped before an outcome (the client
/// went away), a probe's slot is freed.
struct InFlight<'a> {
    breaker: &'a Mutex<CircuitBreaker>,
    admission: Admission,
    settled: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            lock(self.breaker).abandon(self.admission);
        }
    }
}

type CacheKey = (String, u32);

/// Successful answers for `ttl`, keyed by lower-cased name and `top_n` (MediMatch
/// matches names ignoring case). A zero `ttl` turns it off.
struct ResponseCache {
    ttl: Duration,
    entries: HashMap<CacheKey, (DateTime<Utc>, Recommendations)>,
}

impl ResponseCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &CacheKey, now: DateTime<Utc>) -> Option<Recommendations> {
        match self.entries.get(key) {
            Some((expires, value)) if now < *expires => Some(value.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: CacheKey, value: Recommendations, now: DateTime<Utc>) {
        if self.ttl.is_zero() {
            return;
        }
        if self.entries.len() >= CACHE_CAPACITY && !self.entries.contains_key(&key) {
            self.entries.retain(|_, (expires, _)| now < *expires);
            if self.entries.len() >= CACHE_CAPACITY {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (expires, _))| *expires)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key, (now + self.ttl, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::medimatch::Ranked;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn recs(id: &str) -> Recommendations {
        Recommendations {
            name: Ranked(vec![(id.into(), "x".into())]),
            combined_composition: Ranked::default(),
        }
    }

    #[test]
    fn cache_expires_after_ttl_and_can_be_off() {
        let mut cache = ResponseCache::new(Duration::from_secs(10));
        let key = ("aspirin".to_string(), 5);
        cache.put(key.clone(), recs("1"), t(0));
        assert_eq!(cache.get(&key, t(9)), Some(recs("1")));
        assert_eq!(cache.get(&("aspirin".into(), 6), t(1)), None);
        assert_eq!(cache.get(&key, t(10)), None);
        assert!(cache.entries.is_empty(), "expired entry dropped");

        let mut off = ResponseCache::new(Duration::ZERO);
        off.put(key.clone(), recs("1"), t(0));
        assert_eq!(off.get(&key, t(0)), None);
    }

    #[test]
    fn full_cache_evicts_the_oldest() {
        let mut cache = ResponseCache::new(Duration::from_secs(10_000));
        for i in 0..CACHE_CAPACITY {
            cache.put((format!("d{i}"), 1), recs("1"), t(i as i64));
        }
        cache.put(("new".into(), 1), recs("2"), t(5000));
        assert_eq!(cache.entries.len(), CACHE_CAPACITY);
        assert_eq!(cache.get(&("d0".into(), 1), t(5000)), None);
        assert!(cache.get(&("new".into(), 1), t(5000)).is_some());
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(Failure::Unreachable("refused".into()).transient());
        assert!(Failure::Broken("reset".into()).transient());
        for code in [502, 503, 504] {
            assert!(Failure::ServerError(StatusCode::from_u16(code).unwrap()).transient());
        }
        assert!(!Failure::ServerError(StatusCode::INTERNAL_SERVER_ERROR).transient());
        assert!(!Failure::TimedOut.transient());
        assert!(!Failure::Garbled("?".into()).transient());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let base = Duration::from_millis(100);
        for _ in 0..50 {
            let first = jittered(base, 0);
            assert!(
                first >= Duration::from_millis(50) && first <= base,
                "{first:?}"
            );
            let third = jittered(base, 2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(jittered(base, 40) <= MAX_BACKOFF);
        }
        assert_eq!(jittered(Duration::ZERO, 3), Duration::ZERO);
    }
}
