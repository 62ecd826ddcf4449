//! The engine under stress and failure: contention audited against the database, a
//! commit the database refuses, and a zone actor that crashes.

use std::collections::HashSet;

use crate::helpers::{Backend, TestApp, audit, body, day, eventually, execute, slot};
use pica_actors::{ReservationStatus, ZoneId};
use reqwest::StatusCode;
use serde_json::Value;

on_both_backends!(
    contention_never_double_books_and_every_answer_matches_the_database,
    refused_commit_leaves_no_trace_in_memory_database_or_events,
    crashed_zone_answers_503_then_comes_back_with_its_state,
);

/// Free intervals of `seat` on day `n` as the API reports them (the zone's memory).
async fn free_of(app: &TestApp, zone: &str, seat: &str, n: i64) -> Vec<(String, String)> {
    let path = format!("/api/public/zones/{zone}/availability?date={}", day(n));
    let availability = body(app.get(&path).send().await.unwrap()).await;
    let seat = availability["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat_number"] == seat)
        .unwrap()
        .clone();
    seat["free"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["start"].as_str().unwrap().to_string(),
                i["end"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn contention_never_double_books_and_every_answer_matches_the_database(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "1000")]).await
    else {
        return;
    };
    let mut tokens = Vec::new();
    for i in 0..24 {
        tokens.push(app.user(&format!("user{i}")).await);
    }
    // 480 requests for 3 seats on 2 days, with overlapping windows of 1-3 hours, all
    // in flight at once. A fixed pseudo-random sequence keeps the test repeatable.
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut requests = Vec::new();
    for i in 0..480 {
        let seat = ["C1", "C2", "C3"][next(3) as usize];
        let from = 8 + next(12) as u32;
        let to = (from + 1 + next(3) as u32).min(22);
        requests.push((i % tokens.len(), slot(seat, 1 + next(2) as i64, from, to)));
    }
    let answers = futures::future::join_all(
        requests
            .iter()
            .map(|(user, body)| app.reserve(&tokens[*user], body.clone())),
    )
    .await;
    let mut created = HashSet::new();
    let mut conflicts = 0;
    for r in answers {
        match r.status() {
            StatusCode::CREATED => {
                created.insert(body(r).await["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
    assert!(
        created.len() > 10 && conflicts > 100,
        "real contention: {} created, {conflicts} refused",
        created.len()
    );

    // Phase two: cancel half of them while new requests race for the freed time.
    let to_cancel: Vec<String> = created.iter().take(created.len() / 2).cloned().collect();
    let owners = body(
        app.get_as(&tokens[0], "/api/secure/my-reservations?limit=100")
            .await,
    )
    .await;
    assert!(owners["items"].is_array());
    let mut cancels = Vec::new();
    let app_ref = &app;
    for id in &to_cancel {
        // Only the owner can cancel; try every token, exactly one must succeed.
        for token in &tokens {
            cancels.push(async move {
                let path = format!("/api/secure/reservations/{id}");
                let r = app_ref
                    .delete(&path)
                    .bearer_auth(token)
                    .send()
                    .await
                    .unwrap();
                (id.clone(), r.status())
            });
        }
    }
    let racers = requests
        .iter()
        .take(120)
        .map(|(user, body)| app.reserve(&tokens[(*user + 1) % tokens.len()], body.clone()));
    let (cancel_answers, race_answers) = tokio::join!(
        futures::future::join_all(cancels),
        futures::future::join_all(racers)
    );
    let mut cancelled = HashSet::new();
    for (id, status) in cancel_answers {
        match status {
            StatusCode::OK => assert!(cancelled.insert(id), "cancelled twice"),
            StatusCode::NOT_FOUND => {}
            other => panic!("unexpected cancel status {other}"),
        }
    }
    assert_eq!(
        cancelled.len(),
        to_cancel.len(),
        "each cancel succeeded exactly once, for its owner"
    );
    for r in race_answers {
        match r.status() {
            StatusCode::CREATED => {
                created.insert(body(r).await["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected status {other}"),
        }
    }

    // Audit: exactly the acknowledged reservations exist, with the acknowledged status.
    let all = app.reservations_in_db().await;
    audit(&all);
    let stored: HashSet<String> = all.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        stored, created,
        "every 2xx is stored and nothing refused is"
    );
    for r in &all {
        let expected = if cancelled.contains(&r.id.to_string()) {
            ReservationStatus::Cancelled
        } else {
            ReservationStatus::Confirmed
        };
        assert_eq!(r.status, expected, "{}", r.id);
    }
    // Memory agrees with the database: a seat's busy time is exactly its active rows.
    for seat in ["C1", "C2", "C3"] {
        for n in 1..=2 {
            let free = free_of(&app, "cafe", seat, n).await;
            let busy: Vec<_> = all
                .iter()
                .filter(|r| r.status.is_active() && r.seat.0 == seat)
                .filter(|r| {
                    r.interval
                        .start
                        .with_timezone(&chrono_tz::Asia::Jakarta)
                        .date_naive()
                        == day(n)
                })
                .collect();
            let free_minutes: i64 = free
                .iter()
                .map(|(s, e)| {
                    let s = chrono::DateTime::parse_from_rfc3339(s).unwrap();
                    let e = chrono::DateTime::parse_from_rfc3339(e).unwrap();
                    (e - s).num_minutes()
                })
                .sum();
            let busy_minutes: i64 = busy
                .iter()
                .map(|r| (r.interval.end - r.interval.start).num_minutes())
                .sum();
            assert_eq!(
                free_minutes + busy_minutes,
                14 * 60,
                "{seat} day {n}: memory and database disagree"
            );
        }
    }
    app.stop().await;
}

async fn refused_commit_leaves_no_trace_in_memory_database_or_events(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "10")]).await
    else {
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
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let mut tokens = Vec::new();
    for i in 0..10 {
        tokens.push(app.user(&format!("user{i}")).await);
    }
    // Refused (Q7) and accepted (Q6) writes in flight together, so they share batches.
    // User i asks for Q7 at 08+i and for Q6 at 08+(i+5)%10: never overlapping itself.
    let requests = (0..10).flat_map(|i: usize| {
        let other = (i + 5) % 10;
        [
            (i, slot("Q7", 1, 8 + i as u32, 9 + i as u32)),
            (other, slot("Q6", 1, 8 + i as u32, 9 + i as u32)),
        ]
    });
    let answers = futures::future::join_all(requests.map(|(i, b)| {
        let token = tokens[i].clone();
        let app = &app;
        async move {
            let seat = b["seat_number"].as_str().unwrap().to_string();
            (seat, app.reserve(&token, b).await)
        }
    }))
    .await;
    let mut accepted = HashSet::new();
    for (seat, r) in answers {
        if seat == "Q7" {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(r.headers().contains_key("retry-after"));
            let detail: Value = body(r).await;
            assert!(
                detail["detail"]
                    .as_str()
                    .unwrap()
                    .contains("could not be saved")
            );
        } else {
            assert_eq!(r.status(), StatusCode::CREATED);
            accepted.insert(body(r).await["id"].as_str().unwrap().to_string());
        }
    }
    // Database: only the accepted ones.
    let all = app.reservations_in_db().await;
    assert_eq!(
        all.iter().map(|r| r.id.to_string()).collect::<HashSet<_>>(),
        accepted
    );
    // Memory: Q7 is entirely free again; Q6 is taken 08:00-18:00.
    assert_eq!(free_of(&app, "quiet", "Q7", 1).await.len(), 1);
    let q6 = free_of(&app, "quiet", "Q6", 1).await;
    assert_eq!(q6.len(), 1);
    assert!(q6[0].0.ends_with("18:00:00+07:00"), "{q6:?}");
    // Events: only committed changes were announced.
    let mut announced = HashSet::new();
    while let Ok(envelope) = events.try_recv() {
        match &envelope.event {
            pica_actors::DomainEvent::ReservationCreated { reservation } => {
                assert_eq!(reservation.seat.0, "Q6", "a refused write was announced");
                announced.insert(reservation.id.to_string());
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(announced, accepted);
    // The users' claims were released too: each can book another seat at the same time.
    // (user0's Q7 08:00-09:00 failed; user0 holds Q6 13:00-14:00.)
    let r = app.reserve(&tokens[0], slot("Q8", 1, 8, 9)).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = app.reserve(&tokens[0], slot("Q8", 1, 13, 14)).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "user0 holds Q6 13:00-14:00"
    );

    // Once the database accepts Q7 again, so does the engine.
    match backend {
        Backend::Sqlite => execute(&db, "DROP TRIGGER refuse_q7").await,
        Backend::Postgres => execute(&db, "DROP TRIGGER refuse_q7 ON reservations").await,
    }
    assert_eq!(
        app.reserve(&tokens[1], slot("Q7", 1, 20, 21))
            .await
            .status(),
        StatusCode::CREATED
    );
    db.close().await;
    app.stop().await;
}

async fn crashed_zone_answers_503_then_comes_back_with_its_state(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let r = app.reserve(&ana, slot("C4", 1, 10, 12)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let kept = body(r).await["id"].as_str().unwrap().to_string();

    // Keep the zone from rebuilding (its table is gone), then crash it.
    let db = app.db.connect().await;
    execute(&db, "ALTER TABLE reservations RENAME TO reservations_away").await;
    let cafe = ZoneId("cafe".into());
    let actor = app.state.engine.zone_actor(&cafe).expect("cafe is up");
    actor.get_cell().kill();
    let engine = app.state.engine.clone();
    eventually(10, "the dead zone leaves the directory", || {
        let engine = engine.clone();
        let cafe = cafe.clone();
        async move { engine.zone_actor(&cafe).is_none() }
    })
    .await;

    // While it is down: 503 with Retry-After, never a wrong answer; other zones serve.
    let r = app.reserve(&ben, slot("C4", 1, 10, 12)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = app
        .get(&format!(
            "/api/public/zones/cafe/availability?date={}",
            day(1)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = app
        .get(&format!(
            "/api/public/zones/quiet/availability?date={}",
            day(1)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The database is back: the supervisor's retries bring the zone back with its state.
    execute(&db, "ALTER TABLE reservations_away RENAME TO reservations").await;
    eventually(20, "the zone is restarted", || async {
        app.get("/readyz").send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    let r = app.reserve(&ben, slot("C4", 1, 11, 13)).await;
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "the rebuilt zone remembers the reservation"
    );
    let r = app.cancel(&ana, &kept).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.reserve(&ben, slot("C4", 1, 11, 13)).await.status(),
        StatusCode::CREATED
    );
    audit(&app.reservations_in_db().await);
    db.close().await;
    app.stop().await;
}
