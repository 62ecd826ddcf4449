//! The listener under abuse: silent, trickling and idle connections are closed after the
//! header timeout, and a flood of sockets past the open-file limit never stops the
//! server from serving others once it subsides.
//!
//! These run on SQLite only: they exercise the TCP listener, which is the same whatever
//! the database.

// Its own binary, not a module of `tests/api`: its bounds are set for a machine that
// runs nothing else, and cargo runs test binaries one after another.
#[path = "api/helpers/mod.rs"]
#[macro_use]
mod helpers;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use helpers::{Backend, JWT_SECRET, TestApp, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns how long that took and what
/// was received. Fails the test if the connection is still open after `bound`.
async fn until_closed(stream: &mut TcpStream, bound: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + bound).into(), stream.read(&mut buf)).await {
            Err(_) => panic!("the connection was still open after {bound:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed(), received),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_trickling_and_idle_connections_are_closed() {
    let Some(app) =
        TestApp::spawn_with(Backend::Sqlite, &[("PICA_HEADER_TIMEOUT_SECONDS", "1")]).await
    else {
        return;
    };
    let bound = Duration::from_secs(10);

    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let (after, _) = until_closed(&mut silent, bound).await;
    assert!(
        after >= Duration::from_millis(900),
        "closed too early: {after:?}"
    );

    // Trickling: a byte every 100 ms, a head that would take 20 s to finish.
    let mut trickle = TcpStream::connect(app.addr).await.unwrap();
    trickle
        .write_all(b"GET /healthz HTTP/1.1\r\nx-slow: ")
        .await
        .unwrap();
    let (reader, mut writer) = trickle.into_split();
    let writing = tokio::spawn(async move {
        for _ in 0..200 {
            if writer.write_all(b"a").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let mut reader = reader;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(bound, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickling head kept its connection open");
    assert!(started.elapsed() < Duration::from_secs(10));
    writing.abort();

    // Idle keep-alive: one request answered, then nothing.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: pica\r\n\r\n")
        .await
        .unwrap();
    let (_, received) = until_closed(&mut idle, bound).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // A well-behaved client is unaffected.
    let r = app.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}

/// Starts the real binary under `prlimit` with a low open-file limit (soft and hard, so
/// the server cannot raise it), logging to a file the test reads afterwards (a pipe
/// nobody reads would fill up and stall the server).
fn start_limited(
    db_url: &str,
    log: &std::path::Path,
    open_files: u32,
    extra: &[(&str, &str)],
) -> (Child, String) {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={open_files}:{open_files}"))
        .arg(env!("CARGO_BIN_EXE_pica"))
        .env("DATABASE_URL", db_url)
        .env("PICA_BIND", "127.0.0.1:0")
        .env("PICA_JWT_SECRET", JWT_SECRET)
        .env("PICA_HEADER_TIMEOUT_SECONDS", "2")
        .env("PICA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"));
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start pica under prlimit");
    let url = helpers::listening_url(&mut child);
    (child, url)
}

/// Polls `/healthz` until it answers 200, for at most `bound`.
async fn healthy_within(url: &str, bound: Duration) -> bool {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{url}/healthz")).send().await
            && r.status() == reqwest::StatusCode::OK
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn flood(url: &str, sockets: usize) -> Vec<TcpStream> {
    let addr = url.strip_prefix("http://").unwrap().to_string();
    let mut open = Vec::new();
    for _ in 0..sockets {
        // The kernel completes the handshake from its backlog even while the server is
        // not accepting; past the backlog a connect may fail, which is fine.
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(&addr)).await
        {
            open.push(s);
        }
    }
    open
}

fn stop(mut child: Child, log: &std::path::Path) -> String {
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server died under the flood"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::read_to_string(log).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_sockets_past_the_open_file_limit_does_not_stop_the_server() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prlimit (util-linux) is needed in CI"
        );
        eprintln!("skipping: prlimit (util-linux) is not installed");
        return;
    }
    // 1. The default cap follows the open-file limit: past it, sockets get a fast 503.
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("capped.log");
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let (server, url) = start_limited(&db.url, &log, 200, &[]);
    let sockets = flood(&url, 300).await;
    assert!(sockets.len() > 100, "only {} sockets opened", sockets.len());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = client.get(format!("{url}/healthz")).send().await;
    if let Ok(r) = r {
        // Either a slot was free, or the fast refusal.
        assert!(
            r.status() == reqwest::StatusCode::OK
                || (r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    && r.headers().contains_key("retry-after")),
            "{}",
            r.status()
        );
    }
    drop(sockets);
    assert!(
        healthy_within(&url, Duration::from_secs(15)).await,
        "not serving after the flood subsided"
    );
    stop(server, &log);

    // 2. A cap set above what the descriptors allow: accept hits EMFILE, and the server
    // pauses instead of dying or spinning, and serves again once the flood subsides.
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    let log = logs.path().join("emfile.log");
    let (server, url) = start_limited(&db.url, &log, 200, &[("PICA_MAX_CONNECTIONS", "5000")]);
    let sockets = flood(&url, 300).await;
    assert!(sockets.len() > 100, "only {} sockets opened", sockets.len());
    // The idle sockets time out on the server (2 s) even while the client keeps them.
    assert!(
        healthy_within(&url, Duration::from_secs(20)).await,
        "not serving while idle sockets were held"
    );
    drop(sockets);
    assert!(healthy_within(&url, Duration::from_secs(15)).await);
    let log = stop(server, &log);
    assert!(
        log.contains("accept failed"),
        "the flood should have exhausted the descriptors; log:\n{log}"
    );
}
