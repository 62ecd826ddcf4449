//! What the server answers while it starts: the database migrating and the engine
//! starting (the zones then rebuild behind the real server, which answers for each zone
//! as soon as it is up; `/readyz` stays 503 until all are). The port is open
//! from the first moment, so a liveness probe sees the process alive (`/healthz` 200)
//! rather than refused connections (which would get it killed and restarted in a
//! loop), a readiness probe sees it is not ready yet (`/readyz` 503), and every other
//! request hears 503 with `Retry-After` at once. It lives outside `http/` because it is
//! not the API: its two answers are the documented `/healthz` and `/readyz` ones, given
//! before the API's router exists.

use std::io;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::http::listener::{ConnectionLimits, serve};

fn router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(|| async {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::RETRY_AFTER, HeaderValue::from_static("1"))],
                    Json(json!({"status": "not_ready", "engine": "starting"})),
                )
                    .into_response()
            }),
        )
        .fallback(|| async {
            ApiError::Unavailable("The server is starting; retry shortly".into())
        })
}

/// The answers above, served on a duplicate of the real listener's socket until the
/// application is built; then the real server takes over the same socket.
pub struct StartingServer {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl StartingServer {
    /// Starts serving on a duplicate of `listener` (the same socket: connections that
    /// arrive after [`stop`](Self::stop) wait in its backlog for the real server).
    pub fn start(listener: &std::net::TcpListener, limits: ConnectionLimits) -> io::Result<Self> {
        let socket = TcpListener::from_std(listener.try_clone()?)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(socket, router(), limits, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops accepting, lets the requests being answered finish and closes idle
    /// connections (a client's next request then reaches the real server).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for StartingServer {
    /// A build that failed half-way leaves nothing serving behind.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(5),
            max_connections: 64,
            max_headers: 100,
        }
    }

    #[tokio::test]
    async fn alive_not_ready_then_the_real_server_takes_the_same_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let starting = StartingServer::start(&listener, limits()).unwrap();
        let client = reqwest::Client::new();
        let fetch = |path: &str| client.get(format!("{base}{path}")).send();

        let health = fetch("/healthz").await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let ready = fetch("/readyz").await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ready.headers()[header::RETRY_AFTER], "1");
        let other = fetch("/api/public/zones").await.unwrap();
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(other.headers().contains_key(header::RETRY_AFTER));
        let body: serde_json::Value = other.json().await.unwrap();
        assert_eq!(body["detail"], "The server is starting; retry shortly");

        // Stopped, the same socket goes to the real server; the client's kept-alive
        // connection was closed, so its next request reaches the new one.
        starting.stop().await;
        let real = Router::new().route("/readyz", get(|| async { "ready" }));
        let socket = TcpListener::from_std(listener).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(socket, real, limits(), async {
            let _ = stopped.await;
        }));
        let ready = fetch("/readyz").await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        assert_eq!(ready.text().await.unwrap(), "ready");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
