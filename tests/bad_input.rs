//! Invariant 6: bad input gets a 4xx with a clear `detail`, never a 5xx, and changes
//! nothing.

mod common;

use common::{Backend, TestApp, day, slot};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    bad_input_is_refused_with_a_detail_and_changes_nothing,
    the_server_reads_input_as_the_openapi_document_describes_it,
);

async fn expect_4xx(response: reqwest::Response, what: &str) -> StatusCode {
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

async fn bad_input_is_refused_with_a_detail_and_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let token = app.user("ana").await;
    let tomorrow = day(1).to_string();
    let far = day(400).to_string();
    let past = day(-1).to_string();

    let bodies: Vec<(&str, Value, StatusCode)> = vec![
        ("empty object", json!({}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "seat as number",
            json!({"seat_number": 1, "reservation_date": tomorrow}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "date as number",
            json!({"seat_number": "A1", "reservation_date": 20301010}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "array body",
            json!([1, 2]),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "no date at all",
            json!({"seat_number": "A1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "both forms",
            json!({"seat_number": "A1", "reservation_date": tomorrow, "start": "x", "end": "y"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "start without end",
            json!({"seat_number": "A1", "start": format!("{tomorrow}T09:00:00+07:00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "impossible date",
            json!({"seat_number": "A1", "reservation_date": "2030-02-30"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "wrong date format",
            json!({"seat_number": "A1", "reservation_date": "01/02/2030"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "past date",
            json!({"seat_number": "A1", "reservation_date": past}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "beyond horizon",
            json!({"seat_number": "A1", "reservation_date": far}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown seat",
            json!({"seat_number": "Z99", "reservation_date": tomorrow}),
            StatusCode::NOT_FOUND,
        ),
        (
            "seat with path tricks",
            json!({"seat_number": "../A1", "reservation_date": tomorrow}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "seat with SQL",
            json!({"seat_number": "A1'; DROP TABLE reservations;--", "reservation_date": tomorrow}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "huge seat",
            json!({"seat_number": "A".repeat(10_000), "reservation_date": tomorrow}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "end before start",
            slot("A1", 1, 12, 10),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "off-slot start",
            json!({"seat_number": "A1", "start": format!("{tomorrow}T09:10:00+07:00"), "end": format!("{tomorrow}T10:00:00+07:00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "outside opening hours",
            slot("A1", 1, 6, 9),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "no offset",
            json!({"seat_number": "A1", "start": format!("{tomorrow}T09:00:00"), "end": format!("{tomorrow}T10:00:00")}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (what, body, expected) in bodies {
        let r = app.reserve(&token, body).await;
        assert_eq!(expect_4xx(r, what).await, expected, "{what}");
    }

    let raw: Vec<(&str, Vec<u8>, &str, StatusCode)> = vec![
        (
            "malformed JSON",
            b"{\"seat_number\": ".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "invalid UTF-8",
            b"{\"seat_number\": \"A\xff\xfe1\"}".to_vec(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON content type",
            b"seat_number=A1".to_vec(),
            "application/x-www-form-urlencoded",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "huge body",
            vec![b' '; 128 * 1024],
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, bytes, content_type, expected) in raw {
        let r = app
            .post("/api/secure/reservations")
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(expect_4xx(r, what).await, expected, "{what}");
    }

    let r = app
        .post("/api/secure/reservations")
        .bearer_auth(&token)
        .header("Idempotency-Key", "")
        .json(&slot("A1", 1, 9, 10))
        .send()
        .await
        .unwrap();
    expect_4xx(r, "empty idempotency key").await;

    for (what, path) in [
        ("garbage id", "/api/secure/reservations/not-a-uuid"),
        (
            "traversal id",
            "/api/secure/reservations/..%2F..%2Fetc%2Fpasswd",
        ),
        (
            "bad status filter",
            "/api/secure/my-reservations?status=everything",
        ),
        ("zero limit", "/api/secure/my-reservations?limit=0"),
        ("huge limit", "/api/secure/my-reservations?limit=100000"),
        ("non-numeric limit", "/api/secure/my-reservations?limit=ten"),
        ("bad cursor", "/api/secure/my-reservations?cursor=%00%01"),
        ("unknown route", "/api/secure/nothing-here"),
    ] {
        let r = app.get(path).bearer_auth(&token).send().await.unwrap();
        expect_4xx(r, what).await;
    }
    let r = app
        .delete("/api/secure/reservations/..%2F1")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_4xx(r, "delete traversal").await;

    for (what, path) in [
        (
            "unknown zone",
            format!("/api/public/zones/attic/availability?date={tomorrow}"),
        ),
        (
            "traversal zone",
            format!("/api/public/zones/..%2F..%2F/availability?date={tomorrow}"),
        ),
        (
            "missing date",
            "/api/public/zones/cafe/availability".to_string(),
        ),
        (
            "bad date",
            "/api/public/zones/cafe/availability?date=tomorrow".to_string(),
        ),
        (
            "past date",
            format!("/api/public/zones/cafe/availability?date={past}"),
        ),
    ] {
        let r = app.get(&path).send().await.unwrap();
        expect_4xx(r, what).await;
    }

    for (what, body) in [
        (
            "short password",
            json!({"username": "bob", "email": "bob@example.com", "password": "a1"}),
        ),
        (
            "bad email",
            json!({"username": "bob", "email": "bob", "password": "long-enough-1"}),
        ),
        (
            "bad username",
            json!({"username": "b o b", "email": "bob@example.com", "password": "long-enough-1"}),
        ),
        (
            "missing password",
            json!({"username": "bob", "email": "bob@example.com"}),
        ),
    ] {
        let r = app
            .post("/api/public/register")
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_4xx(r, what).await;
    }
    let r = app.put("/api/public/register").send().await.unwrap();
    assert_eq!(
        expect_4xx(r, "wrong method").await,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // Nothing was stored, and the seat is still free.
    assert!(app.reservations_in_db().await.is_empty());
    assert_eq!(
        app.reserve(&token, slot("A1", 1, 9, 10)).await.status(),
        StatusCode::CREATED
    );
    app.stop().await;
}

async fn admin_token(app: &TestApp, name: &str) -> String {
    let db = app.db.connect().await;
    pica::admin::create_admin(&db, name, None, || Ok("admin-pass-123".to_string()))
        .await
        .unwrap();
    db.close().await;
    let r = app
        .post("/api/public/login")
        .json(&json!({"username": name, "password": "admin-pass-123"}))
        .send()
        .await
        .unwrap();
    common::body(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// What the OpenAPI document allows is accepted, and what it does not is refused with
/// a status it lists: an empty `cursor=` is no cursor, integers may be written `2.0`
/// (JSON Schema's integers), `null` is refused where a field is not nullable, a
/// malformed query string is a 400, and a bundle's 422 always names its part.
async fn the_server_reads_input_as_the_openapi_document_describes_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let admin = admin_token(&app, "boss").await;
    let get = |path: &str, token: &str| app.get(path).bearer_auth(token).send();

    // Empty cursor = first page, on every listing.
    for path in [
        "/api/secure/my-reservations?cursor=",
        "/api/secure/waitlist?cursor=",
        "/api/secure/my-book-reservations?cursor=",
        "/api/public/books?cursor=",
        "/api/public/drugs?q=a&cursor=",
        "/api/admin/users?cursor=",
    ] {
        let r = get(path, &admin).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let first = common::body(get("/api/public/books?limit=2", &ana).await.unwrap()).await;
    let empty = common::body(
        get("/api/public/books?limit=2&cursor=", &ana)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first, empty);

    // Integral floats are integers, in query strings and in JSON bodies.
    let page = common::body(get("/api/public/books?limit=2.0", &ana).await.unwrap()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let r = get("/api/public/books?limit=2.5", &ana).await.unwrap();
    assert_eq!(expect_4xx(r, "limit=2.5").await, StatusCode::BAD_REQUEST);
    let book = page["items"][0]["id"].as_i64().unwrap();
    let r = app
        .post("/api/secure/book-reservations")
        .bearer_auth(&ana)
        .json(&json!({"book_id": book as f64, "copies": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let reserved = common::body(r).await;
    assert_eq!(
        (reserved["book_id"].as_i64(), reserved["copies"].as_i64()),
        (Some(book), Some(1))
    );
    let r = app
        .post("/api/secure/recommend-drugs")
        .bearer_auth(&ana)
        .json(&json!({"drug_name": "aspirin", "top_n": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let names = common::body(r).await["data"]["name"]
        .as_object()
        .unwrap()
        .len();
    assert!((1..=2).contains(&names), "{names} results for top_n 2.0");
    let r = app
        .post("/api/secure/book-reservations")
        .bearer_auth(&ana)
        .json(&json!({"book_id": book, "copies": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_4xx(r, "copies 1.5").await,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // `null` where the schema does not allow it.
    let nulls: Vec<(&str, &str, Value)> = vec![
        ("POST", "/api/secure/api-keys", json!({"name": null})),
        ("POST", "/api/secure/api-keys", json!({"expires_at": null})),
        ("PATCH", "/api/admin/zones/quiet", json!({"kind": null})),
        ("PATCH", "/api/admin/zones/quiet", json!({"name": null})),
        (
            "POST",
            "/api/secure/recommend-drugs",
            json!({"drug_name": "aspirin", "top_n": null}),
        ),
        (
            "POST",
            "/api/secure/book-reservations",
            json!({"book_id": book, "copies": null}),
        ),
        (
            "POST",
            "/api/secure/reservations",
            json!({"seat_number": "A1", "reservation_date": null, "start": "x", "end": "y"}),
        ),
    ];
    for (method, path, payload) in nulls {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&admin)
            .json(&payload)
            .send()
            .await
            .unwrap();
        let what = format!("{path} {payload}");
        assert_eq!(
            expect_4xx(r, &what).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}"
        );
    }
    let zones = common::body(app.get("/api/public/zones").send().await.unwrap()).await;
    let quiet = zones
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["id"] == "quiet")
        .unwrap();
    assert!(
        quiet["kind"].is_string() && quiet["name"].is_string(),
        "{quiet}"
    );
    let keys = common::body(get("/api/secure/api-keys", &admin).await.unwrap()).await;
    assert_eq!(
        keys["items"].as_array().unwrap().len(),
        0,
        "nothing was created: {keys}"
    );

    // A malformed query string is a 400 with a detail (documented as such).
    for path in [
        "/api/secure/my-reservations?limit=many",
        "/api/public/books?limit=-1",
        "/api/admin/users?cursor=abc",
    ] {
        let r = get(path, &admin).await.unwrap();
        assert_eq!(expect_4xx(r, path).await, StatusCode::BAD_REQUEST, "{path}");
    }

    // A bundle's 422 names the part, also when the part cannot be read at all.
    let seat = json!({"seat_number": "Q3", "reservation_date": day(1).to_string()});
    let bundles: Vec<(Value, &str)> = vec![
        (json!({}), "seat"),
        (json!([1]), "seat"),
        (json!({"seat": 5, "book": {"book_id": book}}), "seat"),
        (json!({"seat": seat, "book": {"book_id": "one"}}), "book"),
        (json!({"seat": seat}), "book"),
        (
            json!({"seat": seat, "book": {"book_id": book, "copies": 0}}),
            "book",
        ),
        (
            json!({"seat": seat, "book": {"book_id": book, "copies": null}}),
            "book",
        ),
    ];
    for (payload, part) in bundles {
        let r = app
            .post("/api/secure/bundles")
            .bearer_auth(&ana)
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
        let answer = common::body(r).await;
        assert_eq!(answer["part"], part, "{payload}: {answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let mine = common::body(get("/api/secure/my-reservations", &ana).await.unwrap()).await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        0,
        "no bundle booked a seat"
    );
    app.stop().await;
}
