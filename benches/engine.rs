//! Micro-benchmarks of the engine (`cargo bench --bench engine`):
//!
//! * `zone_state/*`: the pure zone state machine (decide, settle, cancel, views) on a
//!   zone already holding a month of reservations;
//! * `zone_actor/*`: one message round-trip through a zone actor's mailbox, and a full
//!   reserve + cancel through the zone actor and the unit of work (storage that does
//!   nothing, so only the actors are measured);
//! * `uow_commit/{sqlite,postgres}/N`: the unit of work's commit of a batch of N new
//!   reservations in one durable transaction (N = 1, 10, 100, 1000). PostgreSQL runs
//!   when `PICA_BENCH_DATABASE_URL` names a server (scripts/bench sets it).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pica::storage::{Db, NewUser, Role};
use pica_actors::zone_state::ZoneState;
use pica_actors::{
    Change, Engine, EngineConfig, Interval, Reservation, ReservationStatus, ReserveRequest,
    SeatLayout, SeatNumber, SeatService, Storage, StorageError, SystemClock, ZoneId, ZoneLayout,
};
use tokio::runtime::Runtime;
use uuid::Uuid;

const SEATS: usize = 20;

fn seat(i: usize) -> SeatNumber {
    SeatNumber(format!("A{}", i % SEATS + 1))
}

fn layout() -> Vec<SeatLayout> {
    (0..SEATS)
        .map(|i| SeatLayout {
            number: seat(i),
            service: SeatService::InService,
            spot: Default::default(),
        })
        .collect()
}

/// Day `d` (from a fixed far-future base), local hours `[from, to)` as UTC.
fn interval(d: i64, from: i64, to: i64) -> Interval {
    let base = Utc.with_ymd_and_hms(2040, 1, 1, 0, 0, 0).unwrap();
    let at = |h: i64| base + chrono::Duration::days(d) + chrono::Duration::minutes(h * 30);
    Interval::new(at(from), at(to)).unwrap()
}

fn reservation(user: i64, seat: SeatNumber, interval: Interval) -> Reservation {
    Reservation {
        id: Uuid::now_v7(),
        user_id: user,
        seat,
        zone: ZoneId("coworking".into()),
        interval,
        status: ReservationStatus::Confirmed,
        created_at: Utc::now(),
        series: None,
    }
}

/// A zone whose 20 seats each hold 30 days × 7 two-hour reservations (4,200 in all),
/// leaving the last slot of each day free.
fn busy_zone() -> ZoneState {
    let mut held = Vec::new();
    for s in 0..SEATS {
        for d in 0..30 {
            for k in 0..7 {
                held.push(reservation(
                    s as i64,
                    seat(s),
                    interval(d, k * 4, k * 4 + 4),
                ));
            }
        }
    }
    ZoneState::new(ZoneId("coworking".into()), &layout(), held)
}

fn zone_state(c: &mut Criterion) {
    let mut g = c.benchmark_group("zone_state");
    let mut zone = busy_zone();
    let free = interval(15, 28, 29);
    let taken = interval(15, 5, 7);
    let a7 = seat(6);
    g.bench_function("check_create/free", |b| {
        b.iter(|| black_box(zone.check_create(black_box(&a7), black_box(&free))))
    });
    g.bench_function("check_create/taken", |b| {
        b.iter(|| black_box(zone.check_create(black_box(&a7), black_box(&taken))))
    });
    let cancel_from = [ReservationStatus::Confirmed];
    g.bench_function("reserve_settle_cancel", |b| {
        b.iter(|| {
            let r = reservation(99, a7.clone(), free);
            let id = r.id;
            zone.check_create(&r.seat, &r.interval).unwrap();
            zone.apply_create(r.clone());
            zone.settle_create(r);
            zone.begin_status_change(&id, 99, &cancel_from, ReservationStatus::Cancelled)
                .unwrap();
            zone.settle_status_change(&id, ReservationStatus::Cancelled);
        })
    });
    let day = interval(15, 0, 28);
    g.bench_function("free_intervals/one_day_20_seats", |b| {
        b.iter(|| black_box(zone.free_intervals(black_box(&day))))
    });
    g.bench_function("rebuild/4200_reservations", |b| {
        b.iter_batched(
            || zone.reservations().collect::<Vec<_>>(),
            |held| ZoneState::new(ZoneId("coworking".into()), &layout(), held),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Storage that stores nothing: only the actors are measured.
struct NullStorage;

#[async_trait]
impl Storage for NullStorage {
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
        Ok(vec![ZoneLayout {
            id: ZoneId("coworking".into()),
            name: "Coworking".into(),
            kind: "coworking".into(),
            seats: layout(),
        }])
    }

    async fn load_active_reservations(
        &self,
        _zone: &ZoneId,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        Ok(Vec::new())
    }

    async fn commit(&self, _changes: &[Change]) -> Result<(), StorageError> {
        Ok(())
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn zone_actor(c: &mut Criterion) {
    let rt = runtime();
    let (engine, _task) = rt
        .block_on(Engine::start(
            Arc::new(NullStorage),
            Arc::new(SystemClock),
            EngineConfig::default(),
        ))
        .unwrap();
    rt.block_on(engine.loaded());
    let zone = ZoneId("coworking".into());
    let mut g = c.benchmark_group("zone_actor");
    let day = interval(3, 0, 28);
    g.bench_function("availability_round_trip", |b| {
        b.iter(|| rt.block_on(engine.availability(&zone, day)).unwrap())
    });
    g.bench_function("live_round_trip", |b| {
        b.iter(|| rt.block_on(engine.live(&zone)).unwrap())
    });
    let slot = interval(3, 10, 12);
    g.bench_function("reserve_and_cancel_via_unit_of_work", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = engine
                    .reserve(ReserveRequest {
                        user_id: 1,
                        seat: seat(0),
                        interval: slot,
                        idempotency_key: None,
                    })
                    .await
                    .unwrap();
                engine
                    .change_status(&zone, r.id, 1, ReservationStatus::Cancelled)
                    .await
                    .unwrap();
            })
        })
    });
    // 64 clients at once: the zone decides in memory and the unit of work groups
    // their commits.
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_concurrent_reserves", |b| {
        let day = AtomicI64::new(0);
        b.iter(|| {
            let d = day.fetch_add(1, Ordering::Relaxed) % 28 + 1;
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..64usize {
                    let engine = engine.clone();
                    tasks.spawn(async move {
                        let r = engine
                            .reserve(ReserveRequest {
                                user_id: 1000 + i as i64,
                                seat: seat(i % SEATS),
                                interval: interval(
                                    d,
                                    (i / SEATS) as i64 * 4,
                                    (i / SEATS) as i64 * 4 + 2,
                                ),
                                idempotency_key: None,
                            })
                            .await
                            .unwrap();
                        engine
                            .change_status(&r.zone, r.id, r.user_id, ReservationStatus::Cancelled)
                            .await
                            .unwrap();
                    });
                }
                while tasks.join_next().await.is_some() {}
            })
        })
    });
    g.finish();
    rt.block_on(engine.shutdown());
}

/// A migrated, seeded database with one user; returns it and the user's id.
async fn prepared(url: &str) -> (Db, i64) {
    let db = Db::connect(url, 2).await.expect("connect");
    db.migrate().await.expect("migrate");
    db.seed_if_empty().await.expect("seed");
    let name = format!("bench{}", Uuid::now_v7().simple());
    let user = db
        .create_user(NewUser {
            username: &name,
            email: "bench@example.com",
            password_hash: "x",
            role: Role::Member,
            created_at: Utc::now(),
        })
        .await
        .expect("user");
    (db, user)
}

/// `n` new reservations, each on its own (seat, slot), never overlapping anything
/// committed before: slots walk forward in time from a base unique to this run.
fn batch(n: usize, user: i64, next: &AtomicI64, base_day: i64) -> Vec<Change> {
    (0..n)
        .map(|_| {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let s = (k as usize) % SEATS;
            let slot = k / SEATS as i64;
            let iv = interval(base_day + slot / 28, slot % 28, slot % 28 + 1);
            Change::CreateReservation {
                reservation: reservation(user, seat(s), iv),
            }
        })
        .collect()
}

fn uow_commit(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}", dir.path().join("bench.db").display()),
    )];
    if let Ok(url) = std::env::var("PICA_BENCH_DATABASE_URL") {
        targets.push(("postgres", url));
    }
    let mut g = c.benchmark_group("uow_commit");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(4));
    for (name, url) in targets {
        let (db, user) = rt.block_on(prepared(&url));
        // Each run starts at a fresh far-future day so reruns on one database never
        // overlap earlier rows.
        let base_day = Utc::now().timestamp() % 1_000_000;
        let next = AtomicI64::new(0);
        for n in [1usize, 10, 100, 1000] {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.iter_batched(
                    || batch(n, user, &next, base_day),
                    |changes| rt.block_on(db.commit(&changes)).unwrap(),
                    BatchSize::PerIteration,
                )
            });
        }
        if let Db::Sqlite(pool) = &db {
            // The previous commit, one INSERT per change, for comparison.
            for n in [1usize, 10, 100, 1000] {
                g.throughput(Throughput::Elements(n as u64));
                g.bench_with_input(BenchmarkId::new("sqlite_row_by_row", n), &n, |b, &n| {
                    b.iter_batched(
                        || batch(n, user, &next, base_day),
                        |changes| rt.block_on(row_by_row(pool, &changes)).unwrap(),
                        BatchSize::PerIteration,
                    )
                });
            }
        }
        rt.block_on(db.close());
    }
    g.finish();
}

async fn row_by_row(pool: &sqlx::SqlitePool, changes: &[Change]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for change in changes {
        if let Change::CreateReservation { reservation: r } = change {
            sqlx::query(
                "INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, \
                 status, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.id)
            .bind(r.user_id)
            .bind(&r.seat.0)
            .bind(&r.zone.0)
            .bind(r.interval.start.timestamp())
            .bind(r.interval.end.timestamp())
            .bind(r.status.as_str())
            .bind(r.created_at.timestamp_micros())
            .bind(r.created_at.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

criterion_group!(benches, zone_state, zone_actor, uow_commit);
criterion_main!(benches);
