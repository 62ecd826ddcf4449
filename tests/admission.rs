//! Admission control over HTTP: with the database stalled (a test transaction holds the
//! write lock), requests past a zone's bound, or past the commit queue's bound, get 503
//! with `Retry-After` at once; the admitted ones succeed once the database is released,
//! and nothing of the refused ones is left in memory or in the database.

mod common;

use common::{Backend, TestApp, audit, body, eventually, slot};
use pica_actors::{GateStats, ZoneId};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

on_both_backends!(
    a_full_zone_answers_503_at_once_and_the_admitted_commit_after_release,
    a_full_commit_queue_answers_503_and_leaves_nothing_pending,
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
        common::day(1)
    );
    assert_busy(app.get(&path).send().await.unwrap()).await;
    // Another zone is not affected.
    let other = app
        .get(&format!(
            "/api/public/zones/coworking/availability?date={}",
            common::day(1)
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
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_COMMIT_QUEUE_LIMIT", "1")]).await else {
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
    let cancel = app
        .delete(&format!("/api/secure/reservations/{kept}"))
        .bearer_auth(&tokens[2])
        .send()
        .await
        .unwrap();
    assert_busy(cancel).await;
    // Reads queue no write and still get through.
    let path = format!(
        "/api/public/zones/quiet/availability?date={}",
        common::day(1)
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
    let cancel = app
        .delete(&format!("/api/secure/reservations/{kept}"))
        .bearer_auth(&tokens[2])
        .send()
        .await
        .unwrap();
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
