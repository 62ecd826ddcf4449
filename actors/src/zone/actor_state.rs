//! What a zone actor holds between messages. Every handler of the zone works on it, so
//! it sits below them and below the actor that dispatches to them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::domain::{ReservationId, UserId};
use crate::lifecycle::LifecycleConfig;
use crate::unit_of_work::UowHandle;
use crate::user_ledger::UserLedger;
use crate::zone::messages::ZoneStats;
use crate::zone::state::ZoneState;

/// Prepared seat holds of a zone that are not sealed yet: reservation → its user.
pub(crate) type PreparedSeats = HashMap<ReservationId, UserId>;

pub struct ZoneActorState {
    /// The zone's seats with their reservations, holds and waitlist (the pure core).
    pub(crate) seats: ZoneState,
    pub(crate) uow: UowHandle,
    pub(crate) ledger: Arc<UserLedger>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) lifecycle: LifecycleConfig,
    /// Bundle seat holds that are prepared but not sealed yet.
    pub(crate) prepared: PreparedSeats,
    pub(crate) stats: ZoneStats,
}
