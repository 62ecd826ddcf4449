//! The web app as the server delivers it: its files (compressed, cached, under a strict
//! content security policy), the redirect from `/`, the cookie session (HttpOnly,
//! SameSite=Strict, refused from another origin, rotated, ended), the space's booking
//! rules and the seats' floor-plan spots. What the pages do is tested in a real browser
//! (`tests/browser`).

use pica::storage::Db;
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION, ORIGIN,
};
use serde_json::{Value, json};

use crate::helpers::web::Cookies;
use crate::helpers::{Backend, TestApp, body, day, slot};

on_both_backends!(
    a_cookie_session_is_http_only_strict_and_never_shown_to_script,
    a_cookie_changes_nothing_from_another_origin,
    a_session_rotates_and_ends_with_sign_out_and_password_change,
    seats_stand_at_their_spots_and_keep_a_placed_one_across_a_restart,
);

async fn sqlite() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.expect("SQLite app")
}

#[tokio::test]
async fn a_browser_is_sent_to_the_app_and_an_api_client_keeps_the_welcome() {
    let app = sqlite().await;
    // A client that shows redirects instead of following them.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = client
        .get(app.url("/"))
        .header(ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.headers()[LOCATION], "/app/");
    let api_client = app.get("/").send().await.unwrap();
    assert_eq!(api_client.status(), StatusCode::OK);
    assert_eq!(
        body(api_client).await["message"],
        "Welcome to the Coworking Space API!"
    );
    let bare = client.get(app.url("/app")).send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
}

#[tokio::test]
async fn the_app_is_compressed_cached_with_validators_and_under_a_strict_policy() {
    let app = sqlite().await;
    let page = app.get("/app/").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    assert_eq!(headers[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/app/js/main.js">"#));
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "no inline script or style"
    );

    // A validator: the same ETag answers 304 without the body.
    let etag = headers[ETAG].clone();
    let again = app
        .get("/app/")
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[ETAG], etag);
    assert!(again.bytes().await.unwrap().is_empty());

    // Compressed for a client that accepts it, smaller than the original.
    let plain = app.get("/app/js/map.js").send().await.unwrap();
    assert_eq!(
        plain.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let plain_len = plain.bytes().await.unwrap().len();
    let gzip = app
        .get("/app/js/map.js")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gzip.headers()[CONTENT_ENCODING], "gzip");
    let gzip_len = gzip.bytes().await.unwrap().len();
    assert!(gzip_len * 2 < plain_len, "{gzip_len} vs {plain_len}");

    // Screens are the one page; a missing file is a JSON 404.
    let screen = app.get("/app/reservations").send().await.unwrap();
    assert_eq!(screen.status(), StatusCode::OK);
    assert_eq!(screen.text().await.unwrap(), html);
    let missing = app.get("/app/js/nothing.js").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(missing).await["detail"], "No file /app/js/nothing.js");
}

#[tokio::test]
async fn an_event_stream_is_never_compressed() {
    let app = sqlite().await;
    let stream = app
        .get("/api/public/events")
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()[CONTENT_TYPE], "text/event-stream");
    assert!(stream.headers().get(CONTENT_ENCODING).is_none());
}

#[tokio::test]
async fn the_space_tells_its_booking_rules() {
    let app = sqlite().await;
    let space = body(app.get("/api/public/space").send().await.unwrap()).await;
    assert_eq!(space["time_zone"], "Asia/Jakarta");
    assert_eq!(space["opens"], "08:00");
    assert_eq!(space["closes"], "22:00");
    assert_eq!(space["slot_minutes"], 30);
    assert_eq!(space["horizon_days"], 30);
    assert_eq!(space["check_in_opens_minutes"], 15);
    assert_eq!(space["hold_minutes"], 10);
    assert_eq!(space["today"], day(0).to_string());
    assert!(space["now"].as_str().unwrap().ends_with("+07:00"));
}

async fn signed_in(app: &TestApp) -> Cookies {
    app.register("ana", "sunny-day-42").await;
    app.session("ana", "sunny-day-42").await
}

async fn a_cookie_session_is_http_only_strict_and_never_shown_to_script(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    let r = app.start_session("ana", "sunny-day-42").await;
    assert_eq!(r.status(), StatusCode::OK);
    let set = Cookies::set_by(&r);
    let cookies = TestApp::cookies_of(&r);
    for (name, value) in &set {
        assert!(value.contains("; HttpOnly"), "{value}");
        assert!(value.contains("; SameSite=Strict"), "{value}");
        assert!(!value.contains("Secure"), "plain HTTP: {value}");
        let path = if name == "pica_refresh" {
            "Path=/app/session;"
        } else {
            "Path=/;"
        };
        assert!(value.contains(path), "{value}");
    }
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(&cookies.session) && !text.contains(&cookies.refresh),
        "the body carries no token: {text}"
    );
    assert!(text.contains("expires_in"));

    // The cookie authenticates like a bearer token.
    let me = app
        .with_cookies(app.get("/api/secure/me"), "/api/secure/me", &cookies, None)
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(body(me).await["username"], "ana");

    // Behind a TLS proxy the cookies are Secure.
    let https = app
        .post("/app/session")
        .header(ORIGIN, app.origin())
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "ana", "password": "sunny-day-42"}))
        .send()
        .await
        .unwrap();
    for (_, value) in Cookies::set_by(&https) {
        assert!(value.ends_with("; Secure"), "{value}");
    }

    // A wrong password sets nothing.
    let wrong = app.start_session("ana", "not-her-password-1").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(Cookies::set_by(&wrong).is_empty());
}

async fn a_cookie_changes_nothing_from_another_origin(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let cookies = signed_in(&app).await;
    let path = "/api/secure/reservations";
    let request = || app.post(path).json(&slot("A1", 1, 9, 11));
    for origin in [Some("http://evil.example"), Some("null"), None] {
        let r = app.with_cookies(request(), path, &cookies, origin).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "Origin {origin:?}");
        let detail = body(r).await["detail"].as_str().unwrap().to_string();
        assert!(
            detail.starts_with("Cross-origin request refused"),
            "{detail}"
        );
    }
    assert!(
        app.reservations_in_db().await.is_empty(),
        "nothing was booked"
    );
    // Signing in from another origin is refused too (no login CSRF).
    let foreign_login = app
        .post("/app/session")
        .header(ORIGIN, "http://evil.example")
        .json(&json!({"username": "ana", "password": "sunny-day-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign_login.status(), StatusCode::FORBIDDEN);
    assert!(Cookies::set_by(&foreign_login).is_empty());
    // Reads need no Origin; the app's own origin may write.
    let own = app.origin();
    let read = app
        .with_cookies(
            app.get("/api/secure/me"),
            "/api/secure/me",
            &cookies,
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    let booked = app
        .with_cookies(request(), path, &cookies, Some(&own))
        .await;
    assert_eq!(booked.status(), StatusCode::CREATED);
    assert_eq!(app.reservations_in_db().await.len(), 1);
    // A bearer token is not a cookie: its requests need no Origin (API clients).
    let token = app.access_token("ana", "sunny-day-42").await;
    let api = app.reserve(&token, slot("A2", 2, 9, 11)).await;
    assert_eq!(api.status(), StatusCode::CREATED);
}

async fn a_session_rotates_and_ends_with_sign_out_and_password_change(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let first = signed_in(&app).await;
    let me = |cookies: Cookies| {
        let app = &app;
        async move {
            app.with_cookies(app.get("/api/secure/me"), "/api/secure/me", &cookies, None)
                .await
                .status()
        }
    };

    // A refresh replaces both cookies; the spent refresh token works no more.
    let r = app.refresh_session(&first).await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = TestApp::cookies_of(&r);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(me(second.clone()).await, StatusCode::OK);
    let replay = app.refresh_session(&first).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    // A refresh from another origin is refused.
    let foreign = app
        .with_cookies(
            app.post("/app/session/refresh"),
            "/app/session/refresh",
            &second,
            Some("http://evil.example"),
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    // Signing out clears both cookies and revokes the refresh token.
    let out = app.end_session(&second).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let cleared = Cookies::set_by(&out);
    assert_eq!(cleared.len(), 2);
    assert!(
        cleared.iter().all(|(_, v)| v.contains("Max-Age=0")),
        "{cleared:?}"
    );
    assert_eq!(
        app.refresh_session(&second).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Changing the password ends the session: its access token and its refresh token.
    let third = app.session("ana", "sunny-day-42").await;
    let change = app
        .with_cookies(
            app.post("/api/secure/me/password").json(&json!({
                "current_password": "sunny-day-42", "new_password": "rainy-day-43"
            })),
            "/api/secure/me/password",
            &third,
            Some(&app.origin()),
        )
        .await;
    assert!(change.status().is_success(), "{}", change.status());
    assert_eq!(me(third.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.refresh_session(&third).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn seats_stand_at_their_spots_and_keep_a_placed_one_across_a_restart(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
    let spots = |zones: &Value, zone: &str| -> Vec<(String, i64, i64)> {
        let zone = zones
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["id"] == zone)
            .unwrap();
        zone["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let n = s["seat_number"].as_str().unwrap().to_string();
                (n, s["x"].as_i64().unwrap(), s["y"].as_i64().unwrap())
            })
            .collect()
    };
    for zone in ["coworking", "cafe", "quiet"] {
        let seats = spots(&zones, zone);
        let mut distinct: Vec<(i64, i64)> = seats.iter().map(|s| (s.1, s.2)).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), seats.len(), "{zone}: two seats on one spot");
    }
    // A seat added by an admin stands after the zone's others.
    let admin = app.make_admin("boss").await;
    let added = app
        .post_as(
            &admin,
            "/api/admin/zones/quiet/seats",
            &json!({"seat_number": "Q9"}),
        )
        .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
    let quiet = spots(&zones, "quiet");
    let q9 = quiet.iter().find(|s| s.0 == "Q9").unwrap();
    assert!(
        quiet
            .iter()
            .filter(|s| s.0 != "Q9")
            .all(|s| (s.1, s.2) != (q9.1, q9.2)),
        "Q9 has a spot of its own: {quiet:?}"
    );

    // A placed seat keeps its spot across a restart; the others keep their defaults.
    let db = app.stop().await;
    let place = "UPDATE seats SET x = 1234, y = 567 WHERE number = 'Q2'";
    match db.connect().await {
        Db::Sqlite(pool) => sqlx::raw_sql(place).execute(&pool).await.map(drop),
        Db::Postgres(pool) => sqlx::raw_sql(place).execute(&pool).await.map(drop),
    }
    .expect("place Q2");
    let app = TestApp::spawn_on(db, &[]).await;
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
    let after = spots(&zones, "quiet");
    assert!(after.contains(&("Q2".into(), 1234, 567)), "{after:?}");
    assert_eq!(
        after.iter().find(|s| s.0 == "Q9"),
        quiet.iter().find(|s| s.0 == "Q9")
    );
    assert_eq!(
        after.iter().find(|s| s.0 == "Q1"),
        quiet.iter().find(|s| s.0 == "Q1")
    );
}

#[tokio::test]
async fn the_session_endpoints_answer_bad_input_with_a_4xx_and_a_detail() {
    let app = sqlite().await;
    let own = app.origin();
    let post = |body: &'static str, content_type: &'static str| {
        app.post("/app/session")
            .header(ORIGIN, own.clone())
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
    };
    for (body, content_type, status) in [
        ("{not json", "application/json", StatusCode::BAD_REQUEST),
        (
            r#"{"username": "ana"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"username": "ana", "password": "x"}"#,
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            r#"{"username": 7, "password": "x"}"#,
            "application/json",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = post(body, content_type).await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        assert!(Cookies::set_by(&r).is_empty());
        assert!(body_detail(r).await.len() > 3, "{body}");
    }
    // A refresh without a refresh cookie, or with garbage, is a 401; nothing is set.
    let bare = app
        .post("/app/session/refresh")
        .header(ORIGIN, own.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let garbage = Cookies {
        session: "x".into(),
        refresh: "not-a-token".into(),
    };
    let r = app.refresh_session(&garbage).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(Cookies::set_by(&r).is_empty());
    // Signing out without a session still clears the cookies.
    let out = app.end_session(&garbage).await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
}

async fn body_detail(r: reqwest::Response) -> String {
    body(r).await["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_seat_code_encodes_the_seats_page_on_the_host_asked() {
    use qrcode::QrCode;
    use qrcode::render::svg;
    let app = sqlite().await;
    let r = app.get("/api/public/seats/A3/qr").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "image/svg+xml");
    let served = r.text().await.unwrap();
    // The same encoder, fed the page's address, draws exactly the same code.
    let expected = QrCode::new(app.url("/app/seat/A3").as_bytes())
        .unwrap()
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    assert_eq!(served, expected);
    let other = QrCode::new(app.url("/app/seat/A4").as_bytes())
        .unwrap()
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    assert_ne!(served, other, "each seat has its own code");

    let unknown = app.get("/api/public/seats/Z9/qr").send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(unknown).await["detail"], "Seat 'Z9' does not exist");
    let odd_host = app
        .get("/api/public/seats/A3/qr")
        .header("host", "evil.example/<script>")
        .send()
        .await
        .unwrap();
    assert_eq!(odd_host.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn with_a_public_url_seat_codes_and_feeds_point_there_whatever_the_host() {
    use qrcode::QrCode;
    use qrcode::render::svg;
    let public = [("PICA_PUBLIC_URL", "https://pica.example.com/")];
    let app = TestApp::spawn_with(Backend::Sqlite, &public).await.unwrap();
    let served = app
        .get("/api/public/seats/A3/qr")
        .header("host", "10.0.0.7:8000")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let expected = QrCode::new(b"https://pica.example.com/app/seat/A3")
        .unwrap()
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    assert_eq!(served, expected);
    let token = app.user("ana").await;
    let feed = app
        .as_user(app.post("/api/secure/calendar-feed"), &token)
        .await;
    assert_eq!(feed.status(), StatusCode::CREATED);
    let url = body(feed).await["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("https://pica.example.com/api/public/calendar/pica_cal_"),
        "{url}"
    );
}
