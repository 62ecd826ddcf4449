//! Seats on the floor plan: an admin moves a seat through its zone actor and the unit of
//! work; the public zones list, the public event stream and a restarted server all show
//! the new spot, and a refused move changes nothing.

use pica_actors::floor_plan::MAX_COORDINATE;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::sse::Stream;
use crate::helpers::{Backend, TestApp, body, eventually, execute};
use pica_actors::ZoneId;

on_both_backends!(
    an_admin_moves_a_seat_and_every_map_sees_it,
    a_refused_move_changes_nothing,
    a_move_while_the_zone_is_down_is_503,
);

/// `seat` as `GET /api/public/zones` lists it.
fn seat_in(zones: &Value, seat: &str) -> Value {
    zones
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|z| z["seats"].as_array().unwrap())
        .find(|s| s["seat_number"] == seat)
        .unwrap_or_else(|| panic!("{seat} is listed"))
        .clone()
}

fn spot_of(zones: &Value, seat: &str) -> (Value, Value) {
    let s = seat_in(zones, seat);
    (s["x"].clone(), s["y"].clone())
}

async fn an_admin_moves_a_seat_and_every_map_sees_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.make_admin("boss").await;
    let before = app.zones().await;
    let mut stream = Stream::open(&app, "/api/public/events?zone=quiet", None, None).await;
    assert_eq!(stream.next().await.kind, "snapshot");

    let r = app.move_seat(&admin, "q3", 420, 310).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        body(r).await,
        json!({"seat_number": "Q3", "zone": "quiet", "x": 420, "y": 310})
    );
    let after = app.zones().await;
    assert_eq!(spot_of(&after, "Q3"), (json!(420), json!(310)));
    // The other seats stay where they were (their default spots).
    assert_eq!(spot_of(&after, "Q1"), spot_of(&before, "Q1"));
    assert_eq!(seat_in(&after, "Q3")["status"], "in_service");

    let moved = stream.next_of("seat_moved").await;
    assert_eq!(moved.data["zone"], "quiet");
    assert_eq!(
        moved.data["seat"],
        json!({"seat_number": "Q3", "x": 420, "y": 310})
    );
    assert!(moved.data["seq"].is_u64() && moved.data["committed_at"].is_string());
    assert_eq!(moved.id, moved.data["seq"].as_u64());

    // The edges of the plan are on it; a second move wins.
    let r = app.move_seat(&admin, "Q3", 0, MAX_COORDINATE as i64).await;
    assert_eq!(r.status(), StatusCode::OK);
    let moved = stream.next_of("seat_moved").await;
    assert_eq!(moved.data["seat"]["y"], MAX_COORDINATE);

    // The spot is stored: a restarted server reads it back.
    drop(stream);
    let db = app.stop().await;
    let app = TestApp::spawn_on(db, &[]).await;
    let zones = app.zones().await;
    assert_eq!(spot_of(&zones, "Q3"), (json!(0), json!(MAX_COORDINATE)));
    assert_eq!(spot_of(&zones, "Q1"), spot_of(&before, "Q1"));
    app.stop().await;
}

async fn a_refused_move_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.make_admin("boss").await;
    let member = app.user("mia").await;
    let before = app.zones().await;

    let r = app.move_seat(&member, "Q3", 10, 10).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(r).await["detail"], "Admin role required");
    let r = app
        .patch("/api/admin/seats/Q3/spot")
        .json(&json!({"x": 10, "y": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(r).await["detail"], "Not authenticated");
    let r = app
        .patch("/api/admin/seats/Q3/spot")
        .bearer_auth("not-a-token")
        .json(&json!({"x": 10, "y": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let off_plan = format!("x and y must be between 0 and {MAX_COORDINATE}");
    for (x, y) in [(-1, 10), (10, -1), (MAX_COORDINATE as i64 + 1, 0)] {
        let r = app.move_seat(&admin, "Q3", x, y).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "({x}, {y})");
        assert_eq!(body(r).await["detail"], off_plan.as_str());
    }
    for bad in [
        json!({"x": "10", "y": 10}),
        json!({"x": 10.5, "y": 10}),
        json!({"x": 10}),
        json!({"x": null, "y": 10}),
        json!({"x": 1e12, "y": 10}),
    ] {
        let r = app.patch_as(&admin, "/api/admin/seats/Q3/spot", &bad).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let detail = body(r).await["detail"].as_str().unwrap().to_string();
        assert!(!detail.is_empty(), "{bad}: {detail}");
    }
    let r = app.move_seat(&admin, "Z9", 10, 10).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["detail"], "Seat 'Z9' does not exist");

    assert_eq!(app.zones().await, before, "nothing moved");
    app.stop().await;
}

async fn a_move_while_the_zone_is_down_is_503(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.make_admin("boss").await;
    let before = app.zones().await;
    // Keep the zone from rebuilding (its table is gone), then crash it.
    let db = app.db.connect().await;
    execute(&db, "ALTER TABLE reservations RENAME TO reservations_away").await;
    let cafe = ZoneId("cafe".into());
    app.state
        .engine
        .zone_actor(&cafe)
        .unwrap()
        .get_cell()
        .kill();
    let engine = app.state.engine.clone();
    eventually(10, "the dead zone leaves the directory", || {
        let engine = engine.clone();
        let cafe = cafe.clone();
        async move { engine.zone_actor(&cafe).is_none() }
    })
    .await;
    let r = app.move_seat(&admin, "C4", 10, 10).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");

    execute(&db, "ALTER TABLE reservations_away RENAME TO reservations").await;
    eventually(20, "the zone is restarted", || async {
        app.get("/readyz").send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert_eq!(spot_of(&app.zones().await, "C4"), spot_of(&before, "C4"));
    let r = app.move_seat(&admin, "C4", 10, 10).await;
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

/// The document states the plan's bounds as the engine checks them.
#[test]
fn the_documented_bounds_are_the_plans() {
    let doc = serde_json::to_value(pica::http::openapi()).unwrap();
    let request = &doc["components"]["schemas"]["SeatSpotRequest"];
    for axis in ["x", "y"] {
        assert_eq!(request["properties"][axis]["minimum"], 0, "{axis}");
        assert_eq!(
            request["properties"][axis]["maximum"], MAX_COORDINATE,
            "{axis}"
        );
    }
    assert_eq!(request["required"], json!(["x", "y"]));
}
