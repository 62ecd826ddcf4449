//! Live availability over real HTTP: the SSE streams (snapshot, order, resume, no event
//! for a failed write, snapshot + events never miss or repeat a change), check-in and
//! check-out, the automatic lifecycle with a moved clock, and the waitlist with holds.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use common::{Backend, TestApp, audit, body, day, eventually, execute, slot, status_of};
use pica_actors::{ManualClock, ReservationStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    two_streams_see_each_others_bookings_in_commit_order,
    resume_with_last_event_id_or_get_a_fresh_snapshot,
    no_event_is_sent_for_a_failed_write,
    snapshot_and_events_never_miss_or_repeat_a_change,
    streams_are_limited_and_bad_requests_are_refused,
    check_in_window_no_show_and_completion_with_a_moved_clock,
    check_out_cuts_the_reservation_and_frees_the_rest_for_a_waiter,
    a_waiter_gets_the_freed_seat_first_and_an_unconfirmed_hold_passes_on,
    holds_and_the_waitlist_survive_a_restart,
    the_scheduler_releases_no_shows_on_its_own,
);

/// One server-sent event.
#[derive(Debug, Clone)]
struct Ev {
    kind: String,
    id: Option<u64>,
    data: Value,
}

/// A minimal SSE client over a streaming reqwest response.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(app: &TestApp, path: &str, token: Option<&str>, last: Option<&str>) -> Stream {
        let mut request = app.get(path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "opening {path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; panics if none comes for a long while (a hang, not a timing).
    async fn next(&mut self) -> Ev {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut ev = Ev {
                    kind: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().parse().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat comment
                }
                ev.data = serde_json::from_str(&data).expect("JSON data");
                return ev;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()
                .expect("the stream is still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips events until one of `kind` arrives.
    async fn next_of(&mut self, kind: &str) -> Ev {
        loop {
            let ev = self.next().await;
            if ev.kind == kind {
                return ev;
            }
        }
    }
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().unwrap().to_string()
}

async fn created(app: &TestApp, token: &str, body_: Value) -> Value {
    let r = app.reserve(token, body_).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    body(r).await
}

async fn cancel(app: &TestApp, token: &str, id: &str) {
    let r = app
        .delete(&format!("/api/secure/reservations/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn two_streams_see_each_others_bookings_in_commit_order(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let mut all = Stream::open(&app, "/api/public/events", None, None).await;
    let mut quiet = Stream::open(&app, "/api/public/events?zone=quiet", None, None).await;
    let snapshot = all.next().await;
    assert_eq!(snapshot.kind, "snapshot");
    let zones: Vec<&str> = snapshot.data["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["id"].as_str().unwrap())
        .collect();
    assert_eq!(zones, ["coworking", "cafe", "quiet"]);
    let quiet_snapshot = quiet.next().await;
    assert_eq!(quiet_snapshot.data["zones"].as_array().unwrap().len(), 1);
    assert_eq!(
        quiet_snapshot.data["zones"][0]["seats"][0]["state"],
        "available"
    );

    let q1 = created(&app, &ana, slot("Q1", 1, 9, 11)).await;
    let c1 = created(&app, &ben, slot("C1", 1, 9, 11)).await;
    cancel(&app, &ana, &id_of(&q1)).await;

    // Everyone sees both users' changes, in commit order, with increasing ids.
    let seen: Vec<Ev> = vec![all.next().await, all.next().await, all.next().await];
    let kinds: Vec<&str> = seen.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "reservation_created",
            "reservation_created",
            "reservation_updated"
        ]
    );
    assert_eq!(seen[0].data["reservation"]["id"], q1["id"]);
    assert_eq!(seen[1].data["reservation"]["id"], c1["id"]);
    assert_eq!(seen[2].data["reservation"]["status"], "cancelled");
    assert_eq!(seen[2].data["from"], "confirmed");
    assert!(seen.windows(2).all(|w| w[0].id < w[1].id), "{seen:?}");
    assert!(seen[0].id > snapshot.id);
    // The public stream does not say who booked.
    assert!(seen[0].data["reservation"].get("user_id").is_none());
    assert_eq!(seen[1].data["zone"], "cafe");

    // The zone's stream has only its own events, with the same ids.
    let q_created = quiet.next().await;
    let q_cancelled = quiet.next().await;
    assert_eq!(q_created.id, seen[0].id);
    assert_eq!(q_cancelled.id, seen[2].id);
    assert_eq!(q_cancelled.data["zone"], "quiet");
    app.stop().await;
}

async fn resume_with_last_event_id_or_get_a_fresh_snapshot(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let mut stream = Stream::open(&app, "/api/public/events?zone=cafe", None, None).await;
    stream.next_of("snapshot").await;
    let a = created(&app, &ana, slot("C2", 1, 9, 10)).await;
    let first = stream.next().await;
    drop(stream);
    // Changes made while disconnected.
    let b = created(&app, &ana, slot("C3", 1, 10, 11)).await;
    cancel(&app, &ana, &id_of(&a)).await;

    let last = first.id.unwrap().to_string();
    let mut resumed = Stream::open(&app, "/api/public/events?zone=cafe", None, Some(&last)).await;
    let missed1 = resumed.next().await;
    let missed2 = resumed.next().await;
    assert_eq!(
        missed1.kind, "reservation_created",
        "no snapshot when resuming"
    );
    assert_eq!(missed1.data["reservation"]["id"], b["id"]);
    assert_eq!(missed2.data["reservation"]["id"], a["id"]);
    assert_eq!(missed2.data["reservation"]["status"], "cancelled");
    assert!(missed1.id > first.id && missed2.id > missed1.id);

    // An id the server no longer has (or never had) gets a fresh snapshot, which
    // shows the state the missed events led to.
    for stale in ["1", "not-a-number", "99999999999999999999"] {
        let mut fresh = Stream::open(&app, "/api/public/events?zone=cafe", None, Some(stale)).await;
        let snapshot = fresh.next().await;
        assert_eq!(snapshot.kind, "snapshot", "Last-Event-ID {stale}");
        let held: Vec<&Value> = snapshot.data["zones"][0]["reservations"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0]["id"], b["id"]);
        assert!(snapshot.id >= missed2.id);
    }
    app.stop().await;
}

async fn no_event_is_sent_for_a_failed_write(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let db = app.db.connect().await;
    match backend {
        Backend::Sqlite => {
            execute(&db, "CREATE TRIGGER refuse_q7 BEFORE INSERT ON reservations WHEN NEW.seat_number = 'Q7' \
                          BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;").await;
        }
        Backend::Postgres => {
            execute(&db, "CREATE FUNCTION refuse_q7() RETURNS trigger LANGUAGE plpgsql AS $$ \
                          BEGIN IF NEW.seat_number = 'Q7' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                          RETURN NEW; END $$; \
                          CREATE TRIGGER refuse_q7 BEFORE INSERT ON reservations \
                          FOR EACH ROW EXECUTE FUNCTION refuse_q7();").await;
        }
    }
    let ana = app.user("ana").await;
    let mut stream = Stream::open(&app, "/api/public/events", None, None).await;
    stream.next_of("snapshot").await;
    let refused = app.reserve(&ana, slot("Q7", 1, 9, 10)).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ok = created(&app, &ana, slot("Q6", 1, 9, 10)).await;
    // Events come in commit order: had the refused write been announced, it would
    // come first.
    let next = stream.next().await;
    assert_eq!(next.kind, "reservation_created");
    assert_eq!(next.data["reservation"]["id"], ok["id"]);
    db.close().await;
    app.stop().await;
}

/// Streams opened at random moments while bookings and cancellations commit: each
/// stream's snapshot plus the events after it must equal the final state exactly — a
/// change in both (a duplicate) or in neither (a miss) fails.
async fn snapshot_and_events_never_miss_or_repeat_a_change(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "100")]).await
    else {
        return;
    };
    // One user per seat, so nobody's own bookings overlap (docs/architecture.md,
    // invariant 2).
    let mut users = Vec::new();
    for i in 0..12 {
        users.push(app.user(&format!("user{i}")).await);
    }
    let ana = app.user("ana").await;
    let writer = async {
        let mut made = Vec::new();
        for i in 0..24u32 {
            let seat = format!("A{}", 1 + i % 12);
            let token = &users[(i % 12) as usize];
            let from = 8 + i / 12 * 2;
            let r = created(
                &app,
                token,
                slot(&seat, 1 + i64::from(i % 3), from, from + 2),
            )
            .await;
            made.push((token.clone(), id_of(&r)));
            if i % 3 == 2 {
                let (token, id) = made.remove(0);
                cancel(&app, &token, &id).await;
            }
        }
    };
    let readers = async {
        let mut streams = Vec::new();
        for _ in 0..12 {
            let mut s = Stream::open(&app, "/api/public/events?zone=coworking", None, None).await;
            let snapshot = s.next_of("snapshot").await;
            streams.push((s, snapshot));
            tokio::task::yield_now().await;
        }
        streams
    };
    let ((), streams) = tokio::join!(writer, readers);
    // A last booking marks the end of the story for every stream.
    let marker = created(&app, &ana, slot("A20", 2, 20, 22)).await;

    let truth: HashSet<String> = app
        .reservations_in_db()
        .await
        .iter()
        .filter(|r| r.status.is_active() && r.zone.0 == "coworking")
        .map(|r| r.id.to_string())
        .collect();
    for (n, (mut stream, snapshot)) in streams.into_iter().enumerate() {
        let mut state: HashSet<String> = snapshot.data["zones"][0]["reservations"]
            .as_array()
            .unwrap()
            .iter()
            .map(id_of)
            .collect();
        loop {
            let ev = stream.next().await;
            let r = &ev.data["reservation"];
            let id = id_of(r);
            match (ev.kind.as_str(), r["status"].as_str().unwrap()) {
                ("reservation_created", _) => {
                    assert!(state.insert(id.clone()), "stream {n}: {id} created twice")
                }
                ("reservation_updated", "cancelled") => {
                    assert!(state.remove(&id), "stream {n}: cancelled {id} it never had")
                }
                other => panic!("unexpected {other:?}"),
            }
            if id == id_of(&marker) {
                break;
            }
        }
        assert_eq!(state, truth, "stream {n} ended up with a different state");
    }
    app.stop().await;
}

async fn streams_are_limited_and_bad_requests_are_refused(backend: Backend) {
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("PICA_SSE_MAX_SUBSCRIBERS", "2"),
            ("PICA_SSE_HEARTBEAT_SECONDS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let a = Stream::open(&app, "/api/public/events", None, None).await;
    let _b = Stream::open(&app, "/api/secure/events", Some(&ana), None).await;
    let r = app.get("/api/public/events").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("Too many")
    );
    // The server notices the closed connection at its next write (a heartbeat).
    drop(a);
    eventually(20, "a closed stream frees its place", || async {
        app.get("/api/public/events").send().await.unwrap().status() == StatusCode::OK
    })
    .await;

    let r = app
        .get("/api/public/events?zone=nowhere")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        body(r).await["detail"]
            .as_str()
            .unwrap()
            .contains("nowhere")
    );
    let r = app.get("/api/secure/events").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

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
    let zones = body(app.get("/api/public/zones").send().await.unwrap()).await;
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
    let q1 = id_of(&created(&app, &ana, slot("Q1", 1, 9, 11)).await);
    let q2 = id_of(&created(&app, &ben, slot("Q2", 1, 9, 11)).await);
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
    created(&app, &cat, slot("Q1", 1, 10, 11)).await;
    created(&app, &ana, slot("Q3", 1, 10, 11)).await;

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
        created(&app, &token, slot(&format!("C{i}"), 1, 9, 12)).await;
        tokens.push(token);
    }
    let dan = app.user("dan").await;
    let r = join_waitlist(&app, &dan, "cafe", 10, 12).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = body(r).await;
    assert_eq!(entry["status"], "waiting");
    let mut dans = Stream::open(&app, "/api/secure/events", Some(&dan), None).await;
    dans.next_of("snapshot").await;

    let mine = body(
        app.get("/api/secure/my-reservations")
            .bearer_auth(&tokens[1])
            .send()
            .await
            .unwrap(),
    )
    .await;
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
        let r = created(&app, &token, slot(&format!("Q{i}"), 1, 9, 11)).await;
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
        .post("/api/secure/waitlist")
        .bearer_auth(&wendy)
        .json(&json!({"zone": "quiet", "start": "tomorrow", "end": "later"}))
        .send()
        .await
        .unwrap();
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
    cancel(&app, &token3, &q3).await;
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
        .get(&format!("/api/secure/waitlist/{hold_id}"))
        .bearer_auth(&walt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .delete(&format!("/api/secure/waitlist/{hold_id}"))
        .bearer_auth(&walt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let mine = body(
        app.get("/api/secure/waitlist")
            .bearer_auth(&wendy)
            .send()
            .await
            .unwrap(),
    )
    .await;
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
        app.get(&format!("/api/secure/waitlist/{walts_hold}"))
            .bearer_auth(&walt)
            .send()
            .await
            .unwrap(),
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
    body(app.get(&path).bearer_auth(token).send().await.unwrap()).await
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
        let r = created(&app, &token, slot(&format!("Q{i}"), 1, 9, 11)).await;
        holders.push((token, id_of(&r)));
    }
    let first = body(join_waitlist(&app, &wendy, "quiet", 9, 11).await).await;
    let second = body(join_waitlist(&app, &walt, "quiet", 9, 11).await).await;
    cancel(&app, &holders[4].0, &holders[4].1).await;
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
    created(&app, &wendy, slot("Q5", 1, 9, 11)).await;
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
    let id = id_of(&created(&app, &ana, slot("A7", 1, 9, 10)).await);
    clock.set(local_time(1, 9, 15));
    // Nobody calls a sweep: the scheduler's next tick finds the no-show.
    eventually(20, "the scheduler marks the no-show", || async {
        status_of(&app.reservations_in_db().await, &id) == Some(ReservationStatus::NoShow)
    })
    .await;
    assert_eq!(live_state(&app, "A7").await, "available");
    app.stop().await;
}
