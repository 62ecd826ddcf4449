//! The reservation lifecycle over real HTTP with a moved clock: check-in window,
//! no-shows, completion, check-out, and the waitlist with its holds
//! ([events.md](../../docs/events.md#tests)).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use pica_actors::{ManualClock, ReservationStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::seats::series_body;
use crate::helpers::sse::{Stream, id_of};
use crate::helpers::{Backend, TestApp, audit, body, day, eventually, slot, status_of};

on_both_backends!(
    check_in_window_no_show_and_completion_with_a_moved_clock,
    check_out_cuts_the_reservation_and_frees_the_rest_for_a_waiter,
    a_waiter_gets_the_freed_seat_first_and_an_unconfirmed_hold_passes_on,
    holds_and_the_waitlist_survive_a_restart,
    a_restart_rebuilds_every_kind_of_reservation_exactly,
    the_scheduler_releases_no_shows_on_its_own,
);

/// 07:00 local time (Asia/Jakarta, UTC+7) on day `n`, as the test clock's start.
fn local_time(n: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let naive = day(n).and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap());
    chrono_tz::Asia::Jakarta
        .from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// Sweeps only when a test asks; tokens (stamped by the same clock) outlive the moves.
const CLOCKED: &[(&str, &str)] = &[
    ("PICA_SWEEP_SECONDS", "0"),
    ("PICA_MAX_ACTIVE_RESERVATIONS", "10"),
    ("PICA_TOKEN_TTL_SECONDS", "172800"),
];

/// A server whose clock is at 07:00 tomorrow and only moves when told; the scheduler
/// is off, so sweeps happen exactly when the test asks.
async fn clocked(backend: Backend) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(local_time(1, 7, 0)));
    let app = TestApp::spawn_with_clock(backend, CLOCKED, clock.clone()).await?;
    Some((app, clock))
}

async fn post(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.post(path).bearer_auth(token).send().await.unwrap()
}

async fn live_state(app: &TestApp, seat: &str) -> String {
    let zones = app.zones().await;
    zones
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|z| z["seats"].as_array().unwrap().iter())
        .find(|s| s["seat_number"] == seat)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn check_in_window_no_show_and_completion_with_a_moved_clock(backend: Backend) {
    let Some((app, clock)) = clocked(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let q1 = id_of(&app.reserved(&ana, slot("Q1", 1, 9, 11)).await);
    let q2 = id_of(&app.reserved(&ben, slot("Q2", 1, 9, 11)).await);
    let mut stream = Stream::open(&app, "/api/public/events?zone=quiet", None, None).await;
    stream.next_of("snapshot").await;
    let check_in = |id: &str| format!("/api/secure/reservations/{id}/check-in");

    // Too early: check-in opens 15 minutes before the start.
    clock.set(local_time(1, 8, 44));
    let r = post(&app, &ben, &check_in(&q2)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("not open yet")
    );
    clock.set(local_time(1, 8, 50));
    // Only the owner can check in: anyone else gets 404, as for a missing id.
    let r = post(&app, &ana, &check_in(&q2)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(
        &app,
        &ana,
        &check_in("00000000-0000-0000-0000-000000000000"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(&app, &ana, &check_in("../../etc")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(&app, &ben, &check_in(&q2)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "checked_in");
    let ev = stream.next().await;
    assert_eq!(ev.data["reservation"]["status"], "checked_in");
    let r = post(&app, &ben, &check_in(&q2)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "checked in twice");

    // The live map at 09:05: Q1 reserved, Q2 occupied.
    clock.set(local_time(1, 9, 5));
    assert_eq!(live_state(&app, "Q1").await, "reserved");
    assert_eq!(live_state(&app, "Q2").await, "occupied");

    // 09:14: nothing is due yet.
    clock.set(local_time(1, 9, 14));
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.transitions, 0);
    // 09:15: Ana never came: no-show, her seat is released and announced.
    clock.set(local_time(1, 9, 15));
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.transitions, 1);
    let all = app.reservations_in_db().await;
    assert_eq!(status_of(&all, &q1), Some(ReservationStatus::NoShow));
    assert_eq!(status_of(&all, &q2), Some(ReservationStatus::CheckedIn));
    let ev = stream.next().await;
    assert_eq!(ev.kind, "reservation_updated");
    assert_eq!(ev.data["reservation"]["id"], q1.as_str());
    assert_eq!(ev.data["reservation"]["status"], "no_show");
    assert_eq!(live_state(&app, "Q1").await, "available");
    let r = post(&app, &ana, &check_in(&q1)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "too late");
    // The released seat can be booked again, and Ana's time is hers again too.
    let cat = app.user("cat").await;
    app.reserved(&cat, slot("Q1", 1, 10, 11)).await;
    app.reserved(&ana, slot("Q3", 1, 10, 11)).await;

    // 11:00: Ben's stay ends: completed.
    clock.set(local_time(1, 11, 0));
    app.state.engine.sweep().await.unwrap();
    let all = app.reservations_in_db().await;
    assert_eq!(status_of(&all, &q2), Some(ReservationStatus::Completed));
    // (Cat's and Ana's 10:00 bookings, made at 09:15 and never checked in, are no-shows
    // by now too.)
    let ev = loop {
        let ev = stream.next_of("reservation_updated").await;
        if ev.data["reservation"]["id"] == q2.as_str() {
            break ev;
        }
        assert_eq!(ev.data["reservation"]["status"], "no_show");
    };
    assert_eq!(ev.data["reservation"]["status"], "completed");
    // Nothing is left due: a second sweep changes nothing.
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.transitions, 0);
    audit(&app.reservations_in_db().await);
    app.stop().await;
}

async fn join_waitlist(
    app: &TestApp,
    token: &str,
    zone: &str,
    from: u32,
    to: u32,
) -> reqwest::Response {
    let d = day(1);
    app.post("/api/secure/waitlist")
        .bearer_auth(token)
        .json(&json!({
            "zone": zone,
            "start": format!("{d}T{from:02}:00:00+07:00"),
            "end": format!("{d}T{to:02}:00:00+07:00"),
        }))
        .send()
        .await
        .unwrap()
}

async fn check_out_cuts_the_reservation_and_frees_the_rest_for_a_waiter(backend: Backend) {
    let Some((app, clock)) = clocked(backend).await else {
        return;
    };
    // The café is full from 09:00 to 12:00.
    let mut tokens = Vec::new();
    for i in 1..=12 {
        let token = app.user(&format!("guest{i}")).await;
        app.reserved(&token, slot(&format!("C{i}"), 1, 9, 12)).await;
        tokens.push(token);
    }
    let dan = app.user("dan").await;
    let r = join_waitlist(&app, &dan, "cafe", 10, 12).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = body(r).await;
    assert_eq!(entry["status"], "waiting");
    let mut dans = Stream::open(&app, "/api/secure/events", Some(&dan), None).await;
    dans.next_of("snapshot").await;

    let mine = body(app.get_as(&tokens[1], "/api/secure/my-reservations").await).await;
    let c2 = id_of(&mine["items"][0]);
    let check_out = format!("/api/secure/reservations/{c2}/check-out");
    // Not checked in yet: nothing to check out.
    clock.set(local_time(1, 9, 0));
    assert_eq!(
        post(&app, &tokens[1], &check_out).await.status(),
        StatusCode::CONFLICT
    );
    let r = post(
        &app,
        &tokens[1],
        &format!("/api/secure/reservations/{c2}/check-in"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Someone else cannot check it out.
    assert_eq!(
        post(&app, &dan, &check_out).await.status(),
        StatusCode::NOT_FOUND
    );

    // 09:40: the guest leaves; the stay ends at the end of the slot in progress.
    clock.set(local_time(1, 9, 40));
    let r = post(&app, &tokens[1], &check_out).await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = body(r).await;
    assert_eq!(done["status"], "completed");
    assert!(
        done["end"].as_str().unwrap().ends_with("T10:00:00+07:00"),
        "{done}"
    );
    let stored = app.reservations_in_db().await;
    let row = stored.iter().find(|r| r.id.to_string() == c2).unwrap();
    assert_eq!(row.status, ReservationStatus::Completed);
    assert_eq!(row.interval.end, local_time(1, 10, 0));

    // The freed 10:00-12:00 goes to the waiter first, as a hold.
    let offered = dans.next_of("hold_offered").await;
    assert_eq!(offered.data["entry"]["id"], entry["id"]);
    assert_eq!(offered.data["entry"]["hold"]["seat_number"], "C2");
    let eve = app.user("eve").await;
    let r = app.reserve(&eve, slot("C2", 1, 10, 11)).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "the hold blocks other bookers"
    );
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("already reserved")
    );
    app.stop().await;
}

async fn a_waiter_gets_the_freed_seat_first_and_an_unconfirmed_hold_passes_on(backend: Backend) {
    let Some((app, clock)) = clocked(backend).await else {
        return;
    };
    let wendy = app.user("wendy").await;
    let walt = app.user("walt").await;
    // While a seat is free, joining the waitlist is refused: book it instead.
    let r = join_waitlist(&app, &wendy, "quiet", 9, 11).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("reserve it instead")
    );
    // Fill the quiet room 09:00-11:00.
    let mut holders = HashMap::new();
    for i in 1..=8 {
        let token = app.user(&format!("reader{i}")).await;
        let r = app.reserved(&token, slot(&format!("Q{i}"), 1, 9, 11)).await;
        holders.insert(i, (token, id_of(&r)));
    }
    let first = body(join_waitlist(&app, &wendy, "quiet", 9, 11).await).await;
    let second = body(join_waitlist(&app, &walt, "quiet", 9, 11).await).await;
    assert_eq!(first["status"], "waiting");
    assert_eq!(second["status"], "waiting");
    let r = join_waitlist(&app, &wendy, "quiet", 10, 11).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "waiting twice for the same time"
    );
    let r = join_waitlist(&app, &wendy, "nowhere", 9, 11).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post_as(
            &wendy,
            "/api/secure/waitlist",
            &json!({"zone": "quiet", "start": "tomorrow", "end": "later"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let mut wendys = Stream::open(&app, "/api/secure/events", Some(&wendy), None).await;
    let mut walts = Stream::open(&app, "/api/secure/events", Some(&walt), None).await;
    let mut public = Stream::open(&app, "/api/public/events?zone=quiet", None, None).await;
    let snap = wendys.next_of("snapshot").await;
    assert_eq!(snap.data["waitlist"][0]["id"], first["id"]);
    walts.next_of("snapshot").await;
    public.next_of("snapshot").await;

    // Q3 is cancelled: the first waiter gets it, held for 10 minutes.
    let (token3, q3) = holders[&3].clone();
    app.cancelled(&token3, &q3).await;
    let offer = wendys.next_of("hold_offered").await;
    let hold_id = offer.data["entry"]["id"].as_str().unwrap().to_string();
    assert_eq!(hold_id, first["id"].as_str().unwrap());
    assert_eq!(offer.data["entry"]["hold"]["seat_number"], "Q3");
    let ev = public.next().await;
    assert_eq!(
        (ev.kind.as_str(), ev.data["reservation"]["id"].as_str()),
        ("reservation_updated", Some(q3.as_str()))
    );
    let ev = public.next().await;
    assert_eq!(ev.kind, "hold_placed");
    assert_eq!(ev.data["hold"]["seat_number"], "Q3");
    assert!(ev.data["hold"].get("user_id").is_none());
    // Nobody else can take the held seat, or confirm or read someone else's hold.
    let r = app.reserve(&walt, slot("Q3", 1, 9, 11)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let confirm = format!("/api/secure/holds/{hold_id}/confirm");
    assert_eq!(
        post(&app, &walt, &confirm).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = app
        .get_as(&walt, &format!("/api/secure/waitlist/{hold_id}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .delete(&format!("/api/secure/waitlist/{hold_id}"))
        .bearer_auth(&walt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine = body(app.get_as(&wendy, "/api/secure/waitlist").await).await;
    assert_eq!(mine["items"][0]["status"], "offered");
    assert_eq!(mine["items"][0]["hold"]["seat_number"], "Q3");

    // Wendy lets the hold lapse: ten minutes later it passes to Walt.
    clock.advance(chrono::Duration::minutes(9));
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.expired, 0);
    clock.advance(chrono::Duration::minutes(1));
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.expired, 1);
    let expired = wendys.next_of("waitlist_updated").await;
    assert_eq!(expired.data["entry"]["status"], "expired");
    assert_eq!(
        post(&app, &wendy, &confirm).await.status(),
        StatusCode::CONFLICT
    );
    let offer = walts.next_of("hold_offered").await;
    assert_eq!(offer.data["entry"]["id"], second["id"]);
    assert_eq!(offer.data["entry"]["hold"]["seat_number"], "Q3");

    // Walt confirms: a real reservation; the entry is fulfilled.
    let walts_hold = second["id"].as_str().unwrap();
    let r = post(
        &app,
        &walt,
        &format!("/api/secure/holds/{walts_hold}/confirm"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let reservation = body(r).await;
    assert_eq!(reservation["seat_number"], "Q3");
    assert_eq!(reservation["status"], "confirmed");
    assert!(
        reservation["start"]
            .as_str()
            .unwrap()
            .ends_with("T09:00:00+07:00")
    );
    let r = post(
        &app,
        &walt,
        &format!("/api/secure/holds/{walts_hold}/confirm"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "confirmed twice");
    let entry = body(
        app.get_as(&walt, &format!("/api/secure/waitlist/{walts_hold}"))
            .await,
    )
    .await;
    assert_eq!(entry["status"], "fulfilled");
    assert_eq!(entry["reservation_id"], reservation["id"]);
    let ev = walts.next_of("reservation_created").await;
    assert_eq!(ev.data["reservation"]["id"], reservation["id"]);
    let all = app.reservations_in_db().await;
    assert_eq!(
        status_of(&all, reservation["id"].as_str().unwrap()),
        Some(ReservationStatus::Confirmed)
    );
    audit(&all);
    app.stop().await;
}

async fn entry(app: &TestApp, token: &str, id: &Value) -> Value {
    let path = format!("/api/secure/waitlist/{}", id.as_str().unwrap());
    body(app.get_as(token, &path).await).await
}

async fn holds_and_the_waitlist_survive_a_restart(backend: Backend) {
    let Some((app, clock)) = clocked(backend).await else {
        return;
    };
    let wendy = app.user("wendy").await;
    let walt = app.user("walt").await;
    let mut holders = Vec::new();
    for i in 1..=8 {
        let token = app.user(&format!("reader{i}")).await;
        let r = app.reserved(&token, slot(&format!("Q{i}"), 1, 9, 11)).await;
        holders.push((token, id_of(&r)));
    }
    let first = body(join_waitlist(&app, &wendy, "quiet", 9, 11).await).await;
    let second = body(join_waitlist(&app, &walt, "quiet", 9, 11).await).await;
    app.cancelled(&holders[4].0, &holders[4].1).await;
    app.state.engine.sweep().await.unwrap();
    assert_eq!(entry(&app, &wendy, &first["id"]).await["status"], "offered");

    // Restart on the same database with the same clock.
    let db = app.stop().await;
    let app = TestApp::spawn_on_with_clock(db, CLOCKED, clock.clone()).await;
    // The hold still blocks Q5 for others, and the queue still has Walt second.
    let r = app.reserve(&walt, slot("Q5", 1, 9, 10)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(entry(&app, &walt, &second["id"]).await["status"], "waiting");
    // ... and expires on time, passing to Walt.
    clock.advance(chrono::Duration::minutes(10));
    app.state.engine.sweep().await.unwrap();
    assert_eq!(entry(&app, &wendy, &first["id"]).await["status"], "expired");
    let walts = entry(&app, &walt, &second["id"]).await;
    assert_eq!(walts["status"], "offered");
    assert_eq!(walts["hold"]["seat_number"], "Q5");
    // Walt withdraws: the hold is released and Q5 is free again.
    let r = app
        .delete(&format!(
            "/api/secure/waitlist/{}",
            second["id"].as_str().unwrap()
        ))
        .bearer_auth(&walt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "cancelled");
    app.reserved(&wendy, slot("Q5", 1, 9, 11)).await;
    app.stop().await;
}

/// What a member's stream shows of their reservations and waitlist entries: the
/// engine's committed state, built from events before a restart and read back from
/// the database after it.
async fn member_snapshot(app: &TestApp, token: &str) -> Value {
    let mut stream = Stream::open(app, "/api/secure/events", Some(token), None).await;
    let mut snapshot = stream.next_of("snapshot").await.data;
    let object = snapshot.as_object_mut().unwrap();
    object.remove("seq");
    object.remove("at");
    snapshot
}

/// Invariant 4 (docs/architecture.md): the restarted engine holds exactly what was
/// committed: every field of a confirmed reservation, a checked-in one, a series'
/// occurrences and one made after its start, in several zones, as the members'
/// streams show them, and it goes on deciding from them.
async fn a_restart_rebuilds_every_kind_of_reservation_exactly(backend: Backend) {
    let Some((app, clock)) = clocked(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    app.reserved(&ana, slot("Q1", 1, 9, 11)).await;
    let a1 = id_of(&app.reserved(&ana, slot("A1", 1, 12, 13)).await);
    let q2 = id_of(&app.reserved(&ben, slot("Q2", 1, 9, 10)).await);
    app.reserved_series(&ben, series_body("C1", &[2], 14, 15, 2, 3))
        .await;
    clock.set(local_time(1, 8, 50));
    let r = post(
        &app,
        &ben,
        &format!("/api/secure/reservations/{q2}/check-in"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Before any no-show deadline: the restarted zones' first sweep changes nothing.
    clock.set(local_time(1, 9, 5));
    let cy = app.user("cyra").await;
    app.reserved(&cy, slot("Q3", 1, 9, 10)).await;
    let before = (
        member_snapshot(&app, &ana).await,
        member_snapshot(&app, &ben).await,
        member_snapshot(&app, &cy).await,
    );
    assert_eq!(before.0["reservations"].as_array().unwrap().len(), 2);
    assert_eq!(before.1["reservations"].as_array().unwrap().len(), 4);
    assert_eq!(before.2["reservations"].as_array().unwrap().len(), 1);

    let db = app.stop().await;
    let app = TestApp::spawn_on_with_clock(db, CLOCKED, clock.clone()).await;
    let after = (
        member_snapshot(&app, &ana).await,
        member_snapshot(&app, &ben).await,
        member_snapshot(&app, &cy).await,
    );
    assert_eq!(after, before);
    // The rebuilt zones decide from it: the checked-in seat is taken, the confirmed
    // reservation is found by id (the ledger names its zone) and cancelled.
    let r = app.reserve(&ana, slot("Q2", 1, 9, 10)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    app.cancelled(&ana, &a1).await;
    app.stop().await;
}

async fn the_scheduler_releases_no_shows_on_its_own(backend: Backend) {
    let clock = Arc::new(ManualClock::new(local_time(1, 7, 0)));
    let Some(app) = TestApp::spawn_with_clock(
        backend,
        &[
            ("PICA_SWEEP_SECONDS", "1"),
            ("PICA_TOKEN_TTL_SECONDS", "172800"),
        ],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let id = id_of(&app.reserved(&ana, slot("A7", 1, 9, 10)).await);
    clock.set(local_time(1, 9, 15));
    // Nobody calls a sweep: the scheduler's next tick finds the no-show.
    eventually(20, "the scheduler marks the no-show", || async {
        status_of(&app.reservations_in_db().await, &id) == Some(ReservationStatus::NoShow)
    })
    .await;
    assert_eq!(live_state(&app, "A7").await, "available");
    app.stop().await;
}
