//! Invariant 6: bad input gets a 4xx with a clear `detail`, never a 5xx, and changes
//! nothing.

mod common;

use common::{Backend, TestApp, day, slot};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(bad_input_is_refused_with_a_detail_and_changes_nothing);

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
