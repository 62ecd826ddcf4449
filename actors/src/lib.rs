//! Pica's reservation engine: supervised ractor actors around pure state machines.
//!
//! Layered from the bottom up; a module only uses modules of the layers below it (the
//! one exception is noted under [`bundle`]):
//!
//! * Domain and rules: [`domain`], [`series`], [`error`], [`clock`], [`lifecycle`], [`waitlist`],
//!   [`user_ledger`], [`projection`], and the [`storage`] port the engine persists
//!   through (the service implements it).
//! * [`config`] (the engine's limits) and `rpc` (replies, call and commit failures,
//!   shared by every actor and the handle).
//! * The core actors: [`admission`] bounds every queue; [`unit_of_work`] batches the
//!   writes of all actors into one transaction (group commit) and only then answers
//!   clients and settles or undoes each participant; [`notifier`] fans committed
//!   changes out to subscribers, in commit order.
//! * The domain actors: [`zone`] serializes every request for one seat zone (pure core:
//!   [`zone::state`]); [`book`] owns the book catalog's stock (pure core:
//!   [`book::state`]). [`bundle`] is the protocol that books a seat and book copies in
//!   one transaction: its sealed bundle travels in both actors' messages and answers
//!   through them, so it and their `messages` modules name each other.
//! * [`supervisor`] spawns and restarts all of the above; [`Engine`] (in [`engine`], one
//!   child module per capability) is the handle the HTTP edge talks to.

pub mod admission;
pub mod book;
pub mod bundle;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod floor_plan;
pub mod lifecycle;
pub mod notifier;
pub mod projection;
pub(crate) mod rpc;
pub mod series;
pub mod storage;
pub mod supervisor;
pub mod unit_of_work;
pub mod user_ledger;
pub mod waitlist;
pub mod zone;

/// The zone's pure state machine under its former path, for the service's snapshots.
pub use zone::state as zone_state;

pub use admission::GateStats;
pub use book::state::{BookQuery, BookView};
pub use bundle::{Bundle, BundleError, BundlePart, BundleRequest};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::EngineConfig;
pub use domain::*;
pub use engine::{AdmissionStats, Engine};
pub use error::{EngineError, OccurrenceConflict};
pub use floor_plan::{Spot, default_spot};
pub use lifecycle::LifecycleConfig;
pub use series::{ReservationSeries, SeriesId, SeriesRequest};
pub use storage::{Change, Created, IdempotencyTag, Storage, StorageError};
pub use unit_of_work::{CommitStats, HistogramSnapshot};
pub use waitlist::{Hold, WaitStatus, WaitlistEntry, WaitlistId};
