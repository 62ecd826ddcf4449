//! Identity and access from the outside: every status code path, API keys, refresh
//! tokens, login throttling, password changes and account deletion, CORS. Roles and
//! what an admin manages are in `admin.rs`.

use std::sync::Arc;

use chrono::{Duration, Utc};
use pica::storage::Role;
use pica_actors::{ManualClock, ReservationStatus};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, JWT_SECRET, TestApp, body, slot, status_of};

on_both_backends!(
    credentials_get_the_documented_status_codes,
    api_key_books_alone_and_revocation_is_immediate,
    refresh_rotates_and_logout_revokes,
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

/// An HS256 token signed with `secret` for `claims`.
fn jwt(claims: &serde_json::Value, secret: &[u8]) -> String {
    jwt_with(jsonwebtoken::Header::default(), claims, secret)
}

fn jwt_with(header: jsonwebtoken::Header, claims: &serde_json::Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap()
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
    let now = Utc::now().timestamp();
    let claims = json!({"sub": "1", "ver": 0, "iss": "pica", "iat": now, "exp": now + 600});
    let evil = json!({"sub": "1", "ver": 0, "iss": "evil", "iat": now, "exp": now + 600});
    let forged = [
        jwt(&claims, b"another-secret-another-secret-1234"),
        jwt_with(
            jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
            &claims,
            JWT_SECRET.as_bytes(),
        ),
        jwt(&evil, JWT_SECRET.as_bytes()),
    ];
    for token in forged {
        assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    }

    let r = app.me(&token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["username"], "ana");
    // Access tokens are short-lived (15 minutes by default).
    clock.advance(Duration::minutes(16));
    let r = app.me(&token).await;
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
        .create_api_key(&token, json!({"name": "booking bot"}))
        .await;
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
    let listed = body(app.api_keys(&token).await).await;
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
    assert_eq!(
        app.revoke_api_key(&eve, &key_id).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.me_with_key(&key).await.status(), StatusCode::OK);
    // ...its owner can, and the very next request is refused.
    assert_eq!(
        app.revoke_api_key(&token, &key_id).await.status(),
        StatusCode::NO_CONTENT
    );
    let r = app.me_with_key(&key).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["detail"], "Missing or invalid API key");
    assert_eq!(
        app.revoke_api_key(&token, &key_id).await.status(),
        StatusCode::NOT_FOUND
    );

    // An expiring key stops at its expiry.
    let expires = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let r = app
        .create_api_key(&token, json!({"expires_at": expires}))
        .await;
    let short = body(r).await["key"].as_str().unwrap().to_string();
    assert_eq!(app.me_with_key(&short).await.status(), StatusCode::OK);
    clock.advance(Duration::hours(2));
    assert_eq!(
        app.me_with_key(&short).await.status(),
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
    app.register("ana", "sunny-day-42").await;
    let first = body(app.login("ana", "sunny-day-42").await).await;
    let refresh = first["refresh_token"].as_str().unwrap();

    let r = app.refresh(refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = body(r).await;
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(app.me(access).await.status(), StatusCode::OK);
    // A refresh token works once.
    assert_eq!(
        app.refresh(refresh).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let newer = second["refresh_token"].as_str().unwrap();
    assert_eq!(
        app.logout(access, newer).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.refresh(newer).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh("garbage").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

async fn login_throttle_kicks_in_and_recovers(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(backend, &[], clock.clone()).await else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    for _ in 0..5 {
        assert_eq!(
            app.login("ana", "wrong-guess-1").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused, with Retry-After.
    let r = app.login("ana", "sunny-day-42").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 900);
    // Other users are unaffected.
    app.register("ben", "rainy-day-43").await;
    assert_eq!(
        app.login("ben", "rainy-day-43").await.status(),
        StatusCode::OK
    );
    // After the window the lock lifts.
    clock.advance(Duration::seconds(wait as i64 + 1));
    assert_eq!(
        app.login("ana", "sunny-day-42").await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

async fn password_change_and_account_deletion_revoke_everything(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    let session = body(app.login("ana", "sunny-day-42").await).await;
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
        .change_password(&token, "nope-nope-1", "brand-new-77")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.change_password(&token, "sunny-day-42", "short").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .change_password(&token, "sunny-day-42", "brand-new-77")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .refresh(session["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.login("ana", "sunny-day-42").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let token = app.access_token("ana", "brand-new-77").await;

    // Delete: future reservations cancelled, seat free, every credential dead.
    let id = body(app.reserve(&token, slot("C9", 1, 9, 12)).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let key = body(app.create_api_key(&token, json!({})).await).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app.delete_account(&token, "brand-new-77").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["cancelled_reservations"], 1);
    assert_eq!(
        status_of(&app.reservations_in_db().await, &id),
        Some(ReservationStatus::Cancelled)
    );
    assert_eq!(app.me(&token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.me_with_key(&key).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.login("ana", "brand-new-77").await.status(),
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
