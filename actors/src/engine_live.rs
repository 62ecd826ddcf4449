//! The [`Engine`] handle's lifecycle, waitlist and event-stream requests.

use chrono::{DateTime, Utc};
use tracing::warn;

use crate::domain::{Interval, Reservation, ReservationId, UserId, ZoneId};
use crate::engine::{Engine, unwrap_call};
use crate::error::EngineError;
use crate::notifier::{NotifierMsg, Subscription};
use crate::projection::Scope;
use crate::waitlist::{WaitlistEntry, WaitlistId};
use crate::zone::ZoneMsg;
use crate::zone_live::SweepReport;

impl Engine {
    /// Checks out the caller's checked-in reservation in `zone`: it becomes
    /// `completed` and ends at `end_at` (if that is before its booked end).
    pub async fn check_out(
        &self,
        zone: &ZoneId,
        id: ReservationId,
        user_id: UserId,
        end_at: DateTime<Utc>,
    ) -> Result<Reservation, EngineError> {
        self.call(zone, |reply| ZoneMsg::CheckOut {
            id,
            user_id,
            end_at,
            reply,
        })
        .await?
    }

    pub async fn join_waitlist(
        &self,
        zone: &ZoneId,
        user_id: UserId,
        interval: Interval,
        idempotency: Option<crate::storage::IdempotencyTag>,
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

    /// Sweeps every zone at the clock's current time and returns once the sweep's
    /// writes — and the offers they led to (a no-show's seat going to a waiter) — are
    /// decided. Tests call this after moving a manual clock.
    pub async fn sweep(&self) -> Result<SweepReport, EngineError> {
        let mut total = SweepReport::default();
        let zones: Vec<ZoneId> = self.layout().into_iter().map(|z| z.id).collect();
        for zone in &zones {
            total += self
                .call_unbounded(zone, |reply| ZoneMsg::Sweep { reply: Some(reply) })
                .await?;
        }
        // Settling those writes may have offered freed seats; wait for those too.
        for zone in &zones {
            self.call_unbounded(zone, |reply| ZoneMsg::Flush { reply })
                .await?;
        }
        Ok(total)
    }

    /// Asks every zone to sweep, without waiting (the scheduler's tick).
    pub fn trigger_sweep(&self) {
        for zone in self.layout() {
            // A restarting zone sweeps as soon as it is back.
            if let Some(actor) = self.zone_actor(&zone.id)
                && actor.cast(ZoneMsg::Sweep { reply: None }).is_err()
            {
                warn!(zone = %zone.id, "zone is gone; its sweep waits for the restart");
            }
        }
    }

    /// Opens an event stream: the events after `after` if they are still buffered,
    /// otherwise a snapshot of `scope` that is exact at the subscription's `head`.
    pub async fn open_events(
        &self,
        after: Option<u64>,
        scope: Scope,
    ) -> Result<Subscription, EngineError> {
        let notifier = self.notifier()?;
        let result = notifier
            .call(
                |reply| NotifierMsg::Open {
                    after,
                    scope,
                    reply,
                },
                Some(self.config().rpc_timeout),
            )
            .await;
        unwrap_call(result)
    }

    /// How many event receivers are alive.
    pub async fn subscribers(&self) -> Result<usize, EngineError> {
        let notifier = self.notifier()?;
        unwrap_call(
            notifier
                .call(NotifierMsg::Subscribers, Some(self.config().rpc_timeout))
                .await,
        )
    }
}
