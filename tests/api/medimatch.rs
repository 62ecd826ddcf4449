//! Drug recommendations end to end: the built-in recommender over the shipped catalog,
//! name autocomplete, and the MediMatch partner client against a local stand-in
//! server (wiremock). None of it depends on the database, so SQLite only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::{Backend, TestApp, body};
use chrono::{DateTime, Utc};
use pica::medimatch::Recommendations;
use pica_actors::Clock;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "mm-test-key-0123456789";

/// The success envelope, parsed keeping the order of the ids.
#[derive(Debug, Deserialize)]
struct Envelope {
    success: bool,
    data: Recommendations,
}

fn ids(recs: &Recommendations) -> Vec<String> {
    recs.name.0.iter().map(|(id, _)| id.clone()).collect()
}

async fn spawn() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await.expect("sqlite app")
}

/// A Pica server pointed at `server`, with small limits so failures show quickly.
async fn spawn_partner(server: &MockServer, extra: &[(&str, &str)]) -> TestApp {
    spawn_partner_with_clock(server, extra, Arc::new(pica_actors::SystemClock)).await
}

async fn spawn_partner_with_clock(
    server: &MockServer,
    extra: &[(&str, &str)],
    clock: Arc<dyn Clock>,
) -> TestApp {
    let uri = server.uri();
    let mut settings: Vec<(&str, &str)> = vec![
        ("MEDIMATCH_URL", uri.as_str()),
        ("MEDIMATCH_API_KEY", KEY),
        ("MEDIMATCH_TIMEOUT_MS", "2000"),
        ("MEDIMATCH_CONNECT_TIMEOUT_MS", "500"),
        ("MEDIMATCH_RETRY_BACKOFF_MS", "1"),
        ("MEDIMATCH_CACHE_TTL_MS", "0"),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_with_clock(Backend::Sqlite, &settings, clock)
        .await
        .expect("sqlite app")
}

async fn recommend(app: &TestApp, token: &str, request: Value) -> reqwest::Response {
    app.post_as(token, "/api/secure/recommend-drugs", &request)
        .await
}

async fn requests_seen(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// The service's clock, moved by hand.
struct TestClock(Mutex<DateTime<Utc>>);

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

// ---------------------------------------------------------------- built-in recommender

#[tokio::test]
async fn builtin_recommends_aspirin_products_for_aspirin() {
    let app = spawn().await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 6})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Envelope = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(answer.success);
    let recs = answer.data;
    let top = ids(&recs);
    assert_eq!(top.len(), 6, "top_n respected: {recs:?}");
    assert!(
        !top.contains(&"57".to_string()),
        "the query drug is left out"
    );
    let composition_ids: Vec<&String> = recs
        .combined_composition
        .0
        .iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(top.iter().collect::<Vec<_>>(), composition_ids);
    for (_, composition) in &recs.combined_composition.0 {
        assert!(
            composition.as_str().unwrap().starts_with("Aspirin ("),
            "aspirin products come first: {recs:?}"
        );
    }

    // A smaller top_n is a prefix of the same ranking; case does not matter.
    let r = recommend(&app, &token, json!({"drug_name": "ASPIRIN", "top_n": 3})).await;
    let answer: Envelope = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(ids(&answer.data), top[..3]);
}

#[tokio::test]
async fn builtin_unknown_drug_is_404_in_medimatch_shape() {
    let app = spawn().await;
    let token = app.user("mira").await;
    let r = recommend(
        &app,
        &token,
        json!({"drug_name": "unobtainium", "top_n": 5}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body(r).await,
        json!({
            "success": false,
            "detail": "Drug with name containing 'unobtainium' not found in the dataset."
        })
    );
    // A name is plain text, not a pattern.
    let r = recommend(&app, &token, json!({"drug_name": ".*", "top_n": 5})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn recommend_needs_credentials_and_valid_input() {
    let app = spawn().await;
    let r = app
        .post("/api/secure/recommend-drugs")
        .json(&json!({"drug_name": "aspirin", "top_n": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(r).await["detail"], "Not authenticated");

    let token = app.user("mira").await;
    let long = "x".repeat(101);
    for (request, status) in [
        (json!({"drug_name": "", "top_n": 5}), 422),
        (json!({"drug_name": "   ", "top_n": 5}), 422),
        (json!({"drug_name": long, "top_n": 5}), 422),
        (json!({"drug_name": "aspirin", "top_n": 0}), 422),
        (json!({"drug_name": "aspirin", "top_n": 51}), 422),
        (json!({"drug_name": "aspirin", "top_n": -1}), 422),
        (json!({"drug_name": "aspirin", "top_n": "five"}), 422),
        (json!({"drug_name": 12, "top_n": 5}), 422),
        (json!({"top_n": 5}), 422),
    ] {
        let r = recommend(&app, &token, request.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{request}");
        let b = body(r).await;
        assert_eq!(b["success"], false, "{request}: {b}");
        assert!(
            b["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{request}: {b}"
        );
    }
    let r = app
        .post("/api/secure/recommend-drugs")
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"drug_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b = body(r).await;
    assert_eq!(b["success"], false);
    assert!(
        b["detail"].as_str().unwrap().starts_with("Malformed JSON"),
        "{b}"
    );
    // top_n may be left out (5 by default); 50 is allowed.
    let r = recommend(&app, &token, json!({"drug_name": "paracetamol"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: Envelope = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(answer.data.name.0.len(), 5);
    let r = recommend(
        &app,
        &token,
        json!({"drug_name": "paracetamol", "top_n": 50}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn drug_autocomplete_pages_through_name_matches() {
    let app = spawn().await;
    let r = app
        .get("/api/public/drugs?q=aspirin&limit=4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    let names = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    let first = names(&page);
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|n| n.starts_with("Aspirin")), "{first:?}");
    assert_eq!(page["items"][0]["id"], "57");
    assert_eq!(page["items"][0]["combined_composition"], "Aspirin (100mg)");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();

    let r = app
        .get(&format!(
            "/api/public/drugs?q=ASPIRIN&limit=4&cursor={cursor}"
        ))
        .send()
        .await
        .unwrap();
    let page = body(r).await;
    let second = names(&page);
    // 5 generic aspirin products, then the brand whose name has the word later on.
    assert_eq!(second.len(), 2, "{second:?}");
    assert!(second[0].starts_with("Aspirin"));
    assert_eq!(second[1], "Bayer Aspirin 325 mg Tablet");
    assert!(page["next_cursor"].is_null());

    let r = app.get("/api/public/drugs?q=zzzz").send().await.unwrap();
    assert_eq!(body(r).await, json!({"items": [], "next_cursor": null}));
    let r = app.get("/api/public/drugs").send().await.unwrap();
    assert_eq!(body(r).await["items"].as_array().unwrap().len(), 10);

    for bad in [
        "limit=0",
        "limit=51",
        "limit=-1",
        "cursor=abc",
        "cursor=0",
        "cursor=100000",
    ] {
        let r = app
            .get(&format!("/api/public/drugs?q=a&{bad}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
        assert!(body(r).await["detail"].is_string());
    }
    let long = "a".repeat(101);
    let r = app
        .get(&format!("/api/public/drugs?q={long}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

// ---------------------------------------------------------------- partner client

/// A MediMatch answer whose ids are not in sorted order, to see the order kept.
const PARTNER_ANSWER: &str = r#"{"success": true, "data": {"name": {"912": "Aspro 300mg", "37": "Ecosprin 75", "104": "Loprin 150"}, "combined_composition": {"912": "Aspirin (300mg)", "37": "Aspirin (75mg)", "104": "Aspirin (150mg)"}}}"#;

#[tokio::test]
async fn partner_success_is_forwarded_with_our_key_and_cached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/recommend"))
        .and(header("api-key", KEY))
        .and(body_json(json!({"drug_name": "aspirin", "top_n": 3})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PARTNER_ANSWER, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    let base = format!("{}/v1/", server.uri());
    let app = spawn_partner(
        &server,
        &[
            ("MEDIMATCH_URL", base.as_str()),
            ("MEDIMATCH_CACHE_TTL_MS", "60000"),
        ],
    )
    .await;
    let token = app.user("mira").await;

    let r = recommend(&app, &token, json!({"drug_name": " aspirin ", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(!text.contains(KEY));
    let ours: Envelope = serde_json::from_str(&text).unwrap();
    let theirs: Envelope = serde_json::from_str(PARTNER_ANSWER).unwrap();
    assert!(ours.success);
    assert_eq!(ours.data, theirs.data, "forwarded as is, in order");
    assert_eq!(ids(&ours.data), ["912", "37", "104"]);

    // The same question again (any case) is answered from the cache: MediMatch saw
    // one request (`expect(1)` is checked when the server drops).
    let r = recommend(&app, &token, json!({"drug_name": "Aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Envelope = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(again.data, theirs.data);
    assert_eq!(requests_seen(&server).await, 1);
}

#[tokio::test]
async fn partner_404_passes_its_detail_through() {
    let server = MockServer::start().await;
    let detail = "Drug with name containing 'zzz' not found in the dataset.";
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"success": false, "detail": detail})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let app = spawn_partner(&server, &[]).await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "zzz", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await, json!({"success": false, "detail": detail}));
}

#[tokio::test]
async fn partner_403_is_502_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"detail": "Invalid API key"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let app = spawn_partner(&server, &[("MEDIMATCH_RETRIES", "3")]).await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let b = body(r).await;
    assert_eq!(b["detail"], "MediMatch rejected our credentials");
    assert!(!b.to_string().contains(KEY));
}

#[tokio::test]
async fn slow_partner_is_504() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(PARTNER_ANSWER, "application/json")
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let app = spawn_partner(&server, &[("MEDIMATCH_TIMEOUT_MS", "300")]).await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body(r).await,
        json!({"success": false, "detail": "MediMatch did not answer in time"})
    );
    assert_eq!(requests_seen(&server).await, 1, "a timeout is not retried");
}

#[tokio::test]
async fn refused_connection_is_503_with_retry_after() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = MockServer::start().await;
    let url = format!("http://127.0.0.1:{port}");
    let app = spawn_partner(&server, &[("MEDIMATCH_URL", url.as_str())]).await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let b = body(r).await;
    assert_eq!(b["success"], false);
    assert_eq!(b["detail"], "MediMatch is unreachable; try again later");
}

#[tokio::test]
async fn circuit_opens_after_repeated_failures_and_recovers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let app = spawn_partner_with_clock(
        &server,
        &[
            ("MEDIMATCH_BREAKER_THRESHOLD", "3"),
            ("MEDIMATCH_BREAKER_OPEN_MS", "30000"),
        ],
        clock.clone(),
    )
    .await;
    let token = app.user("mira").await;
    let ask = || recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3}));

    for _ in 0..3 {
        let r = ask().await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(body(r).await["detail"], "MediMatch failed (HTTP 500)");
    }
    assert_eq!(requests_seen(&server).await, 3, "a 500 is not retried");

    // Open: answered at once, MediMatch is left alone.
    let r = ask().await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "30");
    assert_eq!(requests_seen(&server).await, 3);

    // MediMatch recovers, but the circuit stays open until its time is up.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PARTNER_ANSWER, "application/json"))
        .mount(&server)
        .await;
    clock.advance(Duration::from_secs(20));
    let r = ask().await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "10");
    assert_eq!(requests_seen(&server).await, 0);

    // Time is up: a probe goes through, succeeds, and the circuit closes.
    clock.advance(Duration::from_secs(10));
    for _ in 0..2 {
        let r = ask().await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn a_failed_probe_opens_the_circuit_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let app = spawn_partner_with_clock(
        &server,
        &[
            ("MEDIMATCH_RETRIES", "0"),
            ("MEDIMATCH_BREAKER_THRESHOLD", "1"),
            ("MEDIMATCH_BREAKER_OPEN_MS", "5000"),
        ],
        clock.clone(),
    )
    .await;
    let token = app.user("mira").await;
    let ask = || recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3}));
    assert_eq!(ask().await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(ask().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    clock.advance(Duration::from_secs(5));
    assert_eq!(
        ask().await.status(),
        StatusCode::BAD_GATEWAY,
        "the probe fails"
    );
    let r = ask().await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    assert_eq!(requests_seen(&server).await, 2);
}

#[tokio::test]
async fn transient_failures_are_retried_others_are_not() {
    let server = MockServer::start().await;
    // First a 503, then a good answer.
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(PARTNER_ANSWER, "application/json"))
        .mount(&server)
        .await;
    let app = spawn_partner(&server, &[("MEDIMATCH_RETRIES", "2")]).await;
    let token = app.user("mira").await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(requests_seen(&server).await, 2, "one retry after the 503");

    // Always 502: the first try and two retries, then a clean 502.
    server.reset().await;
    Mock::given(method("POST"))
        .and(path("/recommend"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(requests_seen(&server).await, 3);

    // A 404 or a 500 is an answer, not a hiccup: no retry.
    for status in [404, 500] {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/recommend"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_json(json!({"success": false, "detail": "nope"})),
            )
            .mount(&server)
            .await;
        let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
        assert_eq!(r.status().as_u16(), if status == 404 { 404 } else { 502 });
        assert_eq!(requests_seen(&server).await, 1, "HTTP {status}");
    }
}

#[tokio::test]
async fn unusable_partner_answers_fail_cleanly() {
    let server = MockServer::start().await;
    let app = spawn_partner(&server, &[("MEDIMATCH_BREAKER_THRESHOLD", "100")]).await;
    let token = app.user("mira").await;
    let cases: [(ResponseTemplate, u16); 5] = [
        (
            ResponseTemplate::new(200).set_body_string("<html>oops</html>"),
            502,
        ),
        (
            ResponseTemplate::new(200).set_body_json(json!({"success": false, "data": {}})),
            502,
        ),
        (ResponseTemplate::new(404).set_body_string("Not Found"), 502),
        (ResponseTemplate::new(418), 502),
        (
            ResponseTemplate::new(429).insert_header("retry-after", "7"),
            503,
        ),
    ];
    for (template, expected) in cases {
        server.reset().await;
        Mock::given(method("POST"))
            .and(path("/recommend"))
            .respond_with(template)
            .mount(&server)
            .await;
        let r = recommend(&app, &token, json!({"drug_name": "aspirin", "top_n": 3})).await;
        assert_eq!(r.status().as_u16(), expected);
        if expected == 503 {
            assert_eq!(r.headers()["retry-after"], "7");
        }
        let b = body(r).await;
        assert_eq!(b["success"], false);
        assert!(
            b["detail"]
                .as_str()
                .is_some_and(|d| d.contains("MediMatch")),
            "{b}"
        );
    }
}
