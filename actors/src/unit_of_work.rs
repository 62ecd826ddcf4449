//! The unit of work: group commit for every actor's writes.
//!
//! Actors hand in an [`Intent`] (its changes, the events to announce, and what to do
//! with the outcome) and move on. While a transaction is in flight, newly submitted
//! intents queue up; when it finishes, everything queued (up to `max_batch`) goes into
//! the next transaction. After a commit each intent's outcome runs (settle the
//! participants, answer the client) and its events go to the notifier, in commit order.
//!
//! A storage that can commit several transactions at once
//! ([`Storage::concurrent_commits`], PostgreSQL) gets a second batch in flight beside
//! the first when the two cannot depend on each other ([`flights`] says when).
//!
//! If a batch of several intents fails, each is retried alone, so one refused change
//! (a constraint, a stale status) does not sink the others; a failure of a single intent
//! is final and its participants undo.
//!
//! Every transaction is counted and timed in [`UowStats`] (see [`stats`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ractor::{Actor, ActorProcessingErr, ActorRef, MessagingErr, RpcReplyPort};
use tracing::{debug, warn};

use crate::admission::{Gate, Pass};
use crate::domain::DomainEvent;
use crate::notifier::NotifierMsg;
use crate::storage::{Change, Storage, StorageError};
use crate::unit_of_work::flights::Flights;

mod flights;
pub mod stats;

pub use stats::{CommitStats, HistogramSnapshot, UowStats};

/// What an intent's participants learn once its transaction is decided.
pub type Outcome = Result<(), CommitError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The database refused or failed the transaction.
    Failed(String),
    /// The queue is full; nothing was attempted.
    Overloaded,
}

/// A change spanning one or more actors, committed all or nothing.
pub struct Intent {
    pub changes: Vec<Change>,
    pub events: Vec<DomainEvent>,
    /// Runs exactly once with the outcome: settles or undoes every participant and
    /// replies to the client.
    pub on_outcome: Box<dyn FnOnce(Outcome) + Send>,
}

impl Intent {
    fn decide(self, outcome: Outcome, notifier: &Option<ActorRef<NotifierMsg>>) {
        if outcome.is_ok()
            && !self.events.is_empty()
            && let Some(notifier) = notifier
        {
            // Never blocks: the notifier's mailbox is unbounded and it only fans out.
            let _ = notifier.cast(NotifierMsg::Publish(self.events));
        }
        (self.on_outcome)(outcome);
    }
}

pub enum UowMsg {
    /// An intent and its place in the queue's [`Gate`], given back when the intent
    /// leaves the queue for a transaction.
    Submit(Intent, Pass),
    /// Replies once everything submitted before it has been decided. A restarting zone
    /// uses it so that its rebuild from the database sees every in-flight write.
    Barrier(RpcReplyPort<()>),
    /// Internal: the transaction of batch `flight` finished.
    Decided {
        flight: u64,
        decided: Vec<(Intent, Outcome)>,
    },
}

pub struct UnitOfWork;

/// The unit of work as the actors that submit to it see it: the actor, and the gate
/// bounding its queue (shared by every submitter, and kept across restarts).
#[derive(Clone)]
pub struct UowHandle {
    pub actor: ActorRef<UowMsg>,
    pub queue: Arc<Gate>,
}

impl UowHandle {
    /// A place in the queue for a client's write, or `None` if the queue is full. Take
    /// it before changing anything, so that a refusal has nothing to undo.
    pub fn admit(&self) -> Option<Pass> {
        self.queue.try_enter()
    }

    /// Hands an intent to the unit of work, in the place `pass` reserved (the engine's
    /// own writes pass `None`: counted, never refused here). If the unit of work is gone
    /// (the engine is restarting), the intent fails at once so its participants undo.
    pub fn submit(&self, intent: Intent, pass: Option<Pass>) {
        let pass = pass.unwrap_or_else(|| self.queue.enter());
        if let Err(MessagingErr::SendErr(UowMsg::Submit(intent, _))) =
            self.actor.cast(UowMsg::Submit(intent, pass))
        {
            (intent.on_outcome)(Err(CommitError::Overloaded));
        }
    }
}

pub struct UowArgs {
    pub storage: Arc<dyn Storage>,
    pub notifier: Option<ActorRef<NotifierMsg>>,
    pub max_batch: usize,
    pub max_queue: usize,
    /// Where the transactions are counted; owned by the engine, so the counts survive
    /// a restart of the unit of work.
    pub stats: Arc<UowStats>,
}

pub struct UowState {
    storage: Arc<dyn Storage>,
    notifier: Option<ActorRef<NotifierMsg>>,
    /// Intents waiting for the next transaction, each with its place in the gate.
    queue: VecDeque<(Intent, Option<Pass>)>,
    /// The batches in flight, and which queued intents may join them.
    flights: Flights,
    max_batch: usize,
    max_queue: usize,
    stats: Arc<UowStats>,
}

impl Actor for UnitOfWork {
    type Msg = UowMsg;
    type State = UowState;
    type Arguments = UowArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<UowMsg>,
        args: UowArgs,
    ) -> Result<UowState, ActorProcessingErr> {
        Ok(UowState {
            flights: Flights::new(args.storage.concurrent_commits()),
            storage: args.storage,
            notifier: args.notifier,
            queue: VecDeque::new(),
            max_batch: args.max_batch.max(1),
            max_queue: args.max_queue.max(1),
            stats: args.stats,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<UowMsg>,
        message: UowMsg,
        state: &mut UowState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            UowMsg::Submit(intent, pass) => {
                // A backstop behind the gate: the engine's own writes are not refused
                // by the gate, so the queue could still outgrow it.
                if state.queue.len() >= state.max_queue {
                    intent.decide(Err(CommitError::Overloaded), &None);
                } else {
                    state.queue.push_back((intent, Some(pass)));
                }
            }
            UowMsg::Barrier(reply) => state.queue.push_back((
                Intent {
                    changes: Vec::new(),
                    events: Vec::new(),
                    on_outcome: Box::new(move |_| {
                        let _ = reply.send(());
                    }),
                },
                None,
            )),
            UowMsg::Decided { flight, decided } => {
                state.flights.land(flight);
                state.stats.set_in_flight(state.flights.len());
                for (intent, outcome) in decided {
                    intent.decide(outcome, &state.notifier);
                }
            }
        }
        loop {
            let queued = state.queue.iter().map(|(intent, _)| intent);
            let n = state.flights.next_batch(queued, state.max_batch);
            if n == 0 {
                break;
            }
            // Leaving the queue gives the intents' places back (the passes drop here).
            let batch: Vec<Intent> = state.queue.drain(..n).map(|(intent, _)| intent).collect();
            let flight = state.flights.launch(&batch);
            state.stats.set_in_flight(state.flights.len());
            let storage = state.storage.clone();
            let stats = state.stats.clone();
            let myself = myself.clone();
            tokio::spawn(async move {
                let decided = commit_batch(storage.as_ref(), &stats, batch).await;
                // If the unit of work died meanwhile, its supervisor restarts the engine
                // and every zone rebuilds from the database; dropping here is safe.
                let _ = myself.cast(UowMsg::Decided { flight, decided });
            });
        }
        Ok(())
    }
}

/// Commits `batch` in one transaction, or each intent alone if that fails.
async fn commit_batch(
    storage: &dyn Storage,
    stats: &UowStats,
    mut batch: Vec<Intent>,
) -> Vec<(Intent, Outcome)> {
    // The intents' changes are moved (not copied) into one list, and handed back only if
    // the intents must be retried one by one.
    let counts: Vec<usize> = batch.iter().map(|i| i.changes.len()).collect();
    let mut changes: Vec<Change> = Vec::with_capacity(counts.iter().sum());
    for intent in &mut batch {
        changes.append(&mut intent.changes);
    }
    if changes.is_empty() {
        return batch.into_iter().map(|i| (i, Ok(()))).collect();
    }
    let with_changes = counts.iter().filter(|&&n| n > 0).count();
    match timed_commit(storage, stats, &changes, with_changes).await {
        Ok(()) => {
            debug!(
                intents = batch.len(),
                changes = changes.len(),
                "batch committed"
            );
            batch.into_iter().map(|i| (i, Ok(()))).collect()
        }
        Err(err) if batch.len() == 1 => {
            warn!(error = %err, "commit failed");
            stats.record_failed_intents(1);
            batch.into_iter().map(|i| (i, Err(failed(&err)))).collect()
        }
        Err(err) => {
            warn!(error = %err, intents = batch.len(), "batch commit failed; retrying each intent alone");
            let mut changes = changes.into_iter();
            let mut decided = Vec::with_capacity(batch.len());
            for (mut intent, count) in batch.into_iter().zip(counts) {
                intent.changes = changes.by_ref().take(count).collect();
                let outcome = if intent.changes.is_empty() {
                    Ok(())
                } else {
                    timed_commit(storage, stats, &intent.changes, 1)
                        .await
                        .map_err(|e| {
                            warn!(error = %e, "commit failed");
                            failed(&e)
                        })
                };
                decided.push((intent, outcome));
            }
            stats.record_failed_intents(decided.iter().filter(|(_, o)| o.is_err()).count());
            decided
        }
    }
}

/// One transaction of `intents` intents, counted and timed.
async fn timed_commit(
    storage: &dyn Storage,
    stats: &UowStats,
    changes: &[Change],
    intents: usize,
) -> Result<(), StorageError> {
    let started = Instant::now();
    let result = storage.commit(changes).await;
    stats.record_transaction(intents, started.elapsed(), result.is_ok());
    result
}

fn failed(err: &StorageError) -> CommitError {
    CommitError::Failed(err.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::domain::{Reservation, ReservationStatus, ZoneId, ZoneLayout};

    /// Records every commit; refuses any that contains `poison`.
    struct Recording {
        poison: Uuid,
        commits: Mutex<Vec<Vec<Uuid>>>,
    }

    #[async_trait]
    impl Storage for Recording {
        async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
            Ok(Vec::new())
        }

        async fn load_active_reservations(
            &self,
            _zone: &ZoneId,
            _now: DateTime<Utc>,
        ) -> Result<Vec<Reservation>, StorageError> {
            Ok(Vec::new())
        }

        async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
            let ids: Vec<Uuid> = changes
                .iter()
                .filter_map(|c| match c {
                    Change::SetReservationStatus { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            self.commits.lock().unwrap().push(ids.clone());
            if ids.contains(&self.poison) {
                Err(StorageError::Rejected("poisoned".into()))
            } else {
                Ok(())
            }
        }
    }

    fn intent(ids: &[Uuid]) -> Intent {
        Intent {
            changes: ids
                .iter()
                .map(|id| Change::SetReservationStatus {
                    id: *id,
                    from: ReservationStatus::Confirmed,
                    to: ReservationStatus::Cancelled,
                    at: Utc::now(),
                })
                .collect(),
            events: Vec::new(),
            on_outcome: Box::new(|_| {}),
        }
    }

    /// A unit of work running on `storage` (batches of at most 16), counting into `stats`.
    async fn running(
        storage: Arc<dyn Storage>,
        stats: Arc<UowStats>,
    ) -> (UowHandle, tokio::task::JoinHandle<()>) {
        let args = UowArgs {
            storage,
            notifier: None,
            max_batch: 16,
            max_queue: 16,
            stats,
        };
        let (actor, handle) = Actor::spawn(None, UnitOfWork, args).await.unwrap();
        let uow = UowHandle {
            actor,
            queue: Gate::new(16),
        };
        (uow, handle)
    }

    /// Submits the cancel of `ids`; the receiver gets its outcome.
    fn submit(uow: &UowHandle, ids: &[Uuid]) -> tokio::sync::oneshot::Receiver<Outcome> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut intent = intent(ids);
        intent.on_outcome = Box::new(move |o| {
            let _ = tx.send(o);
        });
        uow.submit(intent, None);
        rx
    }

    #[tokio::test]
    async fn one_transaction_for_the_batch_and_each_intent_alone_after_a_refusal() {
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        let storage = Recording {
            poison: ids[2],
            commits: Mutex::new(Vec::new()),
        };
        let batch = vec![
            intent(&ids[0..2]),
            intent(&[]),
            intent(&ids[2..3]),
            intent(&ids[3..5]),
        ];
        let stats = UowStats::default();
        let decided = commit_batch(&storage, &stats, batch).await;
        let outcomes: Vec<bool> = decided.iter().map(|(_, o)| o.is_ok()).collect();
        assert_eq!(outcomes, vec![true, true, false, true]);
        // Every intent got its own changes back for the retry, in order.
        let retried: Vec<Vec<Uuid>> = decided
            .iter()
            .map(|(i, _)| {
                i.changes
                    .iter()
                    .map(|c| match c {
                        Change::SetReservationStatus { id, .. } => *id,
                        _ => unreachable!(),
                    })
                    .collect()
            })
            .collect();
        assert_eq!(
            retried,
            vec![ids[0..2].to_vec(), vec![], vec![ids[2]], ids[3..5].to_vec()]
        );
        let commits = storage.commits.lock().unwrap().clone();
        assert_eq!(commits[0], ids);
        assert_eq!(
            &commits[1..],
            &[ids[0..2].to_vec(), vec![ids[2]], ids[3..5].to_vec()]
        );
        // Counted per transaction: the failed batch of three intents with changes (the
        // empty one is neither committed nor counted), then the three retries.
        let counted = stats.snapshot();
        assert_eq!(
            (counted.committed, counted.failed, counted.failed_intents),
            (2, 2, 1)
        );
        assert_eq!(counted.intents_per_batch.count, 4);
        assert_eq!(counted.intents_per_batch.sum, 3 + 1 + 1 + 1);
        assert_eq!(counted.commit_micros.count, 4);

        // Without a refusal, the whole batch is one transaction.
        let storage = Recording {
            poison: Uuid::nil(),
            commits: Mutex::new(Vec::new()),
        };
        let stats = UowStats::default();
        let decided = commit_batch(
            &storage,
            &stats,
            vec![intent(&ids[0..2]), intent(&ids[2..5])],
        )
        .await;
        assert!(decided.iter().all(|(_, o)| o.is_ok()));
        assert_eq!(storage.commits.lock().unwrap().clone(), vec![ids.clone()]);
        let counted = stats.snapshot();
        assert_eq!((counted.committed, counted.failed), (1, 0));
        assert_eq!(
            (
                counted.intents_per_batch.count,
                counted.intents_per_batch.sum
            ),
            (1, 2)
        );
    }

    /// The running actor counts into the stats it was given: intents submitted while a
    /// transaction is in flight share the next one.
    #[tokio::test]
    async fn the_actor_counts_every_transaction_it_runs() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let storage = Arc::new(Recording {
            poison: ids[3],
            commits: Mutex::new(Vec::new()),
        });
        let stats = Arc::new(UowStats::default());
        let (uow, handle) = running(storage.clone(), stats.clone()).await;
        let actor = uow.actor.clone();
        let submit = |ids: &[Uuid]| submit(&uow, ids);
        // All four are in the mailbox before the actor runs: the first goes alone,
        // the other three share the next transaction.
        let outcomes = [
            submit(&ids[0..1]),
            submit(&ids[1..2]),
            submit(&ids[2..3]),
            submit(&ids[3..4]),
        ];
        let mut ok = Vec::new();
        for rx in outcomes {
            ok.push(rx.await.unwrap().is_ok());
        }
        assert_eq!(ok, vec![true, true, true, false]);
        let counted = stats.snapshot();
        let commits = storage.commits.lock().unwrap().len() as u64;
        assert_eq!(counted.committed + counted.failed, commits);
        assert_eq!(counted.intents_per_batch.count, commits);
        assert_eq!(counted.commit_micros.count, commits);
        assert_eq!(counted.failed_intents, 1);
        // [0]; then [1, 2, 3], refused; then 1, 2 and 3 alone.
        assert_eq!(commits, 5);
        assert_eq!((counted.committed, counted.failed), (3, 2));
        assert_eq!(counted.intents_per_batch.sum, 1 + 3 + 1 + 1 + 1);
        assert_eq!(uow.queue.snapshot().in_flight, 0);
        actor.stop(None);
        handle.await.unwrap();
    }

    /// Logs each commit's begin and end (by its first reservation); a commit whose
    /// first reservation is `held` waits until `release`, any other until
    /// `release_others`.
    struct Overlapping {
        held: Uuid,
        release: tokio::sync::watch::Sender<bool>,
        release_others: tokio::sync::watch::Sender<bool>,
        log: Mutex<Vec<String>>,
        begun: tokio::sync::watch::Sender<usize>,
    }

    #[async_trait]
    impl Storage for Overlapping {
        async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
            Ok(Vec::new())
        }

        async fn load_active_reservations(
            &self,
            _zone: &ZoneId,
            _now: DateTime<Utc>,
        ) -> Result<Vec<Reservation>, StorageError> {
            Ok(Vec::new())
        }

        fn concurrent_commits(&self) -> usize {
            2
        }

        async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
            let first = match &changes[0] {
                Change::SetReservationStatus { id, .. } => *id,
                _ => unreachable!(),
            };
            let name = if first == self.held { "held" } else { "other" };
            self.log.lock().unwrap().push(format!("begin {name}"));
            self.begun.send_modify(|n| *n += 1);
            let gate = if first == self.held {
                &self.release
            } else {
                &self.release_others
            };
            let _ = gate.subscribe().wait_for(|r| *r).await;
            self.log.lock().unwrap().push(format!("end {name}"));
            Ok(())
        }
    }

    /// With room for two transactions, a batch on other reservations commits while the
    /// first is held; one on the held reservation, and a barrier, wait for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_batch_overlaps_the_first_only_where_it_cannot_depend_on_it() {
        let held = Uuid::now_v7();
        let storage = Arc::new(Overlapping {
            held,
            release: tokio::sync::watch::channel(false).0,
            release_others: tokio::sync::watch::channel(false).0,
            log: Mutex::new(Vec::new()),
            begun: tokio::sync::watch::channel(0).0,
        });
        let stats = Arc::new(UowStats::default());
        let (uow, handle) = running(storage.clone(), stats.clone()).await;
        let actor = uow.actor.clone();
        let submit = |ids: &[Uuid]| submit(&uow, ids);
        let mut begun = storage.begun.subscribe();
        let first = submit(&[held]);
        begun.wait_for(|n| *n == 1).await.unwrap();
        // Other reservations: committed while the first is still held.
        let beside = submit(&[Uuid::now_v7()]);
        begun.wait_for(|n| *n == 2).await.unwrap();
        // Both begun, neither decided.
        assert_eq!(stats.snapshot().in_flight, 2);
        storage.release_others.send_replace(true);
        beside.await.unwrap().unwrap();
        // The held reservation again, then a barrier: both wait for the first.
        let again = submit(&[held]);
        let barrier = tokio::spawn({
            let actor = actor.clone();
            let storage = storage.clone();
            async move {
                actor.call(UowMsg::Barrier, None).await.unwrap();
                storage.log.lock().unwrap().push("barrier".into());
            }
        });
        storage.release.send_replace(true);
        first.await.unwrap().unwrap();
        again.await.unwrap().unwrap();
        barrier.await.unwrap();
        let log = storage.log.lock().unwrap().clone();
        assert_eq!(
            log[..4],
            ["begin held", "begin other", "end other", "end held"]
        );
        // The second write of the held reservation began only after the first ended,
        // and the barrier answered after both (it joined no batch of its own kind).
        assert_eq!(log[4..], ["begin held", "end held", "barrier"]);
        assert_eq!(stats.snapshot().in_flight, 0);
        actor.stop(None);
        handle.await.unwrap();
    }
}
