//! The server under test: a fresh database per test and the real application on port 0.

use std::collections::HashMap;
use std::net::SocketAddr;

use pica::storage::Db;
use pica::{AppState, Application, Settings};
use pica_actors::Reservation;
use reqwest::{Client, RequestBuilder};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Backend, JWT_SECRET};

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
        // The zones load after the build returns; tests start from a loaded engine.
        app.state().engine.loaded().await;
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
