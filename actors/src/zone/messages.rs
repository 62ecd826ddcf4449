//! What a zone actor is asked (by the [`Engine`](crate::Engine) handle, the bundle
//! protocol and the scheduler) and what the unit of work reports back to it, with the
//! payloads of those messages.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ractor::RpcReplyPort;

use crate::bundle::SealedBundle;
use crate::domain::{
    Interval, Reservation, ReservationId, ReservationStatus, ReserveRequest, SeatLayout,
    SeatNumber, SeatService, UserId,
};
use crate::floor_plan::Spot;
use crate::rpc::Reply;
use crate::series::SeriesRequest;
use crate::storage::IdempotencyTag;
use crate::waitlist::{WaitlistEntry, WaitlistId};
use crate::zone::state::{SeatView, WaitChange};

pub type FreeIntervals = Vec<(SeatNumber, SeatService, Vec<Interval>)>;

/// How contended a zone is, counted by its actor since it (re)started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ZoneStats {
    /// Reserve requests decided by the zone.
    pub reserve_requests: u64,
    /// Refused because the seat was taken (or pending) for an overlapping interval.
    pub seat_conflicts: u64,
    /// Refused by the user ledger (overlap with the user's own reservation, or limit).
    pub user_refusals: u64,
    /// Creates whose transaction committed / failed.
    pub committed: u64,
    pub commit_failures: u64,
    /// Writes refused with 503 because the unit of work's queue was full.
    pub overloaded: u64,
    /// Active reservations (and holds) held in memory now.
    pub held: usize,
}

/// What one sweep of a zone set in motion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Reservations moved to `no_show` or `completed`.
    pub transitions: usize,
    /// Waitlist entries closed as `expired` (holds past their deadline, waits whose
    /// time has passed).
    pub expired: usize,
    /// Holds offered to waiters.
    pub offers: usize,
}

impl std::ops::AddAssign for SweepReport {
    fn add_assign(&mut self, other: Self) {
        self.transitions += other.transitions;
        self.expired += other.expired;
        self.offers += other.offers;
    }
}

/// What to settle or undo once an admin seat change is decided.
#[derive(Debug, Clone)]
pub enum SeatChange {
    Added(SeatNumber),
    Service {
        seat: SeatNumber,
        previous: SeatService,
        cancelled: Vec<Reservation>,
    },
}

pub enum ZoneMsg {
    /// Admin: the zone's contention counters.
    Stats {
        reply: RpcReplyPort<ZoneStats>,
    },
    Reserve {
        request: ReserveRequest,
        reply: Reply<Reservation>,
    },
    /// Every occurrence of a weekly series, in one turn and one intent (all or none).
    ReserveSeries {
        request: SeriesRequest,
        reply: Reply<Vec<Reservation>>,
    },
    ChangeStatus {
        id: ReservationId,
        user_id: UserId,
        to: ReservationStatus,
        reply: Reply<Reservation>,
    },
    Availability {
        window: Interval,
        reply: RpcReplyPort<FreeIntervals>,
    },
    Live {
        reply: RpcReplyPort<Vec<SeatView>>,
    },
    /// Bundle phase one: hold the seat prepared until sealed or `ttl` passes.
    Prepare {
        id: ReservationId,
        request: ReserveRequest,
        ttl: Duration,
        reply: Reply<Reservation>,
    },
    /// Bundle: drop a prepared hold that was not sealed (deadline or abort).
    ReleasePrepared {
        id: ReservationId,
    },
    /// Bundle phase two: seal the hold and submit the bundle's one intent.
    SubmitPrepared(SealedBundle),
    /// Internal, from the unit of work: the create's transaction was decided.
    CreateDecided {
        reservation: Reservation,
        committed: bool,
    },
    /// Internal, from the unit of work: the status change's transaction was decided.
    StatusDecided {
        id: ReservationId,
        to: ReservationStatus,
        committed: bool,
    },
    /// Admin: add a seat to this zone.
    AddSeat {
        seat: SeatLayout,
        reply: Reply<()>,
    },
    /// Admin: put a seat in or out of service; out of service cancels the seat's
    /// confirmed reservations that have not ended (they are returned).
    SetSeatService {
        seat: SeatNumber,
        service: SeatService,
        reply: Reply<Vec<Reservation>>,
    },
    /// Admin: move a seat to another spot on the zone's floor plan.
    MoveSeat {
        seat: SeatNumber,
        spot: Spot,
        reply: Reply<()>,
    },
    /// Internal, from the unit of work: an admin seat change was decided.
    SeatDecided {
        change: SeatChange,
        committed: bool,
    },
    /// Check-out of a checked-in reservation: `completed`, its end cut to `end_at`.
    CheckOut {
        id: ReservationId,
        user_id: UserId,
        end_at: DateTime<Utc>,
        reply: Reply<Reservation>,
    },
    /// The lifecycle: move due reservations, expire holds, offer freed seats. With a
    /// reply port, answers once the sweep's writes are decided.
    Sweep {
        reply: Option<RpcReplyPort<SweepReport>>,
    },
    /// Answers once every write this zone submitted so far is decided.
    Flush {
        reply: RpcReplyPort<()>,
    },
    JoinWaitlist {
        user_id: UserId,
        interval: Interval,
        idempotency: Option<IdempotencyTag>,
        reply: Reply<WaitlistEntry>,
    },
    LeaveWaitlist {
        id: WaitlistId,
        user_id: UserId,
        reply: Reply<WaitlistEntry>,
    },
    ConfirmHold {
        id: WaitlistId,
        user_id: UserId,
        reply: Reply<Reservation>,
    },
    /// Internal, from the unit of work: a waitlist change was decided.
    WaitlistDecided {
        id: WaitlistId,
        change: WaitChange,
        committed: bool,
    },
}
