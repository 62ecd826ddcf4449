//! What the book stock actor is asked (by the [`Engine`](crate::Engine) handle, the
//! bundle protocol and the scheduler) and what the unit of work reports back to it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{ActorRef, RpcReplyPort};
use tokio::sync::oneshot;

use crate::book::state::{BookQuery, BookView, OpId};
use crate::bundle::SealedBundle;
use crate::domain::{
    BookId, BookReservation, BookReservationId, BookReservationStatus, ReservationId, UserId,
};
use crate::rpc::Reply;
use crate::storage::IdempotencyTag;

/// The live book stock actor, if it is up; shared by the supervisor and the engine.
pub type BookSlot = Arc<RwLock<Option<ActorRef<BookMsg>>>>;

pub enum BookMsg {
    List {
        query: BookQuery,
        reply: RpcReplyPort<Vec<BookView>>,
    },
    Get {
        id: BookId,
        reply: RpcReplyPort<Option<BookView>>,
    },
    Reserve {
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        idempotency: Option<IdempotencyTag>,
        reply: Reply<BookReservation>,
    },
    /// Cancel (by its owner: `user_id` set), pick up or expire (`user_id` is `None`).
    ChangeStatus {
        id: BookReservationId,
        user_id: Option<UserId>,
        to: BookReservationStatus,
        reply: Reply<BookReservation>,
    },
    /// An admin sets a book's total copies.
    Restock {
        book_id: BookId,
        total: u32,
        reply: Reply<()>,
    },
    /// Expires every committed reservation whose hold has ended by the actor's clock.
    /// Replies (if asked) at once with one receiver per expiry submitted, which tells
    /// whether it committed.
    ExpireDue {
        reply: Option<RpcReplyPort<Vec<oneshot::Receiver<bool>>>>,
    },
    /// Bundle, phase one: hold `copies` tentatively until the bundle is submitted or
    /// `ttl` passes.
    Prepare {
        user_id: UserId,
        book_id: BookId,
        copies: u32,
        seat_reservation: ReservationId,
        ttl: Duration,
        reply: Reply<BookReservation>,
    },
    /// Drops a prepared hold that was not submitted (the deadline, or an abort).
    ReleasePrepared { id: BookReservationId },
    /// Bundle, phase two: seal the prepared hold and pass the bundle on to the zone.
    /// Boxed: the sealed bundle carries both parts, far larger than any other message.
    CommitBundle(Box<SealedBundle>),
    /// Internal, from the unit of work: a change's transaction was decided.
    Decided { op: OpId, committed: bool },
}
