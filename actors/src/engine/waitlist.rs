//! A zone's waitlist through the [`Engine`] handle: joining and leaving it, and
//! confirming a hold on a freed seat.

use crate::domain::{Interval, Reservation, UserId, ZoneId};
use crate::engine::Engine;
use crate::error::EngineError;
use crate::storage::IdempotencyTag;
use crate::waitlist::{WaitlistEntry, WaitlistId};
use crate::zone::messages::ZoneMsg;

impl Engine {
    pub async fn join_waitlist(
        &self,
        zone: &ZoneId,
        user_id: UserId,
        interval: Interval,
        idempotency: Option<IdempotencyTag>,
    ) -> Result<WaitlistEntry, EngineError> {
        self.call(zone, |reply| ZoneMsg::JoinWaitlist {
            user_id,
            interval,
            idempotency,
            reply,
        })
        .await?
    }

    pub async fn leave_waitlist(
        &self,
        zone: &ZoneId,
        id: WaitlistId,
        user_id: UserId,
    ) -> Result<WaitlistEntry, EngineError> {
        self.call(zone, |reply| ZoneMsg::LeaveWaitlist { id, user_id, reply })
            .await?
    }

    pub async fn confirm_hold(
        &self,
        zone: &ZoneId,
        id: WaitlistId,
        user_id: UserId,
    ) -> Result<Reservation, EngineError> {
        self.call(zone, |reply| ZoneMsg::ConfirmHold { id, user_id, reply })
            .await?
    }
}
