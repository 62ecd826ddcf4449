//! Roles and what an admin manages: members are refused every admin endpoint, an admin
//! pages users, takes seats out of service (cancelling what they held), changes book
//! stock through the book actor, adds zones and seats; `pica admin create`.

use pica_actors::ReservationStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, body, slot, status_of};

on_both_backends!(
    members_cannot_use_admin_endpoints,
    admin_manages_zones_seats_and_out_of_service_cancels,
    admins_search_users_by_name_or_email_as_plain_text,
);

#[tokio::test]
async fn admin_cli_creates_and_promotes() {
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
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
    let token = app.access_token("root", "cli-admin-pass-1").await;
    assert_eq!(
        app.get_as(&token, "/api/admin/users").await.status(),
        StatusCode::OK
    );
    let member = app.user("mia").await;
    assert_eq!(
        app.get_as(&member, "/api/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
    let db = app.stop().await;
    let out = run("mia");
    assert!(String::from_utf8_lossy(&out.stdout).contains("mia is now an admin"));
    let out = run("x");
    assert!(!out.status.success(), "invalid usernames are refused");
    drop(db);
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
        let r = app.as_user(request, &member).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(r).await["detail"], "Admin role required");
        let r = call.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(body(r).await["detail"], "Not authenticated");
    }
    // Nothing changed.
    let zones = app.zones().await;
    assert_eq!(zones.as_array().unwrap().len(), 3);
    assert_eq!(zones[1]["name"], "Café");
    app.stop().await;
}

/// The types of the events announced so far on `events`.
fn announced(
    events: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<pica_actors::notifier::Envelope>>,
) -> Vec<String> {
    let mut announced = Vec::new();
    while let Ok(e) = events.try_recv() {
        announced.push(
            serde_json::to_value(&e.event).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    announced
}

async fn admin_manages_zones_seats_and_out_of_service_cancels(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.make_admin("boss").await;
    let ana = app.user("ana").await;

    let users = body(app.get_as(&admin, "/api/admin/users?limit=1").await).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1);
    let next = users["next_cursor"].as_i64().unwrap();
    let path = format!("/api/admin/users?cursor={next}");
    let rest = body(app.get_as(&admin, &path).await).await;
    assert_eq!(rest["items"][0]["username"], "ana");

    // A future reservation on Q3, then the seat goes out of service.
    let id = body(app.reserve(&ana, slot("Q3", 2, 10, 12)).await).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let r = app.set_seat_status(&admin, "q3", "out_of_service").await;
    assert_eq!(r.status(), StatusCode::OK);
    let changed = body(r).await;
    assert_eq!(changed["cancelled_reservations"][0]["id"], id.as_str());
    let all = app.reservations_in_db().await;
    assert_eq!(status_of(&all, &id), Some(ReservationStatus::Cancelled));
    let announced = announced(&mut events);
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
    let stats = body(app.get_as(&admin, "/api/admin/zone-stats").await).await;
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
    assert_eq!(
        app.get_as(&ana, "/api/admin/zone-stats").await.status(),
        StatusCode::FORBIDDEN
    );
    let zones = app.zones().await;
    let q3 = zones[2]["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat_number"] == "Q3")
        .unwrap()
        .clone();
    assert_eq!(q3["state"], "out_of_service");
    let r = app.set_seat_status(&admin, "Q3", "in_service").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.reserve(&ana, slot("Q3", 3, 10, 12)).await.status(),
        StatusCode::CREATED
    );

    // Book stock goes through the book actor: never below what is reserved.
    assert_eq!(
        app.book_reserve(&ana, 1, 2).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.set_book_stock(&admin, 1, 1).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.set_book_stock(&admin, 1, 7).await.status(),
        StatusCode::OK
    );
    let book = body(app.book(1).await).await;
    assert_eq!(
        (
            book["total_copies"].as_u64(),
            book["available_copies"].as_u64()
        ),
        (Some(7), Some(5))
    );
    assert_eq!(
        app.set_book_stock(&admin, 999, 1).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.set_book_stock(&admin, 1, -1).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // New zone with a seat, bookable at once; renaming works; bad input is refused.
    let zone = |id: &str, name: &str, kind: &str| json!({"id": id, "name": name, "kind": kind});
    let r = app
        .create_zone(&admin, zone("roof", "Roof Terrace", "terrace"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app.create_zone(&admin, zone("roof", "Again", "x")).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.create_zone(&admin, zone("../etc", "x", "x")).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.add_seat(&admin, "roof", "R1").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app.add_seat(&admin, "roof", "A1").await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "seat numbers are unique across the space"
    );
    let r = app
        .patch_as(&admin, "/api/admin/zones/roof", &json!({"name": "Rooftop"}))
        .await;
    assert_eq!(body(r).await["name"], "Rooftop");
    assert_eq!(
        app.reserve(&ana, slot("R1", 4, 9, 10)).await.status(),
        StatusCode::CREATED
    );
    let zones: Value = app.zones().await;
    assert_eq!(zones[3]["id"], "roof");
    assert_eq!(zones[3]["name"], "Rooftop");

    // The new zone, its seat and the seat's reservation survive a restart.
    let app = TestApp::spawn_on(app.stop().await, &[]).await;
    let zones: Value = app.zones().await;
    assert_eq!(zones[3]["seats"][0]["seat_number"], "R1");
    let ana = app.access_token("ana", "pw-ana-123").await;
    assert_eq!(
        app.reserve(&ana, slot("R1", 4, 9, 10)).await.status(),
        StatusCode::CONFLICT
    );
    app.stop().await;
}

async fn admins_search_users_by_name_or_email_as_plain_text(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.make_admin("boss").await;
    for name in ["Ana_Lim", "anabel", "budi", "a_b"] {
        app.register(name, "sunny-day-42").await;
    }
    let names = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_string())
            .collect()
    };
    let search = |q: &str| {
        let path = format!("/api/admin/users?q={q}");
        let app = &app;
        let admin = admin.clone();
        async move { app.get_as(&admin, &path).await }
    };
    // Case does not matter; the email is searched too.
    assert_eq!(
        names(body(search("ANA").await).await),
        ["Ana_Lim", "anabel"]
    );
    assert_eq!(names(body(search("budi%40").await).await), ["budi"]);
    // `_` and `%` are plain characters, not patterns.
    assert_eq!(names(body(search("a_").await).await), ["Ana_Lim", "a_b"]);
    assert!(names(body(search("%25").await).await).is_empty());
    // Paged like the full list.
    let first = body(app.get_as(&admin, "/api/admin/users?q=an&limit=1").await).await;
    assert_eq!(names(first.clone()), ["Ana_Lim"]);
    let next = first["next_cursor"].as_i64().unwrap();
    let path = format!("/api/admin/users?q=an&limit=1&cursor={next}");
    assert_eq!(
        names(body(app.get_as(&admin, &path).await).await),
        ["anabel"]
    );
    let long = "x".repeat(65);
    assert_eq!(
        search(&long).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
