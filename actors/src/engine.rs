//! The handle the HTTP edge uses: it routes each request to the right actor and turns
//! mailbox and timeout failures into [`EngineError::Unavailable`].

use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, MessagingErr};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::domain::{
    Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest, SeatNumber, UserId,
    ZoneId, ZoneLayout,
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
    /// Maximum active reservations per user (invariant 2).
    pub per_user_limit: usize,
    /// How long the edge waits for any actor's answer.
    pub rpc_timeout: Duration,
    /// Most intents committed in one transaction.
    pub max_batch: usize,
    /// Most intents waiting for the unit of work before new ones are refused.
    pub max_queue: usize,
    /// Events kept for `Last-Event-ID` resumption.
    pub event_buffer: usize,
    /// Events a subscriber may fall behind before it is dropped.
    pub event_channel_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            per_user_limit: 3,
            rpc_timeout: Duration::from_secs(5),
            max_batch: 1024,
            max_queue: 50_000,
            event_buffer: 4096,
            event_channel_capacity: 1024,
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Directory,
    layout: Vec<ZoneLayout>,
    seat_zone: DashMap<SeatNumber, ZoneId>,
    supervisor: ActorRef<SupervisorMsg>,
    notifier: Arc<RwLock<Option<ActorRef<NotifierMsg>>>>,
    ledger: Arc<UserLedger>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
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
        let args = SupervisorArgs {
            storage,
            clock: clock.clone(),
            ledger: ledger.clone(),
            directory: directory.clone(),
            zones: layout.iter().map(|z| z.id.clone()).collect(),
            config: config.clone(),
            notifier_slot: notifier.clone(),
        };
        let (supervisor, handle) = Actor::spawn(None, EngineSupervisor, args)
            .await
            .map_err(|e| StartError::Spawn(e.to_string()))?;
        let seat_zone = layout
            .iter()
            .flat_map(|z| z.seats.iter().map(|s| (s.number.clone(), z.id.clone())))
            .collect();
        let inner = Inner {
            directory,
            layout,
            seat_zone,
            supervisor,
            notifier,
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

    pub fn layout(&self) -> &[ZoneLayout] {
        &self.inner.layout
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

    /// True once every zone of the layout has a live actor.
    pub fn is_ready(&self) -> bool {
        self.inner
            .layout
            .iter()
            .all(|z| self.inner.directory.contains_key(&z.id))
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

    async fn call<T: Send + 'static>(
        &self,
        zone: &ZoneId,
        build: impl FnOnce(ractor::RpcReplyPort<T>) -> ZoneMsg,
    ) -> Result<T, EngineError> {
        let actor = self.zone_actor(zone).ok_or(EngineError::Unavailable)?;
        unwrap_call(actor.call(build, Some(self.inner.config.rpc_timeout)).await)
    }
}

fn unwrap_call<T, M>(result: Result<CallResult<T>, MessagingErr<M>>) -> Result<T, EngineError> {
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
