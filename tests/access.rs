//! Identity and access from the outside: every status code path, API keys, refresh
//! tokens, roles, login throttling, account changes, CORS.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Backend, TestApp, body, slot};
use pica::storage::Role;
use pica_actors::{ManualClock, ReservationStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    credentials_get_the_documented_status_codes,
    api_key_books_alone_and_revocation_is_immediate,
    refresh_rotates_and_logout_revokes,
    members_cannot_use_admin_endpoints,
    admin_manages_zones_seats_and_out_of_service_cancels,
    login_throttle_kicks_in_and_recovers,
    password_change_and_account_deletion_revoke_everything,
);

#[tokio::test]
async fn cors_is_off_by_default_and_follows_the_configured_origins() {
    let preflight = |app: &TestApp| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                app.url("/api/secure/reservations"),
            )
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .send()
    };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let r = preflight(&app).await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("PICA_CORS_ORIGINS", "https://app.example")],
    )
    .await
    .unwrap();
    let r = preflight(&app).await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    app.stop().await;
}

#[tokio::test]
async fn admin_cli_creates_and_promotes() {
    let db = common::TestDb::new(Backend::Sqlite).await.unwrap();
    let url = db.url.clone();
    let run = |user: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pica"))
            .args(["admin", "create", user])
            .env("DATABASE_URL", &url)
            .env("PICA_ADMIN_PASSWORD", "cli-admin-pass-1")
            .env("PICA_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run("root");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created admin root"));
    let app = TestApp::spawn_on(db, &[]).await;
    let token = body(login(&app, "root", "cli-admin-pass-1").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.get("/api/admin/users")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let member = app.user("mia").await;
    assert_eq!(
        app.get("/api/admin/users")
            .bearer_auth(&member)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    let db = app.stop().await;
    let out = run("mia");
    assert!(String::from_utf8_lossy(&out.stdout).contains("mia is now an admin"));
    let out = run("x");
    assert!(!out.status.success(), "invalid usernames are refused");
    drop(db);
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    app.post("/api/public/login")
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn register(app: &TestApp, username: &str, password: &str) {
    let r = app
        .post("/api/public/register")
        .json(&json!({"username": username, "email": format!("{username}@example.com"), "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn credentials_get_the_documented_status_codes(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(backend, &[], clock.clone()).await else {
        return;
    };
    let token = app.user("ana").await;

    let r = app.get("/api/secure/me").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(r).await["detail"], "Not authenticated");

    for (header, value, detail) in [
        (
            "authorization",
            "Bearer not.a.jwt",
            "Invalid or expired token",
        ),
        ("authorization", "Token abc", "Invalid or expired token"),
        ("api-key", "pica_nope", "Missing or invalid API key"),
        (
            "x-api-key",
            "pica_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "Missing or invalid API key",
        ),
    ] {
        let r = app
            .get("/api/secure/me")
            .header(header, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header}: {value}");
        assert!(r.headers().contains_key("www-authenticate"), "{header}");
        assert_eq!(body(r).await["detail"], detail);
    }

    // Forged tokens: another secret, another algorithm, another issuer.
    let claims = json!({"sub": "1", "ver": 0, "iss": "pica", "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + 600});
    let forged = [
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-1234")).unwrap(),
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET.as_bytes()),
        )
        .unwrap(),
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": "1", "ver": 0, "iss": "evil", "iat": Utc::now().timestamp(), "exp": Utc::now().timestamp() + 600}),
            &jsonwebtoken::EncodingKey::from_secret(common::JWT_SECRET.as_bytes()),
        )
        .unwrap(),
    ];
    for token in forged {
        let r = app
            .get("/api/secure/me")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    let r = app
        .get("/api/secure/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["username"], "ana");
    // Access tokens are short-lived (15 minutes by default).
    clock.advance(Duration::minutes(16));
    let r = app
        .get("/api/secure/me")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["detail"], "Invalid or expired token");
    app.stop().await;
}

async fn api_key_books_alone_and_revocation_is_immediate(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(backend, &[], clock.clone()).await else {
        return;
    };
    let token = app.user("robot").await;
    let eve = app.user("eve").await;

    let r = app
        .post("/api/secure/api-keys")
        .bearer_auth(&token)
        .json(&json!({"name": "booking bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = body(r).await;
    let key = created["key"].as_str().unwrap().to_string();
    let key_id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    // The key alone books, in either header.
    let r = app
        .post("/api/secure/reservations")
        .header("api-key", &key)
        .json(&slot("A7", 1, 9, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .get("/api/secure/my-reservations")
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["items"].as_array().unwrap().len(), 1);

    // Listing shows the prefix, never the key; the database holds only a hash.
    let listed = body(
        app.get("/api/secure/api-keys")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&key));
    let db = app.db.connect().await;
    let stored: Vec<u8> = match &db {
        pica::storage::Db::Sqlite(p) => sqlx::query_scalar("SELECT key_hash FROM api_keys")
            .fetch_one(p)
            .await
            .unwrap(),
        pica::storage::Db::Postgres(p) => sqlx::query_scalar("SELECT key_hash FROM api_keys")
            .fetch_one(p)
            .await
            .unwrap(),
    };
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&key[5..15]));
    db.close().await;

    // Someone else cannot revoke it (404 as if it did not exist)...
    let path = format!("/api/secure/api-keys/{key_id}");
    assert_eq!(
        app.delete(&path)
            .bearer_auth(&eve)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/secure/me")
            .header("api-key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // ...its owner can, and the very next request is refused.
    assert_eq!(
        app.delete(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let r = app
        .get("/api/secure/me")
        .header("api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["detail"], "Missing or invalid API key");
    assert_eq!(
        app.delete(&path)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );

    // An expiring key stops at its expiry.
    let expires = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .post("/api/secure/api-keys")
        .bearer_auth(&token)
        .json(&json!({"expires_at": expires}))
        .send()
        .await
        .unwrap();
    let short = body(r).await["key"].as_str().unwrap().to_string();
    assert_eq!(
        app.get("/api/secure/me")
            .header("api-key", &short)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    clock.advance(Duration::hours(2));
    assert_eq!(
        app.get("/api/secure/me")
            .header("api-key", &short)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post("/api/secure/api-keys")
        .header("api-key", &short)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn refresh_rotates_and_logout_revokes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    register(&app, "ana", "sunny-day-42").await;
    let first = body(login(&app, "ana", "sunny-day-42").await).await;
    let refresh = first["refresh_token"].as_str().unwrap();

    let r = app
        .post("/api/public/refresh")
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let second = body(r).await;
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/secure/me")
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // A refresh token works once.
    let r = app
        .post("/api/public/refresh")
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let newer = second["refresh_token"].as_str().unwrap();
    let r = app
        .post("/api/secure/logout")
        .bearer_auth(access)
        .json(&json!({"refresh_token": newer}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post("/api/public/refresh")
        .json(&json!({"refresh_token": newer}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .post("/api/public/refresh")
        .json(&json!({"refresh_token": "garbage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn members_cannot_use_admin_endpoints(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let member = app.user("member").await;
    let calls = [
        app.get("/api/admin/users"),
        app.post("/api/admin/zones")
            .json(&json!({"id": "roof", "name": "Roof", "kind": "terrace"})),
        app.patch("/api/admin/zones/cafe")
            .json(&json!({"name": "Hacked"})),
        app.post("/api/admin/zones/cafe/seats")
            .json(&json!({"seat_number": "C99"})),
        app.patch("/api/admin/seats/A1")
            .json(&json!({"status": "out_of_service"})),
        app.patch("/api/admin/books/1/stock")
            .json(&json!({"total_copies": 0})),
        app.post("/api/admin/book-reservations/00000000-0000-0000-0000-000000000000/pick-up"),
    ];
    for call in calls {
        let request = call.try_clone().unwrap();
        let r = request.bearer_auth(&member).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(r).await["detail"], "Admin role required");
        let r = call.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(r).await["detail"], "Not authenticated");
    }
    // Nothing changed.
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
    assert_eq!(zones.as_array().unwrap().len(), 3);
    assert_eq!(zones[1]["name"], "Café");
    app.stop().await;
}

async fn make_admin(app: &TestApp, name: &str) -> String {
    let db = app.db.connect().await;
    let outcome = pica::admin::create_admin(&db, name, None, || Ok("admin-pass-123".to_string()))
        .await
        .unwrap();
    assert!(outcome.contains("created admin"));
    db.close().await;
    body(login(app, name, "admin-pass-123").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn admin_manages_zones_seats_and_out_of_service_cancels(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = make_admin(&app, "boss").await;
    let ana = app.user("ana").await;

    let users = body(
        app.get("/api/admin/users?limit=1")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    let next = users["next_cursor"].as_i64().unwrap();
    let rest = body(
        app.get(&format!("/api/admin/users?cursor={next}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(rest["items"][0]["username"], "ana");

    // A future reservation on Q3, then the seat goes out of service.
    let id = body(app.reserve(&ana, slot("Q3", 2, 10, 12)).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let r = app
        .patch("/api/admin/seats/q3")
        .bearer_auth(&admin)
        .json(&json!({"status": "out_of_service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let changed = body(r).await;
    assert_eq!(changed["cancelled_reservations"][0]["id"], id.as_str());
    let all = app.reservations_in_db().await;
    assert_eq!(
        common::status_of(&all, &id),
        Some(ReservationStatus::Cancelled)
    );
    let mut announced = Vec::new();
    while let Ok(e) = events.try_recv() {
        announced.push(
            serde_json::to_value(&e.event).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(
        announced.contains(&"seat_service_changed".to_string())
            && announced.contains(&"reservation_status_changed".to_string()),
        "{announced:?}"
    );
    let r = app.reserve(&ana, slot("Q3", 3, 10, 12)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Contention figures: refusing the out-of-service seat is not a seat conflict;
    // asking for time on Q4 that ben holds is.
    let ben = app.user("ben").await;
    let r = app.reserve(&ben, slot("Q4", 2, 10, 12)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app.reserve(&ana, slot("Q4", 2, 11, 13)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let stats = body(
        app.get("/api/admin/zone-stats")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let quiet = stats["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["zone"] == "quiet")
        .unwrap()
        .clone();
    assert_eq!(quiet["up"], true);
    assert_eq!(quiet["stats"]["seat_conflicts"], 1);
    assert_eq!(quiet["stats"]["committed"], 2, "{quiet}");
    assert_eq!(quiet["stats"]["held"], 1);
    let r = app
        .get("/api/admin/zone-stats")
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
    let q3 = zones[2]["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat_number"] == "Q3")
        .unwrap()
        .clone();
    assert_eq!(q3["state"], "out_of_service");
    let r = app
        .patch("/api/admin/seats/Q3")
        .bearer_auth(&admin)
        .json(&json!({"status": "in_service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.reserve(&ana, slot("Q3", 3, 10, 12)).await.status(),
        StatusCode::CREATED
    );

    // Book stock goes through the book actor: never below what is reserved.
    let r = app
        .post("/api/secure/book-reservations")
        .bearer_auth(&ana)
        .json(&json!({"book_id": 1, "copies": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .patch("/api/admin/books/1/stock")
        .bearer_auth(&admin)
        .json(&json!({"total_copies": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .patch("/api/admin/books/1/stock")
        .bearer_auth(&admin)
        .json(&json!({"total_copies": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let book = body(app.get("/api/public/books/1").send().await.unwrap()).await;
    assert_eq!(
        (
            book["total_copies"].as_u64(),
            book["available_copies"].as_u64()
        ),
        (Some(7), Some(5))
    );
    let r = app
        .patch("/api/admin/books/999/stock")
        .bearer_auth(&admin)
        .json(&json!({"total_copies": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .patch("/api/admin/books/1/stock")
        .bearer_auth(&admin)
        .json(&json!({"total_copies": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // New zone with a seat, bookable at once; renaming works; bad input is refused.
    let r = app
        .post("/api/admin/zones")
        .bearer_auth(&admin)
        .json(&json!({"id": "roof", "name": "Roof Terrace", "kind": "terrace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post("/api/admin/zones")
        .bearer_auth(&admin)
        .json(&json!({"id": "roof", "name": "Again", "kind": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post("/api/admin/zones")
        .bearer_auth(&admin)
        .json(&json!({"id": "../etc", "name": "x", "kind": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post("/api/admin/zones/roof/seats")
        .bearer_auth(&admin)
        .json(&json!({"seat_number": "R1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app
        .post("/api/admin/zones/roof/seats")
        .bearer_auth(&admin)
        .json(&json!({"seat_number": "A1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "seat numbers are unique across the space"
    );
    let r = app
        .patch("/api/admin/zones/roof")
        .bearer_auth(&admin)
        .json(&json!({"name": "Rooftop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["name"], "Rooftop");
    assert_eq!(
        app.reserve(&ana, slot("R1", 4, 9, 10)).await.status(),
        StatusCode::CREATED
    );
    let zones: Value = body(app.get("/api/public/zones").send().await.unwrap()).await;
    assert_eq!(zones[3]["id"], "roof");
    assert_eq!(zones[3]["name"], "Rooftop");

    // The new zone, its seat and the seat's reservation survive a restart.
    let app = TestApp::spawn_on(app.stop().await, &[]).await;
    let zones: Value = body(app.get("/api/public/zones").send().await.unwrap()).await;
    assert_eq!(zones[3]["seats"][0]["seat_number"], "R1");
    let ana = body(login(&app, "ana", "pw-ana-123").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.reserve(&ana, slot("R1", 4, 9, 10)).await.status(),
        StatusCode::CONFLICT
    );
    app.stop().await;
}

async fn login_throttle_kicks_in_and_recovers(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(backend, &[], clock.clone()).await else {
        return;
    };
    register(&app, "ana", "sunny-day-42").await;
    for _ in 0..5 {
        assert_eq!(
            login(&app, "ana", "wrong-guess-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused, with Retry-After.
    let r = login(&app, "ana", "sunny-day-42").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 900);
    // Other users are unaffected.
    register(&app, "ben", "rainy-day-43").await;
    assert_eq!(
        login(&app, "ben", "rainy-day-43").await.status(),
        StatusCode::OK
    );
    // After the window the lock lifts.
    clock.advance(Duration::seconds(wait as i64 + 1));
    assert_eq!(
        login(&app, "ana", "sunny-day-42").await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn password_change_and_account_deletion_revoke_everything(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    register(&app, "ana", "sunny-day-42").await;
    let session = body(login(&app, "ana", "sunny-day-42").await).await;
    let token = session["access_token"].as_str().unwrap().to_string();

    // argon2id with at least OWASP's parameters.
    let db = app.db.connect().await;
    let user = db.find_user_by_name("ana").await.unwrap().unwrap();
    assert!(
        user.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        user.password_hash
    );
    assert_eq!(user.role, Role::Member);

    let r = app
        .post("/api/secure/me/password")
        .bearer_auth(&token)
        .json(&json!({"current_password": "nope-nope-1", "new_password": "brand-new-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .post("/api/secure/me/password")
        .bearer_auth(&token)
        .json(&json!({"current_password": "sunny-day-42", "new_password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .post("/api/secure/me/password")
        .bearer_auth(&token)
        .json(&json!({"current_password": "sunny-day-42", "new_password": "brand-new-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get("/api/secure/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .post("/api/public/refresh")
        .json(&json!({"refresh_token": session["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&app, "ana", "sunny-day-42").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let token = body(login(&app, "ana", "brand-new-77").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    // Delete: future reservations cancelled, seat free, every credential dead.
    let id = body(app.reserve(&token, slot("C9", 1, 9, 12)).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = body(
        app.post("/api/secure/api-keys")
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .delete("/api/secure/me")
        .bearer_auth(&token)
        .json(&json!({"password": "brand-new-77"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["cancelled_reservations"], 1);
    assert_eq!(
        common::status_of(&app.reservations_in_db().await, &id),
        Some(ReservationStatus::Cancelled)
    );
    assert_eq!(
        app.get("/api/secure/me")
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/api/secure/me")
            .header("api-key", &key)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&app, "ana", "brand-new-77").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let ben = app.user("ben").await;
    assert_eq!(
        app.reserve(&ben, slot("C9", 1, 9, 12)).await.status(),
        StatusCode::CREATED
    );
    db.close().await;
    app.stop().await;
}
