//! The unit of work's batch statements: a batch's reservation inserts and status changes
//! go out in rounds (all status changes, then all inserts, then what had to wait), not
//! in the batch's order. These tests commit hand-made batches straight through the
//! storage port, where a wrong order would be refused by the database's overlap wall,
//! and check the rows after; on PostgreSQL, the status round's generic plan. Each
//! batch goes through the unit of work's storage as the server composes it, once with
//! SQLite's direct writer (its own connection and thread, SQLite's C API) and once
//! without (sqlx), so both ways of writing a batch are held to the same rows.

use chrono::{DateTime, Duration, Utc};
use pica_actors::{
    Change, Created, IdempotencyTag, Interval, Reservation, ReservationStatus, SeatNumber, Storage,
    UserId,
};
use uuid::Uuid;

use pica::storage::{Db, EngineStorage};

use crate::helpers::{Backend, TestApp, TestDb, body, slot};

on_both_backends!(
    a_batch_in_rounds_ends_as_if_applied_in_order,
    a_batch_longer_than_a_statement_goes_out_in_pieces,
    stored_times_come_back_exactly_on_either_side_of_2000,
);

/// The unit of work's storage on `db` as the server composes it; `direct` asks for
/// SQLite's direct writer, which a PostgreSQL database never has.
async fn engine_storage(backend: Backend, db: &Db, direct: bool) -> EngineStorage {
    let writer = db.writer(1).await.expect("the writer's connection");
    let storage = EngineStorage::new(db.clone(), writer, 1, None)
        .with_sqlite_direct_writer(direct)
        .await
        .expect("the direct writer opens");
    assert_eq!(
        storage.writes_directly(),
        direct && backend == Backend::Sqlite,
        "direct writer asked for: {direct}"
    );
    storage
}

fn booking(user_id: UserId, seat: &str, like: &Reservation) -> Reservation {
    Reservation {
        id: Uuid::now_v7(),
        user_id,
        seat: SeatNumber(seat.into()),
        zone: like.zone.clone(),
        interval: like.interval,
        status: ReservationStatus::Confirmed,
        created_at: Utc::now(),
        series: None,
    }
}

fn status(r: &Reservation, from: ReservationStatus, to: ReservationStatus) -> Change {
    Change::SetReservationStatus {
        id: r.id,
        from,
        to,
        at: Utc::now(),
    }
}

/// The key record a keyed request leaves beside what it created.
fn keyed(user_id: UserId, key: &str, r: &Reservation) -> Change {
    Change::RecordIdempotency {
        tag: IdempotencyTag {
            user_id,
            scope: "reservations".into(),
            key: key.into(),
            fingerprint: format!("body of {key}"),
        },
        created: Created::Reservation(r.id),
    }
}

fn create(r: &Reservation) -> Change {
    Change::CreateReservation {
        reservation: r.clone(),
    }
}

/// A stopped server's database with one booking of `user`'s (Q1 09–10 tomorrow), read
/// back to model the batch's rows on. The `TestDb` keeps the database for the test.
async fn one_booking(backend: Backend, user: &str) -> Option<(TestDb, Db, Reservation)> {
    let app = TestApp::spawn(backend).await?;
    let token = app.user(user).await;
    let booked = body(app.reserve(&token, slot("Q1", 1, 9, 10)).await).await;
    let kept = app.stop().await;
    let db = kept.connect().await;
    let id: Uuid = booked["id"].as_str().unwrap().parse().unwrap();
    let reservation = db.reservation(id).await.unwrap().unwrap();
    Some((kept, db, reservation))
}

async fn a_batch_in_rounds_ends_as_if_applied_in_order(backend: Backend) {
    for direct in [false, true] {
        let Some((_kept, db, a)) = one_booking(backend, "rounds").await else {
            return;
        };
        let storage = engine_storage(backend, &db, direct).await;
        rounds_end_as_if_applied_in_order(&db, &storage, &a).await;
        if backend == Backend::Postgres && !direct {
            status_round_uses_the_primary_key_as_a_generic_plan(&db).await;
        }
        db.close().await;
    }
}

/// The batch of [`a_batch_in_rounds_ends_as_if_applied_in_order`], committed through
/// `storage` on a database holding `a`.
async fn rounds_end_as_if_applied_in_order(db: &Db, storage: &EngineStorage, a: &Reservation) {
    let user = a.user_id;
    use ReservationStatus::{Cancelled, CheckedIn, Completed, Confirmed};

    // In the batch's order: an insert on Q2, the cancel of A (Q1 09–10), an insert on
    // Q1 09–10 (only valid after that cancel), an insert then its own cancel, and two
    // changes of one row (an insert, then checked in, then completed).
    let b = booking(user, "Q2", a);
    let c = booking(user, "Q1", a);
    let d = booking(user, "Q3", a);
    let e = booking(user, "Q4", a);
    let batch = vec![
        create(&b),
        keyed(user, "key-b", &b),
        status(a, Confirmed, Cancelled),
        create(&c),
        keyed(user, "key-c", &c),
        create(&d),
        status(&d, Confirmed, Cancelled),
        create(&e),
        status(&e, Confirmed, CheckedIn),
        status(&e, CheckedIn, Completed),
    ];
    storage
        .commit(&batch)
        .await
        .expect("the batch commits in one transaction");
    let statuses = |r: &Reservation| {
        let id = r.id;
        async move { db.reservation(id).await.unwrap().map(|r| r.status) }
    };
    assert_eq!(statuses(a).await, Some(Cancelled));
    assert_eq!(statuses(&b).await, Some(Confirmed));
    assert_eq!(statuses(&c).await, Some(Confirmed));
    assert_eq!(statuses(&d).await, Some(Cancelled));
    assert_eq!(statuses(&e).await, Some(Completed));
    // The key records went in after the rows they point to, each pointing at its own.
    for (key, r) in [("key-b", &b), ("key-c", &c)] {
        let stored = db.idempotency_key(user, "reservations", key).await.unwrap();
        assert_eq!(stored.map(|k| k.created), Some(Created::Reservation(r.id)));
    }

    // An insert that overlaps a row still active is refused, whatever its place in the
    // batch, and the whole batch with it: the cancel of B does not free Q1.
    let f = booking(user, "Q5", a);
    let clash = booking(user, "Q1", a);
    let refused = vec![create(&f), status(&b, Confirmed, Cancelled), create(&clash)];
    assert!(storage.commit(&refused).await.is_err(), "Q1 is held by C");
    assert_eq!(statuses(&f).await, None, "nothing of a refused batch stays");
    assert_eq!(statuses(&b).await, Some(Confirmed));

    // A status change whose row is not in its expected status fails the batch.
    let stale = vec![create(&f), status(a, Confirmed, Cancelled)];
    let refused = storage
        .commit(&stale)
        .await
        .expect_err("A is already cancelled");
    assert!(
        refused.to_string().contains("not in the expected status"),
        "{refused}"
    );
    assert_eq!(statuses(&f).await, None);

    // A key already taken fails the batch, and the insert beside it with it.
    let g = booking(user, "Q6", a);
    let taken = vec![create(&g), keyed(user, "key-b", &g)];
    assert!(storage.commit(&taken).await.is_err(), "key-b is taken");
    assert_eq!(statuses(&g).await, None);
    let stored = db.idempotency_key(user, "reservations", "key-b").await;
    assert_eq!(
        stored.unwrap().map(|k| k.created),
        Some(Created::Reservation(b.id))
    );
    // And the storage still commits after its refusals.
    storage.commit(&[create(&g)]).await.expect("Q6 is free");
    assert_eq!(statuses(&g).await, Some(Confirmed));
}

/// 300 bookings and their keys in one batch: more rows than the largest statement
/// holds (256), so the batch goes out as a full statement and a padded one, and every
/// row reads back as it was written, key and all. Then all 300 cancelled in one batch.
async fn a_batch_longer_than_a_statement_goes_out_in_pieces(backend: Backend) {
    for direct in [false, true] {
        let Some((_kept, db, like)) = one_booking(backend, "pieces").await else {
            return;
        };
        let storage = engine_storage(backend, &db, direct).await;
        let user = like.user_id;
        let bookings: Vec<Reservation> = (1..=300)
            .map(|n| {
                let mut r = booking(user, "Q2", &like);
                // Stamps are stored to the microsecond.
                r.created_at =
                    DateTime::from_timestamp_micros(r.created_at.timestamp_micros()).unwrap();
                let shift = Duration::days(n);
                r.interval =
                    Interval::new(like.interval.start + shift, like.interval.end + shift).unwrap();
                r
            })
            .collect();
        let mut batch = Vec::new();
        for (n, r) in bookings.iter().enumerate() {
            batch.push(create(r));
            batch.push(keyed(user, &format!("piece-{n}"), r));
        }
        storage.commit(&batch).await.expect("300 bookings commit");
        for (n, r) in bookings.iter().enumerate() {
            let back = db.reservation(r.id).await.unwrap();
            assert_eq!(back.as_ref(), Some(r), "booking {n} (direct: {direct})");
            let key = format!("piece-{n}");
            let stored = db.idempotency_key(user, "reservations", &key).await;
            let created = stored.unwrap().map(|k| k.created);
            assert_eq!(created, Some(Created::Reservation(r.id)), "key {n}");
        }
        use ReservationStatus::{Cancelled, Confirmed};
        let cancels: Vec<Change> = bookings
            .iter()
            .map(|r| status(r, Confirmed, Cancelled))
            .collect();
        storage.commit(&cancels).await.expect("300 cancels commit");
        for r in &bookings {
            let back = db.reservation(r.id).await.unwrap().map(|r| r.status);
            assert_eq!(back, Some(Cancelled), "direct: {direct}");
        }
        db.close().await;
    }
}

/// The status round's statement, planned generically (as a prepared statement is after
/// a few executions), looks each row up by the primary key: it does not scan the table,
/// however many rows it holds.
async fn status_round_uses_the_primary_key_as_a_generic_plan(db: &pica::storage::Db) {
    let pica::storage::Db::Postgres(pool) = db else {
        unreachable!()
    };
    // Enough finished rows that a scan would be expensive, and fresh statistics.
    sqlx::raw_sql(
        "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
         status, created_at, updated_at) \
         SELECT gen_random_uuid(), r.user_id, r.seat_number, r.zone_id, \
         r.starts_at - make_interval(days => g), r.ends_at - make_interval(days => g), \
         'completed', now(), now() \
         FROM (SELECT * FROM reservations LIMIT 1) r, generate_series(1, 20000) g; \
         ANALYZE reservations;",
    )
    .execute(pool)
    .await
    .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let prepare = format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE statuses AS {}",
        pica::storage::SET_RESERVATION_STATUSES_PG
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(prepare))
        .execute(&mut *conn)
        .await
        .unwrap();
    let ids = format!("{{{},{}}}", Uuid::now_v7(), Uuid::now_v7());
    let explain = format!(
        "EXPLAIN EXECUTE statuses('{ids}', '{{confirmed,confirmed}}', \
         '{{cancelled,cancelled}}', '{{{now},{now}}}')",
        now = (Utc::now() - Duration::hours(1)).to_rfc3339()
    );
    let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    let plan = plan.join("\n");
    assert!(
        plan.contains(" on reservations_pkey"),
        "the generic plan does not look rows up by id:\n{plan}"
    );
    assert!(
        !plan.contains("Seq Scan on reservations"),
        "the generic plan scans the table:\n{plan}"
    );
    sqlx::raw_sql("DEALLOCATE statuses; RESET plan_cache_mode")
        .execute(&mut *conn)
        .await
        .unwrap();
}

/// PostgreSQL's `timestamptz` is decoded from its binary form by hand (microseconds from
/// 2000-01-01): times before and after that epoch, with and without microseconds, come
/// back exactly as stored (interval bounds are whole seconds; stamps keep microseconds).
async fn stored_times_come_back_exactly_on_either_side_of_2000(backend: Backend) {
    for direct in [false, true] {
        let Some((_kept, db, like)) = one_booking(backend, "epochs").await else {
            return;
        };
        let storage = engine_storage(backend, &db, direct).await;
        times_come_back_exactly(&db, &storage, &like).await;
        db.close().await;
    }
}

async fn times_come_back_exactly(db: &Db, storage: &EngineStorage, like: &Reservation) {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let cases = [
        (
            "1999-12-31T23:00:00Z",
            "2000-01-01T01:00:00Z",
            "1999-12-31T23:59:59.999999Z",
        ),
        (
            "1970-01-01T00:00:00Z",
            "1970-01-01T01:00:00Z",
            "1969-12-31T23:59:59.000001Z",
        ),
        (
            "2000-01-01T00:00:00Z",
            "2000-01-01T00:00:01Z",
            "2000-01-01T00:00:00.000001Z",
        ),
        (
            "2099-06-30T22:00:00Z",
            "2099-07-01T02:00:00Z",
            "2087-03-04T05:06:07.123456Z",
        ),
    ];
    let mut stored = Vec::new();
    for (i, (start, end, created)) in cases.iter().enumerate() {
        let mut r = booking(like.user_id, &format!("Q{}", i + 2), like);
        r.interval = Interval::new(at(start), at(end)).unwrap();
        r.created_at = at(created);
        r.status = ReservationStatus::Completed;
        storage.commit(&[create(&r)]).await.expect("stored");
        stored.push(r);
    }
    for r in &stored {
        let back = db.reservation(r.id).await.unwrap().expect("read back");
        assert_eq!(back.interval, r.interval, "{}", r.seat.0);
        assert_eq!(back.created_at, r.created_at, "{}", r.seat.0);
    }
}

/// An in-memory SQLite database has no file a second connection could open, so the
/// unit of work writes it through sqlx alone, and still commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_database_has_no_direct_writer_and_commits_through_sqlx() {
    let db = Db::connect("sqlite::memory:", 1).await.expect("in memory");
    db.migrate().await.expect("migrated");
    let writer = db.writer(1).await.expect("the writer's connection");
    let storage = EngineStorage::new(db.clone(), writer, 1, None)
        .with_sqlite_direct_writer(true)
        .await
        .expect("no direct writer to open");
    assert!(!storage.writes_directly());
    // An empty batch of booking writes: the storage takes it without a direct writer.
    storage.commit(&[]).await.expect("commits through sqlx");
}
