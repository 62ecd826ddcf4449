//! The library: catalog, book reservations, stock under contention (invariant 3 in
//! docs/architecture.md), expiry with a moved clock, admin pick-up and restock through
//! the actor, the book stock actor's crash recovery ([books.md](../../docs/books.md#tests)).
//! Bundles (seat + book) are in `bundles.rs`.

use std::sync::Arc;

use chrono::Utc;
use pica_actors::{BookReservationStatus, DomainEvent, EngineError, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::library::{audit_books, events_until, is_stock_of, next_event};
use crate::helpers::{Backend, TestApp, body, eventually, execute, slot};

on_both_backends!(
    catalog_searches_filters_and_pages_from_memory,
    book_reservations_are_private_and_follow_their_lifecycle,
    racing_clients_get_exactly_the_copies_in_stock,
    uncollected_reservations_expire_when_the_clock_passes_their_hold,
    the_scheduler_expires_book_reservations_through_the_actor,
    admin_restock_goes_through_the_actor,
    crashed_book_stock_answers_503_then_comes_back_with_its_state,
);

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
    let admin = app.make_admin("librarian").await;
    let deep_work = app.book_id("Deep Work").await;
    assert_eq!(app.stock(deep_work).await, (3, 0, 3));

    let r = app.book_reserve(&ana, deep_work, 2).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created = body(r).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["status"], "reserved");
    assert_eq!(created["copies"], 2);
    assert!(created["expires_at"].as_str().unwrap().ends_with("+07:00"));
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
    assert_eq!(app.stock(deep_work).await, (3, 2, 1));

    // More than is left: 409 naming what is left; nothing changes.
    let r = app.book_reserve(&ben, deep_work, 2).await;
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
            .post_as(&ben, "/api/secure/book-reservations", &bad)
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(body(r).await["detail"].is_string());
    }
    let r = app.book_reserve(&ben, 999_999, 1).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post("/api/secure/book-reservations")
        .json(&json!({"book_id": deep_work}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no credentials");
    assert_eq!(app.stock(deep_work).await, (3, 2, 1));

    // Invariant 5 (docs/architecture.md): ben cannot see or cancel ana's reservation
    // (404 like a missing one).
    let path = format!("/api/secure/book-reservations/{id}");
    for r in [
        app.get_as(&ben, &path).await,
        app.book_cancel(&ben, &id).await,
        app.get_as(&ben, "/api/secure/book-reservations/not-a-uuid")
            .await,
        app.book_cancel(&ben, &uuid::Uuid::now_v7().to_string())
            .await,
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
    let r = app.get_as(&ana, &path).await;
    assert_eq!(body(r).await["copies"], 2);

    // Pick-up needs the admin role; it hands the copies over (they leave the stock).
    let pick_up = format!("/api/admin/book-reservations/{id}/pick-up");
    let r = app.pick_up(&ana, &id).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.post(&pick_up).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app.pick_up(&admin, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "picked_up");
    assert_eq!(app.stock(deep_work).await, (1, 0, 1));
    // Neither picked up twice nor cancelled afterwards.
    let r = app.pick_up(&admin, &id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.book_cancel(&ana, &id).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app.pick_up(&admin, "nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Cancel gives the copy back.
    let r = app.book_reserve(&ben, deep_work, 1).await;
    let bens = body(r).await["id"].as_str().unwrap().to_string();
    assert_eq!(app.stock(deep_work).await, (1, 1, 0));
    let r = app.book_cancel(&ben, &bens).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body(r).await["status"], "cancelled");
    assert_eq!(app.stock(deep_work).await, (1, 0, 1));
    let r = app
        .get_as(&ben, "/api/secure/my-book-reservations?status=cancelled")
        .await;
    assert_eq!(body(r).await["items"][0]["id"], bens.as_str());
    let r = app
        .get_as(&ben, "/api/secure/my-book-reservations?status=lost")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let stored = audit_books(&app).await;
    assert_eq!(stored[&deep_work], (1, 0));
    app.stop().await;
}

async fn racing_clients_get_exactly_the_copies_in_stock(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ddia = app.book_id("Designing Data-Intensive").await;
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;
    let mut tokens = Vec::new();
    for i in 0..32 {
        tokens.push(app.user(&format!("reader{i}")).await);
    }
    // 3 copies; 64 requests of 1 or 2 copies, all in flight at once.
    let asks: Vec<(usize, u32)> = (0..64).map(|i| (i % 32, 1 + (i % 5 == 0) as u32)).collect();
    let answers = futures::future::join_all(
        asks.iter()
            .map(|(user, copies)| app.book_reserve(&tokens[*user], ddia, *copies)),
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
    assert_eq!(app.stock(ddia).await, (3, 3, 0));
    audit_books(&app).await;

    // Phase two: the winners cancel while 32 more requests race for the freed copies.
    let cancels = granted.iter().map(|(user, id, _)| {
        app.delete(&format!("/api/secure/book-reservations/{id}"))
            .bearer_auth(&tokens[*user])
            .send()
    });
    let racers = (0..32).map(|i| app.book_reserve(&tokens[i], ddia, 1));
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
    let sapiens = app.book_id("Sapiens").await;
    let r = app.book_reserve(&ana, sapiens, 2).await;
    let kept = body(r).await;
    clock.advance(chrono::Duration::minutes(30));
    let r = app.book_reserve(&ana, sapiens, 1).await;
    let later = body(r).await["id"].as_str().unwrap().to_string();
    assert_eq!(app.stock(sapiens).await, (3, 3, 0));
    let mut events = app.state.engine.subscribe(None).await.unwrap().live;

    // 1 h 59 min after the first: nothing is due yet.
    clock.advance(chrono::Duration::minutes(89));
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(0));
    assert_eq!(app.stock(sapiens).await, (3, 3, 0));
    // 2 h after the first: it expires and its copies return; the later one stays.
    clock.advance(chrono::Duration::minutes(1));
    assert_eq!(app.state.engine.expire_book_reservations().await, Ok(1));
    assert_eq!(app.stock(sapiens).await, (3, 1, 2));
    let id = kept["id"].as_str().unwrap();
    let r = app
        .get_as(&ana, &format!("/api/secure/book-reservations/{id}"))
        .await;
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
    let work = app.book_id("Deep Work").await;
    let r = app.book_reserve(&ana, work, 1).await;
    let id = body(r).await["id"].as_str().unwrap().to_string();
    // The hold ends; nobody but the scheduler's tick asks the actor to expire it.
    clock.advance(chrono::Duration::hours(1));
    let path = format!("/api/secure/book-reservations/{id}");
    eventually(20, "the scheduler expired the reservation", || async {
        let r = app.get_as(&ana, &path).await;
        body(r).await["status"] == "expired"
    })
    .await;
    assert_eq!(app.stock(work).await, (3, 0, 3));
    app.stop().await;
}

async fn admin_restock_goes_through_the_actor(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let clean_code = app.book_id("Clean Code").await;
    assert_eq!(
        app.book_reserve(&ana, clean_code, 2).await.status(),
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
    assert_eq!(app.stock(clean_code).await, (5, 2, 3));
    let seen = events_until(&mut events, |e| is_stock_of(e, clean_code)).await;
    assert!(matches!(
        seen.last().unwrap(),
        DomainEvent::BookStockChanged { stock } if stock.total_copies == 5 && stock.available_copies == 3
    ));
    // Down to exactly what is reserved.
    engine.adjust_book_stock(clean_code, 2).await.unwrap();
    let r = app.book_reserve(&ana, clean_code, 1).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(audit_books(&app).await[&clean_code], (2, 2));
    app.stop().await;
}

async fn crashed_book_stock_answers_503_then_comes_back_with_its_state(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let pelangi = app.book_id("Laskar Pelangi").await;
    assert_eq!(
        app.book_reserve(&ana, pelangi, 2).await.status(),
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
    let r = app.book_reserve(&ana, pelangi, 1).await;
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
        app.stock(pelangi).await,
        (2, 2, 0),
        "rebuilt with its reservation"
    );
    assert_eq!(
        app.book_reserve(&ana, pelangi, 1).await.status(),
        StatusCode::CONFLICT
    );
    audit_books(&app).await;
    db.close().await;
    app.stop().await;
}
