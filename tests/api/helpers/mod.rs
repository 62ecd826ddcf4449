//! Test harness shared by the integration tests: spawns the real server on port 0
//! against a fresh SQLite file or a fresh database on the PostgreSQL server named by
//! `PICA_TEST_DATABASE_URL` (`app`), typed calls per endpoint on the test app
//! (`accounts`, `seats`, `library`), and the audits and small tools the tests share.
#![allow(dead_code)]

pub mod accounts;
mod app;
pub mod library;
pub mod seats;
pub mod smtp_sink;
pub mod sse;
pub mod web;

pub use app::{TestApp, TestDb};

use chrono::{Duration, NaiveDate, Utc};
use pica::storage::Db;
use pica_actors::{Reservation, ReservationStatus};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })*
        }
    };
}

pub async fn body(r: Response) -> Value {
    let text = r.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

/// The space's local date `n` days from today (the space is in Asia/Jakarta).
pub fn day(n: i64) -> NaiveDate {
    (Utc::now().with_timezone(&chrono_tz::Asia::Jakarta) + Duration::days(n)).date_naive()
}

/// `{seat_number, start, end}` on day `n` between local hours `from` and `to`.
pub fn slot(seat: &str, n: i64, from: u32, to: u32) -> Value {
    let d = day(n);
    json!({
        "seat_number": seat,
        "start": format!("{d}T{from:02}:00:00+07:00"),
        "end": format!("{d}T{to:02}:00:00+07:00"),
    })
}

/// Checks invariants 1 and 2 (docs/architecture.md) over everything stored: no two
/// active reservations overlap on a seat, and no user holds two overlapping active
/// reservations.
pub fn audit(all: &[Reservation]) {
    let active: Vec<&Reservation> = all.iter().filter(|r| r.status.is_active()).collect();
    for (i, a) in active.iter().enumerate() {
        for b in &active[i + 1..] {
            if a.interval.overlaps(&b.interval) {
                assert_ne!(a.seat, b.seat, "invariant 1 violated: {a:?} overlaps {b:?}");
                assert_ne!(
                    a.user_id, b.user_id,
                    "invariant 2 violated: {a:?} overlaps {b:?}"
                );
            }
        }
    }
}

pub fn status_of(all: &[Reservation], id: &str) -> Option<ReservationStatus> {
    all.iter()
        .find(|r| r.id.to_string() == id)
        .map(|r| r.status)
}

/// Polls `condition` until it holds or `secs` pass; panics with `what` on timeout.
/// Used to wait for an observable state change (a zone coming back), never as a delay.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The events of an iCalendar text, parsed by the `icalendar` crate (panics, showing
/// the text, if it does not parse).
pub fn calendar_events(text: &str) -> Vec<icalendar::Event> {
    use std::str::FromStr;
    let calendar = icalendar::Calendar::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    calendar
        .components
        .into_iter()
        .filter_map(|c| match c {
            icalendar::CalendarComponent::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// Runs one SQL statement on the test database (failure injection).
pub async fn execute(db: &Db, sql: &'static str) {
    match db {
        Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Reads the first line the real `pica` binary prints ("pica listening on URL") from its
/// piped standard output, then waits for the next ("pica ready": every zone has loaded)
/// and returns the URL.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout piped");
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next()
        .expect("a listening line")
        .expect("read the listening line");
    let url = line
        .trim()
        .strip_prefix("pica listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let ready = lines
        .next()
        .expect("a ready line")
        .expect("read the ready line");
    assert_eq!(ready.trim(), "pica ready", "unexpected second line");
    url
}

/// A field of `/proc/<pid>/status` in KiB (VmRSS: resident now; VmHWM: peak resident).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Checks that `response` is a 4xx whose JSON body has a non-empty `detail`
/// (invariant 6, docs/architecture.md); returns its status.
pub async fn expect_4xx(response: reqwest::Response, what: &str) -> StatusCode {
    let status = response.status();
    assert!(
        status.is_client_error(),
        "{what}: expected 4xx, got {status}"
    );
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text:?}"));
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no detail in {body}"));
    assert!(!detail.is_empty(), "{what}: empty detail");
    status
}
