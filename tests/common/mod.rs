//! Test harness: spawns the real server on port 0 against a fresh SQLite file or a
//! fresh database on the PostgreSQL server named by `PICA_TEST_DATABASE_URL`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use chrono::{Duration, NaiveDate, Utc};
use pica::storage::Db;
use pica::{AppState, Application, Settings};
use pica_actors::{Reservation, ReservationStatus};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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
            async fn $name() { super::$name($crate::common::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::common::Backend::Postgres).await })*
        }
    };
}

/// A database for one test: a SQLite file in a temporary directory, or a new database
/// on the test PostgreSQL server. `None` when PostgreSQL is not configured outside CI.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("pica.db").display());
                Some(TestDb {
                    url,
                    backend,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("PICA_TEST_DATABASE_URL") else {
                    if std::env::var_os("CI").is_some() {
                        panic!(
                            "PICA_TEST_DATABASE_URL is not set: in CI the PostgreSQL tests must run"
                        );
                    }
                    eprintln!(
                        "skipping: set PICA_TEST_DATABASE_URL (scripts/test does) to run PostgreSQL tests"
                    );
                    return None;
                };
                let name = format!("pica_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .expect("URL with a database path");
                Some(TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    _dir: None,
                })
            }
        }
    }

    /// A separate connection pool, for audits and for injecting failures.
    pub async fn connect(&self) -> Db {
        Db::connect(&self.url, 2)
            .await
            .expect("connect to the test database")
    }
}

pub fn settings(database_url: &str, extra: &[(&str, &str)]) -> Settings {
    let mut env: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url.to_string()),
        ("PICA_BIND".into(), "127.0.0.1:0".into()),
        ("PICA_JWT_SECRET".into(), JWT_SECRET.into()),
        ("PICA_DB_MAX_CONNECTIONS".into(), "4".into()),
    ]);
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings")
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: Client,
    pub state: AppState,
    pub db: TestDb,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        Some(Self::spawn_on(db, extra).await)
    }

    pub async fn spawn_on(db: TestDb, extra: &[(&str, &str)]) -> TestApp {
        Self::spawn_on_with_clock(db, extra, std::sync::Arc::new(pica_actors::SystemClock)).await
    }

    /// Like `spawn_with`, with the clock the service (engine, MediMatch breaker) uses.
    pub async fn spawn_with_clock(
        backend: Backend,
        extra: &[(&str, &str)],
        clock: std::sync::Arc<dyn pica_actors::Clock>,
    ) -> Option<TestApp> {
        let db = TestDb::new(backend).await?;
        Some(Self::spawn_on_with_clock(db, extra, clock).await)
    }

    pub async fn spawn_on_with_clock(
        db: TestDb,
        extra: &[(&str, &str)],
        clock: std::sync::Arc<dyn pica_actors::Clock>,
    ) -> TestApp {
        let app = Application::build_with_clock(settings(&db.url, extra), clock)
            .await
            .expect("build app");
        let addr = app.local_addr();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            state,
            db,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// Graceful stop; returns the database so a new server can be started on it.
    pub async fn stop(mut self) -> TestDb {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.client.patch(self.url(path))
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.client.put(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// Registers `username` and returns a bearer token.
    pub async fn user(&self, username: &str) -> String {
        let password = format!("pw-{username}-123");
        let r = self
            .post("/api/public/register")
            .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "register {username}");
        let r = self
            .post("/api/public/login")
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await["access_token"].as_str().unwrap().to_string()
    }

    pub async fn reserve(&self, token: &str, body: Value) -> Response {
        self.post("/api/secure/reservations")
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Takes `n` connections out of the server's own pool and keeps them until the
    /// returned value is dropped, so the server finds none free.
    pub async fn hold_every_db_connection(&self, n: usize) -> Vec<Box<dyn std::any::Any>> {
        let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
        for _ in 0..n {
            match &self.state.db {
                Db::Sqlite(pool) => held.push(Box::new(pool.acquire().await.expect("acquire"))),
                Db::Postgres(pool) => held.push(Box::new(pool.acquire().await.expect("acquire"))),
            }
        }
        held
    }

    pub async fn reservations_in_db(&self) -> Vec<Reservation> {
        let db = self.db.connect().await;
        let all = db.all_reservations().await.unwrap();
        db.close().await;
        all
    }
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

/// Runs one SQL statement on the test database (failure injection).
pub async fn execute(db: &Db, sql: &'static str) {
    match db {
        Db::Sqlite(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::raw_sql(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Reads the first line the real `pica` binary prints ("pica listening on URL") from its
/// piped standard output and returns the URL.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    line.trim()
        .strip_prefix("pica listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string()
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
