//! The handle the HTTP edge uses: it routes each request to the right actor, refuses
//! it with [`EngineError::Overloaded`] when that actor already has its bound of
//! requests in flight (see [`crate::admission`]), and turns mailbox and timeout
//! failures into [`EngineError::Unavailable`].
//!
//! This file holds the handle itself: starting the engine, what it knows without
//! asking an actor (the layout, the live actors) and the admission-checked calls every
//! request goes through. Each capability is one child module: `reservations`, `seats`
//! (admin), `books`, `bundles`, `waitlist`, `sweeps` (the lifecycle's sweeps) and
//! `events` (the event streams).

use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use ractor::{Actor, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use crate::admission::{Gate, GateStats, Pass};
use crate::book::messages::{BookMsg, BookSlot};
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::domain::{SeatNumber, ZoneId, ZoneLayout};
use crate::error::EngineError;
use crate::notifier::NotifierMsg;
use crate::rpc::unwrap_call;
use crate::storage::{Storage, StorageError};
use crate::supervisor::{Directory, EngineSupervisor, SupervisorArgs, SupervisorMsg};
use crate::unit_of_work::{CommitStats, UowStats};
use crate::user_ledger::UserLedger;
use crate::zone::messages::ZoneMsg;

mod books;
mod bundles;
mod events;
mod reservations;
mod seats;
mod sweeps;
mod waitlist;

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
    /// What the unit of work's transactions did (shared with every unit of work).
    commit_stats: Arc<UowStats>,
    /// True once every zone of the first start has loaded (set by the supervisor).
    loaded: tokio::sync::watch::Receiver<bool>,
}

/// How full each bounded queue is and how often it refused, for `/metrics`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdmissionStats {
    pub zones: Vec<(ZoneId, GateStats)>,
    pub books: GateStats,
    pub commit: GateStats,
}

impl Engine {
    /// Loads the layout, starts the notifier, the unit of work and the book stock actor
    /// and returns; the zones then rebuild from `storage` concurrently, each serving as
    /// soon as it is up (a zone not up yet answers `Unavailable`). Until every zone is
    /// up, new bookings are refused with `Starting` (the user ledger does not know
    /// every reservation yet) and event streams cannot open (their snapshot would miss
    /// zones); [`loaded`](Self::loaded) waits for that moment.
    pub async fn start(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<(Engine, JoinHandle<()>), StartError> {
        let layout = storage.load_layout().await.map_err(StartError::Storage)?;
        let zone_ids: Vec<ZoneId> = layout.iter().map(|z| z.id.clone()).collect();
        let waitlists = storage
            .load_open_waitlists(&zone_ids)
            .await
            .map_err(StartError::Storage)?;
        let directory: Directory = Arc::new(DashMap::new());
        let ledger = Arc::new(
            UserLedger::new(config.per_user_limit)
                .with_series_limit(config.series_occurrence_limit)
                .loading(),
        );
        let (loaded_tx, loaded) = tokio::sync::watch::channel(false);
        let notifier = Arc::new(RwLock::new(None));
        let books: BookSlot = Arc::new(RwLock::new(None));
        let commit_gate = Gate::new(config.max_queue);
        let commit_stats = Arc::new(UowStats::default());
        let args = SupervisorArgs {
            commit_queue: commit_gate.clone(),
            commit_stats: commit_stats.clone(),
            storage,
            clock: clock.clone(),
            ledger: ledger.clone(),
            directory: directory.clone(),
            zones: layout.clone(),
            waitlists,
            config: config.clone(),
            notifier_slot: notifier.clone(),
            books: books.clone(),
            loaded: loaded_tx,
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
            commit_stats,
            directory,
            layout: RwLock::new(layout),
            seat_zone,
            supervisor,
            notifier,
            books,
            ledger,
            clock,
            config,
            loaded,
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

    /// The zone's display name, without copying the layout.
    pub fn zone_name(&self, zone: &ZoneId) -> Option<String> {
        self.inner
            .layout
            .read()
            .expect("layout lock poisoned")
            .iter()
            .find(|z| &z.id == zone)
            .map(|z| z.name.clone())
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

    /// True once every zone of the first start has loaded (it stays true while a zone
    /// restarts later).
    pub fn is_loaded(&self) -> bool {
        *self.inner.loaded.borrow()
    }

    /// Waits until every zone of the first start has loaded (or the engine stopped).
    pub async fn loaded(&self) {
        let mut loaded = self.inner.loaded.clone();
        let _ = loaded.wait_for(|l| *l).await;
    }

    /// True once every zone of the layout, and the book stock, has a live actor.
    pub fn is_ready(&self) -> bool {
        if !self.is_loaded() {
            return false;
        }
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

    /// The live notifier (see also `events`).
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
        build: impl FnOnce(RpcReplyPort<T>) -> ZoneMsg,
    ) -> Result<T, EngineError> {
        let _pass = self.admit_zone(zone)?;
        self.call_unbounded(zone, build).await
    }

    /// Asks a zone actor without taking a place in its bound: admin, the scheduler's
    /// sweeps and tests, which must get through an overloaded zone.
    pub(crate) async fn call_unbounded<T: Send + 'static>(
        &self,
        zone: &ZoneId,
        build: impl FnOnce(RpcReplyPort<T>) -> ZoneMsg,
    ) -> Result<T, EngineError> {
        let actor = self.zone_actor(zone).ok_or(EngineError::Unavailable)?;
        unwrap_call(actor.call(build, Some(self.inner.config.rpc_timeout)).await)
    }

    /// Asks the book actor on behalf of a client: refused at once with `Overloaded`
    /// when it has its bound of requests in flight (see `Engine::call`).
    pub(crate) async fn call_books<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> BookMsg,
    ) -> Result<T, EngineError> {
        let _pass = self.admit_books()?;
        self.call_books_unbounded(build).await
    }

    /// Asks the book actor without taking a place in its bound (admin, scheduler).
    pub(crate) async fn call_books_unbounded<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<T>) -> BookMsg,
    ) -> Result<T, EngineError> {
        let actor = self.book_actor().ok_or(EngineError::Unavailable)?;
        unwrap_call(actor.call(build, Some(self.config().rpc_timeout)).await)
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

    /// What the unit of work's transactions have done since the engine started (how
    /// many its queue holds now is in [`Engine::admission`]).
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.commit_stats.snapshot()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("could not load the layout: {0}")]
    Storage(StorageError),
    #[error("could not start the engine's actors: {0}")]
    Spawn(String),
}
