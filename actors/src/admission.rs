//! Admission control: every queue a request can wait in has a bound, and a request that
//! would go past it is refused at once with [`EngineError::Overloaded`] instead of
//! waiting. ractor mailboxes are unbounded, so the bounds are counters kept beside them.
//!
//! * Each zone actor and the book stock actor has a [`Gate`] owned by the
//!   [`Engine`](crate::Engine) handle: a [`Pass`] is taken before the request is sent
//!   and given back when its answer arrives, times out, or the actor dies (the pass is
//!   dropped with the edge's future either way). It therefore counts what waits in the
//!   mailbox *and* what waits for its commit, which is what a client's latency is made
//!   of.
//! * The unit of work's queue has one gate shared by every actor that submits to it.
//!   An actor takes a pass after deciding a client's write and before changing
//!   anything; refused, it undoes nothing because it did nothing. The pass travels with
//!   the intent and is given back when the intent leaves the queue for a transaction
//!   (or is dropped with a dead unit of work). The engine's own writes (sweeps,
//!   expiries, admin changes) are counted but never refused here.
//!
//! Refusing is cheap: one compare-and-swap, no message, no allocation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A bounded count of requests in one queue.
#[derive(Debug)]
pub struct Gate {
    limit: usize,
    in_flight: AtomicUsize,
    admitted: AtomicU64,
    refused: AtomicU64,
}

impl Gate {
    pub fn new(limit: usize) -> Arc<Gate> {
        Arc::new(Gate {
            limit: limit.max(1),
            in_flight: AtomicUsize::new(0),
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    /// A pass if fewer than `limit` are in; otherwise `None` (and the refusal counts).
    pub fn try_enter(self: &Arc<Self>) -> Option<Pass> {
        let entered = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            });
        match entered {
            Ok(_) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                Some(Pass(self.clone()))
            }
            Err(_) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// A pass even past the limit: for the engine's own work, which must not be lost
    /// but still occupies the queue.
    pub fn enter(self: &Arc<Self>) -> Pass {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        Pass(self.clone())
    }

    pub fn snapshot(&self) -> GateStats {
        GateStats {
            limit: self.limit,
            in_flight: self.in_flight.load(Ordering::Acquire),
            admitted: self.admitted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

/// One request inside a [`Gate`]; dropping it lets the next one in.
#[derive(Debug)]
#[must_use = "the request leaves the queue when the pass is dropped"]
pub struct Pass(Arc<Gate>);

impl Drop for Pass {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A gate's counters, for `/metrics` and the admin zone stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct GateStats {
    pub limit: usize,
    /// Requests inside now.
    pub in_flight: usize,
    /// Let in since the engine started.
    pub admitted: u64,
    /// Refused with 503 since the engine started.
    pub refused: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_and_lets_in_again_when_a_pass_is_dropped() {
        let gate = Gate::new(2);
        let a = gate.try_enter().expect("first");
        let _b = gate.try_enter().expect("second");
        assert!(gate.try_enter().is_none());
        assert_eq!(gate.snapshot().refused, 1);
        assert_eq!(gate.snapshot().in_flight, 2);
        drop(a);
        let _c = gate.try_enter().expect("a place was freed");
        // The engine's own work is counted but never refused.
        let forced = gate.enter();
        assert_eq!(gate.snapshot().in_flight, 3);
        assert!(gate.try_enter().is_none());
        drop(forced);
        assert_eq!(
            gate.snapshot(),
            GateStats {
                limit: 2,
                in_flight: 2,
                admitted: 4,
                refused: 2
            }
        );
    }
}

/// The bounds at work in a running engine, with a storage whose commits stall until the
/// test releases them (a database that has stopped keeping up).
#[cfg(test)]
mod engine_tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use tokio::sync::watch;

    use crate::domain::{
        Book, BookCondition, BookReservationStatus, Interval, Reservation, ReservationStatus,
        ReserveRequest, SeatLayout, SeatNumber, SeatService, ZoneId, ZoneLayout,
    };
    use crate::error::EngineError;
    use crate::storage::{Change, Storage, StorageError};
    use crate::{Engine, EngineConfig, SystemClock};

    use super::*;

    struct Stalling {
        stalled: watch::Sender<bool>,
        /// Transactions begun (including ones now stalled).
        begun: AtomicUsize,
        committed: Mutex<Vec<Change>>,
    }

    impl Stalling {
        fn new() -> Arc<Stalling> {
            Arc::new(Stalling {
                stalled: watch::channel(false).0,
                begun: AtomicUsize::new(0),
                committed: Mutex::new(Vec::new()),
            })
        }

        fn stall(&self) {
            self.stalled.send_replace(true);
        }

        fn release(&self) {
            self.stalled.send_replace(false);
        }

        fn begun(&self) -> usize {
            self.begun.load(Ordering::SeqCst)
        }

        /// The seats of every committed create, sorted (concurrent requests commit in
        /// either order).
        fn created(&self) -> Vec<SeatNumber> {
            let committed = self.committed.lock().unwrap();
            let mut seats: Vec<SeatNumber> = committed
                .iter()
                .filter_map(|c| match c {
                    Change::CreateReservation { reservation, .. } => Some(reservation.seat.clone()),
                    _ => None,
                })
                .collect();
            seats.sort();
            seats
        }
    }

    #[async_trait]
    impl Storage for Stalling {
        async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
            Ok(vec![ZoneLayout {
                id: zone(),
                name: "Quiet".into(),
                kind: "quiet".into(),
                seats: (1..=6)
                    .map(|i| SeatLayout {
                        number: seat(i),
                        service: SeatService::InService,
                        spot: Default::default(),
                    })
                    .collect(),
            }])
        }

        async fn load_active_reservations(
            &self,
            _zone: &ZoneId,
            _now: DateTime<Utc>,
        ) -> Result<Vec<Reservation>, StorageError> {
            Ok(Vec::new())
        }

        async fn load_books(&self) -> Result<Vec<Book>, StorageError> {
            Ok(vec![Book {
                id: 1,
                title: "Dune".into(),
                author: "Frank Herbert".into(),
                isbn: None,
                condition: BookCondition::New,
                total_copies: 10,
                reserved_copies: 0,
                price_cents: None,
            }])
        }

        async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
            self.begun.fetch_add(1, Ordering::SeqCst);
            let mut stalled = self.stalled.subscribe();
            let _ = stalled.wait_for(|s| !*s).await;
            self.committed.lock().unwrap().extend_from_slice(changes);
            Ok(())
        }
    }

    fn zone() -> ZoneId {
        ZoneId("quiet".into())
    }

    fn seat(i: u32) -> SeatNumber {
        SeatNumber(format!("Q{i}"))
    }

    fn request(user: i64, i: u32) -> ReserveRequest {
        let start = Utc::now() + chrono::Duration::days(1);
        ReserveRequest {
            user_id: user,
            seat: seat(i),
            interval: Interval::new(start, start + chrono::Duration::hours(2)).unwrap(),
            idempotency_key: None,
        }
    }

    async fn start(storage: Arc<Stalling>, config: EngineConfig) -> Engine {
        let config = EngineConfig {
            per_user_limit: 1,
            ..config
        };
        let engine = Engine::start(storage, Arc::new(SystemClock), config)
            .await
            .expect("engine starts")
            .0;
        engine.loaded().await;
        engine
    }

    /// Polls until `condition` holds; panics after 5 s.
    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !condition() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn zone_gate(engine: &Engine) -> GateStats {
        engine
            .admission()
            .zones
            .into_iter()
            .find(|(z, _)| *z == zone())
            .expect("the zone has a gate")
            .1
    }

    async fn held(engine: &Engine) -> crate::zone::ZoneStats {
        engine.zone_stats().await[0].1.clone().expect("stats")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_zone_refuses_at_once_and_the_admitted_succeed_after_release() {
        let storage = Stalling::new();
        let engine = start(
            storage.clone(),
            EngineConfig {
                zone_queue_limit: 2,
                ..EngineConfig::default()
            },
        )
        .await;
        storage.stall();
        let first = tokio::spawn({
            let engine = engine.clone();
            async move { engine.reserve(request(1, 1)).await }
        });
        let second = tokio::spawn({
            let engine = engine.clone();
            async move { engine.reserve(request(2, 2)).await }
        });
        until("both reserves to be in flight at the zone", || {
            zone_gate(&engine).in_flight == 2
        })
        .await;

        // Past the bound: refused before anything is sent, reads included.
        assert_eq!(
            engine.reserve(request(3, 3)).await,
            Err(EngineError::Overloaded)
        );
        let day = request(3, 3).interval;
        assert_eq!(
            engine.availability(&zone(), day).await.unwrap_err(),
            EngineError::Overloaded
        );
        // Admin stats still get through, and the refused reserve left nothing held.
        let stats = held(&engine).await;
        assert_eq!(stats.held, 2);
        assert_eq!(stats.reserve_requests, 2);
        assert_eq!(zone_gate(&engine).refused, 2);

        storage.release();
        assert_eq!(first.await.unwrap().unwrap().seat, seat(1));
        assert_eq!(second.await.unwrap().unwrap().seat, seat(2));
        assert_eq!(zone_gate(&engine).in_flight, 0);
        until("the commit queue to drain", || {
            engine.admission().commit.in_flight == 0
        })
        .await;

        // The refused user and seat were never claimed: the same request now succeeds.
        let third = engine.reserve(request(3, 3)).await.unwrap();
        assert_eq!(third.status, ReservationStatus::Confirmed);
        assert_eq!(storage.created(), vec![seat(1), seat(2), seat(3)]);
        assert_eq!(zone_gate(&engine).in_flight, 0);
        assert_eq!(zone_gate(&engine).refused, 2);
        engine.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_commit_queue_refuses_at_the_zone_with_nothing_left_pending() {
        let storage = Stalling::new();
        let engine = start(
            storage.clone(),
            EngineConfig {
                max_queue: 2,
                ..EngineConfig::default()
            },
        )
        .await;
        // A reservation committed before the database stalls, to cancel later.
        let kept = engine.reserve(request(10, 6)).await.unwrap();
        let before = storage.begun();
        storage.stall();

        // One write takes the transaction (and leaves the queue), two fill the queue.
        let mut admitted = Vec::new();
        let spawn = |user, i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.reserve(request(user, i)).await })
        };
        admitted.push(spawn(1, 1));
        until("the first write to be in a stalled transaction", || {
            storage.begun() == before + 1 && engine.admission().commit.in_flight == 0
        })
        .await;
        admitted.push(spawn(2, 2));
        admitted.push(spawn(3, 3));
        until("two writes to wait in the commit queue", || {
            engine.admission().commit.in_flight == 2
        })
        .await;

        // Refused by the zone before it claims or marks anything.
        assert_eq!(
            engine.reserve(request(4, 4)).await,
            Err(EngineError::Overloaded)
        );
        assert_eq!(
            engine
                .change_status(&zone(), kept.id, 10, ReservationStatus::Cancelled)
                .await,
            Err(EngineError::Overloaded)
        );
        // Reads do not queue a write, so they still get through.
        assert!(engine.live(&zone()).await.is_ok());
        let stats = held(&engine).await;
        assert_eq!((stats.overloaded, stats.held), (2, 4));
        assert_eq!(engine.admission().commit.refused, 2);

        storage.release();
        for (i, reserve) in admitted.into_iter().enumerate() {
            assert_eq!(reserve.await.unwrap().unwrap().seat, seat(i as u32 + 1));
        }
        // Nothing was left pending: the refused user gets the refused seat, and the
        // refused cancel goes through (it would be `ChangeInProgress` otherwise).
        assert_eq!(engine.reserve(request(4, 4)).await.unwrap().seat, seat(4));
        let cancelled = engine
            .change_status(&zone(), kept.id, 10, ReservationStatus::Cancelled)
            .await
            .unwrap();
        assert_eq!(cancelled.status, ReservationStatus::Cancelled);
        assert_eq!(
            storage.created(),
            vec![seat(1), seat(2), seat(3), seat(4), seat(6)]
        );
        until("every gate to be empty", || {
            let a = engine.admission();
            a.commit.in_flight == 0 && a.books.in_flight == 0 && zone_gate_of(&a) == 0
        })
        .await;
        engine.shutdown().await;
    }

    fn zone_gate_of(a: &crate::engine::AdmissionStats) -> usize {
        a.zones[0].1.in_flight
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_book_actor_or_commit_queue_refuses_book_writes_cleanly() {
        let storage = Stalling::new();
        let engine = start(
            storage.clone(),
            EngineConfig {
                book_queue_limit: 2,
                max_queue: 1,
                ..EngineConfig::default()
            },
        )
        .await;
        let kept = engine.reserve_book(7, 1, 2, None).await.unwrap();
        let reserve_book = |user| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.reserve_book(user, 1, 1, None).await })
        };
        let reserve = |user, i| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.reserve(request(user, i)).await })
        };

        // The book actor's bound: one write in a stalled transaction, one queued.
        storage.stall();
        let begun = storage.begun();
        let first = reserve_book(1);
        until("a book write to be in a stalled transaction", || {
            storage.begun() == begun + 1 && engine.admission().commit.in_flight == 0
        })
        .await;
        let second = reserve_book(2);
        until("the book actor to be full", || {
            let a = engine.admission();
            a.books.in_flight == 2 && a.commit.in_flight == 1
        })
        .await;
        assert_eq!(
            engine.reserve_book(3, 1, 1, None).await,
            Err(EngineError::Overloaded)
        );
        assert_eq!(engine.admission().books.refused, 1);
        storage.release();
        assert_eq!(first.await.unwrap().unwrap().copies, 1);
        assert_eq!(second.await.unwrap().unwrap().copies, 1);

        // The commit queue's bound, with the book actor idle: zone writes fill it.
        storage.stall();
        let begun = storage.begun();
        let in_transaction = reserve(5, 5);
        until("a seat write to be in a stalled transaction", || {
            storage.begun() == begun + 1 && engine.admission().commit.in_flight == 0
        })
        .await;
        let queued = reserve(6, 4);
        until("the commit queue to be full", || {
            engine.admission().commit.in_flight == 1
        })
        .await;
        assert_eq!(
            engine.reserve_book(3, 1, 1, None).await,
            Err(EngineError::Overloaded)
        );
        let refused = engine
            .change_book_reservation(kept.id, Some(7), BookReservationStatus::Cancelled)
            .await;
        assert_eq!(refused, Err(EngineError::Overloaded));
        let a = engine.admission();
        assert_eq!((a.books.refused, a.commit.refused), (1, 2));
        storage.release();
        assert!(in_transaction.await.unwrap().is_ok());
        assert!(queued.await.unwrap().is_ok());

        // The refused cancel left nothing pending (it would be `ChangeInProgress`), and
        // the refused reserve took no copies.
        let cancelled = engine
            .change_book_reservation(kept.id, Some(7), BookReservationStatus::Cancelled)
            .await
            .unwrap();
        assert_eq!(cancelled.status, BookReservationStatus::Cancelled);
        let book = engine.book(1).await.unwrap().unwrap();
        assert_eq!(
            (book.book.reserved_copies, book.available_copies),
            (2, 8),
            "{book:?}"
        );
        until("every gate to be empty", || {
            let a = engine.admission();
            a.commit.in_flight == 0 && a.books.in_flight == 0 && zone_gate_of(&a) == 0
        })
        .await;
        engine.shutdown().await;
    }
}
