//! The engine's limits and rules, read by the supervisor (which sizes every actor with
//! them) and by the [`Engine`](crate::Engine) handle.

use std::time::Duration;

use crate::lifecycle::LifecycleConfig;

/// Limits of the engine. Everything that queues has a bound.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Maximum active reservations per user (docs/architecture.md, invariant 2).
    pub per_user_limit: usize,
    /// Maximum active series occurrences per user, across all their series; each
    /// occurrence counts as one (invariant 2).
    pub series_occurrence_limit: usize,
    /// How long the edge waits for any actor's answer.
    pub rpc_timeout: Duration,
    /// Most intents committed in one transaction.
    pub max_batch: usize,
    /// Most intents waiting for the unit of work before clients' writes are refused.
    pub max_queue: usize,
    /// Most requests in flight at one zone actor (in its mailbox or waiting for their
    /// commit) before new ones are refused.
    pub zone_queue_limit: usize,
    /// Likewise for the book stock actor.
    pub book_queue_limit: usize,
    /// Events kept for `Last-Event-ID` resumption.
    pub event_buffer: usize,
    /// Events a subscriber may fall behind before it is dropped.
    pub event_channel_capacity: usize,
    /// How long an uncollected book reservation holds its copies.
    pub book_hold: Duration,
    /// How long a prepared part of a bundle waits to be submitted before it is released.
    pub prepare_timeout: Duration,
    /// No-show, check-in and waitlist rules.
    pub lifecycle: LifecycleConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            per_user_limit: 3,
            series_occurrence_limit: 20,
            rpc_timeout: Duration::from_secs(5),
            max_batch: 1024,
            // Sized so that 1024 clients with one request each are never refused, while
            // queued work (and so latency) stays bounded past that.
            max_queue: 4096,
            zone_queue_limit: 1024,
            book_queue_limit: 1024,
            event_buffer: 4096,
            event_channel_capacity: 1024,
            book_hold: Duration::from_secs(48 * 3600),
            prepare_timeout: Duration::from_secs(5),
            lifecycle: LifecycleConfig::default(),
        }
    }
}
