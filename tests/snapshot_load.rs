//! Event-stream snapshots cost a bounded amount of memory, whatever the size of the
//! space. A large space is generated directly in the database (bulk SQL), the real
//! `pica` binary is started on it (a clean process to measure), and many clients at
//! once read the unfiltered public stream's snapshot. Checked: every client gets the
//! whole snapshot, in bounded parts; the process's peak resident memory (VmHWM) stays
//! within [`GROWTH_BOUND_MB`] of its resident memory once the space is loaded;
//! `/healthz` answers throughout; past `PICA_SSE_MAX_SNAPSHOTS` clients get 503 with
//! `Retry-After`.
//!
//! `PICA_SNAPSHOT_TEST_BIN=/path/to/pica` measures another build of the server (e.g. an
//! older one) with the same load; the figures are printed (`--nocapture`).

// Its own binary, not a module of `tests/api`: its bounds are set for a machine that
// runs nothing else, and cargo runs test binaries one after another.
#[path = "api/helpers/mod.rs"]
#[macro_use]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use helpers::{Backend, JWT_SECRET, TestDb};
use pica::storage::Db;
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde::de::IgnoredAny;

on_both_backends!(snapshots_of_a_large_space_cost_bounded_memory);

/// Seats in the generated space (two zones).
const SEATS: usize = 300;
/// Back-to-back half-hour reservations per seat, all ahead.
const PER_SEAT: usize = 340;
/// Clients connecting at once.
const CLIENTS: usize = 16;
/// `PICA_SSE_MAX_SNAPSHOTS` for the server under test.
const MAX_SNAPSHOTS: usize = 4;
/// How far above its resident memory after loading the space the process's peak may
/// go while the clients take their snapshots (stated in docs/operations.md, "Memory
/// bounds").
const GROWTH_BOUND_MB: u64 = 64;
/// No snapshot event may be larger than this (a part holds at most 1000 items).
const PART_BOUND_BYTES: usize = 512 * 1024;

/// The server process, killed when dropped, so that a failing test leaves none behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Starts the server on `database_url`; returns it and its base URL.
fn start_server(database_url: &str) -> (Server, String) {
    let bin = std::env::var("PICA_SNAPSHOT_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_pica").to_string());
    let mut child = Command::new(bin)
        .env("DATABASE_URL", database_url)
        .env("PICA_BIND", "127.0.0.1:0")
        .env("PICA_JWT_SECRET", JWT_SECRET)
        .env("PICA_SEED_DEMO", "false")
        .env("PICA_SWEEP_SECONDS", "0")
        .env("PICA_SSE_MAX_SNAPSHOTS", MAX_SNAPSHOTS.to_string())
        .env("PICA_LOG", "warn,tower_http=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pica");
    let url = helpers::listening_url(&mut child);
    (Server(child), url)
}

/// Two zones, `SEATS` seats, one member, `SEATS * PER_SEAT` confirmed reservations.
async fn generate_space(db: &Db) {
    let hall = SEATS * 2 / 3;
    let now = chrono::Utc::now().timestamp();
    // Starting tomorrow, on the hour, back to back: active and not overlapping.
    let base = now - now % 3600 + 86_400;
    let zones = "INSERT INTO zones (id, name, kind, position) \
                 VALUES ('hall', 'Hall', 'coworking', 0), ('annex', 'Annex', 'quiet', 1)";
    let (seats, user, reservations) = match db {
        Db::Sqlite(_) => (
            format!(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {SEATS}) \
                 INSERT INTO seats (number, zone_id, status, position) \
                 SELECT printf('S%04d', i), CASE WHEN i < {hall} THEN 'hall' ELSE 'annex' END, \
                 'in_service', i FROM n"
            ),
            "INSERT INTO users (username, email, password_hash, role, created_at) \
             VALUES ('bulk', 'bulk@example.com', '-', 'member', 0)"
                .to_string(),
            // In time order per seat, so the overlap trigger's index lookup finds
            // nothing after the new row's start and stays cheap.
            format!(
                "WITH RECURSIVE k(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM k WHERE j + 1 < {PER_SEAT}) \
                 INSERT INTO reservations \
                 (id, user_id, seat_number, zone_id, starts_at, ends_at, status, created_at, updated_at) \
                 SELECT randomblob(16), u.id, s.number, s.zone_id, {base} + j * 1800, \
                 {base} + (j + 1) * 1800, 'confirmed', {now} * 1000000, {now} * 1000000 \
                 FROM k CROSS JOIN seats s CROSS JOIN users u WHERE u.username = 'bulk' \
                 ORDER BY j, s.number"
            ),
        ),
        Db::Postgres(_) => (
            format!(
                "INSERT INTO seats (number, zone_id, status, position) \
                 SELECT 'S' || lpad(i::text, 4, '0'), CASE WHEN i < {hall} THEN 'hall' ELSE 'annex' END, \
                 'in_service', i FROM generate_series(0, {SEATS} - 1) AS i"
            ),
            "INSERT INTO users (username, email, password_hash, role, created_at) \
             VALUES ('bulk', 'bulk@example.com', '-', 'member', now())"
                .to_string(),
            // The exclusion constraint is checked row by row on insert; dropped and
            // added back (as the migration defines it), it is built and checked in
            // one pass, several times faster.
            format!(
                "ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap; \
                 INSERT INTO reservations \
                 (id, user_id, seat_number, zone_id, starts_at, ends_at, status, created_at, updated_at) \
                 SELECT gen_random_uuid(), u.id, s.number, s.zone_id, to_timestamp({base} + j * 1800), \
                 to_timestamp({base} + (j + 1) * 1800), 'confirmed', now(), now() \
                 FROM generate_series(0, {PER_SEAT} - 1) AS j CROSS JOIN seats s \
                 CROSS JOIN users u WHERE u.username = 'bulk'; \
                 ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist \
                 (seat_number WITH =, tstzrange(starts_at, ends_at, '[)') WITH &&) \
                 WHERE (status IN ('confirmed', 'checked_in'))"
            ),
        ),
    };
    for sql in [zones.to_string(), seats, user, reservations] {
        let sql = sqlx::AssertSqlSafe(sql);
        match db {
            Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
            Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        }
        .expect("generate the space");
    }
}

#[derive(Deserialize)]
struct Part {
    seq: u64,
    /// Absent in the one-event snapshot of older servers (measured only).
    #[serde(default)]
    part: usize,
    last: Option<bool>,
    zones: Vec<Fragment>,
}

#[derive(Deserialize)]
struct Fragment {
    id: String,
    seats: Vec<IgnoredAny>,
    reservations: Vec<IgnoredAny>,
    holds: Vec<IgnoredAny>,
}

/// What one client read of its snapshot.
#[derive(Debug, Default)]
struct Tally {
    parts: usize,
    seats: usize,
    reservations: usize,
    holds: usize,
    zones: Vec<String>,
    largest_part: usize,
}

/// Reads one stream's snapshot parts up to the last one; returns the tally and the
/// still open stream.
async fn read_snapshot(mut stream: Response) -> (Tally, Response) {
    let mut tally = Tally::default();
    let mut buffer: Vec<u8> = Vec::new();
    loop {
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            let text = std::str::from_utf8(&frame).expect("UTF-8 frame");
            if text.starts_with(':') {
                continue;
            }
            let mut kind = None;
            let mut id = None;
            let mut data = None;
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    kind = Some(v);
                } else if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse::<u64>().expect("numeric id"));
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v);
                }
            }
            assert_eq!(
                kind,
                Some("snapshot"),
                "the snapshot comes first: {text:.200}"
            );
            let part: Part = serde_json::from_str(data.expect("data")).expect("a snapshot part");
            assert_eq!(part.part, tally.parts, "parts in order");
            tally.parts += 1;
            tally.largest_part = tally.largest_part.max(frame.len());
            for z in part.zones {
                tally.seats += z.seats.len();
                tally.reservations += z.reservations.len();
                tally.holds += z.holds.len();
                if tally.zones.last() != Some(&z.id) {
                    tally.zones.push(z.id);
                }
            }
            if part.last.unwrap_or(true) {
                assert_eq!(
                    id,
                    Some(part.seq),
                    "the last part carries the snapshot's id"
                );
                return (tally, stream);
            }
            assert_eq!(id, None, "only the last part has an id");
        }
        let chunk = stream
            .chunk()
            .await
            .expect("read the stream")
            .expect("the stream ended inside its snapshot");
        buffer.extend_from_slice(&chunk);
    }
}

/// Opens the unfiltered public stream, waiting as told by `Retry-After` while the
/// snapshot places are taken; returns the stream and how often it was refused.
async fn open_stream(client: &Client, base: &str) -> (Response, usize) {
    let mut refused = 0;
    loop {
        let r = client
            .get(format!("{base}/api/public/events"))
            .send()
            .await
            .expect("connect");
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            let retry: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            refused += 1;
            tokio::time::sleep(Duration::from_secs(retry)).await;
            continue;
        }
        assert_eq!(r.status(), StatusCode::OK);
        return (r, refused);
    }
}

/// A stream whose client reads the response head and then nothing. Its receive
/// buffer is set small before connecting, which turns the kernel's autotuning off
/// (that can grow a loopback buffer to tens of megabytes and swallow a whole snapshot):
/// the server's send buffer (at most 4 MiB here) fills, and its snapshot stalls.
async fn stalled_stream(base: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /api/public/events HTTP/1.1\r\nhost: pica\r\n\r\n")
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.expect("a response head"));
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Past the limit at once: `MAX_SNAPSHOTS` streams whose snapshots nobody reads keep
/// their places (the snapshot is far larger than the server's send buffer), and the
/// next stream is refused with 503 and `Retry-After`. Their places come back once they
/// go.
async fn refuses_past_the_snapshot_limit(client: &Client, base: &str) {
    let mut stalled = Vec::new();
    for _ in 0..MAX_SNAPSHOTS {
        stalled.push(stalled_stream(base).await);
    }
    let refused = client
        .get(format!("{base}/api/public/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        refused.headers().contains_key("retry-after"),
        "503 says when to retry"
    );
    let detail: serde_json::Value = refused.json().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("snapshot"),
        "{detail}"
    );
    drop(stalled);
}

/// One `/healthz` request: how long its 200 took, or why there was none (no answer
/// within 30 s counts as none).
async fn try_healthz(client: &Client, url: &str) -> Result<Duration, String> {
    let at = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), client.get(url).send())
        .await
        .map_err(|_| "no answer within 30 s".to_string())?
        .map_err(|e| e.to_string())?;
    if r.status() != StatusCode::OK {
        return Err(format!("status {}", r.status()));
    }
    Ok(at.elapsed())
}

async fn healthz(client: &Client, url: &str) -> Duration {
    try_healthz(client, url).await.expect("/healthz answers")
}

async fn snapshots_of_a_large_space_cost_bounded_memory(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let started = Instant::now();
    let pool = db.connect().await;
    pool.migrate().await.expect("migrate");
    generate_space(&pool).await;
    pool.close().await;
    let generated = started.elapsed();

    let (server, base) = start_server(&db.url);
    let pid = server.0.id();
    let client = Client::new();
    let health_url = format!("{base}/healthz");
    healthz(&client, &health_url).await;
    let loaded_rss = helpers::proc_status_kib(pid, "VmRSS");
    let loaded_hwm = helpers::proc_status_kib(pid, "VmHWM");

    // Another build of the server (PICA_SNAPSHOT_TEST_BIN) is only measured.
    let measuring_only = std::env::var_os("PICA_SNAPSHOT_TEST_BIN").is_some();
    if !measuring_only {
        refuses_past_the_snapshot_limit(&client, &base).await;
    }

    // Many clients at once, while /healthz is polled and the memory sampled.
    let done = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    // On a thread and runtime of its own, so that the clients' parsing in this
    // process does not delay it: its latencies are the server's.
    let poller = {
        let (done, polls) = (done.clone(), polls.clone());
        let health_url = health_url.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let client = Client::new();
                let (mut slowest, mut peak_rss, mut failed) = (Duration::ZERO, 0, Vec::new());
                while !done.load(Ordering::Relaxed) {
                    match try_healthz(&client, &health_url).await {
                        Ok(took) => slowest = slowest.max(took),
                        Err(why) => failed.push(why),
                    }
                    peak_rss = peak_rss.max(helpers::proc_status_kib(pid, "VmRSS"));
                    polls.fetch_add(1, Ordering::Relaxed);
                    // Pacing, not waiting for anything.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (slowest, peak_rss, failed)
            })
        })
    };
    let streaming = Instant::now();
    let clients = (0..CLIENTS).map(|_| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let (stream, refused) = open_stream(&client, &base).await;
            let (tally, stream) = read_snapshot(stream).await;
            (tally, refused, stream)
        })
    });
    let results = futures::future::join_all(clients).await;
    let streamed = streaming.elapsed();
    done.store(true, Ordering::Relaxed);
    let (slowest_healthz, peak_rss, unanswered) = poller.join().unwrap();
    let peak_hwm = helpers::proc_status_kib(pid, "VmHWM");

    let mut open = Vec::new();
    let (mut refusals, mut largest_part, mut parts) = (0, 0, 0);
    for result in results {
        let (tally, refused, stream) = result.expect("a client task");
        assert_eq!(tally.zones, ["hall", "annex"], "{tally:?}");
        assert_eq!(tally.seats, SEATS, "{tally:?}");
        assert_eq!(tally.reservations, SEATS * PER_SEAT, "{tally:?}");
        assert_eq!(tally.holds, 0);
        refusals += refused;
        largest_part = largest_part.max(tally.largest_part);
        parts = tally.parts;
        open.push(stream);
    }
    // The streams are still open (and live): only the snapshots were limited.
    healthz(&client, &health_url).await;
    drop(server);

    let mib = |kib: u64| kib / 1024;
    eprintln!(
        "snapshot load ({backend:?}): {} seats, {} reservations generated in {generated:.1?}; \
         {CLIENTS} clients, PICA_SSE_MAX_SNAPSHOTS={MAX_SNAPSHOTS}: all snapshots read in \
         {streamed:.1?} ({parts} parts each, largest {largest_part} bytes, {refusals} \
         refusals with Retry-After); RSS after loading {} MiB (peak so far {} MiB), \
         sampled peak RSS {} MiB, VmHWM {} MiB (+{} MiB); /healthz polled {} times, \
         slowest answer {slowest_healthz:.1?}, unanswered: {unanswered:?}",
        SEATS,
        SEATS * PER_SEAT,
        mib(loaded_rss),
        mib(loaded_hwm),
        mib(peak_rss),
        mib(peak_hwm),
        mib(peak_hwm.saturating_sub(loaded_rss)),
        polls.load(Ordering::Relaxed),
    );
    if measuring_only {
        return;
    }
    assert!(polls.load(Ordering::Relaxed) > 0, "/healthz was polled");
    assert!(unanswered.is_empty(), "/healthz failed: {unanswered:?}");
    assert!(
        largest_part <= PART_BOUND_BYTES,
        "a snapshot part of {largest_part} bytes"
    );
    assert!(
        peak_hwm <= loaded_rss + GROWTH_BOUND_MB * 1024,
        "peak resident memory {} MiB, {} MiB after loading: more than {GROWTH_BOUND_MB} MiB \
         for the snapshots",
        mib(peak_hwm),
        mib(loaded_rss)
    );
    drop(open);
}
