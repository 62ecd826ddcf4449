//! Admission control over HTTP: with the database stalled (a test transaction holds the
//! write lock), requests past a zone's bound, or past the commit queue's bound, get 503
//! with `Retry-After` at once; the admitted ones succeed once the database is released,
//! and nothing of the refused ones is left in memory or in the database.

use crate::helpers::{Backend, TestApp, audit, body, eventually, slot};
use pica_actors::{GateStats, ZoneId};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

on_both_backends!(
    a_full_zone_answers_503_at_once_and_the_admitted_commit_after_release,
    a_full_commit_queue_answers_503_and_leaves_nothing_pending,
    past_the_edge_bound_a_request_is_refused_from_its_head_alone,
);

/// A transaction that blocks every write of the server until it is released.
enum Stall {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Stall {
    async fn begin(app: &TestApp) -> Stall {
        match app.db.backend {
            // Takes SQLite's one write lock; the server's commits wait for it (up to
            // their busy timeout of 5 s, far longer than the test holds it).
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
                sqlx::raw_sql("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Stall::Sqlite(conn)
            }
            // Reads go on; every insert or update of a reservation waits.
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
                sqlx::raw_sql("BEGIN; LOCK TABLE reservations IN EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Stall::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Stall::Sqlite(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            Stall::Postgres(mut conn) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

fn quiet(app: &TestApp) -> GateStats {
    app.state
        .engine
        .admission()
        .zones
        .into_iter()
        .find(|(z, _)| *z == ZoneId("quiet".into()))
        .expect("the quiet zone has a gate")
        .1
}

/// Sends a reservation in its own task, so it stays in flight while the test goes on.
fn reserve_in_background(
    app: &TestApp,
    token: &str,
    body: Value,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .post("/api/secure/reservations")
        .bearer_auth(token)
        .json(&body);
    tokio::spawn(async move { request.send().await.unwrap() })
}

async fn assert_busy(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let detail = body(r).await;
    assert!(
        detail["detail"].as_str().unwrap().contains("busy"),
        "{detail}"
    );
}

async fn metric(app: &TestApp, series: &str) -> String {
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).map(|v| v.trim().to_string()))
        .unwrap_or_else(|| panic!("{series} missing from /metrics"))
}

async fn a_full_zone_answers_503_at_once_and_the_admitted_commit_after_release(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_ZONE_QUEUE_LIMIT", "2")]).await else {
        return;
    };
    let tokens = [
        app.user("ana").await,
        app.user("ben").await,
        app.user("carla").await,
    ];
    let stall = Stall::begin(&app).await;
    let first = reserve_in_background(&app, &tokens[0], slot("Q1", 1, 9, 10));
    let second = reserve_in_background(&app, &tokens[1], slot("Q2", 1, 9, 10));
    eventually(5, "both reservations in flight at the zone", || async {
        quiet(&app).in_flight == 2
    })
    .await;

    // Past the bound: a write and a read of the same zone are both refused.
    assert_busy(app.reserve(&tokens[2], slot("Q3", 1, 9, 10)).await).await;
    let path = format!(
        "/api/public/zones/quiet/availability?date={}",
        crate::helpers::day(1)
    );
    assert_busy(app.get(&path).send().await.unwrap()).await;
    // Another zone is not affected.
    let other = app
        .get(&format!(
            "/api/public/zones/coworking/availability?date={}",
            crate::helpers::day(1)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(
        metric(
            &app,
            "pica_admission_refused_total{queue=\"zone\",zone=\"quiet\"}"
        )
        .await,
        "2"
    );
    assert_eq!(
        metric(&app, "pica_admission_limit{queue=\"zone\",zone=\"quiet\"}").await,
        "2"
    );

    stall.release().await;
    let mut admitted = Vec::new();
    for r in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(r.status(), StatusCode::CREATED);
        admitted.push(body(r).await["id"].as_str().unwrap().to_string());
    }
    assert_eq!(quiet(&app).in_flight, 0);

    // The refusal left nothing behind: the same request now succeeds.
    let third = app.reserve(&tokens[2], slot("Q3", 1, 9, 10)).await;
    assert_eq!(third.status(), StatusCode::CREATED);
    admitted.push(body(third).await["id"].as_str().unwrap().to_string());
    let all = app.reservations_in_db().await;
    audit(&all);
    let mut stored: Vec<String> = all.iter().map(|r| r.id.to_string()).collect();
    stored.sort();
    admitted.sort();
    assert_eq!(stored, admitted);
    eventually(5, "every queue to be empty", || async {
        let a = app.state.engine.admission();
        a.commit.in_flight == 0 && a.zones.iter().all(|(_, g)| g.in_flight == 0)
    })
    .await;
}

async fn a_full_commit_queue_answers_503_and_leaves_nothing_pending(backend: Backend) {
    // One transaction at a time on PostgreSQL too, so that the second write waits in
    // the queue rather than in a second transaction beside the first.
    let limits = [
        ("PICA_COMMIT_QUEUE_LIMIT", "1"),
        ("PICA_PG_COMMITS_IN_FLIGHT", "1"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &limits).await else {
        return;
    };
    let tokens = [
        app.user("ana").await,
        app.user("ben").await,
        app.user("carla").await,
    ];
    // A reservation committed before the stall, to try to cancel during it.
    let kept = app.reserve(&tokens[2], slot("A1", 2, 9, 10)).await;
    assert_eq!(kept.status(), StatusCode::CREATED);
    let kept = body(kept).await["id"].as_str().unwrap().to_string();

    let stall = Stall::begin(&app).await;
    let engine = &app.state.engine;
    let admitted_before = engine.admission().commit.admitted;
    // One write takes the (stalled) transaction and leaves the queue; one waits in it.
    let first = reserve_in_background(&app, &tokens[0], slot("Q1", 1, 9, 10));
    eventually(5, "the first write to be in a transaction", || async {
        let c = engine.admission().commit;
        c.admitted > admitted_before && c.in_flight == 0
    })
    .await;
    let second = reserve_in_background(&app, &tokens[1], slot("Q2", 1, 9, 10));
    eventually(
        5,
        "the second write to wait in the commit queue",
        || async { engine.admission().commit.in_flight == 1 },
    )
    .await;

    // A new reservation and a cancel are refused by their zones before any change.
    assert_busy(app.reserve(&tokens[2], slot("Q3", 1, 9, 10)).await).await;
    let cancel = app.cancel(&tokens[2], &kept).await;
    assert_busy(cancel).await;
    // Reads queue no write and still get through.
    let path = format!(
        "/api/public/zones/quiet/availability?date={}",
        crate::helpers::day(1)
    );
    assert_eq!(
        app.get(&path).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        metric(&app, "pica_admission_refused_total{queue=\"commit\"}").await,
        "2"
    );

    stall.release().await;
    for r in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Nothing pending was left: the refused reservation and cancel now go through.
    let third = app.reserve(&tokens[2], slot("Q3", 1, 9, 10)).await;
    assert_eq!(third.status(), StatusCode::CREATED);
    let cancel = app.cancel(&tokens[2], &kept).await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let all = app.reservations_in_db().await;
    audit(&all);
    assert_eq!(all.len(), 4);
    let stats = app.state.engine.zone_stats().await;
    let overloaded: u64 = stats
        .iter()
        .map(|(_, s)| s.as_ref().unwrap().overloaded)
        .sum();
    assert_eq!(overloaded, 2);
    eventually(5, "every queue to be empty", || async {
        let a = app.state.engine.admission();
        a.commit.in_flight == 0 && a.zones.iter().all(|(_, g)| g.in_flight == 0)
    })
    .await;
}

/// Opens a connection and sends a request head that promises a body it never sends, so
/// the server's handler waits for the body: the request stays in flight at the edge.
async fn stuck_login(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket
        .write_all(
            b"POST /api/public/login HTTP/1.1\r\nhost: pica\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"user",
        )
        .await
        .unwrap();
    socket
}

async fn past_the_edge_bound_a_request_is_refused_from_its_head_alone(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_IN_FLIGHT", "3")]).await else {
        return;
    };
    let mut stuck = Vec::new();
    for _ in 0..3 {
        stuck.push(stuck_login(&app).await);
    }
    eventually(5, "three requests in flight at the edge", || async {
        app.state.edge.snapshot().in_flight == 3
    })
    .await;

    // The fourth is refused although its body has not arrived either: the edge answered
    // from the head, without waiting to read it.
    let mut fourth = stuck_login(&app).await;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("}") {
        let n = fourth.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
    let answer = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(answer.starts_with("http/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("busy"), "{answer}");
    // So is a plain read, but probes and metrics are still answered.
    assert_busy(app.get("/api/public/zones").send().await.unwrap()).await;
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
    assert_eq!(
        metric(&app, "pica_admission_in_flight{queue=\"edge\"}").await,
        "3"
    );
    assert_eq!(
        metric(&app, "pica_admission_refused_total{queue=\"edge\"}").await,
        "2"
    );

    // The stuck requests end (their bodies arrive, malformed): the places are given back.
    for socket in &mut stuck {
        socket.write_all(&[b' '; 994]).await.unwrap();
    }
    eventually(5, "the edge to be empty", || async {
        app.state.edge.snapshot().in_flight == 0
    })
    .await;
    let zones = app.get("/api/public/zones").send().await.unwrap();
    assert_eq!(zones.status(), StatusCode::OK);
}
