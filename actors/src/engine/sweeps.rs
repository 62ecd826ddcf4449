//! The lifecycle's sweeps through the [`Engine`] handle: the scheduler's tick asks
//! every zone to sweep; tests sweep and wait for the outcome.

use tracing::warn;

use crate::domain::ZoneId;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::zone::messages::{SweepReport, ZoneMsg};

impl Engine {
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
}
