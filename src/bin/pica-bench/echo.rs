//! The ceiling: an axum server that does no work but answer with the JSON body it got,
//! loaded with the same client, connection counts and request bodies as the real one.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

/// Serves until `lifetime` passes (it always stops by itself).
pub async fn serve(bind: SocketAddr, lifetime: Duration) -> anyhow::Result<()> {
    let listener = TcpListener::bind(bind).await?;
    println!("echo listening on http://{}", listener.local_addr()?);
    let app = Router::new().fallback(echo);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { tokio::time::sleep(lifetime).await })
        .await?;
    Ok(())
}

async fn echo(method: Method, body: Bytes) -> Response {
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) if method == Method::POST => {
            (StatusCode::CREATED, axum::Json(value)).into_response()
        }
        _ => axum::Json(serde_json::json!({"ok": true})).into_response(),
    }
}

/// The echo server as a separate process (like the real server), on a free port.
pub struct EchoProcess {
    child: Child,
    pub url: String,
}

impl EchoProcess {
    pub async fn spawn(lifetime: Duration) -> anyhow::Result<EchoProcess> {
        let exe = std::env::current_exe().context("locating pica-bench")?;
        let mut child = Command::new(exe)
            .args(["echo", "--bind", "127.0.0.1:0", "--lifetime"])
            .arg(format!("{}s", lifetime.as_secs().max(1)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the echo server")?;
        let stdout = child.stdout.take().context("echo stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("echo server did not start in 10 s")??;
        let Some(url) = first
            .as_deref()
            .and_then(|l| l.strip_prefix("echo listening on "))
        else {
            bail!("unexpected output from the echo server: {first:?}");
        };
        Ok(EchoProcess {
            url: url.to_string(),
            child,
        })
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
