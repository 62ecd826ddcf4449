//! Prometheus metrics through the `metrics` crate and `metrics-exporter-prometheus`: the
//! route guard (`route_guard.rs`) records every request, and `GET /metrics` renders the
//! recorder in the text exposition format (version 0.0.4) after setting the gauges read
//! from the app state at scrape time.
//!
//! The engine keeps its own counts (it does not depend on the `metrics` crate): gauges
//! and counters read from it are set on the recorder at scrape time, and its two
//! histograms, which arrive already bucketed, are written after the recorder's output
//! (see [`write_commit_histograms`]).
//!
//! Each server builds its own recorder and records through it (`with_local_recorder`); no
//! global recorder is installed, so every server (and every test server in one process)
//! counts only its own requests.
//!
//! Labels are bounded: the route is axum's matched route template (`MatchedPath`), never
//! the raw path (requests no route matched are counted as `unmatched`), and unusual
//! methods are folded into `OTHER`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::doc::r;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram, with_local_recorder,
};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use pica_actors::{CommitStats, GateStats, HistogramSnapshot};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const REQUESTS: &str = "pica_http_requests_total";
const DURATION: &str = "pica_http_request_duration_seconds";
const IN_FLIGHT: &str = "pica_http_requests_in_flight";
const UOW_BATCHES: &str = "pica_uow_batches_total";
const UOW_COMMIT_FAILURES: &str = "pica_uow_commit_failures_total";
const UOW_INTENTS_PER_BATCH: &str = "pica_uow_intents_per_batch";
const UOW_COMMIT_SECONDS: &str = "pica_uow_commit_seconds";

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The recorder keeps each duration sample until it is folded into the histogram (at a
/// scrape or an upkeep); folding every this many requests bounds that memory when
/// nothing scrapes.
const UPKEEP_EVERY: u64 = 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render))
}

/// One server's recorder, the handle that renders it, and the in-flight gauge.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    in_flight: Gauge,
    recorded: AtomicU64,
    /// Each route's series, registered on its first request. Registering builds a key
    /// of owned labels and hashes it into the recorder's registry; with the handles kept
    /// here a request costs one lookup by the route's name under a read lock (a write
    /// lock only the first time a route, method and status meet). Bounded like the
    /// labels: routes × methods × statuses.
    routes: RwLock<HashMap<Box<str>, RouteSeries>>,
}

/// A route's request counters (by method and status) and its duration histogram.
struct RouteSeries {
    duration: Histogram,
    requests: Vec<(&'static str, u16, Counter)>,
}

impl RouteSeries {
    fn requests(&self, method: &str, status: u16) -> Option<&Counter> {
        self.requests
            .iter()
            .find(|(m, s, _)| *m == method && *s == status)
            .map(|(_, _, counter)| counter)
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let in_flight = with_local_recorder(&recorder, || {
            describe();
            gauge!(IN_FLIGHT)
        });
        Self {
            handle: recorder.handle(),
            recorder,
            in_flight,
            recorded: AtomicU64::new(0),
            routes: RwLock::default(),
        }
    }

    /// The recorder's own series in the exposition format (the request counts).
    #[cfg(test)]
    pub fn text(&self) -> String {
        self.handle.render()
    }

    /// Counts one answered request (a route template or [`UNMATCHED`]).
    pub fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        if !self.count(method, route, status, seconds) {
            self.register(method, route, status);
            self.count(method, route, status, seconds);
        }
        if self.recorded.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    /// Counts the request on its kept series; false if they are not registered yet.
    fn count(&self, method: &str, route: &str, status: u16, seconds: f64) -> bool {
        let routes = self.routes.read().expect("metrics lock");
        let Some(series) = routes.get(route) else {
            return false;
        };
        let Some(requests) = series.requests(method, status) else {
            return false;
        };
        requests.increment(1);
        series.duration.record(seconds);
        true
    }

    /// Registers the series of a route, method and status met for the first time.
    fn register(&self, method: &'static str, route: &str, status: u16) {
        let mut routes = self.routes.write().expect("metrics lock");
        let series = routes.entry(route.into()).or_insert_with(|| RouteSeries {
            duration: with_local_recorder(
                &self.recorder,
                || histogram!(DURATION, "route" => route.to_owned()),
            ),
            requests: Vec::new(),
        });
        if series.requests(method, status).is_none() {
            let counter = with_local_recorder(&self.recorder, || {
                counter!(REQUESTS, "method" => method, "route" => route.to_owned(),
                    "status" => status.to_string())
            });
            series.requests.push((method, status, counter));
        }
    }
}

/// The HELP text of every series; the exporter writes it for the series that have values.
fn describe() {
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        DURATION,
        "Time to answer a request (until the response head), by route template."
    );
    describe_gauge!(IN_FLIGHT, "HTTP requests being answered now.");
    describe_gauge!(
        "pica_zones_ready",
        "Whether every zone actor and the book stock actor are up (1) or some are restarting (0)."
    );
    describe_gauge!(
        "pica_zone_actor_up",
        "Whether the zone's actor is up (1) or restarting (0)."
    );
    describe_counter!(
        "pica_password_hashes_total",
        "argon2 runs done: registrations, logins (unknown usernames included), password changes."
    );
    describe_counter!(
        "pica_password_hash_refused_total",
        "Requests answered 503 because every hashing thread was busy and the queue full."
    );
    describe_gauge!(
        "pica_login_throttle_keys",
        "Keys (username and address, address, username) the login throttle tracks now."
    );
    describe_counter!(
        "pica_admission_refused_total",
        "Requests refused with 503 because the queue was at its limit."
    );
    describe_gauge!(
        "pica_admission_in_flight",
        "Requests in the queue now (sent to the actor and not answered, or waiting for a transaction)."
    );
    describe_gauge!(
        "pica_admission_limit",
        "The queue's bound (PICA_MAX_IN_FLIGHT, PICA_ZONE_QUEUE_LIMIT, PICA_BOOK_QUEUE_LIMIT, PICA_COMMIT_QUEUE_LIMIT)."
    );
    describe_counter!(
        "pica_mail_sent_total",
        "Emails the SMTP server accepted, by kind."
    );
    describe_counter!(
        "pica_mail_failures_total",
        "Failed attempts to send an email (refused, unreachable, timed out), by kind."
    );
    describe_counter!(
        "pica_mail_given_up_total",
        "Emails marked failed after their last attempt or a permanent refusal, by kind."
    );
    describe_counter!(
        "pica_mail_skipped_total",
        "Emails dropped unsent because they no longer applied (e.g. a cancelled reservation's reminder), by kind."
    );
    describe_gauge!(
        "pica_mail_outbox_pending",
        "Emails waiting in the outbox, as of the mailer's last pass."
    );
    describe_counter!(
        UOW_BATCHES,
        "Transactions the unit of work ran (one storage commit each), by outcome. After a failed batch of several intents, each intent is committed again alone, and each of those retries counts too."
    );
    describe_counter!(
        UOW_COMMIT_FAILURES,
        "Intents whose commit failed for good (alone, or retried alone after their batch failed): their participants undo, and a client's write is answered 503."
    );
    describe_gauge!(
        "pica_uow_queue_depth",
        "Intents waiting for the unit of work's next transaction now (its mailbox and queue; the transaction in flight not included)."
    );
    describe_gauge!(
        "pica_uow_transactions_in_flight",
        "The unit of work's transactions in flight now: at most PICA_PG_COMMITS_IN_FLIGHT on PostgreSQL, one on SQLite."
    );
    describe_gauge!(
        "pica_zone_mailbox_depth",
        "Client requests in flight at the zone actor now: in its mailbox, being handled, or waiting for their commit."
    );
    describe_gauge!("pica_database_info", "The database backend in use.");
    describe_gauge!("pica_build_info", "The running version of Pica.");
}

pub fn method_label(method: &Method) -> &'static str {
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

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a request in flight, and out again even when the request future is dropped.
pub struct InFlight(Gauge);

impl InFlight {
    pub fn enter(metrics: &Metrics) -> Self {
        let gauge = metrics.in_flight.clone();
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Sets the series read from the app state now (to be called under the app's recorder).
fn record_state(state: &AppState) {
    gauge!("pica_zones_ready").set(f64::from(u8::from(state.engine.is_ready())));
    for zone in state.engine.layout() {
        let up = state.engine.zone_actor(&zone.id).is_some();
        gauge!("pica_zone_actor_up", "zone" => zone.id.0).set(f64::from(u8::from(up)));
    }
    let passwords = &state.auth.passwords;
    counter!("pica_password_hashes_total").absolute(passwords.runs());
    counter!("pica_password_hash_refused_total").absolute(passwords.refused());
    gauge!("pica_login_throttle_keys").set(state.auth.throttle.tracked() as f64);

    // Admission control: per bounded queue (each zone actor, the book stock actor, the
    // commit queue), its limit, how full it is now, and how many requests it refused.
    let admission = state.engine.admission();
    for (zone, stats) in &admission.zones {
        record_gate(
            &[("queue", "zone".into()), ("zone", zone.0.clone())],
            *stats,
        );
        gauge!("pica_zone_mailbox_depth", "zone" => zone.0.clone()).set(stats.in_flight as f64);
    }
    record_gate(&[("queue", "edge".into())], state.edge.snapshot());
    record_gate(&[("queue", "books".into())], admission.books);
    record_gate(&[("queue", "commit".into())], admission.commit);
    // A pass of the commit gate is held from submission until the intent leaves the
    // queue for a transaction, so its count is the queue's depth, read without asking
    // the unit of work.
    gauge!("pica_uow_queue_depth").set(admission.commit.in_flight as f64);

    if let Some(mail) = &state.mail {
        mail.record();
    }

    gauge!("pica_database_info", "backend" => state.db.backend()).set(1.0);
    gauge!("pica_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The unit of work's counters, from the snapshot the histograms are written from.
fn record_commits(commits: &CommitStats) {
    gauge!("pica_uow_transactions_in_flight").set(commits.in_flight as f64);
    counter!(UOW_BATCHES, "outcome" => "committed").absolute(commits.committed);
    counter!(UOW_BATCHES, "outcome" => "failed").absolute(commits.failed);
    counter!(UOW_COMMIT_FAILURES).absolute(commits.failed_intents);
}

/// Appends the unit of work's histograms in the text format. The recorder's histograms
/// take one sample at a time, and the engine hands over counts already bucketed (it
/// records them with a few atomic adds per transaction, not through this crate), so
/// feeding them back as samples is not possible; two families written here are.
fn write_commit_histograms(out: &mut String, commits: &CommitStats) {
    write_histogram(
        out,
        UOW_INTENTS_PER_BATCH,
        "Intents with changes in each transaction of the unit of work (a retry after a failed batch holds one).",
        &commits.intents_per_batch,
        1.0,
    );
    write_histogram(
        out,
        UOW_COMMIT_SECONDS,
        "Time each transaction of the unit of work took in the database (storage commit), retries included.",
        &commits.commit_micros,
        1e6,
    );
}

/// One histogram family with no labels; bounds and sum are divided by `per_unit` (a
/// division by a power of ten prints as the decimal: 250 / 1e6 is `0.00025`).
fn write_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    histogram: &HistogramSnapshot,
    per_unit: f64,
) {
    use std::fmt::Write;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} histogram");
    for &(bound, count) in &histogram.buckets {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {count}",
            bound as f64 / per_unit
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", histogram.count);
    let _ = writeln!(out, "{name}_sum {}", histogram.sum as f64 / per_unit);
    let _ = writeln!(out, "{name}_count {}", histogram.count);
    out.push('\n');
}

fn record_gate(labels: &[(&'static str, String)], stats: GateStats) {
    counter!("pica_admission_refused_total", labels).absolute(stats.refused);
    gauge!("pica_admission_in_flight", labels).set(stats.in_flight as f64);
    gauge!("pica_admission_limit", labels).set(stats.limit as f64);
}

/// `GET /metrics`: the recorder, with the gauges read from the app state now.
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
    let commits = state.engine.commit_stats();
    with_local_recorder(&metrics.recorder, || {
        record_state(&state);
        record_commits(&commits);
    });
    let mut text = metrics.handle.render();
    write_commit_histograms(&mut text, &commits);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series that has every one of `labels`.
    fn value(text: &str, name: &str, labels: &[&str]) -> Option<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| labels.iter().all(|label| l.contains(label)))
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_owned)
    }

    /// Kept handles count each route, method and status apart, like registering every
    /// time did, and the first request of a new status is not lost.
    #[test]
    fn each_route_method_and_status_is_its_own_series() {
        let metrics = Metrics::new();
        metrics.record("GET", "/a/{id}", 200, 0.001);
        metrics.record("GET", "/a/{id}", 200, 0.002);
        metrics.record("GET", "/a/{id}", 404, 0.003);
        metrics.record("POST", "/a/{id}", 200, 0.004);
        metrics.record("GET", UNMATCHED, 404, 0.005);
        let text = metrics.text();
        let requests = |labels: &[&str]| value(&text, REQUESTS, labels);
        let route = r#"route="/a/{id}""#;
        let get = r#"method="GET""#;
        assert_eq!(
            requests(&[route, get, r#"status="200""#]).as_deref(),
            Some("2"),
            "{text}"
        );
        assert_eq!(
            requests(&[route, get, r#"status="404""#]).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            requests(&[route, r#"method="POST""#, r#"status="200""#]).as_deref(),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            requests(&[r#"route="unmatched""#]).as_deref(),
            Some("1"),
            "{text}"
        );
        let count = value(&text, &format!("{DURATION}_count"), &[route]);
        assert_eq!(count.as_deref(), Some("4"), "{text}");
    }
}
