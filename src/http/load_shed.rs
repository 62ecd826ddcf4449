//! The edge's own bound: how many requests are being handled at once.
//!
//! The engine's gates (per zone, books, commit queue) refuse cheaply, but a request only
//! reaches them after the expensive part of the edge: reading and parsing the body,
//! checking a JWT or an API key, a database lookup for some routes. Under overload that
//! part is what queues, so a refusal at the engine comes as late as an acceptance would.
//! This gate sits before all of it: past `PICA_MAX_IN_FLIGHT` requests, the next one is
//! answered 503 with `Retry-After` from its head alone, without reading its body.
//!
//! A request holds its place until its response head is ready, so an event stream counts
//! only while its head is prepared (snapshots have their own limit, see `events`).
//! Probes and metrics are never refused: an operator must be able to see an overloaded
//! server, and a liveness probe must not kill one that is only busy.

use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// Paths that are answered even past the limit.
const NEVER_SHED: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Whether a request for `path` is answered even past the limit.
pub fn never_shed(path: &str) -> bool {
    NEVER_SHED.contains(&path)
}

/// The answer past the limit (the gate itself is checked by the route guard,
/// `route_guard.rs`, which holds the pass until the response head is ready).
pub fn busy() -> Response {
    ApiError::Unavailable("The server is busy; retry shortly".into()).into_response()
}
