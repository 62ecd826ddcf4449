//! Prometheus metrics: a small registry of atomics filled by a middleware layer, and
//! `GET /metrics` rendering it in the text exposition format (version 0.0.4) together
//! with gauges read from the app state at scrape time.
//!
//! Labels are bounded: the route is axum's matched route template (`MatchedPath`), never
//! the raw path (requests no route matched are counted as `unmatched`), and unusual
//! methods are folded into `OTHER`.

use std::fmt::Write;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use super::doc::r;
use axum::extract::{Extension, MatchedPath, State};
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use tower::{Layer, Service};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render))
}

/// The middleware layer counting every request; it also hands the registry to
/// `GET /metrics` (as a request extension). Each layer has its own registry, so every
/// server (and every test server) counts its own requests.
#[derive(Clone, Default)]
pub struct MetricsLayer(Arc<Metrics>);

impl MetricsLayer {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let metrics = self.metrics.clone();
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| UNMATCHED.to_string());
        req.extensions_mut().insert(metrics.clone());
        // The service that was made ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            metrics.in_flight.fetch_add(1, Ordering::Relaxed);
            let _guard = InFlight(&metrics.in_flight);
            let started = Instant::now();
            let response = inner.call(req).await?;
            let seconds = started.elapsed().as_secs_f64();
            metrics.record(method, &route, response.status().as_u16(), seconds);
            Ok(response)
        })
    }
}

#[derive(Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        let slot = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The registry: request counters by (method, route, status), a duration histogram by
/// route, and the number of requests in flight.
#[derive(Default)]
pub struct Metrics {
    requests: DashMap<(&'static str, String, u16), AtomicU64>,
    durations: DashMap<String, Histogram>,
    in_flight: AtomicI64,
}

impl Metrics {
    fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        if let Some(counter) = self.requests.get(&(method, route.to_string(), status)) {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            self.requests
                .entry((method, route.to_string(), status))
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
        if let Some(histogram) = self.durations.get(route) {
            histogram.observe(seconds);
        } else {
            self.durations
                .entry(route.to_string())
                .or_default()
                .observe(seconds);
        }
    }

    /// The registry's own series, in the Prometheus text format.
    fn write(&self, out: &mut String) {
        out.push_str("# HELP pica_http_requests_total HTTP requests answered, by method, route template and status.\n");
        out.push_str("# TYPE pica_http_requests_total counter\n");
        let mut rows: Vec<_> = self
            .requests
            .iter()
            .map(|e| (e.key().clone(), e.value().load(Ordering::Relaxed)))
            .collect();
        rows.sort();
        for ((method, route, status), n) in rows {
            let _ = writeln!(
                out,
                "pica_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(&route)
            );
        }

        out.push_str("# HELP pica_http_request_duration_seconds Time to answer a request (until the response head), by route template.\n");
        out.push_str("# TYPE pica_http_request_duration_seconds histogram\n");
        let mut routes: Vec<String> = self.durations.iter().map(|e| e.key().clone()).collect();
        routes.sort();
        for route in routes {
            let Some(h) = self.durations.get(&route) else {
                continue;
            };
            let route = escape(&route);
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "pica_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "pica_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "pica_http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "pica_http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }

        out.push_str("# HELP pica_http_requests_in_flight HTTP requests being answered now.\n");
        out.push_str("# TYPE pica_http_requests_in_flight gauge\n");
        let _ = writeln!(
            out,
            "pica_http_requests_in_flight {}",
            self.in_flight.load(Ordering::Relaxed)
        );
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Decrements the in-flight gauge even when the request future is dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Admission control: per bounded queue (each zone actor, the book stock actor, the
/// commit queue), its limit, how full it is now, and how many requests it refused.
fn write_admission(
    out: &mut String,
    edge: pica_actors::GateStats,
    admission: &pica_actors::AdmissionStats,
) {
    use pica_actors::GateStats;
    let mut queues: Vec<(String, GateStats)> = admission
        .zones
        .iter()
        .map(|(zone, stats)| {
            (
                format!("queue=\"zone\",zone=\"{}\"", escape(&zone.0)),
                *stats,
            )
        })
        .collect();
    queues.push(("queue=\"edge\"".into(), edge));
    queues.push(("queue=\"books\"".into(), admission.books));
    queues.push(("queue=\"commit\"".into(), admission.commit));
    type Series = (
        &'static str,
        &'static str,
        &'static str,
        fn(&GateStats) -> u64,
    );
    let series: [Series; 3] = [
        (
            "pica_admission_refused_total",
            "counter",
            "Requests refused with 503 because the queue was at its limit.",
            |s| s.refused,
        ),
        (
            "pica_admission_in_flight",
            "gauge",
            "Requests in the queue now (sent to the actor and not answered, or waiting for a transaction).",
            |s| s.in_flight as u64,
        ),
        (
            "pica_admission_limit",
            "gauge",
            "The queue's bound (PICA_MAX_IN_FLIGHT, PICA_ZONE_QUEUE_LIMIT, PICA_BOOK_QUEUE_LIMIT, PICA_COMMIT_QUEUE_LIMIT).",
            |s| s.limit as u64,
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, stats) in &queues {
            let _ = writeln!(out, "{name}{{{labels}}} {}", value(stats));
        }
    }
}

/// `GET /metrics`: the registry, plus gauges read from the app state now.
#[utoipa::path(
    get, path = "/metrics",
    tag = "Operations", operation_id = "metrics",
    summary = "Prometheus metrics (text exposition format 0.0.4)",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain", example = json!("# TYPE pica_http_requests_total counter\npica_http_requests_total{method=\"GET\",route=\"/api/public/zones\",status=\"200\"} 3\n")),
        (status = 503, response = r::Unavailable),
    ),
)]
async fn render(
    State(state): State<AppState>,
    Extension(metrics): Extension<Arc<Metrics>>,
) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    metrics.write(&mut out);

    out.push_str("# HELP pica_zones_ready Whether every zone actor and the book stock actor are up (1) or some are restarting (0).\n");
    out.push_str("# TYPE pica_zones_ready gauge\n");
    let _ = writeln!(
        out,
        "pica_zones_ready {}",
        u8::from(state.engine.is_ready())
    );

    out.push_str(
        "# HELP pica_zone_actor_up Whether the zone's actor is up (1) or restarting (0).\n",
    );
    out.push_str("# TYPE pica_zone_actor_up gauge\n");
    let mut zones = state.engine.layout();
    zones.sort_by(|a, b| a.id.0.cmp(&b.id.0));
    for zone in zones {
        let up = state.engine.zone_actor(&zone.id).is_some();
        let _ = writeln!(
            out,
            "pica_zone_actor_up{{zone=\"{}\"}} {}",
            escape(&zone.id.0),
            u8::from(up)
        );
    }

    out.push_str("# HELP pica_password_hashes_total argon2 runs done: registrations, logins (unknown usernames included), password changes.\n");
    out.push_str("# TYPE pica_password_hashes_total counter\n");
    let _ = writeln!(
        out,
        "pica_password_hashes_total {}",
        state.auth.passwords.runs()
    );
    out.push_str("# HELP pica_password_hash_refused_total Requests answered 503 because every hashing thread was busy and the queue full.\n");
    out.push_str("# TYPE pica_password_hash_refused_total counter\n");
    let _ = writeln!(
        out,
        "pica_password_hash_refused_total {}",
        state.auth.passwords.refused()
    );
    out.push_str("# HELP pica_login_throttle_keys Keys (username and address, address, username) the login throttle tracks now.\n");
    out.push_str("# TYPE pica_login_throttle_keys gauge\n");
    let _ = writeln!(
        out,
        "pica_login_throttle_keys {}",
        state.auth.throttle.tracked()
    );
    write_admission(&mut out, state.edge.snapshot(), &state.engine.admission());

    out.push_str("# HELP pica_database_info The database backend in use.\n");
    out.push_str("# TYPE pica_database_info gauge\n");
    let _ = writeln!(
        out,
        "pica_database_info{{backend=\"{}\"}} 1",
        state.db.backend()
    );

    out.push_str("# HELP pica_build_info The running version of Pica.\n");
    out.push_str("# TYPE pica_build_info gauge\n");
    let _ = writeln!(
        out,
        "pica_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );

    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}
