//! Live availability around the engine: the lifecycle scheduler, the event streams'
//! limits, and their settings.
//!
//! The scheduler (tokio-cron-scheduler) decides nothing: every `PICA_SWEEP_SECONDS` it
//! asks each zone actor to sweep, and the zone decides at its clock's time which
//! reservations are due (see `pica_actors::lifecycle`); on the same tick the book stock
//! actor expires uncollected book reservations whose hold has ended.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use pica_actors::{Engine, LifecycleConfig};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{info, warn};

/// `PICA_*` settings of the lifecycle, the waitlist and the event streams.
#[derive(Debug, Clone)]
pub struct LiveSettings {
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
    /// `PICA_SSE_MAX_SUBSCRIBERS` (10000): concurrent event streams (503 beyond).
    pub max_subscribers: usize,
    /// `PICA_SSE_MAX_SNAPSHOTS` (8): snapshots being rendered and sent at once (503
    /// beyond). Each costs a bounded amount of memory whatever the space's size; this
    /// bounds how many there are.
    pub max_snapshots: usize,
    /// `PICA_SSE_SNAPSHOT_SECONDS` (120): a stream whose client has not taken its whole
    /// snapshot by then is closed, so a client that stops reading cannot keep a
    /// snapshot's place (it reconnects into a fresh snapshot).
    pub snapshot_timeout: Duration,
    /// `PICA_SSE_HEARTBEAT_SECONDS` (15): comment lines that keep idle streams open.
    pub heartbeat: Duration,
    /// `PICA_EVENT_BUFFER` (4096): events kept for `Last-Event-ID` resumption.
    pub event_buffer: usize,
    /// `PICA_EVENT_LAG_LIMIT` (1024): events a stream may fall behind before it is
    /// dropped.
    pub event_lag_limit: usize,
}

impl LiveSettings {
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
            max_subscribers: number(get, "PICA_SSE_MAX_SUBSCRIBERS", 10_000)? as usize,
            max_snapshots: number(get, "PICA_SSE_MAX_SNAPSHOTS", 8)? as usize,
            snapshot_timeout: Duration::from_secs(number(get, "PICA_SSE_SNAPSHOT_SECONDS", 120)?),
            heartbeat: Duration::from_secs(number(get, "PICA_SSE_HEARTBEAT_SECONDS", 15)?),
            event_buffer: number(get, "PICA_EVENT_BUFFER", 4096)? as usize,
            event_lag_limit: number(get, "PICA_EVENT_LAG_LIMIT", 1024)? as usize,
        };
        if settings.hold_for.is_zero() {
            bail!("PICA_HOLD_MINUTES must be at least 1");
        }
        if settings.heartbeat.is_zero() {
            bail!("PICA_SSE_HEARTBEAT_SECONDS must be at least 1");
        }
        if settings.max_snapshots == 0 || settings.snapshot_timeout.is_zero() {
            bail!("PICA_SSE_MAX_SNAPSHOTS and PICA_SSE_SNAPSHOT_SECONDS must be at least 1");
        }
        if settings.event_buffer == 0 || settings.event_lag_limit == 0 {
            bail!("PICA_EVENT_BUFFER and PICA_EVENT_LAG_LIMIT must be at least 1");
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

fn number(get: &impl Fn(&str) -> Option<String>, key: &str, default: u64) -> anyhow::Result<u64> {
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= 1_000_000_000)
            .ok_or_else(|| anyhow!("{key}={raw:?}: expected a whole number")),
    }
}

/// What the event-stream handlers share: the settings, the subscriber limit and the
/// limit on snapshots in progress.
pub struct Live {
    pub settings: LiveSettings,
    slots: Arc<Semaphore>,
    snapshots: Arc<Semaphore>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl Live {
    pub fn new(settings: LiveSettings) -> Self {
        let slots = Arc::new(Semaphore::new(settings.max_subscribers));
        let snapshots = Arc::new(Semaphore::new(settings.max_snapshots));
        let (closing, _) = tokio::sync::watch::channel(false);
        Self {
            settings,
            slots,
            snapshots,
            closing,
        }
    }

    /// Ends every open stream (the server is shutting down: streams never end by
    /// themselves, and graceful shutdown waits for every response to finish).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`close`](Self::close) was called.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }

    /// A place for one more stream, held as long as the stream lives; `None` when
    /// `PICA_SSE_MAX_SUBSCRIBERS` streams are open.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// A place for one more snapshot in progress, held until the snapshot's last part
    /// is handed to the connection; `None` when `PICA_SSE_MAX_SNAPSHOTS` are.
    pub fn admit_snapshot(&self) -> Option<OwnedSemaphorePermit> {
        self.snapshots.clone().try_acquire_owned().ok()
    }

    /// Snapshots being rendered or sent now.
    pub fn snapshots_in_progress(&self) -> usize {
        self.settings.max_snapshots - self.snapshots.available_permits()
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.settings.max_subscribers - self.slots.available_permits()
    }
}

/// The running lifecycle scheduler.
pub struct Lifecycle {
    scheduler: Option<JobScheduler>,
}

impl Lifecycle {
    /// Starts sweeping every `settings.sweep_every` (not at all when zero).
    pub async fn start(engine: Engine, settings: &LiveSettings) -> anyhow::Result<Self> {
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

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<LiveSettings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LiveSettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.no_show_after, Duration::from_secs(15 * 60));
        assert_eq!(s.check_in_opens_before, Duration::from_secs(15 * 60));
        assert_eq!(s.hold_for, Duration::from_secs(10 * 60));
        assert_eq!(s.max_subscribers, 10_000);
        assert_eq!(s.max_snapshots, 8);
        assert_eq!(s.snapshot_timeout, Duration::from_secs(120));
        let l = s.lifecycle();
        assert_eq!(l.no_show_after, chrono::Duration::minutes(15));
        assert_eq!(l.hold_for, chrono::Duration::minutes(10));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value) in [
            ("PICA_NO_SHOW_MINUTES", "soon"),
            ("PICA_HOLD_MINUTES", "0"),
            ("PICA_SSE_MAX_SUBSCRIBERS", "-1"),
            ("PICA_SSE_HEARTBEAT_SECONDS", "0"),
            ("PICA_SSE_MAX_SNAPSHOTS", "0"),
            ("PICA_SSE_SNAPSHOT_SECONDS", "0"),
            ("PICA_EVENT_BUFFER", "0"),
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn the_subscriber_limit_admits_up_to_the_maximum() {
        let live = Live::new(settings(&[("PICA_SSE_MAX_SUBSCRIBERS", "2")]).unwrap());
        let a = live.admit().unwrap();
        let _b = live.admit().unwrap();
        assert!(live.admit().is_none());
        assert_eq!(live.open_streams(), 2);
        drop(a);
        assert!(live.admit().is_some());
    }

    #[test]
    fn the_snapshot_limit_admits_up_to_the_maximum() {
        let live = Live::new(settings(&[("PICA_SSE_MAX_SNAPSHOTS", "1")]).unwrap());
        let a = live.admit_snapshot().unwrap();
        assert!(live.admit_snapshot().is_none());
        assert_eq!(live.snapshots_in_progress(), 1);
        drop(a);
        assert!(live.admit_snapshot().is_some());
    }
}
