//! The engine's first start: zones serve as they load, and new bookings wait for the
//! last one, since the user ledger does not know every member's time before then.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::{
    Interval, Reservation, ReservationStatus, ReserveRequest, SeatLayout, SeatNumber, SeatService,
    ZoneId, ZoneLayout,
};
use crate::error::EngineError;
use crate::projection::Scope;
use crate::storage::{Change, Storage, StorageError};
use crate::waitlist::{WaitStatus, WaitlistEntry};
use crate::{Engine, EngineConfig, SystemClock};

/// Two zones, "quiet" and "cafe", one reservation in each; the cafe's load waits until
/// [`release_cafe`](Self::release_cafe) and, if asked, fails once first.
struct SlowCafe {
    /// While true, loading the cafe's reservations waits.
    cafe_held: watch::Sender<bool>,
    /// The cafe's next load fails (then this turns false).
    fail_once: AtomicBool,
    quiet_booking: Reservation,
    cafe_booking: Reservation,
    /// Member 3 waits for any quiet seat at 6-7 (all are free then).
    quiet_waiter: WaitlistEntry,
    committed: Mutex<Vec<Change>>,
    /// Counts commits, to wait for one.
    commits: watch::Sender<usize>,
}

fn quiet() -> ZoneId {
    ZoneId("quiet".into())
}

fn cafe() -> ZoneId {
    ZoneId("cafe".into())
}

fn seat(number: &str) -> SeatNumber {
    SeatNumber(number.into())
}

/// From `from` to `to` hours after one fixed moment a day from now (whole seconds).
fn tomorrow(from: i64, to: i64) -> Interval {
    static DAY: OnceLock<DateTime<Utc>> = OnceLock::new();
    let day = *DAY.get_or_init(|| (Utc::now() + Duration::days(1)).trunc_subsecs(0));
    Interval::new(day + Duration::hours(from), day + Duration::hours(to)).unwrap()
}

fn booking(user_id: i64, zone: ZoneId, seat: SeatNumber, interval: Interval) -> Reservation {
    Reservation {
        id: Uuid::now_v7(),
        user_id,
        seat,
        zone,
        interval,
        status: ReservationStatus::Confirmed,
        created_at: Utc::now(),
        series: None,
    }
}

impl SlowCafe {
    fn new(fail_once: bool) -> Arc<SlowCafe> {
        Arc::new(SlowCafe {
            cafe_held: watch::channel(true).0,
            fail_once: AtomicBool::new(fail_once),
            quiet_booking: booking(1, quiet(), seat("Q1"), tomorrow(1, 3)),
            cafe_booking: booking(2, cafe(), seat("C1"), tomorrow(1, 3)),
            quiet_waiter: WaitlistEntry {
                id: Uuid::now_v7(),
                user_id: 3,
                zone: quiet(),
                interval: tomorrow(6, 7),
                status: WaitStatus::Waiting,
                hold: None,
                reservation_id: None,
                created_at: Utc::now(),
            },
            committed: Mutex::new(Vec::new()),
            commits: watch::channel(0).0,
        })
    }

    fn release_cafe(&self) {
        self.cafe_held.send_replace(false);
    }
}

#[async_trait]
impl Storage for SlowCafe {
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
        let zone = |id: ZoneId, seats: [&str; 2]| ZoneLayout {
            name: id.0.clone(),
            kind: id.0.clone(),
            id,
            seats: seats
                .iter()
                .map(|n| SeatLayout {
                    number: seat(n),
                    service: SeatService::InService,
                    spot: Default::default(),
                })
                .collect(),
        };
        Ok(vec![
            zone(quiet(), ["Q1", "Q2"]),
            zone(cafe(), ["C1", "C2"]),
        ])
    }

    async fn load_active_reservations(
        &self,
        zone: &ZoneId,
        _now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        if *zone == quiet() {
            return Ok(vec![self.quiet_booking.clone()]);
        }
        let mut held = self.cafe_held.subscribe();
        let _ = held.wait_for(|held| !*held).await;
        if self.fail_once.swap(false, Ordering::SeqCst) {
            return Err(StorageError::Unavailable("the cafe's disk hiccuped".into()));
        }
        Ok(vec![self.cafe_booking.clone()])
    }

    async fn load_open_waitlist(&self, zone: &ZoneId) -> Result<Vec<WaitlistEntry>, StorageError> {
        Ok(if *zone == quiet() {
            vec![self.quiet_waiter.clone()]
        } else {
            Vec::new()
        })
    }

    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        self.committed.lock().unwrap().extend_from_slice(changes);
        self.commits.send_modify(|n| *n += 1);
        Ok(())
    }
}

async fn start(storage: Arc<SlowCafe>) -> Engine {
    Engine::start(storage, Arc::new(SystemClock), EngineConfig::default())
        .await
        .expect("engine starts")
        .0
}

fn reserve(user_id: i64, seat_number: &str, interval: Interval) -> ReserveRequest {
    ReserveRequest {
        user_id,
        seat: seat(seat_number),
        interval,
        idempotency_key: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_zone_serves_while_another_loads_and_bookings_wait_for_the_last() {
    let storage = SlowCafe::new(false);
    let engine = start(storage.clone()).await;
    assert!(!engine.is_loaded());
    assert!(!engine.is_ready());

    // The quiet zone comes up on its own (the cafe is held): it answers reads ...
    let quiet_up = async {
        loop {
            match engine.availability(&quiet(), tomorrow(0, 4)).await {
                Ok(free) => return free,
                Err(EngineError::Unavailable) => tokio::task::yield_now().await,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
    };
    let free = tokio::time::timeout(std::time::Duration::from_secs(5), quiet_up)
        .await
        .expect("the quiet zone comes up while the cafe is held");
    let q1 = free.iter().find(|(s, _, _)| *s == seat("Q1")).unwrap();
    assert!(
        !q1.2.contains(&tomorrow(0, 4)),
        "Q1's stored booking was loaded"
    );

    // ... but not a new booking: member 2 holds the cafe's C1 at 1-3, which the ledger
    // cannot know yet, so Q2 at 2-4 would double-book them.
    assert_eq!(
        engine.reserve(reserve(2, "Q2", tomorrow(2, 4))).await,
        Err(EngineError::Starting)
    );
    // The cafe itself is not up, and no event stream opens on half a space.
    assert_eq!(
        engine.reserve(reserve(3, "C2", tomorrow(5, 6))).await,
        Err(EngineError::Unavailable)
    );
    assert!(matches!(
        engine.open_events(None, Scope::Public { zone: None }).await,
        Err(EngineError::Starting)
    ));
    // A change to a booking of the loaded zone is served: member 1 cancels.
    let cancelled = engine
        .change_status_anywhere(storage.quiet_booking.id, 1, ReservationStatus::Cancelled)
        .await
        .expect("a cancel in a loaded zone is served");
    assert_eq!(cancelled.status, ReservationStatus::Cancelled);
    assert!(!engine.is_loaded());

    storage.release_cafe();
    engine.loaded().await;
    assert!(engine.is_ready());
    // Now the ledger knows member 2's cafe booking ...
    assert_eq!(
        engine.reserve(reserve(2, "Q2", tomorrow(2, 4))).await,
        Err(EngineError::UserOverlap {
            conflict: tomorrow(1, 3)
        })
    );
    // ... and takes bookings again.
    let made = engine
        .reserve(reserve(2, "Q2", tomorrow(4, 5)))
        .await
        .expect("booking once loaded");
    assert_eq!(made.zone, quiet());
    assert!(
        engine
            .open_events(None, Scope::Public { zone: None })
            .await
            .is_ok()
    );
    let creates = storage
        .committed
        .lock()
        .unwrap()
        .iter()
        .filter(|c| matches!(c, Change::CreateReservation { .. }))
        .count();
    assert_eq!(creates, 1, "only the booking made after loading was stored");

    // The waiting member's hold could not be offered while loading (it claims their
    // time); the sweep every zone runs once all are in offers it, with no scheduler.
    let offered = |storage: &SlowCafe| {
        storage.committed.lock().unwrap().iter().any(|c| {
            matches!(c, Change::UpdateWaitlistEntry { entry, .. }
                if entry.id == storage.quiet_waiter.id && entry.status == WaitStatus::Offered)
        })
    };
    let mut commits = storage.commits.subscribe();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        commits.wait_for(|_| offered(&storage)),
    )
    .await
    .expect("the hold is offered once every zone has loaded")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_whose_first_load_fails_is_retried_until_it_loads() {
    let storage = SlowCafe::new(true);
    storage.release_cafe();
    let engine = start(storage.clone()).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), engine.loaded())
        .await
        .expect("the cafe loads on a retry");
    assert!(
        !storage.fail_once.load(Ordering::SeqCst),
        "the first load failed"
    );
    assert!(engine.is_ready());
    // The retry loaded the cafe's claims like a first start would have.
    assert_eq!(
        engine.reserve(reserve(2, "Q2", tomorrow(2, 4))).await,
        Err(EngineError::UserOverlap {
            conflict: tomorrow(1, 3)
        })
    );
}
