//! Invariant 6 (docs/architecture.md): bad input gets a 4xx with a clear `detail`,
//! never a 5xx, and changes nothing.

use crate::helpers::{Backend, TestApp, day, expect_4xx, slot};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    bad_input_is_refused_with_a_detail_and_changes_nothing,
    control_characters_are_refused_before_the_database,
    implausible_emails_are_refused,
    hypers_own_refusals_carry_a_json_detail,
    a_database_out_of_connections_answers_503,
);

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
        let r = app.get_as(&token, path).await;
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

async fn expect_422_naming(response: reqwest::Response, what: &str, field: &str) {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains(field) && detail.contains("control characters"),
        "{what}: detail {detail:?} should name {field:?}"
    );
}

/// A NUL (or any control character) in any text field is refused with 422 before it
/// reaches a database: PostgreSQL would fail on it (500) and SQLite would store it.
async fn control_characters_are_refused_before_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let login = app
        .post("/api/public/login")
        .json(&json!({"username": "x\u{0}", "password": "whatever-1"}))
        .send()
        .await
        .unwrap();
    expect_422_naming(login, "NUL in a login username", "username").await;

    let register = |name: &str, email: &str| {
        app.post("/api/public/register")
            .json(&json!({"username": name, "email": email, "password": "s3cret-pass"}))
            .send()
    };
    let r = register("bob", "bob\u{0}@example.com").await.unwrap();
    expect_422_naming(r, "NUL in an email", "email").await;
    let r = register("bob\u{7}", "bob@example.com").await.unwrap();
    expect_422_naming(r, "BEL in a username", "username").await;
    let r = register("bob", "bob@example.com\u{85}").await.unwrap();
    expect_422_naming(r, "a C1 control in an email", "email").await;
    // Nothing was stored: the clean registration is the first one.
    assert_eq!(
        register("bob", "bob@example.com").await.unwrap().status(),
        StatusCode::CREATED
    );

    let token = app.user("ana").await;
    let r = app
        .post("/api/secure/reservations")
        .bearer_auth(&token)
        .json(&json!({"seat_number": "A1\u{0}", "reservation_date": day(1).to_string()}))
        .send()
        .await
        .unwrap();
    expect_422_naming(r, "NUL in a seat", "seat_number").await;
    let r = app
        .post("/api/secure/reservations")
        .bearer_auth(&token)
        .json(&json!({"seat": "A1", "date": day(1).to_string(), "nested": {"list": ["ok", "tab\there"]}}))
        .send()
        .await
        .unwrap();
    expect_422_naming(r, "a tab deep in a body", "nested.list[1]").await;
    // A literal backslash followed by "u0000" is text, not a NUL: it passes this check
    // (and is refused, or not, on its own merits).
    let r = app.login("x\\u0000", "whatever-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = app
        .get_as(&token, "/api/secure/reservations/abc%00def")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "NUL in a path");
    let detail = crate::helpers::body(r).await["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("control characters"), "{detail}");
    let r = app
        .post("/api/secure/bundles")
        .bearer_auth(&token)
        .json(&json!({"seat": {"seat_number": "A1\u{0}", "reservation_date": day(1).to_string()}, "book": {"book_id": 1, "copies": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        crate::helpers::body(r).await["part"],
        "seat",
        "a bundle's 422 names its part"
    );
    let r = app.get("/api/public/books?q=dune%00").send().await.unwrap();
    expect_422_naming(r, "NUL in a query", "q").await;
    let r = app
        .get("/api/public/drugs?q=para%0Acetamol")
        .send()
        .await
        .unwrap();
    expect_422_naming(r, "a newline in a query", "q").await;

    // Nothing reached the store.
    assert!(app.reservations_in_db().await.is_empty());
}

async fn implausible_emails_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for (i, email) in [
        "plainaddress",
        "@example.com",
        "a@b",
        "a@@example.com",
        "a@b@example.com",
        ".a@example.com",
        "a..b@example.com",
        "a@-example.com",
        "a@example.c",
        "a@example..com",
        "a b@example.com",
        "\"quoted\"@example.com",
        "a@exa_mple.com",
        "a@example.123",
    ]
    .into_iter()
    .enumerate()
    {
        let r = app
            .post("/api/public/register")
            .json(
                &json!({"username": format!("user{i}"), "email": email, "password": "s3cret-pass"}),
            )
            .send()
            .await
            .unwrap();
        let status = expect_4xx(r, email).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{email}");
    }
    for (i, email) in [
        "Ana.Maria+desk@Example.co.id",
        "o'neil@mail.example.com",
        "x@xn--bcher-kva.example",
    ]
    .into_iter()
    .enumerate()
    {
        let r = app
            .post("/api/public/register")
            .json(
                &json!({"username": format!("good{i}"), "email": email, "password": "s3cret-pass"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{email}");
    }
}

/// hyper itself answers an oversized head (431) and an overlong URI (414); those
/// answers carry the same JSON `detail` as every other error.
async fn hypers_own_refusals_carry_a_json_detail(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let big_header = app
        .get("/healthz")
        .header("x-filler", "a".repeat(1 << 20))
        .send()
        .await
        .unwrap();
    assert_eq!(
        big_header.status(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    expect_4xx(big_header, "1 MiB header").await;

    let mut many = app.get("/healthz");
    for i in 0..200 {
        many = many.header(format!("x-h{i}"), "1");
    }
    let many = many.send().await.unwrap();
    assert_eq!(many.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    expect_4xx(many, "200 headers").await;

    // reqwest refuses to send a URI this long, so it goes over a raw socket.
    let target = format!("/api/public/books?q={}", "a".repeat(70 * 1024));
    let answer = raw_exchange(
        app.addr,
        format!("GET {target} HTTP/1.1\r\nhost: pica\r\n\r\n").as_bytes(),
    )
    .await;
    let (head, body) = answer.split_once("\r\n\r\n").expect("a full answer");
    assert!(head.starts_with("HTTP/1.1 414 "), "{head}");
    let body: Value = serde_json::from_str(body).expect("a JSON body");
    assert!(
        body["detail"].as_str().unwrap().contains("too long"),
        "{body}"
    );

    // The server is still fine afterwards.
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// When every database connection is busy past the acquire timeout, the request is
/// answered 503 with `Retry-After` (not 500), and works again once connections free up.
async fn a_database_out_of_connections_answers_503(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("PICA_DB_MAX_CONNECTIONS", "2"),
            ("PICA_DB_ACQUIRE_TIMEOUT_MS", "200"),
        ],
    )
    .await
    else {
        return;
    };
    let register = || {
        app.post("/api/public/register")
            .json(&json!({"username": "carla", "email": "carla@example.com", "password": "s3cret-pass"}))
            .send()
    };
    let held = app.hold_every_db_connection(2).await;
    let r = register().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    expect_5xx_detail(r).await;
    drop(held);
    assert_eq!(register().await.unwrap().status(), StatusCode::CREATED);
}

async fn expect_5xx_detail(response: reqwest::Response) {
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("busy"), "{body}");
}

/// Sends `request` on a fresh connection and reads until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    );
    read.await
        .expect("the server closes after answering")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}
