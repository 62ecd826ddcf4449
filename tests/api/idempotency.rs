//! `Idempotency-Key` on every creating POST: a retry of a request that created
//! something gets the same answer and creates nothing (also concurrently, and after a
//! restart); a key reused with another body is refused with 422 and changes nothing.

use crate::helpers::library::bundle_body;
use crate::helpers::seats::waitlist_body;
use crate::helpers::{Backend, TestApp, audit, body, slot};
use pica::storage::Db;
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    a_bundle_retried_after_it_committed_gets_both_parts_back,
    concurrent_identical_bundles_book_once,
    a_key_reused_with_another_body_is_refused_everywhere,
    waitlist_retries_get_the_first_entry,
    book_reservation_retries_take_the_copies_once,
    an_api_key_retry_creates_no_second_key_and_shows_no_secret,
    retries_after_a_restart_still_replay,
);

// ------------------------------------------------------------------ helpers

/// Reserved copies of a book, as the API (the actor's memory) shows them.
async fn reserved_copies(app: &TestApp, id: i64) -> i64 {
    let r = app
        .get(&format!("/api/public/books/{id}"))
        .send()
        .await
        .unwrap();
    body(r).await["reserved_copies"].as_i64().unwrap()
}

async fn post_keyed(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.post(path)
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Row counts straight from the database: `(reservations, book reservations, waitlist
/// entries, API keys, idempotency keys)`.
async fn counts(app: &TestApp) -> [i64; 5] {
    let db = app.db.connect().await;
    let tables = [
        "reservations",
        "book_reservations",
        "waitlist_entries",
        "api_keys",
        "idempotency_keys",
    ];
    let mut out = [0; 5];
    for (n, table) in out.iter_mut().zip(tables) {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        *n = match &db {
            Db::Sqlite(pool) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(pool)
                .await
                .unwrap(),
        };
    }
    db.close().await;
    out
}

async fn expect_reused_key(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}");
    let detail = body(r).await["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("different request body"),
        "{what}: {detail}"
    );
}

/// Fills the quiet room (Q1-Q8) on day 1 from 09:00 to 11:00, so joining its
/// waitlist for that time is allowed.
async fn fill_quiet(app: &TestApp) {
    for i in 1..=8 {
        let token = app.user(&format!("reader{i}")).await;
        let r = app.reserve(&token, slot(&format!("Q{i}"), 1, 9, 11)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

// ------------------------------------------------------------------ tests

async fn a_bundle_retried_after_it_committed_gets_both_parts_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    let request = bundle_body(slot("Q3", 1, 10, 12), ddia, 2);
    let r = post_keyed(&app, "/api/secure/bundles", &ben, "bundle-1", &request).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = body(r).await;

    // The retry (the client never saw the answer) is not "someone took the seat".
    let r = post_keyed(&app, "/api/secure/bundles", &ben, "bundle-1", &request).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(body(r).await, first, "the same answer, the same ids");
    // The same body with its fields in another order and spacing is the same request.
    let reordered = format!(
        r#"{{ "book": {{"copies": 2, "book_id": {ddia}}}, "seat": {} }}"#,
        slot("Q3", 1, 10, 12)
    );
    let r = app
        .post("/api/secure/bundles")
        .bearer_auth(&ben)
        .header("Idempotency-Key", "bundle-1")
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(body(r).await, first);

    // Exactly one of each in the database, one set of copies taken.
    let seats = app.reservations_in_db().await;
    assert_eq!(seats.len(), 1);
    assert_eq!(
        seats[0].id.to_string(),
        first["seat_reservation"]["id"].as_str().unwrap()
    );
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert_eq!(books.len(), 1);
    assert_eq!(
        books[0].id.to_string(),
        first["book_reservation"]["id"].as_str().unwrap()
    );
    assert_eq!(reserved_copies(&app, ddia).await, 2);

    // A retry replays what the parts are now: cancel the book part, retry, see it.
    let book = first["book_reservation"]["id"].as_str().unwrap();
    let r = app
        .delete(&format!("/api/secure/book-reservations/{book}"))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_keyed(&app, "/api/secure/bundles", &ben, "bundle-1", &request).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let again = body(r).await;
    assert_eq!(
        again["book_reservation"]["id"],
        first["book_reservation"]["id"]
    );
    assert_eq!(again["book_reservation"]["status"], "cancelled");
    assert_eq!(again["seat_reservation"], first["seat_reservation"]);
    assert_eq!(reserved_copies(&app, ddia).await, 0, "no copy taken again");
    assert_eq!(counts(&app).await[..2], [1, 1]);

    // A bundle refused for its seat stores no key: its retry is evaluated afresh.
    let ana = app.user("ana").await;
    let taken = bundle_body(slot("Q3", 1, 11, 13), ddia, 1);
    let r = post_keyed(&app, "/api/secure/bundles", &ana, "ana-1", &taken).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(body(r).await["part"], "seat");
    let r = app
        .delete(&format!(
            "/api/secure/reservations/{}",
            first["seat_reservation"]["id"].as_str().unwrap()
        ))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = post_keyed(&app, "/api/secure/bundles", &ana, "ana-1", &taken).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(counts(&app).await[..2], [2, 2]);
    app.stop().await;
}

async fn concurrent_identical_bundles_book_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    let request = bundle_body(slot("Q5", 1, 14, 16), ddia, 1);
    let answers = futures::future::join_all(
        (0..16).map(|_| post_keyed(&app, "/api/secure/bundles", &ben, "same-16", &request)),
    )
    .await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status(), StatusCode::CREATED);
        bodies.push(body(r).await);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every request got the one bundle"
    );
    let seats = app.reservations_in_db().await;
    assert_eq!(seats.len(), 1);
    audit(&seats);
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].seat_reservation, Some(seats[0].id));
    assert_eq!(reserved_copies(&app, ddia).await, 1);
    assert_eq!(counts(&app).await, [1, 1, 0, 0, 1]);
    app.stop().await;
}

async fn a_key_reused_with_another_body_is_refused_everywhere(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    fill_quiet(&app).await;
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    // One key on every endpoint: each endpoint has its own keys, so all five create.
    let firsts = [
        ("/api/secure/reservations", slot("A1", 2, 9, 10)),
        (
            "/api/secure/bundles",
            bundle_body(slot("A2", 3, 9, 10), ddia, 1),
        ),
        ("/api/secure/waitlist", waitlist_body("quiet", 9, 11)),
        (
            "/api/secure/book-reservations",
            json!({"book_id": ddia, "copies": 1}),
        ),
        ("/api/secure/api-keys", json!({"name": "laptop"})),
    ];
    for (path, request) in &firsts {
        let r = post_keyed(&app, path, &ben, "shared-key", request).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
    }
    let before = counts(&app).await;
    assert_eq!(before, [10, 2, 1, 1, 5]);
    let stock_before = reserved_copies(&app, ddia).await;

    let others = [
        ("/api/secure/reservations", slot("A1", 2, 10, 11)),
        (
            "/api/secure/bundles",
            bundle_body(slot("A2", 3, 9, 10), ddia, 2),
        ),
        ("/api/secure/waitlist", waitlist_body("quiet", 9, 10)),
        (
            "/api/secure/book-reservations",
            json!({"book_id": ddia, "copies": 2}),
        ),
        ("/api/secure/api-keys", json!({"name": "phone"})),
    ];
    for (path, request) in &others {
        let r = post_keyed(&app, path, &ben, "shared-key", request).await;
        expect_reused_key(r, path).await;
    }
    // Even a body that is invalid on its own is refused as a reused key, not run.
    let r = post_keyed(
        &app,
        "/api/secure/reservations",
        &ben,
        "shared-key",
        &json!({"seat_number": "??"}),
    )
    .await;
    expect_reused_key(r, "invalid body").await;
    assert_eq!(counts(&app).await, before, "nothing changed");
    assert_eq!(reserved_copies(&app, ddia).await, stock_before);

    // Keys are per user: another member's same key is another key.
    let ana = app.user("ana").await;
    let r = post_keyed(
        &app,
        "/api/secure/book-reservations",
        &ana,
        "shared-key",
        &json!({"book_id": ddia, "copies": 1}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    // A malformed key is refused before anything runs, on every endpoint.
    let long = "k".repeat(256);
    for (path, request) in &firsts {
        for bad in ["", long.as_str(), "has space"] {
            let r = post_keyed(&app, path, &ben, bad, request).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path} {bad:?}");
            assert!(body(r).await["detail"].as_str().unwrap().contains("1-255"));
        }
    }
    let r = post_keyed(
        &app,
        "/api/secure/api-keys",
        &ben,
        &"k".repeat(255),
        &json!({}),
    )
    .await;
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "255 characters are fine: {}",
        body(r).await
    );
    app.stop().await;
}

async fn waitlist_retries_get_the_first_entry(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    fill_quiet(&app).await;
    let wendy = app.user("wendy").await;
    let request = waitlist_body("quiet", 9, 11);
    let answers = futures::future::join_all(
        (0..8).map(|_| post_keyed(&app, "/api/secure/waitlist", &wendy, "wait-1", &request)),
    )
    .await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status(), StatusCode::CREATED);
        bodies.push(body(r).await);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(bodies[0]["status"], "waiting");
    // Without the key the same request is a second join, refused as a duplicate: the
    // retries above did not get that far.
    let r = app.post_as(&wendy, "/api/secure/waitlist", &request).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.get_as(&wendy, "/api/secure/waitlist").await;
    let items = body(r).await["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], bodies[0]["id"]);
    assert_eq!(counts(&app).await[2], 1);
    app.stop().await;
}

async fn book_reservation_retries_take_the_copies_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    let request = json!({"book_id": ddia, "copies": 2});
    let answers = futures::future::join_all((0..8).map(|_| {
        post_keyed(
            &app,
            "/api/secure/book-reservations",
            &ben,
            "books-1",
            &request,
        )
    }))
    .await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status(), StatusCode::CREATED);
        bodies.push(body(r).await);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]));
    assert_eq!(
        reserved_copies(&app, ddia).await,
        2,
        "two copies, not sixteen"
    );
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].id.to_string(), bodies[0]["id"].as_str().unwrap());
    app.stop().await;
}

async fn an_api_key_retry_creates_no_second_key_and_shows_no_secret(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ben = app.user("ben").await;
    let request = json!({"name": "ci"});
    let answers = futures::future::join_all(
        (0..8).map(|_| post_keyed(&app, "/api/secure/api-keys", &ben, "key-1", &request)),
    )
    .await;
    let mut created = Vec::new();
    let mut replays = Vec::new();
    for r in answers {
        match r.status() {
            StatusCode::CREATED => created.push(body(r).await),
            StatusCode::CONFLICT => replays.push(body(r).await),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created.len(), 1, "exactly one key created");
    assert_eq!(replays.len(), 7);
    let first = &created[0];
    let secret = first["key"].as_str().unwrap();
    for replay in &replays {
        assert_eq!(replay["api_key"]["id"], first["id"]);
        assert_eq!(replay["api_key"]["prefix"], first["prefix"]);
        assert_eq!(replay["api_key"]["revoked"], false);
        assert!(
            replay["detail"]
                .as_str()
                .unwrap()
                .contains("shown only once")
        );
        assert!(
            !replay.to_string().contains(secret),
            "the secret is never shown again"
        );
    }
    let r = app.get_as(&ben, "/api/secure/api-keys").await;
    assert_eq!(body(r).await["items"].as_array().unwrap().len(), 1);
    // The one key works.
    let r = app
        .get("/api/secure/me")
        .header("X-API-Key", secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Revoked since: a retry says so, and still creates nothing.
    let id = first["id"].as_str().unwrap();
    let r = app
        .delete(&format!("/api/secure/api-keys/{id}"))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = post_keyed(&app, "/api/secure/api-keys", &ben, "key-1", &request).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(body(r).await["api_key"]["revoked"], true);
    assert_eq!(counts(&app).await[3], 1);
    app.stop().await;
}

async fn retries_after_a_restart_still_replay(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    fill_quiet(&app).await;
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    let requests = [
        ("/api/secure/reservations", slot("A3", 2, 9, 10)),
        (
            "/api/secure/bundles",
            bundle_body(slot("A4", 3, 9, 10), ddia, 1),
        ),
        ("/api/secure/waitlist", waitlist_body("quiet", 9, 11)),
        (
            "/api/secure/book-reservations",
            json!({"book_id": ddia, "copies": 1}),
        ),
    ];
    let mut firsts = Vec::new();
    for (path, request) in &requests {
        let r = post_keyed(&app, path, &ben, "before-restart", request).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        firsts.push(body(r).await);
    }
    let before = counts(&app).await;
    let stock = reserved_copies(&app, ddia).await;

    let db = app.stop().await;
    let app = TestApp::spawn_on(db, &[]).await;
    let r = app.login("ben", "pw-ben-123").await;
    let ben = body(r).await["access_token"].as_str().unwrap().to_string();
    for ((path, request), first) in requests.iter().zip(&firsts) {
        let r = post_keyed(&app, path, &ben, "before-restart", request).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        assert_eq!(&body(r).await, first, "{path} replays after a restart");
    }
    let (path, _) = &requests[0];
    let r = post_keyed(&app, path, &ben, "before-restart", &slot("A3", 2, 10, 11)).await;
    expect_reused_key(r, "after a restart").await;
    assert_eq!(counts(&app).await, before);
    assert_eq!(reserved_copies(&app, ddia).await, stock);
    audit(&app.reservations_in_db().await);
    app.stop().await;
}
