//! What every request goes through once its route is known, as one layer: it is
//! counted in the metrics (by route template), refused past the edge's bound, bounded in
//! time, has a panic turned into a 500, and gets the security headers.
//!
//! **Why one layer and not five.** axum applies a `Router::layer` to each route by
//! wrapping the route's boxed service in a new box, and clones the whole chain of boxes
//! for every request; `from_fn` middleware adds a boxed `Next` and a boxed future per
//! request on top. With these five as separate layers a request cloned about ten boxed
//! services and allocated about eight futures before its handler ran (those allocations
//! alone were 5.8% of the server's samples on the spread benchmark). Here it is one
//! boxed service clone and one boxed future. The layers that do not need the route (request
//! id, tracing, CORS, the body limit) wrap the router once from outside (`src/app.rs`).
//!
//! **The order inside**, outermost first, is what the separate layers had:
//! 1. *Metrics*: every answer is counted, the guard's own 503s and 500s too, under the
//!    matched route (which only exists inside the router, hence a per-route layer).
//! 2. *Load shedding* ([`super::load_shed`]): past `PICA_MAX_IN_FLIGHT`, a 503 from the
//!    head alone, before the body is read or a token checked.
//! 3. *Panics*: a handler that panics answers 500 (and the server goes on).
//! 4. *The deadline*: no response head within `PICA_REQUEST_TIMEOUT` is a 503 with
//!    `Retry-After`. Only the head is bounded: an event stream's body flows on.
//!
//! The security headers go on every answer, these included.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use pica_actors::admission::Gate;
use tower::{Layer, Service, ServiceExt};

use super::error::{ApiError, panic_response};
use super::load_shed;
use super::metrics::{InFlight, Metrics, UNMATCHED, method_label};
use crate::web::{add_security_headers, is_app_page};

/// The guard's settings, shared by every route's copy of it.
struct Guard {
    metrics: Arc<Metrics>,
    /// The edge's bound on requests being answered at once.
    gate: Arc<Gate>,
    /// How long a response head may take.
    deadline: Duration,
}

/// Adds the guard to every route of a router (`Router::layer`).
#[derive(Clone)]
pub struct RouteGuardLayer(Arc<Guard>);

impl RouteGuardLayer {
    pub fn new(gate: Arc<Gate>, deadline: Duration) -> Self {
        Self(Arc::new(Guard {
            metrics: Arc::new(Metrics::new()),
            gate,
            deadline,
        }))
    }
}

impl<S> Layer<S> for RouteGuardLayer {
    type Service = RouteGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteGuard {
            inner,
            guard: self.0.clone(),
        }
    }
}

/// One route's guard.
#[derive(Clone)]
pub struct RouteGuard<S> {
    inner: S,
    guard: Arc<Guard>,
}

impl<S> Service<Request> for RouteGuard<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    /// Ready at once: the route is called (and made ready) inside the future, on a
    /// clone, so that a panic there is caught too.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let guard = self.guard.clone();
        let inner = self.inner.clone();
        let method = method_label(req.method());
        // A reference count, not a copy of the template.
        let route = req.extensions().get::<MatchedPath>().cloned();
        let path = req.uri().path();
        let app_page = is_app_page(path);
        // Refused here, before the future exists, so that nothing of the request is
        // kept for a refusal; probes and metrics are never refused.
        let pass = if load_shed::never_shed(path) {
            Ok(None)
        } else {
            guard.gate.try_enter().map(Some).ok_or(())
        };
        // `GET /metrics` renders this recorder.
        req.extensions_mut().insert(guard.metrics.clone());
        Box::pin(async move {
            let in_flight = InFlight::enter(&guard.metrics);
            let mut response = match pass {
                Err(()) => load_shed::busy(),
                Ok(pass) => {
                    let answer = AssertUnwindSafe(inner.oneshot(req)).catch_unwind();
                    let response = match tokio::time::timeout(guard.deadline, answer).await {
                        Ok(Ok(Ok(response))) => response,
                        Ok(Ok(Err(never))) => match never {},
                        Ok(Err(panic)) => panic_response(panic),
                        Err(_) => {
                            ApiError::Unavailable("The request took too long; retry shortly".into())
                                .into_response()
                        }
                    };
                    // The place in the bound is held until the response head is ready.
                    drop(pass);
                    response
                }
            };
            add_security_headers(app_page, response.headers_mut());
            let seconds = started.elapsed().as_secs_f64();
            let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
            let status = response.status().as_u16();
            guard.metrics.record(method, route, status, seconds);
            drop(in_flight);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::http::{StatusCode, header};
    use axum::routing::get;

    /// A few routes behind a guard whose bound is `limit` and whose deadline is
    /// `deadline` (`/never` never answers, so only it meets the deadline).
    fn app_with(limit: usize, deadline: Duration) -> (Router, Arc<Gate>) {
        let gate = Gate::new(limit);
        let guard = RouteGuardLayer::new(gate.clone(), deadline);
        let router = Router::new()
            .route("/ok/{n}", get(|| async { "fine" }))
            .route(
                "/panics",
                get(|| async {
                    panic!("a handler's bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .route("/never", get(std::future::pending::<&'static str>))
            .route(
                "/metrics",
                get(|Extension(m): Extension<Arc<Metrics>>| async move { m.text() }),
            )
            .route("/app/book", get(|| async { "page" }))
            .layer(guard);
        (router, gate)
    }

    fn app(limit: usize) -> (Router, Arc<Gate>) {
        app_with(limit, Duration::from_secs(60))
    }

    async fn get_path(router: &Router, path: &str) -> Response {
        let req = Request::get(path).body(Body::empty()).unwrap();
        router.clone().oneshot(req).await.unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await;
        String::from_utf8(bytes.unwrap().to_vec()).unwrap()
    }

    fn counted(text: &str, route: &str, status: u16) -> bool {
        text.lines().any(|l| {
            l.starts_with("pica_http_requests_total")
                && l.contains(&format!("route=\"{route}\""))
                && l.contains(&format!("status=\"{status}\""))
                && l.ends_with(" 1")
        })
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_is_counted_under_its_route() {
        let (router, _) = app(8);
        let response = get_path(&router, "/panics").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert!(body(response).await.contains("\"detail\""));
        // The router still serves afterwards.
        assert_eq!(get_path(&router, "/ok/1").await.status(), StatusCode::OK);
        let text = body(get_path(&router, "/metrics").await).await;
        assert!(counted(&text, "/panics", 500), "{text}");
        assert!(counted(&text, "/ok/{n}", 200), "{text}");
    }

    #[tokio::test]
    async fn no_head_within_the_deadline_is_a_503_to_retry() {
        let (router, gate) = app_with(8, Duration::from_millis(50));
        let response = get_path(&router, "/never").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert!(body(response).await.contains("took too long"));
        // The abandoned request gave its place back.
        assert_eq!(gate.snapshot().in_flight, 0);
        let text = body(get_path(&router, "/metrics").await).await;
        assert!(counted(&text, "/never", 503), "{text}");
    }

    #[tokio::test]
    async fn past_the_bound_a_request_is_refused_but_metrics_are_not() {
        let (router, gate) = app(1);
        let held = gate.try_enter().expect("the one place");
        let refused = get_path(&router, "/ok/2").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        assert!(body(refused).await.contains("busy"));
        let text = body(get_path(&router, "/metrics").await).await;
        assert!(counted(&text, "/ok/{n}", 503), "{text}");
        drop(held);
        assert_eq!(get_path(&router, "/ok/2").await.status(), StatusCode::OK);
        assert_eq!(gate.snapshot().in_flight, 0);
    }

    #[tokio::test]
    async fn the_app_pages_get_the_content_security_policy_and_the_api_does_not() {
        let (router, _) = app(8);
        let page = get_path(&router, "/app/book").await;
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(page.headers()[header::X_FRAME_OPTIONS], "DENY");
        let api = get_path(&router, "/ok/3").await;
        assert!(!api.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert_eq!(api.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
}
