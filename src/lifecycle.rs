//! The reservation lifecycle around the engine: its settings, and the scheduler that
//! drives it.
//!
//! The scheduler (tokio-cron-scheduler) decides nothing: every `PICA_SWEEP_SECONDS` it
//! asks each zone actor to sweep, and the zone decides at its clock's time which
//! reservations are due (see `pica_actors::lifecycle`); on the same tick the book stock
//! actor expires uncollected book reservations whose hold has ended.

use std::time::Duration;

use anyhow::{Context, bail};
use pica_actors::{Engine, LifecycleConfig};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{info, warn};

use crate::config::whole_number as number;

/// `PICA_*` settings of check-in, no-shows, the waitlist and the sweep.
#[derive(Debug, Clone)]
pub struct LifecycleSettings {
    /// `PICA_CHECK_IN_OPENS_MINUTES` (15): check-in opens this long before the start.
    pub check_in_opens_before: Duration,
    /// `PICA_NO_SHOW_MINUTES` (15): not checked in this long after the start → no-show.
    pub no_show_after: Duration,
    /// `PICA_HOLD_MINUTES` (10): how long a waiter's hold on a freed seat lasts.
    pub hold_for: Duration,
    /// `PICA_WAITLIST_PER_USER` (5): open waitlist entries per user and zone.
    pub waitlist_per_user: usize,
    /// `PICA_SWEEP_SECONDS` (30): how often the lifecycle sweeps; 0 turns it off.
    pub sweep_every: Duration,
}

impl LifecycleSettings {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let minutes = |key: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(60 * number(get, key, default)?))
        };
        let settings = Self {
            check_in_opens_before: minutes("PICA_CHECK_IN_OPENS_MINUTES", 15)?,
            no_show_after: minutes("PICA_NO_SHOW_MINUTES", 15)?,
            hold_for: minutes("PICA_HOLD_MINUTES", 10)?,
            waitlist_per_user: number(get, "PICA_WAITLIST_PER_USER", 5)? as usize,
            sweep_every: Duration::from_secs(number(get, "PICA_SWEEP_SECONDS", 30)?),
        };
        if settings.hold_for.is_zero() {
            bail!("PICA_HOLD_MINUTES must be at least 1");
        }
        Ok(settings)
    }

    /// The engine's lifecycle rules.
    pub fn lifecycle(&self) -> LifecycleConfig {
        let minutes = |d: Duration| chrono::Duration::seconds(d.as_secs() as i64);
        LifecycleConfig {
            no_show_after: minutes(self.no_show_after),
            check_in_opens_before: minutes(self.check_in_opens_before),
            hold_for: minutes(self.hold_for),
            max_waitlist_per_user: self.waitlist_per_user,
            ..LifecycleConfig::default()
        }
    }
}

/// The running lifecycle scheduler.
pub struct SweepScheduler {
    scheduler: Option<JobScheduler>,
}

impl SweepScheduler {
    /// Starts sweeping every `settings.sweep_every` (not at all when zero).
    pub async fn start(engine: Engine, settings: &LifecycleSettings) -> anyhow::Result<Self> {
        if settings.sweep_every.is_zero() {
            info!("PICA_SWEEP_SECONDS=0: the automatic lifecycle is off");
            return Ok(Self { scheduler: None });
        }
        let scheduler = JobScheduler::new()
            .await
            .context("creating the lifecycle scheduler")?;
        let job = Job::new_repeated_async(settings.sweep_every, move |_, _| {
            let engine = engine.clone();
            Box::pin(async move {
                engine.trigger_sweep();
                engine.trigger_book_expiry();
            })
        })
        .context("creating the sweep job")?;
        scheduler.add(job).await.context("adding the sweep job")?;
        scheduler
            .start()
            .await
            .context("starting the lifecycle scheduler")?;
        info!(every = ?settings.sweep_every, "lifecycle scheduler started");
        Ok(Self {
            scheduler: Some(scheduler),
        })
    }

    pub async fn stop(mut self) {
        if let Some(mut scheduler) = self.scheduler.take()
            && let Err(err) = scheduler.shutdown().await
        {
            warn!(error = %err, "lifecycle scheduler did not stop cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<LifecycleSettings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LifecycleSettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.no_show_after, Duration::from_secs(15 * 60));
        assert_eq!(s.check_in_opens_before, Duration::from_secs(15 * 60));
        assert_eq!(s.hold_for, Duration::from_secs(10 * 60));
        let l = s.lifecycle();
        assert_eq!(l.no_show_after, chrono::Duration::minutes(15));
        assert_eq!(l.hold_for, chrono::Duration::minutes(10));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value) in [("PICA_NO_SHOW_MINUTES", "soon"), ("PICA_HOLD_MINUTES", "0")] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
