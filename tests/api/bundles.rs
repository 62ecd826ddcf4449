//! Bundles: a seat and copies of a book reserved together, all or nothing: a refused
//! part changes nothing, both parts commit in one transaction, a refused commit leaves
//! no trace (invariant 4 in docs/architecture.md), prepared holds end at their deadline
//! ([books.md](../../docs/books.md#tests)).

use std::time::Duration;

use chrono::Utc;
use pica_actors::{DomainEvent, ReserveRequest, SeatNumber};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::library::{audit_books, events_until, is_stock_of, next_event};
use crate::helpers::{Backend, TestApp, audit, body, eventually, execute, slot};

on_both_backends!(
    bundle_with_a_taken_seat_or_missing_stock_changes_nothing,
    bundle_commits_both_parts_in_one_transaction,
    bundle_whose_commit_fails_leaves_no_trace,
    prepared_holds_are_released_by_their_deadline,
);

async fn bundle_with_a_taken_seat_or_missing_stock_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let ben_id = app.user_id("ben").await;
    let mankind = app.book_id("This Earth of Mankind").await; // 1 copy
    let habits = app.book_id("Atomic Habits").await; // 5 copies
    assert_eq!(
        app.reserve(&ana, slot("Q1", 1, 10, 12)).await.status(),
        StatusCode::CREATED
    );
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;

    // The seat is taken: the book is untouched.
    let r = app.bundle(&ben, slot("Q1", 1, 11, 13), habits, 2).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refused = body(r).await;
    assert_eq!(refused["part"], "seat");
    assert!(
        refused["conflict"]["start"]
            .as_str()
            .unwrap()
            .ends_with("10:00:00+07:00")
    );
    assert_eq!(app.stock(habits).await, (5, 0, 5));

    // Out of stock: the seat is untouched.
    assert_eq!(
        app.book_reserve(&ana, mankind, 1).await.status(),
        StatusCode::CREATED
    );
    let r = app.bundle(&ben, slot("Q2", 1, 10, 12), mankind, 1).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refused = body(r).await;
    assert_eq!(refused["part"], "book");
    assert!(refused["detail"].as_str().unwrap().contains("0 left"));
    assert_eq!(
        app.free_of("quiet", "Q2", 1).await.len(),
        1,
        "Q2 is free all day"
    );

    // Unknown parts and bad input name their part too, and change nothing.
    let r = app.bundle(&ben, slot("Z9", 1, 10, 12), habits, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["part"], "seat");
    let r = app.bundle(&ben, slot("Q2", 1, 10, 12), 999_999, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["part"], "book");
    let r = app.bundle(&ben, slot("Q2", 1, 12, 10), habits, 1).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(r).await["part"], "seat");
    let r = app.bundle(&ben, slot("Q2", 1, 10, 12), habits, 0).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(r).await["part"], "book");
    let r = app
        .post_as(
            &ben,
            "/api/secure/bundles",
            &json!({"seat": slot("Q2", 1, 10, 12)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Nothing of ben's anywhere: database, memory, user ledger, events.
    let seats = app.reservations_in_db().await;
    assert!(seats.iter().all(|r| r.user_id != ben_id), "{seats:?}");
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert!(books.iter().all(|r| r.user_id != ben_id), "{books:?}");
    assert_eq!(app.state.engine.ledger().claims_of(ben_id), 0);
    assert_eq!(app.stock(habits).await, (5, 0, 5));
    // ben can book exactly what the refused bundles asked for.
    let r = app.reserve(&ben, slot("Q2", 1, 10, 12)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let seen = events_until(&mut events, |e| {
        matches!(e, DomainEvent::ReservationCreated { reservation } if reservation.user_id == ben_id)
    })
    .await;
    for event in &seen {
        match event {
            DomainEvent::BookReservationCreated { reservation } => {
                assert_ne!(
                    reservation.user_id, ben_id,
                    "a refused bundle was announced"
                )
            }
            DomainEvent::BookStockChanged { stock } => assert_eq!(stock.book_id, mankind),
            DomainEvent::ReservationCreated { reservation } => {
                assert_eq!(reservation.seat.0, "Q2")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    audit(&app.reservations_in_db().await);
    audit_books(&app).await;
    app.stop().await;
}

async fn bundle_commits_both_parts_in_one_transaction(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ben = app.user("ben").await;
    let ddia = app.book_id("Designing Data-Intensive").await;
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let r = app.bundle(&ben, slot("Q3", 1, 10, 12), ddia, 2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let booked = body(r).await;
    let seat_id = booked["seat_reservation"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let book_res = booked["book_reservation"].clone();
    assert_eq!(booked["seat_reservation"]["seat_number"], "Q3");
    assert_eq!(booked["seat_reservation"]["status"], "confirmed");
    assert_eq!(book_res["copies"], 2);
    assert_eq!(book_res["seat_reservation_id"], seat_id.as_str());

    // Database: both, linked. Memory: both taken.
    let seats = app.reservations_in_db().await;
    assert_eq!(seats.len(), 1);
    assert_eq!(seats[0].id.to_string(), seat_id);
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert_eq!(books.len(), 1);
    assert_eq!(
        books[0].seat_reservation.map(|id| id.to_string()),
        Some(seat_id.clone())
    );
    assert_eq!(app.stock(ddia).await, (3, 2, 1));
    assert_eq!(app.free_of("quiet", "Q3", 1).await.len(), 2);
    assert_eq!(
        app.reserve(&ben, slot("Q4", 1, 11, 12)).await.status(),
        StatusCode::CONFLICT,
        "the bundle's seat counts against its user"
    );
    // Events: both creations, in one commit, then the stock.
    let seen = events_until(&mut events, |e| is_stock_of(e, ddia)).await;
    assert!(
        matches!(&seen[0], DomainEvent::ReservationCreated { reservation } if reservation.id.to_string() == seat_id)
    );
    assert!(
        matches!(&seen[1], DomainEvent::BookReservationCreated { reservation } if reservation.copies == 2)
    );
    assert_eq!(seen.len(), 3);

    // Each part then lives on its own: cancelling the book keeps the seat.
    let id = book_res["id"].as_str().unwrap();
    let r = app
        .delete(&format!("/api/secure/book-reservations/{id}"))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(app.stock(ddia).await, (3, 0, 3));
    assert_eq!(app.free_of("quiet", "Q3", 1).await.len(), 2);
    audit_books(&app).await;
    app.stop().await;
}

async fn bundle_whose_commit_fails_leaves_no_trace(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "10")]).await
    else {
        return;
    };
    let ben = app.user("ben").await;
    let ben_id = app.user_id("ben").await;
    let habits = app.book_id("Atomic Habits").await;
    // The database refuses book reservations of 3 copies; everything else commits.
    let db = app.db.connect().await;
    match backend {
        Backend::Sqlite => {
            execute(&db, "CREATE TRIGGER refuse_three BEFORE INSERT ON book_reservations WHEN NEW.copies = 3 \
                          BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;").await;
        }
        Backend::Postgres => {
            execute(&db, "CREATE FUNCTION refuse_three() RETURNS trigger LANGUAGE plpgsql AS $$ \
                          BEGIN IF NEW.copies = 3 THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                          RETURN NEW; END $$; \
                          CREATE TRIGGER refuse_three BEFORE INSERT ON book_reservations \
                          FOR EACH ROW EXECUTE FUNCTION refuse_three();").await;
        }
    }
    // Room for every bundle at once (pending holds count until decided).
    app.state
        .engine
        .adjust_book_stock(habits, 20)
        .await
        .unwrap();
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;

    // Refused and accepted bundles in flight together, so they can share a batch.
    let answers = futures::future::join_all((0..6).map(|i| {
        let copies = if i % 2 == 0 { 3 } else { 1 };
        let seat = format!("A{}", i + 1);
        app.bundle(&ben, slot(&seat, 1 + i as i64, 10, 12), habits, copies)
    }))
    .await;
    let mut accepted = Vec::new();
    for (i, r) in answers.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()["retry-after"], "1");
            let b = body(r).await;
            assert_eq!(b["part"], "commit");
            assert!(b["detail"].as_str().unwrap().contains("could not be saved"));
        } else {
            assert_eq!(
                r.status(),
                StatusCode::CREATED,
                "{}",
                r.text().await.unwrap()
            );
            accepted.push(
                body(r).await["seat_reservation"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    // Database: only the accepted bundles, both parts each.
    let seats = app.reservations_in_db().await;
    let mut stored: Vec<String> = seats.iter().map(|r| r.id.to_string()).collect();
    stored.sort();
    accepted.sort();
    assert_eq!(stored, accepted);
    let rows = db.all_book_reservations().await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.copies == 1));
    // Memory: the refused seats are free all day, the stock counts only the accepted.
    for i in [0, 2, 4] {
        let seat = format!("A{}", i + 1);
        assert_eq!(
            app.free_of("coworking", &seat, 1 + i as i64).await.len(),
            1,
            "{seat}"
        );
    }
    assert_eq!(app.stock(habits).await, (20, 3, 17));
    // The user ledger forgot the refused seats: ben can book the same times elsewhere.
    assert_eq!(app.state.engine.ledger().claims_of(ben_id), 3);
    // Events: only committed bundles, each with both parts.
    let mut created = 0;
    let mut stocks = Vec::new();
    while stocks.len() < 3 {
        let envelope = next_event(&mut events).await;
        match &envelope.event {
            DomainEvent::ReservationCreated { reservation } => {
                assert!(
                    accepted.contains(&reservation.id.to_string()),
                    "refused write announced"
                );
                created += 1;
            }
            DomainEvent::BookReservationCreated { reservation } => {
                assert_eq!(reservation.copies, 1, "refused write announced")
            }
            DomainEvent::BookStockChanged { stock } => stocks.push(stock.reserved_copies),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(
        stocks,
        [1, 2, 3],
        "the stock as each accepted bundle committed"
    );
    assert!(events.try_recv().is_err(), "nothing else was announced");

    // Once the database accepts again, so does the engine.
    match backend {
        Backend::Sqlite => execute(&db, "DROP TRIGGER refuse_three").await,
        Backend::Postgres => execute(&db, "DROP TRIGGER refuse_three ON book_reservations").await,
    }
    let r = app.bundle(&ben, slot("A1", 1, 10, 12), habits, 2).await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    audit(&app.reservations_in_db().await);
    audit_books(&app).await;
    db.close().await;
    app.stop().await;
}

async fn prepared_holds_are_released_by_their_deadline(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    app.user("ben").await;
    let ben_id = app.user_id("ben").await;
    let mankind = app.book_id("This Earth of Mankind").await; // 1 copy
    let solitude = app.book_id("One Hundred Years of Solitude").await; // 1 copy
    let engine = &app.state.engine;
    let seat = |number: &str, from: u32, to: u32| {
        let s = slot(number, 1, from, to);
        let calendar = &app.state.settings.calendar;
        let interval = calendar
            .explicit(
                s["start"].as_str().unwrap(),
                s["end"].as_str().unwrap(),
                Utc::now(),
            )
            .unwrap();
        ReserveRequest {
            user_id: ben_id,
            seat: SeatNumber(number.into()),
            interval,
            idempotency_key: None,
        }
    };

    // ben's bundles prepared their parts, then "died": nobody will ever submit them.
    // A prepared part is held like a pending change: others see it taken.
    let long = Duration::from_secs(600);
    engine
        .prepare_seat_only(seat("C5", 10, 12), long)
        .await
        .unwrap();
    engine
        .prepare_book_only(ben_id, mankind, 1, long)
        .await
        .unwrap();
    assert_eq!(app.stock(mankind).await, (1, 0, 0));
    assert_eq!(app.free_of("cafe", "C5", 1).await.len(), 2);
    let r = app.bundle(&ana, slot("C5", 1, 11, 12), solitude, 1).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(body(r).await["part"], "seat");

    // With a short deadline, the holds are released on their own.
    let short = Duration::from_millis(200);
    let held = engine
        .prepare_seat_only(seat("C6", 13, 15), short)
        .await
        .unwrap();
    assert_eq!(held.seat.0, "C6");
    engine
        .prepare_book_only(ben_id, solitude, 1, short)
        .await
        .unwrap();
    eventually(10, "the prepared copy is released", || async {
        app.stock(solitude).await.2 == 1
    })
    .await;
    eventually(10, "the prepared seat is released", || async {
        app.free_of("cafe", "C6", 1).await.len() == 1
    })
    .await;
    // Only the long holds' claim is left in ben's ledger.
    assert_eq!(engine.ledger().claims_of(ben_id), 1);
    let r = app.bundle(&ana, slot("C6", 1, 13, 15), solitude, 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Nothing of the abandoned holds reached the database.
    let seats = app.reservations_in_db().await;
    assert_eq!(seats.len(), 1);
    assert_ne!(seats[0].user_id, ben_id);
    app.stop().await;
}
