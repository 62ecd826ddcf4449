//! The handle the HTTP edge uses: it routes each request to the right actor, refuses
//! it with [`EngineError::Overloaded`] when that actor already has its bound of
//! requests in flight (see [`crate::admission`]), and turns mailbox and timeout
//! failures into [`EngineError::Unavailable`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, MessagingErr};
use tokio::task::JoinHandle;

use crate::admission::{Gate, GateStats, Pass};
use crate::book_stock::{BookMsg, BookSlot};
use crate::clock::Clock;
use crate::domain::{
    Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest, SeatLayout,
    SeatNumber, SeatService, UserId, ZoneId, ZoneLayout,
};
use crate::error::EngineError;
use crate::notifier::{NotifierMsg, Subscription};
use crate::storage::{Storage, StorageError};
use crate::supervisor::{Directory, EngineSupervisor, SupervisorArgs, SupervisorMsg};
use crate::user_ledger::UserLedger;
use crate::zone::{FreeIntervals, ZoneMsg};
use crate::zone_state::SeatView;

/// Limits of the engine. Everything that queues has a bound.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Maximum active reservations per user (docs/architecture.md, invariant 2).
    pub per_user_limit: usize,
    /// How long the edge waits for any actor's answer.
    pub rpc_timeout: Duration,
    /// Most intents committed in one transaction.
    pub max_batch: usize,
    /// Most intents waiting for the unit of work before clients' writes are refused.
    pub max_queue: usize,
    /// Most requests in flight at one zone actor (in its mailbox or waiting for their
    /// commit) before new ones are refused.
    pub zone_queue_limit: usize,
    /// Likewise for the book stock actor.
    pub book_queue_limit: usize,
    /// Events kept for `Last-Event-ID` resumption.
    pub event_buffer: usize,
    /// Events a subscriber may fall behind before it is dropped.
    pub event_channel_capacity: usize,
    /// How long an uncollected book reservation holds its copies.
    pub book_hold: Duration,
    /// How long a prepared part of a bundle waits to be submitted before it is released.
    pub prepare_timeout: Duration,
    /// No-show, check-in and waitlist rules.
    pub lifecycle: crate::lifecycle::LifecycleConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            per_user_limit: 3,
            rpc_timeout: Duration::from_secs(5),
            max_batch: 1024,
            // Sized so that 1024 clients with one request each are never refused, while
            // queued work (and so latency) stays bounded past that.
            max_queue: 4096,
            zone_queue_limit: 1024,
            book_queue_limit: 1024,
            event_buffer: 4096,
            event_channel_capacity: 1024,
            book_hold: Duration::from_secs(48 * 3600),
            prepare_timeout: Duration::from_secs(5),
            lifecycle: crate::lifecycle::LifecycleConfig::default(),
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Directory,
    /// Zones and seats in display order; admin changes update it after they commit.
    layout: RwLock<Vec<ZoneLayout>>,
    seat_zone: DashMap<SeatNumber, ZoneId>,
    supervisor: ActorRef<SupervisorMsg>,
    notifier: Arc<RwLock<Option<ActorRef<NotifierMsg>>>>,
    books: BookSlot,
    ledger: Arc<UserLedger>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    /// Admission: one gate per zone actor, one for the book actor, one for the unit of
    /// work's queue (shared with the actors that submit to it).
    zone_gates: DashMap<ZoneId, Arc<Gate>>,
    book_gate: Arc<Gate>,
    commit_gate: Arc<Gate>,
}

/// How full each bounded queue is and how often it refused, for `/metrics`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdmissionStats {
    pub zones: Vec<(ZoneId, GateStats)>,
    pub books: GateStats,
    pub commit: GateStats,
}

impl Engine {
    /// Loads the layout, spawns every actor (each rebuilds from `storage`) and returns
    /// once all zones are serving.
    pub async fn start(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<(Engine, JoinHandle<()>), StartError> {
        let layout = storage.load_layout().await.map_err(StartError::Storage)?;
        let directory: Directory = Arc::new(DashMap::new());
        let ledger = Arc::new(UserLedger::new(config.per_user_limit));
        let notifier = Arc::new(RwLock::new(None));
        let books: BookSlot = Arc::new(RwLock::new(None));
        let commit_gate = Gate::new(config.max_queue);
        let args = SupervisorArgs {
            commit_queue: commit_gate.clone(),
            storage,
            clock: clock.clone(),
            ledger: ledger.clone(),
            directory: directory.clone(),
            zones: layout.iter().map(|z| z.id.clone()).collect(),
            config: config.clone(),
            notifier_slot: notifier.clone(),
            books: books.clone(),
        };
        let (supervisor, handle) = Actor::spawn(None, EngineSupervisor, args)
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let seat_zone = layout
            .iter()
            .flat_map(|z| z.seats.iter().map(|s| (s.number.clone(), z.id.clone())))
            .collect();
        let zone_gates = layout
            .iter()
            .map(|z| (z.id.clone(), Gate::new(config.zone_queue_limit)))
            .collect();
        let inner = Inner {
            zone_gates,
            book_gate: Gate::new(config.book_queue_limit),
            commit_gate,
            directory,
            layout: RwLock::new(layout),
            seat_zone,
            supervisor,
            notifier,
            books,
            ledger,
            clock,
            config,
        };
        Ok((
            Engine {
                inner: Arc::new(inner),
            },
            handle,
        ))
    }

    /// A copy of the current layout.
    pub fn layout(&self) -> Vec<ZoneLayout> {
        self.inner
            .layout
            .read()
            .expect("layout lock poisoned")
            .clone()
    }

    pub fn has_zone(&self, zone: &ZoneId) -> bool {
        self.inner
            .layout
            .read()
            .expect("layout lock poisoned")
            .iter()
            .any(|z| &z.id == zone)
    }

    /// Starts the actor of a zone that was just stored (admin) and shows it.
    pub async fn add_zone(&self, zone: ZoneLayout) -> Result<(), EngineError> {
        let id = zone.id.clone();
        let timeout = Some(self.inner.config.rpc_timeout);
        let spawned = self
            .inner
            .supervisor
            .call(|reply| SupervisorMsg::AddZone { zone: id, reply }, timeout)
            .await;
        unwrap_call(spawned)??;
        for seat in &zone.seats {
            self.inner
                .seat_zone
                .insert(seat.number.clone(), zone.id.clone());
        }
        self.inner
            .layout
            .write()
            .expect("layout lock poisoned")
            .push(zone);
        Ok(())
    }

    /// Renames or re-kinds a zone in the layout (the edge stores it).
    pub fn update_zone(&self, zone: &ZoneId, name: String, kind: String) {
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(z) = layout.iter_mut().find(|z| &z.id == zone) {
            z.name = name;
            z.kind = kind;
        }
    }

    /// Adds a seat to a zone, through the zone actor and the unit of work.
    pub async fn add_seat(&self, zone: &ZoneId, seat: SeatLayout) -> Result<(), EngineError> {
        if self.zone_of(&seat.number).is_some() {
            return Err(EngineError::SeatExists(seat.number));
        }
        let added = seat.clone();
        self.call_unbounded(zone, |reply| ZoneMsg::AddSeat { seat: added, reply })
            .await??;
        self.inner
            .seat_zone
            .insert(seat.number.clone(), zone.clone());
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(z) = layout.iter_mut().find(|z| &z.id == zone) {
            z.seats.push(seat);
        }
        Ok(())
    }

    /// Puts a seat in or out of service through its zone actor; returns the
    /// reservations that were cancelled because of it.
    pub async fn set_seat_service(
        &self,
        seat: &SeatNumber,
        service: SeatService,
    ) -> Result<Vec<Reservation>, EngineError> {
        let zone = self
            .zone_of(seat)
            .ok_or_else(|| EngineError::UnknownSeat(seat.clone()))?;
        let number = seat.clone();
        let cancelled = self
            .call_unbounded(&zone, |reply| ZoneMsg::SetSeatService {
                seat: number,
                service,
                reply,
            })
            .await??;
        let mut layout = self.inner.layout.write().expect("layout lock poisoned");
        if let Some(s) = layout
            .iter_mut()
            .flat_map(|z| z.seats.iter_mut())
            .find(|s| &s.number == seat)
        {
            s.service = service;
        }
        Ok(cancelled)
    }

    pub fn zone_of(&self, seat: &SeatNumber) -> Option<ZoneId> {
        self.inner.seat_zone.get(seat).map(|z| z.clone())
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn ledger(&self) -> &UserLedger {
        &self.inner.ledger
    }

    /// The zone's live actor, if it is up (tests use this to crash one).
    pub fn zone_actor(&self, zone: &ZoneId) -> Option<ActorRef<ZoneMsg>> {
        self.inner.directory.get(zone).map(|a| a.clone())
    }

    /// True once every zone of the layout, and the book stock, has a live actor.
    pub fn is_ready(&self) -> bool {
        let layout = self.inner.layout.read().expect("layout lock poisoned");
        layout
            .iter()
            .all(|z| self.inner.directory.contains_key(&z.id))
            && self.book_actor().is_some()
    }

    /// The book stock actor, if it is up (tests use this to crash it).
    pub fn book_actor(&self) -> Option<ActorRef<BookMsg>> {
        self.inner.books.read().expect("book slot poisoned").clone()
    }

    pub(crate) fn shared_ledger(&self) -> Arc<UserLedger> {
        self.inner.ledger.clone()
    }

    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reservation, EngineError> {
        let zone = self
            .zone_of(&request.seat)
            .ok_or_else(|| EngineError::UnknownSeat(request.seat.clone()))?;
        self.call(&zone, |reply| ZoneMsg::Reserve { request, reply })
            .await?
    }

    /// Moves the caller's reservation in `zone` to `to` (cancel, check-in, ...).
    pub async fn change_status(
        &self,
        zone: &ZoneId,
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        self.call(zone, |reply| ZoneMsg::ChangeStatus {
            id,
            user_id,
            to,
            reply,
        })
        .await?
    }

    /// Like [`change_status`](Self::change_status) without knowing the zone: every zone
    /// is asked at once (only the owner of an active reservation holds it in memory),
    /// which spares the edge a database read on the hot cancel path. `NotFound` means
    /// no zone holds it as an active reservation of `user_id`; a zone that is down makes
    /// the answer `Unavailable`, since the reservation might be there.
    pub async fn change_status_anywhere(
        &self,
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
    ) -> Result<Reservation, EngineError> {
        let zones: Vec<ZoneId> = self.layout().into_iter().map(|z| z.id).collect();
        let asks = zones
            .iter()
            .map(|zone| self.change_status(zone, id, user_id, to));
        let mut outcome = Err(EngineError::ReservationNotFound);
        for answer in futures_util::future::join_all(asks).await {
            match answer {
                Ok(done) => return Ok(done),
                Err(EngineError::ReservationNotFound) => {}
                Err(other) => outcome = Err(other),
            }
        }
        outcome
    }

    /// The contention counters of every zone that is up, in layout order.
    pub async fn zone_stats(&self) -> Vec<(ZoneId, Result<crate::zone::ZoneStats, EngineError>)> {
        let mut all = Vec::new();
        for zone in self.layout() {
            // Never refused: an operator must be able to look at an overloaded zone.
            let stats = self
                .call_unbounded(&zone.id, |reply| ZoneMsg::Stats { reply })
                .await;
            all.push((zone.id, stats));
        }
        all
    }

    pub async fn availability(
        &self,
        zone: &ZoneId,
        window: Interval,
    ) -> Result<FreeIntervals, EngineError> {
        self.call(zone, |reply| ZoneMsg::Availability { window, reply })
            .await
    }

    pub async fn live(&self, zone: &ZoneId) -> Result<Vec<SeatView>, EngineError> {
        self.call(zone, |reply| ZoneMsg::Live { reply }).await
    }

    pub async fn subscribe(&self, after: Option<u64>) -> Result<Subscription, EngineError> {
        let notifier = self
            .inner
            .notifier
            .read()
            .expect("notifier slot poisoned")
            .clone()
            .ok_or(EngineError::Unavailable)?;
        let result = notifier
            .call(
                |reply| NotifierMsg::Subscribe { after, reply },
                Some(self.inner.config.rpc_timeout),
            )
            .await;
        unwrap_call(result)
    }

    /// Stops every actor. Call after the HTTP server has drained its in-flight requests,
    /// so every acknowledged write has already committed.
    pub async fn shutdown(&self) {
        let timeout = Some(self.inner.config.rpc_timeout);
        let _ = self
            .inner
            .supervisor
            .call(SupervisorMsg::Shutdown, timeout)
            .await;
    }

    /// The live notifier (see also `engine_live.rs`).
    pub(crate) fn notifier(&self) -> Result<ActorRef<NotifierMsg>, EngineError> {
        self.inner
            .notifier
            .read()
            .expect("notifier slot poisoned")
            .clone()
            .ok_or(EngineError::Unavailable)
    }

    /// Asks a zone actor on behalf of a client: refused at once with `Overloaded`,
    /// before anything is sent, when the zone has its bound of requests in flight. The
    /// pass is held until the answer (or timeout, or the actor's death) comes back.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        zone: &ZoneId,
        build: impl FnOnce(ractor::RpcReplyPort<T>) -> ZoneMsg,
    ) -> Result<T, EngineError> {
        let _pass = self.admit_zone(zone)?;
        self.call_unbounded(zone, build).await
    }

    /// Asks a zone actor without taking a place in its bound: admin, the scheduler's
    /// sweeps and tests, which must get through an overloaded zone.
    pub(crate) async fn call_unbounded<T: Send + 'static>(
        &self,
        zone: &ZoneId,
        build: impl FnOnce(ractor::RpcReplyPort<T>) -> ZoneMsg,
    ) -> Result<T, EngineError> {
        let actor = self.zone_actor(zone).ok_or(EngineError::Unavailable)?;
        unwrap_call(actor.call(build, Some(self.inner.config.rpc_timeout)).await)
    }

    /// A place among the zone actor's requests in flight, or `Overloaded`.
    pub(crate) fn admit_zone(&self, zone: &ZoneId) -> Result<Pass, EngineError> {
        let gate = match self.inner.zone_gates.get(zone) {
            Some(gate) => gate.clone(),
            // A zone added since the start (admin) gets its gate on first use.
            None => self
                .inner
                .zone_gates
                .entry(zone.clone())
                .or_insert_with(|| Gate::new(self.inner.config.zone_queue_limit))
                .clone(),
        };
        gate.try_enter().ok_or(EngineError::Overloaded)
    }

    /// A place among the book actor's requests in flight, or `Overloaded`.
    pub(crate) fn admit_books(&self) -> Result<Pass, EngineError> {
        self.inner
            .book_gate
            .try_enter()
            .ok_or(EngineError::Overloaded)
    }

    /// How full every bounded queue is and how many requests each refused.
    pub fn admission(&self) -> AdmissionStats {
        let mut zones: Vec<(ZoneId, GateStats)> = self
            .inner
            .zone_gates
            .iter()
            .map(|e| (e.key().clone(), e.value().snapshot()))
            .collect();
        zones.sort_by(|a, b| a.0.cmp(&b.0));
        AdmissionStats {
            zones,
            books: self.inner.book_gate.snapshot(),
            commit: self.inner.commit_gate.snapshot(),
        }
    }
}

pub(crate) fn unwrap_call<T, M>(
    result: Result<CallResult<T>, MessagingErr<M>>,
) -> Result<T, EngineError> {
    match result {
        Ok(CallResult::Success(value)) => Ok(value),
        // Timed out, or the actor died before answering: the client should retry.
        Ok(CallResult::Timeout | CallResult::SenderError) | Err(_) => Err(EngineError::Unavailable),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not load the layout: {0}")]
    Storage(StorageError),
    #[error("could not start the engine's actors: {0}")]
    Spawn(String),
}
