//! The listener: accepts TCP connections and serves HTTP/1.1 on them with the limits an
//! exposed server needs, which `axum::serve` does not set.
//!
//! - **Header timeout.** A connection must deliver a complete request head within
//!   `header_timeout` of being accepted, and again within `header_timeout` of the previous
//!   response (so an idle keep-alive connection is closed too). Silent and trickling
//!   clients cannot hold a socket for ever.
//! - **A connection cap.** At most `max_connections` are served at once. Past it, the
//!   listener still accepts (so the kernel's backlog keeps draining), answers a canned
//!   `503` with `Retry-After` and closes: a flood costs a socket for a moment, never the
//!   server.
//! - **No spinning on `EMFILE`.** When `accept` fails because the process is out of file
//!   descriptors, the loop pauses briefly and tries again, logging at most once a second.
//! - **JSON bodies on hyper's own errors.** hyper answers an oversized head (431), an
//!   overlong URI (414) and an unparsable request (400) itself, with an empty body;
//!   [`ErrorBodyIo`] gives those answers the same `{"detail": ...}` body as every other
//!   error.
//!
//! HTTP/2 is not offered: nothing that talks to Pica needs cleartext HTTP/2, and hyper's
//! header timeout only guards HTTP/1.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::{Service, ServiceExt};
use tracing::{debug, warn};

/// The connection limits (see the module docs).
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// The largest number of headers a request may carry.
    pub max_headers: usize,
}

/// Serves `service` (a router, or the edge's stack around one) on `listener` until
/// `shutdown` resolves, then waits for the open connections to finish their requests.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let builder = Arc::new(builder);
    // One permit per connection being served; it goes back when the connection closes.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let accept_errors = RateLimitedLog::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) if is_per_connection(&err) => continue,
                Err(err) => {
                    // Out of descriptors (or memory): the connection stays in the
                    // backlog; pause instead of spinning on the same error.
                    accept_errors.warn(&err);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse_busy(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let io = TokioIo::new(ErrorBodyIo::new(stream));
        let conn = builder.serve_connection(io, TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                debug!(%peer, error = %err, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one pending connection (the peer gave up before we accepted it): the
/// listener itself is fine.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Past the connection cap: a best-effort `503` written without waiting, then close.
fn refuse_busy(stream: TcpStream) {
    let _ = stream.try_write(BUSY);
}

/// The canned answer past the connection cap.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 53\r\n\r\n\
{\"detail\":\"Too many open connections; retry shortly\"}";

/// Logs a repeated error at most once a second, with how many were suppressed.
#[derive(Default)]
struct RateLimitedLog {
    last: std::sync::Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    fn warn(&self, err: &io::Error) {
        let mut last = self.last.lock().expect("log lock");
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        warn!(error = %err, suppressed, "accept failed; pausing before the next accept");
    }
}

/// Raises the soft open-file limit to the hard limit, so the connection cap (not the
/// default of 1,024 descriptors) is what bounds the server. Returns the limit now in
/// force, or `None` where it cannot be read.
pub fn raise_open_file_limit() -> Option<u64> {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        Some(limit.rlim_cur)
    }
}

/// The connection cap to use: the configured one, or (when unset) what the open-file
/// limit allows after keeping `reserve` descriptors for the database, logs and files.
pub fn effective_max_connections(configured: Option<usize>, open_files: Option<u64>) -> usize {
    const DEFAULT: usize = 20_000;
    const RESERVE: u64 = 128;
    match configured {
        Some(n) => n,
        None => match open_files {
            Some(limit) => (limit.saturating_sub(RESERVE) as usize).clamp(16, DEFAULT),
            None => DEFAULT,
        },
    }
}

/// The connection's socket, with hyper's automatic error answers (an empty `400`, `414`
/// or `431`) rewritten to carry a JSON `detail`.
///
/// hyper writes such an answer as one head-only write (`content-length: 0`) and closes
/// the connection after it, so a write of exactly that shape is recognised and replaced.
/// The application's own 4xx answers always have a body, so they never match.
pub struct ErrorBodyIo<T> {
    inner: T,
    /// Bytes of a rewritten answer not yet written to the socket.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ErrorBodyIo<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            pending: Vec::new(),
            written: 0,
        }
    }
}

/// The JSON answer for one of hyper's automatic error heads, if `head` is one.
fn rewrite_automatic_error(head: &[u8]) -> Option<Vec<u8>> {
    const MAX_HEAD: usize = 512;
    if head.len() > MAX_HEAD || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let detail = match head.get(..13)? {
        b"HTTP/1.1 400 " | b"HTTP/1.0 400 " => "Malformed HTTP request",
        b"HTTP/1.1 414 " | b"HTTP/1.0 414 " => "The request URI is too long",
        b"HTTP/1.1 431 " | b"HTTP/1.0 431 " => "The request headers are too large or too many",
        _ => return None,
    };
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.trim_end().split("\r\n");
    let status_line = lines.next()?;
    let mut out = String::with_capacity(head.len() + 128);
    out.push_str(status_line);
    out.push_str("\r\n");
    let mut saw_empty_length = false;
    for line in lines {
        if line.eq_ignore_ascii_case("content-length: 0") {
            saw_empty_length = true;
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if !saw_empty_length {
        return None;
    }
    let body = serde_json::json!({ "detail": detail }).to_string();
    out.push_str("content-type: application/json\r\nconnection: close\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    Some(out.into_bytes())
}

impl<T: AsyncWrite + Unpin> ErrorBodyIo<T> {
    /// Writes what is left of a rewritten answer; ready once it is all out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorBodyIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorBodyIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        if let Some(answer) = rewrite_automatic_error(buf) {
            this.pending = answer;
            this.written = 0;
            // The caller's bytes are accounted for: they are replaced by the answer,
            // which flush and shutdown finish writing.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_pending(cx))?;
        let mut non_empty = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next())
            && let Some(answer) = rewrite_automatic_error(only)
        {
            this.pending = answer;
            this.written = 0;
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(only.len()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_error_heads_get_a_json_body() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_automatic_error(head).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 "));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(!head.contains("content-length: 0"));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["detail"].as_str().unwrap().contains("headers"));
    }

    #[test]
    fn application_answers_are_left_alone() {
        // A 400 with a body (the application's own) and a 200 are not hyper's.
        let own = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 20\r\n\r\n";
        assert!(rewrite_automatic_error(own).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(rewrite_automatic_error(ok).is_none());
        let partial = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n";
        assert!(rewrite_automatic_error(partial).is_none());
    }

    #[test]
    fn the_busy_answer_is_well_framed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(body["detail"].is_string());
    }

    #[test]
    fn the_default_cap_follows_the_open_file_limit() {
        assert_eq!(effective_max_connections(Some(7), Some(1024)), 7);
        assert_eq!(effective_max_connections(None, Some(1024)), 1024 - 128);
        assert_eq!(effective_max_connections(None, Some(100)), 16);
        assert_eq!(effective_max_connections(None, Some(1 << 20)), 20_000);
    }
}
