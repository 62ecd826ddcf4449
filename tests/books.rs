//! The library: catalog, book reservations, stock under contention (invariant 3 in
//! docs/architecture.md), expiry with a moved clock, admin pick-up and restock through
//! the actor, the book stock actor's crash recovery, and bundles (seat + book, all or
//! nothing).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{Backend, TestApp, audit, body, day, eventually, execute, slot};
use pica_actors::notifier::Envelope;
use pica_actors::{
    BookReservationStatus, DomainEvent, EngineError, ManualClock, ReserveRequest, SeatNumber,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::broadcast;

on_both_backends!(
    catalog_searches_filters_and_pages_from_memory,
    book_reservations_are_private_and_follow_their_lifecycle,
    racing_clients_get_exactly_the_copies_in_stock,
    uncollected_reservations_expire_when_the_clock_passes_their_hold,
    the_scheduler_expires_book_reservations_through_the_actor,
    admin_restock_goes_through_the_actor,
    crashed_book_stock_answers_503_then_comes_back_with_its_state,
    bundle_with_a_taken_seat_or_missing_stock_changes_nothing,
    bundle_commits_both_parts_in_one_transaction,
    bundle_whose_commit_fails_leaves_no_trace,
    prepared_holds_are_released_by_their_deadline,
);

// ------------------------------------------------------------------ helpers

async fn make_admin(app: &TestApp, name: &str) -> String {
    let db = app.db.connect().await;
    pica::admin::create_admin(&db, name, None, || Ok("admin-pass-123".to_string()))
        .await
        .unwrap();
    db.close().await;
    let r = app
        .post("/api/public/login")
        .json(&json!({"username": name, "password": "admin-pass-123"}))
        .send()
        .await
        .unwrap();
    body(r).await["access_token"].as_str().unwrap().to_string()
}

async fn user_id(app: &TestApp, name: &str) -> i64 {
    app.state
        .db
        .find_user_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The id of the only book whose title or author matches `q`.
async fn book_id(app: &TestApp, q: &str) -> i64 {
    let r = app
        .get("/api/public/books")
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    let page = body(r).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{q}: {page}");
    items[0]["id"].as_i64().unwrap()
}

/// `(total, reserved, available)` of a book as the API (the actor's memory) shows it.
async fn stock(app: &TestApp, id: i64) -> (i64, i64, i64) {
    let r = app
        .get(&format!("/api/public/books/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let b = body(r).await;
    (
        b["total_copies"].as_i64().unwrap(),
        b["reserved_copies"].as_i64().unwrap(),
        b["available_copies"].as_i64().unwrap(),
    )
}

async fn reserve_book(app: &TestApp, token: &str, book: i64, copies: u32) -> reqwest::Response {
    app.post("/api/secure/book-reservations")
        .bearer_auth(token)
        .json(&json!({"book_id": book, "copies": copies}))
        .send()
        .await
        .unwrap()
}

async fn bundle(
    app: &TestApp,
    token: &str,
    seat: Value,
    book: i64,
    copies: u32,
) -> reqwest::Response {
    app.post("/api/secure/bundles")
        .bearer_auth(token)
        .json(&json!({"seat": seat, "book": {"book_id": book, "copies": copies}}))
        .send()
        .await
        .unwrap()
}

/// Invariant 3 (docs/architecture.md) over the database, and memory agreeing with it:
/// for every book the stored `reserved_copies` is the sum of its `reserved`
/// reservations' copies and lies within `0..=total`, and the API shows the same
/// numbers.
async fn audit_books(app: &TestApp) -> HashMap<i64, (u32, u32)> {
    let db = app.db.connect().await;
    let books = db.books().await.unwrap();
    let reservations = db.all_book_reservations().await.unwrap();
    db.close().await;
    let mut stored = HashMap::new();
    for book in books {
        let held: u32 = reservations
            .iter()
            .filter(|r| r.book_id == book.id && r.status == BookReservationStatus::Reserved)
            .map(|r| r.copies)
            .sum();
        assert_eq!(book.reserved_copies, held, "book {} out of sync", book.id);
        assert!(book.reserved_copies <= book.total_copies, "{book:?}");
        let (total, reserved, available) = stock(app, book.id).await;
        assert_eq!(
            (total, reserved, available),
            (
                book.total_copies as i64,
                book.reserved_copies as i64,
                (book.total_copies - book.reserved_copies) as i64
            ),
            "memory and database disagree on book {}",
            book.id
        );
        stored.insert(book.id, (book.total_copies, book.reserved_copies));
    }
    stored
}

/// The next event, waiting for it (a committed stock change is announced by the book
/// actor right after the client got its answer).
async fn next_event(events: &mut broadcast::Receiver<Arc<Envelope>>) -> Arc<Envelope> {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("event stream open")
}

/// Events up to and including the first one `until` accepts.
async fn events_until(
    events: &mut broadcast::Receiver<Arc<Envelope>>,
    until: impl Fn(&DomainEvent) -> bool,
) -> Vec<DomainEvent> {
    let mut seen = Vec::new();
    loop {
        let envelope = next_event(events).await;
        let done = until(&envelope.event);
        seen.push(envelope.event.clone());
        if done {
            return seen;
        }
    }
}

fn is_stock_of(event: &DomainEvent, book: i64) -> bool {
    matches!(event, DomainEvent::BookStockChanged { stock } if stock.book_id == book)
}

/// Seat reservations of the day as the zone (memory) shows them: the free intervals.
async fn free_of(app: &TestApp, zone: &str, seat: &str, n: i64) -> Vec<Value> {
    let path = format!("/api/public/zones/{zone}/availability?date={}", day(n));
    let availability = body(app.get(&path).send().await.unwrap()).await;
    availability["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat_number"] == seat)
        .unwrap()["free"]
        .as_array()
        .unwrap()
        .clone()
}

// ------------------------------------------------------------------ catalog

async fn catalog_searches_filters_and_pages_from_memory(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let all = body(app.get("/api/public/books").send().await.unwrap()).await;
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 12, "the seeded catalog");
    assert!(all["next_cursor"].is_null());
    let ddia = items.iter().find(|b| b["isbn"] == "9781449373320").unwrap();
    assert_eq!(ddia["title"], "Designing Data-Intensive Applications");
    assert_eq!(ddia["condition"], "new");
    assert_eq!(ddia["total_copies"], 3);
    assert_eq!(ddia["reserved_copies"], 0);
    assert_eq!(ddia["available_copies"], 3);
    assert_eq!(ddia["price_cents"], 4500);

    // Search over title and author, case-insensitive; condition filter.
    let found = |r: Value| -> Vec<String> {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["title"].as_str().unwrap().to_string())
            .collect()
    };
    let r = app
        .get("/api/public/books?q=KLEPPMANN")
        .send()
        .await
        .unwrap();
    assert_eq!(
        found(body(r).await),
        ["Designing Data-Intensive Applications"]
    );
    let r = app
        .get("/api/public/books?q=the%20design")
        .send()
        .await
        .unwrap();
    assert_eq!(found(body(r).await), ["The Design of Everyday Things"]);
    let r = app
        .get("/api/public/books?condition=pre_loved")
        .send()
        .await
        .unwrap();
    let pre_loved = body(r).await;
    assert!(
        pre_loved["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["condition"] == "pre_loved")
    );
    assert_eq!(pre_loved["items"].as_array().unwrap().len(), 6);
    let r = app
        .get("/api/public/books?q=robert&condition=new")
        .send()
        .await
        .unwrap();
    assert!(found(body(r).await).is_empty(), "Clean Code is pre-loved");

    // Pages of 5 cover the catalog exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/public/books?limit=5".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = body(app.get(&path).send().await.unwrap()).await;
        for b in page["items"].as_array().unwrap() {
            seen.push(b["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (12, 12));

    // One book; unknown ids are 404; bad queries are 4xx with a detail.
    let id = ddia["id"].as_i64().unwrap();
    let r = app
        .get(&format!("/api/public/books/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(r).await["title"],
        "Designing Data-Intensive Applications"
    );
    for path in [
        "/api/public/books/999999",
        "/api/public/books/abc",
        "/api/public/books/-1",
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(body(r).await["detail"].is_string());
    }
    let long = format!("/api/public/books?q={}", "x".repeat(201));
    for path in [
        "/api/public/books?condition=mint",
        "/api/public/books?limit=0",
        "/api/public/books?limit=101",
        "/api/public/books?cursor=abc",
        long.as_str(),
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(body(r).await["detail"].is_string());
    }
    let r = app.get("/api/public/books?limit=-3").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

// ------------------------------------------------------------------ reservations

async fn book_reservations_are_private_and_follow_their_lifecycle(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let admin = make_admin(&app, "librarian").await;
    let deep_work = book_id(&app, "Deep Work").await;
    assert_eq!(stock(&app, deep_work).await, (3, 0, 3));

    let r = reserve_book(&app, &ana, deep_work, 2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = body(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "reserved");
    assert_eq!(created["copies"], 2);
    assert!(created["expires_at"].as_str().unwrap().ends_with("+07:00"));
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(stock(&app, deep_work).await, (3, 2, 1));

    // More than is left: 409 naming what is left; nothing changes.
    let r = reserve_book(&app, &ben, deep_work, 2).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(body(r).await["detail"].as_str().unwrap().contains("1 left"));
    // Bad input: 4xx, nothing changes.
    for bad in [
        json!({"book_id": deep_work, "copies": 0}),
        json!({"book_id": deep_work, "copies": 21}),
        json!({"book_id": deep_work, "copies": -1}),
        json!({"book_id": deep_work, "copies": "two"}),
        json!({"book_id": "Deep Work"}),
        json!({"copies": 1}),
    ] {
        let r = app
            .post("/api/secure/book-reservations")
            .bearer_auth(&ben)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(body(r).await["detail"].is_string());
    }
    let r = reserve_book(&app, &ben, 999_999, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post("/api/secure/book-reservations")
        .json(&json!({"book_id": deep_work}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no credentials");
    assert_eq!(stock(&app, deep_work).await, (3, 2, 1));

    // Invariant 5 (docs/architecture.md): ben cannot see or cancel ana's reservation
    // (404 like a missing one).
    let path = format!("/api/secure/book-reservations/{id}");
    for r in [
        app.get(&path).bearer_auth(&ben).send().await.unwrap(),
        app.delete(&path).bearer_auth(&ben).send().await.unwrap(),
        app.get("/api/secure/book-reservations/not-a-uuid")
            .bearer_auth(&ben)
            .send()
            .await
            .unwrap(),
        app.delete(&format!(
            "/api/secure/book-reservations/{}",
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap(),
    ] {
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(r).await["detail"], "Book reservation not found");
    }
    let mine = |token: &str| {
        app.get("/api/secure/my-book-reservations")
            .bearer_auth(token)
            .send()
    };
    assert_eq!(body(mine(&ben).await.unwrap()).await["items"], json!([]));
    let listed = body(mine(&ana).await.unwrap()).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    let r = app.get(&path).bearer_auth(&ana).send().await.unwrap();
    assert_eq!(body(r).await["copies"], 2);

    // Pick-up needs the admin role; it hands the copies over (they leave the stock).
    let pick_up = format!("/api/admin/book-reservations/{id}/pick-up");
    let r = app.post(&pick_up).bearer_auth(&ana).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.post(&pick_up).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.post(&pick_up).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "picked_up");
    assert_eq!(stock(&app, deep_work).await, (1, 0, 1));
    // Neither picked up twice nor cancelled afterwards.
    let r = app.post(&pick_up).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.delete(&path).bearer_auth(&ana).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .post("/api/admin/book-reservations/nope/pick-up")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Cancel gives the copy back.
    let r = reserve_book(&app, &ben, deep_work, 1).await;
    let bens = body(r).await["id"].as_str().unwrap().to_string();
    assert_eq!(stock(&app, deep_work).await, (1, 1, 0));
    let r = app
        .delete(&format!("/api/secure/book-reservations/{bens}"))
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "cancelled");
    assert_eq!(stock(&app, deep_work).await, (1, 0, 1));
    let r = app
        .get("/api/secure/my-book-reservations?status=cancelled")
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["items"][0]["id"], bens.as_str());
    let r = app
        .get("/api/secure/my-book-reservations?status=lost")
        .bearer_auth(&ben)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let stored = audit_books(&app).await;
    assert_eq!(stored[&deep_work], (1, 0));
    app.stop().await;
}

async fn racing_clients_get_exactly_the_copies_in_stock(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ddia = book_id(&app, "Designing Data-Intensive").await;
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let mut tokens = Vec::new();
    for i in 0..32 {
        tokens.push(app.user(&format!("reader{i}")).await);
    }
    // 3 copies; 64 requests of 1 or 2 copies, all in flight at once.
    let asks: Vec<(usize, u32)> = (0..64).map(|i| (i % 32, 1 + (i % 5 == 0) as u32)).collect();
    let answers = futures::future::join_all(
        asks.iter()
            .map(|(user, copies)| reserve_book(&app, &tokens[*user], ddia, *copies)),
    )
    .await;
    let mut granted = Vec::new();
    for (r, (user, copies)) in answers.into_iter().zip(&asks) {
        match r.status() {
            StatusCode::CREATED => {
                let b = body(r).await;
                assert_eq!(b["copies"], *copies);
                granted.push((*user, b["id"].as_str().unwrap().to_string(), *copies));
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}: {}", r.text().await.unwrap()),
        }
    }
    let total: u32 = granted.iter().map(|g| g.2).sum();
    assert_eq!(total, 3, "exactly the stock was handed out: {granted:?}");
    assert_eq!(stock(&app, ddia).await, (3, 3, 0));
    audit_books(&app).await;

    // Phase two: the winners cancel while 32 more requests race for the freed copies.
    let cancels = granted.iter().map(|(user, id, _)| {
        app.delete(&format!("/api/secure/book-reservations/{id}"))
            .bearer_auth(&tokens[*user])
            .send()
    });
    let racers = (0..32).map(|i| reserve_book(&app, &tokens[i], ddia, 1));
    let (cancelled, raced) = tokio::join!(
        futures::future::join_all(cancels),
        futures::future::join_all(racers)
    );
    for r in cancelled {
        assert_eq!(r.unwrap().status(), StatusCode::OK);
    }
    let mut won = 0u32;
    for r in raced {
        match r.status() {
            StatusCode::CREATED => won += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(won <= 3, "{won} copies handed out of 3");
    let stored = audit_books(&app).await;
    assert_eq!(stored[&ddia], (3, won));

    // The event stream: every announced stock of this book stayed within 0..=total, and
    // the last one is the final state.
    let mut last = None;
    while let Ok(envelope) = events.try_recv() {
        if let DomainEvent::BookStockChanged { stock } = &envelope.event {
            assert_eq!(envelope.zone.0, "books");
            assert!(stock.reserved_copies <= stock.total_copies, "{stock:?}");
            assert_eq!(
                stock.available_copies,
                stock.total_copies - stock.reserved_copies
            );
            last = Some(*stock);
        }
    }
    // The final settle may still be on its way to the notifier.
    while last.is_none_or(|s| s.reserved_copies != won) {
        let envelope = next_event(&mut events).await;
        if let DomainEvent::BookStockChanged { stock } = &envelope.event {
            assert!(stock.reserved_copies <= stock.total_copies);
            last = Some(*stock);
        }
    }
    app.stop().await;
}

async fn uncollected_reservations_expire_when_the_clock_passes_their_hold(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(
        backend,
        &[
            ("PICA_BOOK_HOLD_HOURS", "2"),
            ("PICA_TOKEN_TTL_SECONDS", "86400"),
        ],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let sapiens = book_id(&app, "Sapiens").await;
    let r = reserve_book(&app, &ana, sapiens, 2).await;
    let kept = body(r).await;
    clock.advance(chrono::Duration::minutes(30));
    let r = reserve_book(&app, &ana, sapiens, 1).await;
    let later = body(r).await["id"].as_str().unwrap().to_string();
    assert_eq!(stock(&app, sapiens).await, (3, 3, 0));
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;

    // 1 h 59 min after the first: nothing is due yet.
    clock.advance(chrono::Duration::minutes(89));
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(0));
    assert_eq!(stock(&app, sapiens).await, (3, 3, 0));
    // 2 h after the first: it expires and its copies return; the later one stays.
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(1));
    assert_eq!(stock(&app, sapiens).await, (3, 1, 2));
    let id = kept["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/secure/book-reservations/{id}"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(body(r).await["status"], "expired");
    let r = app
        .delete(&format!("/api/secure/book-reservations/{id}"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "an expired hold stays expired"
    );
    // Announced: the status change, then the stock.
    let seen = events_until(&mut events, |e| is_stock_of(e, sapiens)).await;
    assert!(matches!(
        &seen[0],
        DomainEvent::BookReservationStatusChanged { reservation, from }
            if reservation.id.to_string() == id
                && reservation.status == BookReservationStatus::Expired
                && *from == BookReservationStatus::Reserved
    ));
    assert!(matches!(
        seen.last().unwrap(),
        DomainEvent::BookStockChanged { stock } if stock.reserved_copies == 1
    ));
    // Running it again finds nothing; the later one expires in its turn.
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(0));
    clock.advance(chrono::Duration::minutes(30));
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(1));
    let db = app.db.connect().await;
    let all = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert!(
        all.iter()
            .all(|r| r.status == BookReservationStatus::Expired),
        "{all:?}"
    );
    assert!(all.iter().any(|r| r.id.to_string() == later));
    assert_eq!(audit_books(&app).await[&sapiens], (3, 0));
    app.stop().await;
}

async fn the_scheduler_expires_book_reservations_through_the_actor(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(
        backend,
        &[
            ("PICA_BOOK_HOLD_HOURS", "1"),
            ("PICA_SWEEP_SECONDS", "1"),
            ("PICA_TOKEN_TTL_SECONDS", "86400"),
        ],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let work = book_id(&app, "Deep Work").await;
    let r = reserve_book(&app, &ana, work, 1).await;
    let id = body(r).await["id"].as_str().unwrap().to_string();
    // The hold ends; nobody but the scheduler's tick asks the actor to expire it.
    clock.advance(chrono::Duration::hours(1));
    let path = format!("/api/secure/book-reservations/{id}");
    eventually(20, "the scheduler expired the reservation", || async {
        let r = app.get(&path).bearer_auth(&ana).send().await.unwrap();
        body(r).await["status"] == "expired"
    })
    .await;
    assert_eq!(stock(&app, work).await, (3, 0, 3));
    app.stop().await;
}

async fn admin_restock_goes_through_the_actor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let clean_code = book_id(&app, "Clean Code").await;
    assert_eq!(
        reserve_book(&app, &ana, clean_code, 2).await.status(),
        StatusCode::CREATED
    );
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let engine = &app.state.engine;
    // Never below what is reserved.
    assert_eq!(
        engine.adjust_book_stock(clean_code, 1).await,
        Err(EngineError::StockBelowReserved { reserved: 2 })
    );
    assert_eq!(
        engine.adjust_book_stock(999_999, 1).await,
        Err(EngineError::BookNotFound)
    );
    let view = engine.adjust_book_stock(clean_code, 5).await.unwrap();
    assert_eq!((view.book.total_copies, view.available_copies), (5, 3));
    assert_eq!(stock(&app, clean_code).await, (5, 2, 3));
    let seen = events_until(&mut events, |e| is_stock_of(e, clean_code)).await;
    assert!(matches!(
        seen.last().unwrap(),
        DomainEvent::BookStockChanged { stock } if stock.total_copies == 5 && stock.available_copies == 3
    ));
    // Down to exactly what is reserved.
    engine.adjust_book_stock(clean_code, 2).await.unwrap();
    let r = reserve_book(&app, &ana, clean_code, 1).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(audit_books(&app).await[&clean_code], (2, 2));
    app.stop().await;
}

async fn crashed_book_stock_answers_503_then_comes_back_with_its_state(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let pelangi = book_id(&app, "Laskar Pelangi").await;
    assert_eq!(
        reserve_book(&app, &ana, pelangi, 2).await.status(),
        StatusCode::CREATED
    );

    // Keep the actor from rebuilding (its table is gone), then crash it.
    let db = app.db.connect().await;
    execute(
        &db,
        "ALTER TABLE book_reservations RENAME TO book_reservations_away",
    )
    .await;
    let engine = app.state.engine.clone();
    engine
        .book_actor()
        .expect("book stock is up")
        .get_cell()
        .kill();
    eventually(10, "the dead book stock leaves the engine", || {
        let engine = engine.clone();
        async move { engine.book_actor().is_none() }
    })
    .await;
    let r = reserve_book(&app, &ana, pelangi, 1).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let r = app.get("/api/public/books").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Seats are served meanwhile.
    assert_eq!(
        app.reserve(&ana, slot("C1", 1, 10, 11)).await.status(),
        StatusCode::CREATED
    );

    execute(
        &db,
        "ALTER TABLE book_reservations_away RENAME TO book_reservations",
    )
    .await;
    eventually(20, "the book stock is restarted", || async {
        app.get("/readyz").send().await.unwrap().status() == StatusCode::OK
    })
    .await;
    assert_eq!(
        stock(&app, pelangi).await,
        (2, 2, 0),
        "rebuilt with its reservation"
    );
    assert_eq!(
        reserve_book(&app, &ana, pelangi, 1).await.status(),
        StatusCode::CONFLICT
    );
    audit_books(&app).await;
    db.close().await;
    app.stop().await;
}

// ------------------------------------------------------------------ bundles

async fn bundle_with_a_taken_seat_or_missing_stock_changes_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let ben_id = user_id(&app, "ben").await;
    let mankind = book_id(&app, "This Earth of Mankind").await; // 1 copy
    let habits = book_id(&app, "Atomic Habits").await; // 5 copies
    assert_eq!(
        app.reserve(&ana, slot("Q1", 1, 10, 12)).await.status(),
        StatusCode::CREATED
    );
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;

    // The seat is taken: the book is untouched.
    let r = bundle(&app, &ben, slot("Q1", 1, 11, 13), habits, 2).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refused = body(r).await;
    assert_eq!(refused["part"], "seat");
    assert!(
        refused["conflict"]["start"]
            .as_str()
            .unwrap()
            .ends_with("10:00:00+07:00")
    );
    assert_eq!(stock(&app, habits).await, (5, 0, 5));

    // Out of stock: the seat is untouched.
    assert_eq!(
        reserve_book(&app, &ana, mankind, 1).await.status(),
        StatusCode::CREATED
    );
    let r = bundle(&app, &ben, slot("Q2", 1, 10, 12), mankind, 1).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refused = body(r).await;
    assert_eq!(refused["part"], "book");
    assert!(refused["detail"].as_str().unwrap().contains("0 left"));
    assert_eq!(
        free_of(&app, "quiet", "Q2", 1).await.len(),
        1,
        "Q2 is free all day"
    );

    // Unknown parts and bad input name their part too, and change nothing.
    let r = bundle(&app, &ben, slot("Z9", 1, 10, 12), habits, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["part"], "seat");
    let r = bundle(&app, &ben, slot("Q2", 1, 10, 12), 999_999, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["part"], "book");
    let r = bundle(&app, &ben, slot("Q2", 1, 12, 10), habits, 1).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(r).await["part"], "seat");
    let r = bundle(&app, &ben, slot("Q2", 1, 10, 12), habits, 0).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(r).await["part"], "book");
    let r = app
        .post("/api/secure/bundles")
        .bearer_auth(&ben)
        .json(&json!({"seat": slot("Q2", 1, 10, 12)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Nothing of ben's anywhere: database, memory, user ledger, events.
    let seats = app.reservations_in_db().await;
    assert!(seats.iter().all(|r| r.user_id != ben_id), "{seats:?}");
    let db = app.db.connect().await;
    let books = db.all_book_reservations().await.unwrap();
    db.close().await;
    assert!(books.iter().all(|r| r.user_id != ben_id), "{books:?}");
    assert_eq!(app.state.engine.ledger().claims_of(ben_id), 0);
    assert_eq!(stock(&app, habits).await, (5, 0, 5));
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
    let ddia = book_id(&app, "Designing Data-Intensive").await;
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let r = bundle(&app, &ben, slot("Q3", 1, 10, 12), ddia, 2).await;
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
    assert_eq!(stock(&app, ddia).await, (3, 2, 1));
    assert_eq!(free_of(&app, "quiet", "Q3", 1).await.len(), 2);
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
    assert_eq!(stock(&app, ddia).await, (3, 0, 3));
    assert_eq!(free_of(&app, "quiet", "Q3", 1).await.len(), 2);
    audit_books(&app).await;
    app.stop().await;
}

async fn bundle_whose_commit_fails_leaves_no_trace(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, &[("PICA_MAX_ACTIVE_RESERVATIONS", "10")]).await
    else {
        return;
    };
    let ben = app.user("ben").await;
    let ben_id = user_id(&app, "ben").await;
    let habits = book_id(&app, "Atomic Habits").await;
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
        bundle(
            &app,
            &ben,
            slot(&seat, 1 + i as i64, 10, 12),
            habits,
            copies,
        )
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
            free_of(&app, "coworking", &seat, 1 + i as i64).await.len(),
            1,
            "{seat}"
        );
    }
    assert_eq!(stock(&app, habits).await, (20, 3, 17));
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
    let r = bundle(&app, &ben, slot("A1", 1, 10, 12), habits, 2).await;
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
    let ben_id = user_id(&app, "ben").await;
    let mankind = book_id(&app, "This Earth of Mankind").await; // 1 copy
    let solitude = book_id(&app, "One Hundred Years of Solitude").await; // 1 copy
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
    assert_eq!(stock(&app, mankind).await, (1, 0, 0));
    assert_eq!(free_of(&app, "cafe", "C5", 1).await.len(), 2);
    let r = bundle(&app, &ana, slot("C5", 1, 11, 12), solitude, 1).await;
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
        stock(&app, solitude).await.2 == 1
    })
    .await;
    eventually(10, "the prepared seat is released", || async {
        free_of(&app, "cafe", "C6", 1).await.len() == 1
    })
    .await;
    // Only the long holds' claim is left in ben's ledger.
    assert_eq!(engine.ledger().claims_of(ben_id), 1);
    let r = bundle(&app, &ana, slot("C6", 1, 13, 15), solitude, 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Nothing of the abandoned holds reached the database.
    let seats = app.reservations_in_db().await;
    assert_eq!(seats.len(), 1);
    assert_ne!(seats[0].user_id, ben_id);
    app.stop().await;
}
