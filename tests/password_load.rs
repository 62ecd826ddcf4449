//! Password hashing under a flood: hundreds of concurrent registrations and logins
//! against the real `pica` binary. Every answer is a success, a 401 or a prompt 503
//! with `Retry-After` (never a 500), and the process's resident memory stays under the
//! bound docs/operations.md states ("Memory bounds"), because argon2 runs on a fixed
//! pool of threads that reuse their memory.
//!
//! A separate process gives a clean measurement: its peak resident set (`VmHWM`) covers
//! the server alone, not the test harness or other tests running beside it.

// Its own binary, not a module of `tests/api`: its bounds are set for a machine that
// runs nothing else, and cargo runs test binaries one after another.
#[path = "api/helpers/mod.rs"]
#[macro_use]
mod helpers;

use std::process::{Child, Command, Stdio};

use helpers::{Backend, JWT_SECRET, TestDb};
use reqwest::{Client, StatusCode};
use serde_json::json;

on_both_backends!(a_flood_of_registrations_and_logins_keeps_memory_bounded);

/// The bound docs/operations.md states for a server with two hashing threads (the
/// default on a two-core machine): 2 × 19 MiB of argon2 memory plus everything else.
const RSS_BOUND_MIB: u64 = 128;
const HASH_THREADS: &str = "2";
const CONCURRENT: usize = 300;
const ROUNDS: usize = 2;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(database_url: &str) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pica"))
        .env("DATABASE_URL", database_url)
        .env("PICA_BIND", "127.0.0.1:0")
        .env("PICA_JWT_SECRET", JWT_SECRET)
        .env("PICA_PASSWORD_HASH_THREADS", HASH_THREADS)
        // The flood comes from one address and is mostly legitimate: the address limit
        // is not what this test is about.
        .env("PICA_LOGIN_MAX_FAILURES_PER_ADDRESS", "100000")
        .env("PICA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pica");
    let url = helpers::listening_url(&mut child);
    (Server(child), url)
}

#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    unauthorized: usize,
    unavailable: usize,
}

/// Checks one answer: 2xx, 401, or 503 with `Retry-After`; anything else fails the test.
async fn tally(t: &mut Tally, what: &str, r: reqwest::Result<reqwest::Response>) {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = r.status();
    match status {
        s if s.is_success() => t.ok += 1,
        StatusCode::UNAUTHORIZED => t.unauthorized += 1,
        StatusCode::SERVICE_UNAVAILABLE => {
            assert!(
                r.headers().contains_key("retry-after"),
                "{what}: 503 without Retry-After"
            );
            t.unavailable += 1;
        }
        other => panic!(
            "{what}: unexpected {other}: {}",
            r.text().await.unwrap_or_default()
        ),
    }
}

async fn a_flood_of_registrations_and_logins_keeps_memory_bounded(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (server, base) = start_server(&db.url);
    let pid = server.0.id();
    let client = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let before = helpers::proc_status_kib(pid, "VmRSS");
    let (mut registered, mut logged_in) = (0, 0);
    for round in 0..ROUNDS {
        let password = "flood-pass-123";
        let registrations = (0..CONCURRENT).map(|i| {
            let name = format!("flood{round}x{i}");
            client
                .post(format!("{base}/api/public/register"))
                .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
                .send()
        });
        let mut t = Tally::default();
        for r in futures::future::join_all(registrations).await {
            tally(&mut t, "register", r).await;
        }
        assert_eq!(t.unauthorized, 0, "{t:?}");
        registered += t.ok;
        // Every user of this round logs in: the registered ones with the right password,
        // the ones refused with 503 are unknown (401, at the same argon2 cost).
        let logins = (0..CONCURRENT).map(|i| {
            client
                .post(format!("{base}/api/public/login"))
                .json(&json!({"username": format!("flood{round}x{i}"), "password": password}))
                .send()
        });
        let mut l = Tally::default();
        for r in futures::future::join_all(logins).await {
            tally(&mut l, "login", r).await;
        }
        logged_in += l.ok;
        eprintln!(
            "round {round}: register {t:?}, login {l:?}, VmRSS {} KiB, VmHWM {} KiB",
            helpers::proc_status_kib(pid, "VmRSS"),
            helpers::proc_status_kib(pid, "VmHWM")
        );
    }
    assert!(registered > 0 && logged_in > 0, "some requests got through");
    let (rss, peak) = (
        helpers::proc_status_kib(pid, "VmRSS"),
        helpers::proc_status_kib(pid, "VmHWM"),
    );
    eprintln!("{backend:?}: VmRSS {before} KiB at start, {rss} KiB after, peak {peak} KiB");
    assert!(
        peak <= RSS_BOUND_MIB * 1024,
        "peak resident memory {peak} KiB exceeds the {RSS_BOUND_MIB} MiB bound"
    );
    drop(server);
}
