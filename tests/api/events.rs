//! Live availability over real HTTP, the SSE streams: snapshot, commit order, resume
//! with `Last-Event-ID`, no event for a failed write, snapshot + events never miss or
//! repeat a change, stream limits ([events.md](../../docs/events.md#tests)).

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::sse::{Ev, Stream, id_of};
use crate::helpers::{Backend, TestApp, body, eventually, execute, slot};

on_both_backends!(
    two_streams_see_each_others_bookings_in_commit_order,
    resume_with_last_event_id_or_get_a_fresh_snapshot,
    no_event_is_sent_for_a_failed_write,
    snapshot_and_events_never_miss_or_repeat_a_change,
    streams_are_limited_and_bad_requests_are_refused,
);

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

    let q1 = app.reserved(&ana, slot("Q1", 1, 9, 11)).await;
    let c1 = app.reserved(&ben, slot("C1", 1, 9, 11)).await;
    app.cancelled(&ana, &id_of(&q1)).await;

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
    let a = app.reserved(&ana, slot("C2", 1, 9, 10)).await;
    let first = stream.next().await;
    drop(stream);
    // Changes made while disconnected.
    let b = app.reserved(&ana, slot("C3", 1, 10, 11)).await;
    app.cancelled(&ana, &id_of(&a)).await;

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
    let ok = app.reserved(&ana, slot("Q6", 1, 9, 10)).await;
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
            let r = app
                .reserved(token, slot(&seat, 1 + i64::from(i % 3), from, from + 2))
                .await;
            made.push((token.clone(), id_of(&r)));
            if i % 3 == 2 {
                let (token, id) = made.remove(0);
                app.cancelled(&token, &id).await;
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
    let marker = app.reserved(&ana, slot("A20", 2, 20, 22)).await;

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
