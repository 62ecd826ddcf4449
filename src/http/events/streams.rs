//! The event streams' settings and shared limits: how many streams may be open, how
//! many snapshots may be in progress, and the signal that ends every stream at
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::whole_number as number;

/// `PICA_SSE_*` and `PICA_EVENT_*` settings.
#[derive(Debug, Clone)]
pub struct StreamSettings {
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

impl StreamSettings {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let settings = Self {
            max_subscribers: number(get, "PICA_SSE_MAX_SUBSCRIBERS", 10_000)? as usize,
            max_snapshots: number(get, "PICA_SSE_MAX_SNAPSHOTS", 8)? as usize,
            snapshot_timeout: Duration::from_secs(number(get, "PICA_SSE_SNAPSHOT_SECONDS", 120)?),
            heartbeat: Duration::from_secs(number(get, "PICA_SSE_HEARTBEAT_SECONDS", 15)?),
            event_buffer: number(get, "PICA_EVENT_BUFFER", 4096)? as usize,
            event_lag_limit: number(get, "PICA_EVENT_LAG_LIMIT", 1024)? as usize,
        };
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
}

/// What the event-stream handlers share: the settings, the subscriber limit and the
/// limit on snapshots in progress.
pub struct EventStreams {
    pub settings: StreamSettings,
    slots: Arc<Semaphore>,
    snapshots: Arc<Semaphore>,
    closing: tokio::sync::watch::Sender<bool>,
}

impl EventStreams {
    pub fn new(settings: StreamSettings) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<StreamSettings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        StreamSettings::from_lookup(&|k: &str| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.max_subscribers, 10_000);
        assert_eq!(s.max_snapshots, 8);
        assert_eq!(s.snapshot_timeout, Duration::from_secs(120));
        assert_eq!(s.heartbeat, Duration::from_secs(15));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value) in [
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
        let live = EventStreams::new(settings(&[("PICA_SSE_MAX_SUBSCRIBERS", "2")]).unwrap());
        let a = live.admit().unwrap();
        let _b = live.admit().unwrap();
        assert!(live.admit().is_none());
        assert_eq!(live.open_streams(), 2);
        drop(a);
        assert!(live.admit().is_some());
    }

    #[test]
    fn the_snapshot_limit_admits_up_to_the_maximum() {
        let live = EventStreams::new(settings(&[("PICA_SSE_MAX_SNAPSHOTS", "1")]).unwrap());
        let a = live.admit_snapshot().unwrap();
        assert!(live.admit_snapshot().is_none());
        assert_eq!(live.snapshots_in_progress(), 1);
        drop(a);
        assert!(live.admit_snapshot().is_some());
    }
}
