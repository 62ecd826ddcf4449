//! Input read as the OpenAPI document describes it: what the document allows is
//! accepted, what it does not is refused with a status it lists (invariant 6 in
//! docs/architecture.md).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, day, expect_4xx};

on_both_backends!(the_server_reads_input_as_the_openapi_document_describes_it);

/// What the OpenAPI document allows is accepted, and what it does not is refused with
/// a status it lists: an empty `cursor=` is no cursor, integers may be written `2.0`
/// (JSON Schema's integers), `null` is refused where a field is not nullable, a
/// malformed query string is a 400, and a bundle's 422 always names its part.
async fn the_server_reads_input_as_the_openapi_document_describes_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let admin = app.make_admin("boss").await;
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
    let first = crate::helpers::body(get("/api/public/books?limit=2", &ana).await.unwrap()).await;
    let empty = crate::helpers::body(
        get("/api/public/books?limit=2&cursor=", &ana)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first, empty);

    // Integral floats are integers, in query strings and in JSON bodies.
    let page = crate::helpers::body(get("/api/public/books?limit=2.0", &ana).await.unwrap()).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let r = get("/api/public/books?limit=2.5", &ana).await.unwrap();
    assert_eq!(expect_4xx(r, "limit=2.5").await, StatusCode::BAD_REQUEST);
    let book = page["items"][0]["id"].as_i64().unwrap();
    let r = app
        .post_as(
            &ana,
            "/api/secure/book-reservations",
            &json!({"book_id": book as f64, "copies": 1.0}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let reserved = crate::helpers::body(r).await;
    assert_eq!(
        (reserved["book_id"].as_i64(), reserved["copies"].as_i64()),
        (Some(book), Some(1))
    );
    let r = app
        .post_as(
            &ana,
            "/api/secure/recommend-drugs",
            &json!({"drug_name": "aspirin", "top_n": 2.0}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let names = crate::helpers::body(r).await["data"]["name"]
        .as_object()
        .unwrap()
        .len();
    assert!((1..=2).contains(&names), "{names} results for top_n 2.0");
    let r = app
        .post_as(
            &ana,
            "/api/secure/book-reservations",
            &json!({"book_id": book, "copies": 1.5}),
        )
        .await;
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
    let zones = app.zones().await;
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
    let keys = crate::helpers::body(get("/api/secure/api-keys", &admin).await.unwrap()).await;
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
        let r = app.post_as(&ana, "/api/secure/bundles", &payload).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{payload}");
        let answer = crate::helpers::body(r).await;
        assert_eq!(answer["part"], part, "{payload}: {answer}");
        assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    let mine = crate::helpers::body(get("/api/secure/my-reservations", &ana).await.unwrap()).await;
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        0,
        "no bundle booked a seat"
    );
    app.stop().await;
}
