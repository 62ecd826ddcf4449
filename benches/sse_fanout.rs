//! Fan-out benchmark of the live event stream (not a test: it measures and prints).
//!
//! Starts the real `pica` binary on loopback with a fresh SQLite file, opens
//! `PICA_BENCH_SUBSCRIBERS` (10,000) concurrent `GET /api/public/events` streams from
//! this process, waits for every stream's snapshot, then books `PICA_BENCH_EVENTS` (100)
//! seats one after another; after each booking it waits until every stream received
//! its `reservation_created` event. It reports, over all (event, stream) pairs, the time
//! from the commit (the event's `committed_at`, stamped by the notifier right after the
//! transaction committed) to the stream's receipt, at p50/p99/max, and the server's
//! memory per stream (its RSS growth from before the streams opened to after, divided
//! by the number of streams). Everything is bounded: a deadline ends the run.
//!
//! Run with `scripts/bench-sse` (it raises `ulimit -n`), or
//! `cargo bench --bench sse_fanout`. `PICA_BENCH_BIN=/path/to/pica` measures another
//! build of the server (e.g. one kept from before a change) with the same client.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: graceful shutdown ends every stream.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Finds `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A stream reader over HTTP/1.0, so the body is the raw event stream. Its k-th
/// `reservation_created` event is booking k (events come in commit order); it returns
/// the latency of each, measured from the event's `committed_at`, once it has them all.
async fn subscriber(
    addr: SocketAddr,
    events: usize,
    ready: Arc<AtomicUsize>,
    delivered: Arc<Vec<AtomicUsize>>,
) -> std::io::Result<Vec<Duration>> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            b"GET /api/public/events?zone=coworking HTTP/1.0\r\naccept: text/event-stream\r\n\r\n",
        )
        .await?;
    let mut latencies = Vec::with_capacity(events);
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut in_body = false;
    while latencies.len() < events {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let received = Utc::now();
        buffer.extend_from_slice(&chunk[..n]);
        if !in_body {
            // Skip the response head.
            let Some(end) = find(&buffer, b"\r\n\r\n") else {
                continue;
            };
            assert!(buffer.starts_with(b"HTTP/1.0 200") || buffer.starts_with(b"HTTP/1.1 200"));
            buffer.drain(..end + 4);
            in_body = true;
        }
        while let Some(end) = find(&buffer, b"\n\n") {
            let block = &buffer[..end];
            if block.starts_with(b"event: snapshot") {
                ready.fetch_add(1, Ordering::Relaxed);
            } else if block.starts_with(b"event: reservation_created") {
                let key = b"\"committed_at\":\"";
                let at = find(block, key).expect("committed_at") + key.len();
                let len = block[at..].iter().position(|b| *b == b'"').unwrap();
                let committed = std::str::from_utf8(&block[at..at + len]).unwrap();
                let committed = DateTime::parse_from_rfc3339(committed).unwrap();
                let latency = (received - committed.with_timezone(&Utc))
                    .to_std()
                    .unwrap_or_default();
                delivered[latencies.len()].fetch_add(1, Ordering::Relaxed);
                latencies.push(latency);
            }
            buffer.drain(..end + 2);
        }
    }
    Ok(latencies)
}

/// Opens `n` plain keep-alive connections (one `GET /healthz` each, then idle) and
/// returns them: what any HTTP connection costs the server, SSE or not.
async fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: bench\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 512];
        let got = s.read(&mut head).await.unwrap();
        assert!(head[..got].starts_with(b"HTTP/1.1 200"));
        open.push(s);
    }
    open
}

fn start_server(dir: &std::path::Path, name: &str, subscribers: usize) -> (Server, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let binary =
        std::env::var_os("PICA_BENCH_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_pica").into());
    let child = Command::new(binary)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join(name).display()),
        )
        .env("PICA_BIND", addr.to_string())
        .env(
            "PICA_JWT_SECRET",
            "bench-secret-bench-secret-bench-secret-0",
        )
        .env("PICA_SSE_MAX_SUBSCRIBERS", (subscribers + 16).to_string())
        // Streams open in waves of 200, each with its snapshot: past the default limit
        // of snapshots in progress most would be refused (503).
        .env("PICA_SSE_MAX_SNAPSHOTS", (subscribers + 16).to_string())
        .env("PICA_MAX_ACTIVE_RESERVATIONS", "100000")
        .env("PICA_SWEEP_SECONDS", "0")
        .env("PICA_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the pica binary");
    (Server(child), addr)
}

/// Waits for `/readyz`: the server answers `/healthz` as soon as its port is open, before
/// the engine is up (and answers bookings 503 until then).
async fn wait_healthy(client: &reqwest::Client, addr: SocketAddr, deadline: Instant) {
    while !client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let subscribers = env_usize("PICA_BENCH_SUBSCRIBERS", 10_000);
    let events = env_usize("PICA_BENCH_EVENTS", 100);
    let deadline =
        Instant::now() + Duration::from_secs(env_usize("PICA_BENCH_DEADLINE_SECS", 300) as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let dir = tempfile::tempdir().unwrap();

    // Baseline: what a plain idle HTTP connection costs the server (hyper's buffers).
    let idle_kib = runtime.block_on(async {
        let (server, addr) = start_server(dir.path(), "idle.db", subscribers);
        let client = reqwest::Client::new();
        wait_healthy(&client, addr, deadline).await;
        let _warm = idle_connections(addr, 16).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = rss_kib(server.0.id());
        let open = idle_connections(addr, subscribers).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(server.0.id());
        drop(open);
        drop(server);
        after.saturating_sub(before) as f64 / subscribers as f64
    });

    let (server, addr) = start_server(dir.path(), "bench.db", subscribers);
    let pid = server.0.id();

    runtime.block_on(async move {
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");
        wait_healthy(&client, addr, deadline).await;
        let password = "bench-pass-123";
        let r = client
            .post(format!("{base}/api/public/register"))
            .json(&json!({"username": "bench", "email": "bench@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "register: {}", r.status());
        let login: Value = client
            .post(format!("{base}/api/public/login"))
            .json(&json!({"username": "bench", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_string();

        // Warm up one stream, so the baseline includes what any first stream costs.
        let ready = Arc::new(AtomicUsize::new(0));
        let delivered: Arc<Vec<AtomicUsize>> =
            Arc::new((0..events).map(|_| AtomicUsize::new(0)).collect());
        let warm = tokio::spawn(subscriber(addr, events, ready.clone(), delivered.clone()));
        while ready.load(Ordering::Relaxed) < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rss_before = rss_kib(pid);

        let started = Instant::now();
        let mut tasks = Vec::with_capacity(subscribers);
        for i in 0..subscribers {
            tasks.push(tokio::spawn(subscriber(
                addr,
                events,
                ready.clone(),
                delivered.clone(),
            )));
            // Open in waves, so the listen backlog never overflows.
            if i % 200 == 199 {
                while ready.load(Ordering::Relaxed) + 50 < i + 1 {
                    assert!(Instant::now() < deadline, "streams did not open in time");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        while ready.load(Ordering::Relaxed) < subscribers + 1 {
            assert!(
                Instant::now() < deadline,
                "only {} of {} streams opened",
                ready.load(Ordering::Relaxed),
                subscribers + 1
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let connect_time = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let rss_after = rss_kib(pid);

        // Book `events` seats one after another, waiting for full delivery of each.
        let mut commit_times = Vec::with_capacity(events);
        for k in 0..events {
            // One member, so never two bookings at the same time (docs/architecture.md,
            // invariant 2).
            let seat = format!("A{}", 1 + k % 20);
            let day = (Utc::now().with_timezone(&chrono_tz::Asia::Jakarta)
                + chrono::Duration::days(1 + (k / 14) as i64))
            .date_naive();
            let hour = 8 + k % 14;
            let sent = Instant::now();
            let r = client
                .post(format!("{base}/api/secure/reservations"))
                .bearer_auth(&token)
                .json(&json!({
                    "seat_number": seat,
                    "start": format!("{day}T{hour:02}:00:00+07:00"),
                    "end": format!("{day}T{:02}:00:00+07:00", hour + 1),
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "booking {k}: {}", r.text().await.unwrap());
            commit_times.push(sent.elapsed());
            while delivered[k].load(Ordering::Relaxed) < subscribers + 1 {
                assert!(
                    Instant::now() < deadline,
                    "event {k} did not reach every stream before the deadline"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let mut latencies = Vec::with_capacity((subscribers + 1) * events);
        for task in tasks {
            latencies.extend(task.await.unwrap().expect("a stream failed"));
        }
        latencies.extend(warm.await.unwrap().expect("the warm-up stream failed"));

        latencies.sort();
        commit_times.sort();
        let per_stream = (rss_after.saturating_sub(rss_before)) as f64 / subscribers as f64;
        println!("SSE fan-out: {subscribers} streams (+1 warm-up), {events} events, loopback, SQLite");
        println!("  streams opened in        {:.2} s", connect_time.as_secs_f64());
        println!(
            "  commit -> delivery       p50 {:.1} ms   p99 {:.1} ms   max {:.1} ms   ({} deliveries)",
            percentile(&latencies, 50.0).as_secs_f64() * 1e3,
            percentile(&latencies, 99.0).as_secs_f64() * 1e3,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            latencies.len()
        );
        println!(
            "  booking round trip       p50 {:.1} ms   p99 {:.1} ms",
            percentile(&commit_times, 50.0).as_secs_f64() * 1e3,
            percentile(&commit_times, 99.0).as_secs_f64() * 1e3
        );
        println!(
            "  server RSS               {:.1} MiB before, {:.1} MiB with the streams open: {:.1} KiB per stream",
            rss_before as f64 / 1024.0,
            rss_after as f64 / 1024.0,
            per_stream
        );
        println!(
            "  of which any idle HTTP connection costs {idle_kib:.1} KiB (hyper's buffers; measured alone)"
        );
    });
    drop(server);
}
