//! The notifier: numbers committed events and fans them out to subscribers.
//!
//! It only ever receives events after their transaction committed (from the unit of
//! work, in commit order), so subscribers never see an uncommitted change. Each event
//! gets the next global sequence number, which therefore increases within every zone
//! too. A bounded ring buffer lets a reconnecting subscriber resume; a subscriber that
//! falls further behind than the broadcast channel's capacity is dropped by the channel
//! (it sees `Lagged`) instead of slowing the engine down.

use std::collections::VecDeque;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::{DomainEvent, ZoneId};

#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub seq: u64,
    pub zone: ZoneId,
    pub event: DomainEvent,
}

/// What a new subscriber gets: the events it missed (or `None` if they are no longer
/// buffered and it needs a fresh snapshot) and a receiver for everything after.
pub struct Subscription {
    pub missed: Option<Vec<Arc<Envelope>>>,
    pub live: broadcast::Receiver<Arc<Envelope>>,
    /// The sequence number of the last event published before subscribing.
    pub head: u64,
}

pub enum NotifierMsg {
    Publish(Vec<DomainEvent>),
    Subscribe {
        after: Option<u64>,
        reply: RpcReplyPort<Subscription>,
    },
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
        Ok(NotifierState {
            seq: 0,
            ring: VecDeque::with_capacity(args.buffer),
            buffer: args.buffer.max(1),
            sender,
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
                for event in events {
                    state.seq += 1;
                    let envelope = Arc::new(Envelope {
                        seq: state.seq,
                        zone: event.zone().clone(),
                        event,
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
                });
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
    Some(ring.iter().filter(|e| e.seq > after).cloned().collect())
}
