//! The notifier: numbers committed events and fans them out to subscribers.
//!
//! It only ever receives events after their transaction committed (from the unit of
//! work, in commit order), so subscribers never see an uncommitted change. Each event
//! gets the next sequence number, which therefore increases within every zone too
//! (docs/architecture.md, invariant 7). Numbering starts at the wall clock's
//! microseconds when the notifier starts, so ids handed out before a restart are always
//! older than the new ones and a stale `Last-Event-ID` leads to a fresh snapshot rather
//! than a wrong replay.
//!
//! A bounded ring buffer lets a reconnecting subscriber resume; a subscriber that falls
//! further behind than the broadcast channel's capacity is dropped by the channel (it
//! sees `Lagged`) instead of slowing the engine down: publishing never waits.
//!
//! The notifier also keeps a [`Projection`] of the committed state, updated with each
//! event it numbers, so [`NotifierMsg::Open`] can hand out a snapshot and a live
//! receiver in one turn: the snapshot holds exactly the events up to `head`.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::{DomainEvent, ZoneId};
use crate::projection::{LoadedZone, Projection, Scope, ZoneSnapshot};

#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub seq: u64,
    pub zone: ZoneId,
    pub event: DomainEvent,
    /// When the notifier received it, right after its commit (wall clock).
    pub committed_at: DateTime<Utc>,
    /// The event as the public stream renders it, rendered once by the first subscriber
    /// that needs it and shared by all others (`None`: not shown publicly).
    #[serde(skip)]
    pub public: OnceLock<Option<Rendered>>,
}

/// A rendered server-sent event: its type and the whole encoded frame (`event:`,
/// `id:`, `data:` lines), shared by every stream that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub kind: &'static str,
    pub frame: Arc<[u8]>,
}

/// What a new subscriber gets: the events it missed (or `None` if they are no longer
/// buffered and it needs a fresh snapshot) and a receiver for everything after.
pub struct Subscription {
    pub missed: Option<Vec<Arc<Envelope>>>,
    pub live: broadcast::Receiver<Arc<Envelope>>,
    /// The sequence number of the last event published before subscribing.
    pub head: u64,
    /// With [`NotifierMsg::Open`] when `missed` is `None`: the committed state at
    /// `head`, for the requested scope.
    pub snapshot: Option<Vec<ZoneSnapshot>>,
}

pub enum NotifierMsg {
    Publish(Vec<DomainEvent>),
    Subscribe {
        after: Option<u64>,
        reply: RpcReplyPort<Subscription>,
    },
    /// Like `Subscribe`, and when the events after `after` cannot be replayed (or no
    /// `after` is given), a snapshot of `scope` at `head` comes with it.
    Open {
        after: Option<u64>,
        scope: Scope,
        reply: RpcReplyPort<Subscription>,
    },
    /// The layout's order of zones, before they load (concurrently) on the engine's
    /// start: snapshots list zones in this order.
    ZoneOrder(Vec<ZoneId>),
    /// A zone actor (re)started with this committed state; its later events follow.
    ZoneLoaded(LoadedZone),
    /// The number of live receivers (for metrics and tests).
    Subscribers(RpcReplyPort<usize>),
}

pub struct Notifier;

pub struct NotifierArgs {
    pub buffer: usize,
    pub channel_capacity: usize,
}

pub struct NotifierState {
    seq: u64,
    ring: VecDeque<Arc<Envelope>>,
    buffer: usize,
    sender: broadcast::Sender<Arc<Envelope>>,
    projection: Projection,
}

impl Actor for Notifier {
    type Msg = NotifierMsg;
    type State = NotifierState;
    type Arguments = NotifierArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<NotifierMsg>,
        args: NotifierArgs,
    ) -> Result<NotifierState, ActorProcessingErr> {
        let (sender, _) = broadcast::channel(args.channel_capacity.max(1));
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Ok(NotifierState {
            seq: epoch,
            ring: VecDeque::with_capacity(args.buffer.min(65_536)),
            buffer: args.buffer.max(1),
            sender,
            projection: Projection::default(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<NotifierMsg>,
        message: NotifierMsg,
        state: &mut NotifierState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            NotifierMsg::Publish(events) => {
                let committed_at = Utc::now();
                for event in events {
                    state.projection.apply(&event);
                    state.seq += 1;
                    let envelope = Arc::new(Envelope {
                        seq: state.seq,
                        zone: event.zone().clone(),
                        event,
                        committed_at,
                        public: OnceLock::new(),
                    });
                    if state.ring.len() == state.buffer {
                        state.ring.pop_front();
                    }
                    state.ring.push_back(envelope.clone());
                    // An error only means nobody is listening.
                    let _ = state.sender.send(envelope);
                }
            }
            NotifierMsg::Subscribe { after, reply } => {
                let missed = after.and_then(|after| replay(&state.ring, after, state.seq));
                let _ = reply.send(Subscription {
                    missed,
                    live: state.sender.subscribe(),
                    head: state.seq,
                    snapshot: None,
                });
            }
            NotifierMsg::Open {
                after,
                scope,
                reply,
            } => {
                let missed = after.and_then(|after| replay(&state.ring, after, state.seq));
                let snapshot = missed.is_none().then(|| state.projection.snapshot(&scope));
                let _ = reply.send(Subscription {
                    missed,
                    live: state.sender.subscribe(),
                    head: state.seq,
                    snapshot,
                });
            }
            NotifierMsg::ZoneOrder(order) => state.projection.set_order(order),
            NotifierMsg::ZoneLoaded(loaded) => state.projection.load(loaded),
            NotifierMsg::Subscribers(reply) => {
                let _ = reply.send(state.sender.receiver_count());
            }
        }
        Ok(())
    }
}

/// The buffered events after `after`, or `None` if some of them were already evicted
/// (or `after` is from the future, e.g. an id from before a server restart).
fn replay(ring: &VecDeque<Arc<Envelope>>, after: u64, head: u64) -> Option<Vec<Arc<Envelope>>> {
    if after > head {
        return None;
    }
    let oldest = ring.front().map_or(head + 1, |e| e.seq);
    if after + 1 < oldest {
        return None;
    }
    // The ring is ordered by seq: skip to the first one after `after`.
    let start = ring.partition_point(|e| e.seq <= after);
    Some(ring.range(start..).cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interval, Reservation, ReservationStatus, SeatNumber};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn envelope(seq: u64) -> Arc<Envelope> {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        let reservation = Reservation {
            id: Uuid::now_v7(),
            user_id: 1,
            seat: SeatNumber("A1".into()),
            zone: ZoneId("coworking".into()),
            interval: Interval::new(at(9), at(10)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: at(8),
            series: None,
        };
        Arc::new(Envelope {
            seq,
            zone: reservation.zone.clone(),
            event: DomainEvent::ReservationCreated { reservation },
            committed_at: at(8),
            public: OnceLock::new(),
        })
    }

    #[test]
    fn replay_gives_what_was_missed_or_asks_for_a_snapshot() {
        let ring: VecDeque<_> = (101..=110).map(envelope).collect();
        let seqs =
            |r: Option<Vec<Arc<Envelope>>>| r.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(replay(&ring, 107, 110)), Some(vec![108, 109, 110]));
        assert_eq!(seqs(replay(&ring, 110, 110)), Some(vec![]));
        assert_eq!(seqs(replay(&ring, 100, 110)), Some((101..=110).collect()));
        assert_eq!(seqs(replay(&ring, 99, 110)), None, "101 was evicted");
        assert_eq!(seqs(replay(&ring, 111, 110)), None, "from the future");
        assert_eq!(seqs(replay(&VecDeque::new(), 5, 5)), Some(vec![]));
    }
}
