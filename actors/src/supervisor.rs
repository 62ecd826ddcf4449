//! The engine's supervisor: spawns the notifier, the unit of work and one actor per
//! zone, and restarts whatever dies.
//!
//! On the engine's first start the zones load after the supervisor is up (see
//! [`SupervisorMsg::StartZones`]), each published as soon as it has loaded, so that the
//! zones already up serve while the others still load. Until every zone has loaded, the
//! user ledger refuses new claims (a booking could overlap a reservation in a zone not
//! loaded yet) and the engine reports itself not loaded.
//!
//! A zone that dies is respawned and rebuilds itself from the database (its `pre_start`
//! first waits for the unit of work to drain). While it is down it is absent from the
//! directory, so the edge answers 503 with `Retry-After` instead of guessing. If
//! respawning fails (say the database is unreachable) it is retried with backoff.
//! If the unit of work or the notifier dies, every zone is restarted too, because
//! their pending changes were lost with it. The book stock actor is supervised the same
//! way as a zone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures_util::StreamExt;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent,
};
use tracing::{error, info, warn};

use crate::admission::Gate;
use crate::book::actor::{BookArgs, spawn_linked as spawn_books_linked};
use crate::book::messages::BookSlot;
use crate::clock::Clock;
use crate::config::EngineConfig;
use crate::domain::{ZoneId, ZoneLayout};
use crate::error::EngineError;
use crate::notifier::{Notifier, NotifierArgs, NotifierMsg};
use crate::storage::Storage;
use crate::unit_of_work::{UnitOfWork, UowArgs, UowHandle, UowMsg, UowStats};
use crate::user_ledger::UserLedger;
use crate::waitlist::WaitlistEntry;
use crate::zone::actor::{FirstStart, ZoneActor, ZoneArgs};
use crate::zone::messages::ZoneMsg;

/// The live zone actors, shared with the [`Engine`](crate::Engine) handle.
pub type Directory = Arc<DashMap<ZoneId, ActorRef<ZoneMsg>>>;

pub enum SupervisorMsg {
    /// The engine's first start of every zone (sent by the supervisor to itself).
    StartZones,
    RespawnZone {
        zone: ZoneId,
        attempt: u32,
    },
    /// (Re)spawns the book stock actor.
    RespawnBooks {
        attempt: u32,
    },
    /// Spawns the actor of a zone that was just added to the database.
    AddZone {
        zone: ZoneId,
        reply: RpcReplyPort<Result<(), EngineError>>,
    },
    Shutdown(RpcReplyPort<()>),
}

pub struct EngineSupervisor;

/// How many zones rebuild from the database at once on the engine's first start: two
/// per core, so that while one zone waits (for the unit of work's barrier, a pooled
/// connection, its waitlist) another keeps the core busy; at most eight, so that the
/// edge (`/readyz`, sign-ins) still finds a connection in the default pool of ten.
fn start_concurrency() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).clamp(2, 8)
}

pub struct SupervisorArgs {
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<dyn Clock>,
    pub ledger: Arc<UserLedger>,
    pub directory: Directory,
    /// Every zone's layout as the engine read it once at start.
    pub zones: Vec<ZoneLayout>,
    /// Every zone's open waitlist entries, read once at start with the layout.
    pub waitlists: HashMap<ZoneId, Vec<WaitlistEntry>>,
    pub config: EngineConfig,
    pub notifier_slot: Arc<std::sync::RwLock<Option<ActorRef<NotifierMsg>>>>,
    /// Where the live book stock actor is published.
    pub books: BookSlot,
    /// Bounds the unit of work's queue; outlives any one unit of work.
    pub commit_queue: Arc<Gate>,
    /// The unit of work's transaction counts; outlive any one unit of work too.
    pub commit_stats: Arc<UowStats>,
    /// Set to true once every zone of the first start has loaded.
    pub loaded: tokio::sync::watch::Sender<bool>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    uow: ActorRef<UowMsg>,
    notifier: ActorRef<NotifierMsg>,
    zone_of: HashMap<ActorId, ZoneId>,
    /// Zones of the first start that have not loaded yet (a failed load is retried).
    loading: HashSet<ZoneId>,
    /// The live book stock actor.
    books: Option<ActorId>,
    shutting_down: bool,
}

impl EngineSupervisor {
    async fn spawn_core(
        myself: &ActorRef<SupervisorMsg>,
        args: &SupervisorArgs,
    ) -> Result<(ActorRef<NotifierMsg>, ActorRef<UowMsg>), ActorProcessingErr> {
        let cfg = &args.config;
        let (notifier, _) = Actor::spawn_linked(
            None,
            Notifier,
            NotifierArgs {
                buffer: cfg.event_buffer,
                channel_capacity: cfg.event_channel_capacity,
            },
            myself.get_cell(),
        )
        .await?;
        let (uow, _) = Actor::spawn_linked(
            None,
            UnitOfWork,
            UowArgs {
                storage: args.storage.clone(),
                notifier: Some(notifier.clone()),
                max_batch: cfg.max_batch,
                max_queue: cfg.max_queue,
                stats: args.commit_stats.clone(),
            },
            myself.get_cell(),
        )
        .await?;
        *args.notifier_slot.write().expect("notifier slot poisoned") = Some(notifier.clone());
        Ok((notifier, uow))
    }

    /// A (re)starting zone's arguments; `first_start` is given on the engine's first
    /// start (read once for every zone), and read again by the zone on a restart.
    fn zone_args(
        state: &SupervisorState,
        zone: ZoneId,
        first_start: Option<FirstStart>,
    ) -> ZoneArgs {
        ZoneArgs {
            zone,
            first_start,
            storage: state.args.storage.clone(),
            uow: Self::uow_handle(state),
            ledger: state.args.ledger.clone(),
            clock: state.args.clock.clone(),
            barrier_timeout: state.args.config.rpc_timeout,
            lifecycle: state.args.config.lifecycle.clone(),
            notifier: Some(state.notifier.clone()),
        }
    }

    async fn spawn_zone(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
        zone: ZoneId,
    ) -> Result<(), ActorProcessingErr> {
        let args = Self::zone_args(state, zone.clone(), None);
        let (actor, _) = Actor::spawn_linked(None, ZoneActor, args, myself.get_cell()).await?;
        Self::publish_zone(state, zone, actor);
        Ok(())
    }

    fn publish_zone(state: &mut SupervisorState, zone: ZoneId, actor: ActorRef<ZoneMsg>) {
        state.zone_of.insert(actor.get_id(), zone.clone());
        state.args.directory.insert(zone.clone(), actor);
        // After the directory: whoever waits for the engine to load finds the zone up.
        if state.loading.remove(&zone) {
            Self::finish_if_loaded(state);
        }
    }

    /// Once the last zone of the first start has loaded, its claims (like every other
    /// zone's, loaded in its `pre_start`) are in the ledger: new claims may be checked.
    /// Every zone then sweeps at once, so that the holds their first sweep could not
    /// offer meanwhile (a hold claims the member's time) go out now, not at the next
    /// scheduled sweep.
    fn finish_if_loaded(state: &SupervisorState) {
        if state.loading.is_empty() && !state.args.ledger.is_loaded() {
            state.args.ledger.finish_loading();
            state.args.loaded.send_replace(true);
            info!("every zone has loaded");
            for zone in state.args.directory.iter() {
                let _ = zone.value().cast(ZoneMsg::Sweep { reply: None });
            }
        }
    }

    /// The first start of every zone, [`start_concurrency`] at a time, each on its own
    /// task: a zone's `pre_start` runs inside the future that spawns it, so awaiting
    /// them all here would rebuild every zone on the supervisor's one thread. Each
    /// rebuilds from its own queries, so start-up grows with the space, not with
    /// zones × space. Each zone is published the moment it has loaded. The supervisor
    /// handles nothing else meanwhile, so a zone that dies in the meantime is seen
    /// (and restarted) after it was published, like any other.
    async fn start_all_zones(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState) {
        let layouts = std::mem::take(&mut state.args.zones);
        let mut waitlists = std::mem::take(&mut state.args.waitlists);
        // Told first (mailboxes are in order), so the zones' loads land in display order.
        let order = layouts.iter().map(|z| z.id.clone()).collect();
        let _ = state.notifier.cast(NotifierMsg::ZoneOrder(order));
        let args: Vec<ZoneArgs> = layouts
            .into_iter()
            .map(|layout| {
                let waitlist = waitlists.remove(&layout.id).unwrap_or_default();
                let zone = layout.id.clone();
                Self::zone_args(state, zone, Some(FirstStart { layout, waitlist }))
            })
            .collect();
        // Lazy: `buffer_unordered` spawns the next start only when one has finished.
        let starts = args.into_iter().map(|args| {
            let zone = args.zone.clone();
            let cell = myself.get_cell();
            let task = tokio::spawn(Actor::spawn_linked(None, ZoneActor, args, cell));
            async move { (zone, task.await) }
        });
        let mut started = futures_util::stream::iter(starts).buffer_unordered(start_concurrency());
        while let Some((zone, outcome)) = started.next().await {
            match outcome {
                Ok(Ok((actor, _))) => Self::publish_zone(state, zone, actor),
                // Retried like a restart (which reads the zone's layout again).
                Ok(Err(err)) => {
                    warn!(%zone, error = %err, "zone failed to load; retrying");
                    retry_later(myself, zone, 0);
                }
                Err(panicked) => {
                    error!(%zone, error = %panicked, "zone panicked while loading; retrying");
                    retry_later(myself, zone, 0);
                }
            }
        }
    }

    async fn spawn_books(
        myself: &ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let args = BookArgs {
            storage: state.args.storage.clone(),
            uow: Self::uow_handle(state),
            notifier: Some(state.notifier.clone()),
            clock: state.args.clock.clone(),
            hold: state.args.config.book_hold,
            barrier_timeout: state.args.config.rpc_timeout,
        };
        let actor = spawn_books_linked(myself.get_cell(), args).await?;
        state.books = Some(actor.get_id());
        *state.args.books.write().expect("book slot poisoned") = Some(actor);
        Ok(())
    }

    fn uow_handle(state: &SupervisorState) -> UowHandle {
        UowHandle {
            actor: state.uow.clone(),
            queue: state.args.commit_queue.clone(),
        }
    }

    /// Takes the book stock actor out of service (requests get 503) and respawns it.
    fn restart_books(myself: &ActorRef<SupervisorMsg>, state: &mut SupervisorState) {
        state.books = None;
        if let Some(actor) = state.args.books.write().expect("book slot poisoned").take() {
            actor.stop(Some("engine restart".into()));
        }
        let _ = myself.cast(SupervisorMsg::RespawnBooks { attempt: 0 });
    }
}

impl Actor for EngineSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let (notifier, uow) = Self::spawn_core(&myself, &args).await?;
        let loading = args.zones.iter().map(|z| z.id.clone()).collect();
        let mut state = SupervisorState {
            args,
            uow,
            notifier,
            zone_of: HashMap::new(),
            loading,
            books: None,
            shutting_down: false,
        };
        Self::finish_if_loaded(&state);
        Self::spawn_books(&myself, &mut state).await?;
        // The zones load once the engine is up (the first message in the mailbox).
        myself.cast(SupervisorMsg::StartZones)?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::StartZones => Self::start_all_zones(&myself, state).await,
            SupervisorMsg::RespawnZone { zone, attempt } => {
                if state.shutting_down || state.args.directory.contains_key(&zone) {
                    return Ok(());
                }
                if let Err(err) = Self::spawn_zone(&myself, state, zone.clone()).await {
                    warn!(%zone, attempt, error = %err, "zone restart failed; retrying");
                    retry_later(&myself, zone, attempt);
                } else {
                    info!(%zone, attempt, "zone restarted");
                }
            }
            SupervisorMsg::AddZone { zone, reply } => {
                let result = if state.args.directory.contains_key(&zone) {
                    Ok(())
                } else {
                    Self::spawn_zone(&myself, state, zone.clone())
                        .await
                        .map_err(|err| {
                            warn!(%zone, error = %err, "could not start a new zone");
                            EngineError::Unavailable
                        })
                };
                let _ = reply.send(result);
            }
            SupervisorMsg::RespawnBooks { attempt } => {
                if state.shutting_down || state.books.is_some() {
                    return Ok(());
                }
                if let Err(err) = Self::spawn_books(&myself, state).await {
                    let delay = Duration::from_millis((50u64 << attempt.min(7)).min(5_000));
                    warn!(attempt, ?delay, error = %err, "book stock restart failed; retrying");
                    let next = SupervisorMsg::RespawnBooks {
                        attempt: attempt + 1,
                    };
                    myself.send_after(delay, move || next);
                } else {
                    info!(attempt, "book stock restarted");
                }
            }
            SupervisorMsg::Shutdown(reply) => {
                state.shutting_down = true;
                state.args.directory.clear();
                state.args.books.write().expect("book slot poisoned").take();
                for child in myself.get_children() {
                    child.stop_and_wait(None, None).await.ok();
                }
                let _ = reply.send(());
                myself.stop(None);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "terminated".into()))
            }
            _ => return Ok(()),
        };
        if state.shutting_down {
            return Ok(());
        }
        if let Some(zone) = state.zone_of.remove(&cell.get_id()) {
            error!(%zone, %reason, "zone actor died; restarting it from the database");
            state
                .args
                .directory
                .remove_if(&zone, |_, actor| actor.get_id() == cell.get_id());
            respawn(&myself, zone);
        } else if state.books == Some(cell.get_id()) {
            error!(%reason, "book stock actor died; restarting it from the database");
            Self::restart_books(&myself, state);
        } else if is(&cell, &state.uow) || is(&cell, &state.notifier) {
            error!(%reason, "core engine actor died; restarting the engine's actors");
            // Stop the survivor of the pair, then start a fresh pair.
            for other in [state.uow.get_cell(), state.notifier.get_cell()] {
                if other.get_id() != cell.get_id() {
                    other.stop(None);
                }
            }
            let (notifier, uow) = Self::spawn_core(&myself, &state.args).await?;
            state.notifier = notifier;
            state.uow = uow;
            // Zones hold changes the dead unit of work will never decide: restart them.
            for (id, zone) in state.zone_of.drain() {
                if let Some((_, actor)) = state.args.directory.remove(&zone) {
                    debug_assert_eq!(actor.get_id(), id);
                    actor.stop(Some("engine restart".into()));
                }
                respawn(&myself, zone);
            }
            Self::restart_books(&myself, state);
        }
        Ok(())
    }
}

fn is<M>(cell: &ActorCell, actor: &ActorRef<M>) -> bool {
    cell.get_id() == actor.get_id()
}

fn respawn(myself: &ActorRef<SupervisorMsg>, zone: ZoneId) {
    let _ = myself.cast(SupervisorMsg::RespawnZone { zone, attempt: 0 });
}

/// Respawns `zone` after its `attempt`-th failure, with exponential backoff, capped:
/// 50 ms, 100 ms, ... 5 s.
fn retry_later(myself: &ActorRef<SupervisorMsg>, zone: ZoneId, attempt: u32) {
    let delay = Duration::from_millis((50u64 << attempt.min(7)).min(5_000));
    let next = SupervisorMsg::RespawnZone {
        zone,
        attempt: attempt + 1,
    };
    myself.send_after(delay, move || next);
}

#[cfg(test)]
mod tests;
