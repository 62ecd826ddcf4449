//! The HTTP API end to end, on SQLite and PostgreSQL.

use crate::helpers::{Backend, TestApp, body, day, slot, status_of};
use reqwest::StatusCode;
use serde_json::json;

on_both_backends!(
    welcome_register_login_and_secure_index,
    reserve_conflict_cancel_and_reserve_again,
    whole_day_form_and_availability,
    my_reservations_pages_and_filters,
    another_users_reservation_is_not_found,
    one_user_cannot_overlap_across_zones_or_exceed_the_limit,
    idempotency_key_returns_the_first_result,
);

async fn welcome_register_login_and_secure_index(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    assert_eq!(
        body(app.get("/").send().await.unwrap()).await["message"],
        "Welcome to the Coworking Space API!"
    );
    assert_eq!(
        body(app.get("/api/public/").send().await.unwrap()).await["message"],
        "Welcome to Coworking Space API"
    );

    let register =
        json!({"username": "ana", "email": "ana@example.com", "password": "sunny-day-42"});
    let r = app
        .post("/api/public/register")
        .json(&register)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        body(r).await,
        json!({"message": "User registered successfully", "username": "ana"})
    );
    let r = app
        .post("/api/public/register")
        .json(&register)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let r = app.login("ana", "wrong-pass-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["detail"], "Invalid username or password");
    let r = app.login("nobody", "wrong-pass-1").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = app.login("ana", "sunny-day-42").await;
    assert_eq!(r.status(), StatusCode::OK);
    let login = body(r).await;
    assert_eq!(login["token_type"], "bearer");
    assert!(login["expires_in"].as_u64().unwrap() > 0);
    let token = login["access_token"].as_str().unwrap();

    let r = app.get_as(token, "/api/secure/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let secure = body(r).await;
    assert_eq!(secure["message"], "Secure endpoint accessed successfully!");
    assert_eq!(secure["user"]["username"], "ana");

    // No credentials: 403. Bad credentials: 401 with WWW-Authenticate.
    let r = app.get("/api/secure/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(r).await["detail"], "Not authenticated");
    let tampered = format!("{}x", token);
    for request in [
        app.get("/api/secure/").bearer_auth(&tampered),
        app.get("/api/secure/").header("authorization", "Basic abc"),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(body(r).await["detail"], "Invalid or expired token");
    }
    let r = app
        .get("/api/secure/")
        .header("api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(r).await["detail"], "Missing or invalid API key");
    app.stop().await;
}

async fn reserve_conflict_cancel_and_reserve_again(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;

    let r = app.reserve(&ana, slot("A1", 2, 9, 12)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = body(r).await;
    assert_eq!(first["status"], "confirmed");
    assert_eq!(first["seat_number"], "A1");
    assert_eq!(first["zone"], "coworking");
    let id = first["id"].as_str().unwrap().to_string();

    // Overlapping: 409 with the conflicting interval. Touching: fine.
    let r = app.reserve(&ben, slot("A1", 2, 11, 13)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let conflict = body(r).await;
    assert_eq!(conflict["conflict"]["start"], first["start"]);
    assert_eq!(conflict["conflict"]["end"], first["end"]);
    let r = app.reserve(&ben, slot("A1", 2, 12, 13)).await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = app.cancel(&ana, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "cancelled");
    let r = app.cancel(&ana, &id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let r = app.reserve(&ben, slot("A1", 2, 9, 11)).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "the cancelled interval is free again"
    );

    let all = app.reservations_in_db().await;
    assert_eq!(all.len(), 3);
    assert_eq!(
        status_of(&all, &id),
        Some(pica_actors::ReservationStatus::Cancelled)
    );
    crate::helpers::audit(&all);
    app.stop().await;
}

async fn whole_day_form_and_availability(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let date = day(3).to_string();
    let r = app
        .reserve(&ana, json!({"seat_number": "q2", "reservation_date": date}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made = body(r).await;
    assert_eq!(made["seat_number"], "Q2");
    assert_eq!(made["start"], format!("{date}T08:00:00+07:00"));
    assert_eq!(made["end"], format!("{date}T22:00:00+07:00"));

    let r = app
        .get(&format!("/api/public/zones/quiet/availability?date={date}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let availability = body(r).await;
    let seats = availability["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 8);
    assert_eq!(seats[0]["seat_number"], "Q1");
    assert_eq!(seats[0]["free"].as_array().unwrap().len(), 1);
    assert_eq!(seats[1]["seat_number"], "Q2");
    assert!(
        seats[1]["free"].as_array().unwrap().is_empty(),
        "Q2 is taken all day"
    );

    let zones = app.zones().await;
    let ids: Vec<&str> = zones
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["coworking", "cafe", "quiet"]);
    let coworking = zones[0]["seats"].as_array().unwrap();
    assert_eq!(coworking.len(), 20);
    assert_eq!(coworking[9]["seat_number"], "A10");
    assert!(coworking.iter().all(|s| s["state"] == "available"));
    app.stop().await;
}

async fn my_reservations_pages_and_filters(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "10")]).await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let mut ids = Vec::new();
    let mut created = Vec::new();
    for (i, seat) in ["A1", "A2", "C1", "C2", "Q1"].iter().enumerate() {
        let r = app.reserve(&ana, slot(seat, 1 + i as i64, 9, 10)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let reservation = body(r).await;
        ids.push(reservation["id"].as_str().unwrap().to_string());
        created.push(reservation);
    }
    app.reserve(&ben, slot("A3", 1, 9, 10)).await;
    let r = app.cancel(&ana, &ids[0]).await;
    assert_eq!(r.status(), StatusCode::OK);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/secure/my-reservations?limit=2".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = body(app.get_as(&ana, &path).await).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse(); // newest first
    assert_eq!(
        seen, expected,
        "pages cover my reservations exactly once, newest first"
    );
    // Every field reads back as the booking answered it (zone, seat, times, status).
    let all = body(app.get_as(&ana, "/api/secure/my-reservations").await).await;
    let listed = all["items"].as_array().unwrap();
    assert_eq!(listed.len(), created.len());
    // Oldest first, like `created`; the first was cancelled since, so its status differs.
    for (listed, booked) in listed.iter().rev().zip(&created).skip(1) {
        assert_eq!(listed, booked, "listed as booked");
    }

    let cancelled = body(
        app.get_as(&ana, "/api/secure/my-reservations?status=cancelled")
            .await,
    )
    .await;
    let items = cancelled["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], ids[0].as_str());
    app.stop().await;
}

async fn another_users_reservation_is_not_found(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let eve = app.user("eve").await;
    let id = body(app.reserve(&ana, slot("C3", 1, 10, 12)).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let path = format!("/api/secure/reservations/{id}");
    let r = app.get_as(&ana, &path).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get_as(&eve, &path).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let not_found = body(r).await;
    let r = app.delete(&path).bearer_auth(&eve).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Indistinguishable from an id that does not exist.
    let r = app
        .get_as(
            &eve,
            &format!("/api/secure/reservations/{}", uuid::Uuid::now_v7()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await, not_found);
    let mine = body(app.get_as(&eve, "/api/secure/my-reservations").await).await;
    assert!(mine["items"].as_array().unwrap().is_empty());

    let all = app.reservations_in_db().await;
    assert_eq!(
        status_of(&all, &id),
        Some(pica_actors::ReservationStatus::Confirmed)
    );
    app.stop().await;
}

async fn one_user_cannot_overlap_across_zones_or_exceed_the_limit(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    assert_eq!(
        app.reserve(&ana, slot("A1", 1, 10, 12)).await.status(),
        StatusCode::CREATED
    );
    let r = app.reserve(&ana, slot("C1", 1, 11, 13)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("overlapping")
    );
    assert_eq!(
        app.reserve(&ana, slot("C1", 1, 12, 13)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.reserve(&ana, slot("Q1", 2, 12, 13)).await.status(),
        StatusCode::CREATED
    );
    // The default limit is 3 active reservations.
    let r = app.reserve(&ana, slot("Q1", 3, 12, 13)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("maximum of 3")
    );
    let all = app.reservations_in_db().await;
    assert_eq!(all.len(), 3);
    crate::helpers::audit(&all);
    app.stop().await;
}

async fn idempotency_key_returns_the_first_result(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let send = || {
        app.post("/api/secure/reservations")
            .bearer_auth(&ana)
            .header("Idempotency-Key", "retry-me-1")
            .json(&slot("A5", 1, 14, 16))
            .send()
    };
    // Ten concurrent retries of one request: one reservation, the same answer to all.
    let answers = futures::future::join_all((0..10).map(|_| send())).await;
    let mut ids = Vec::new();
    for r in answers {
        let r = r.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(body(r).await["id"].as_str().unwrap().to_string());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the first result");
    let r = send().await.unwrap();
    assert_eq!(body(r).await["id"], ids[0].as_str());
    assert_eq!(app.reservations_in_db().await.len(), 1);
    app.stop().await;
}
