//! Pica's reservation engine: supervised ractor actors around pure state machines.
//!
//! * [`zone_state`] and [`user_ledger`] are deterministic state machines, unit-tested
//!   without actors.
//! * [`zone`] is the actor that serializes every request for one seat zone.
//! * [`book_stock`] is the actor owning the book catalog's stock (pure core:
//!   [`book_state`]); [`bundle`] books a seat and book copies in one transaction.
//! * [`unit_of_work`] batches the writes of all actors into one transaction (group commit)
//!   and only then answers clients and settles or undoes each participant.
//! * [`notifier`] fans committed changes out to subscribers, in commit order.
//! * [`supervisor`] spawns and restarts all of the above; [`Engine`] is the handle the
//!   HTTP edge talks to.
//! * [`storage`] is the port the engine persists through; the service implements it.

pub mod admission;
pub mod book_state;
pub mod book_stock;
pub mod bundle;
pub mod clock;
pub mod domain;
pub mod engine;
mod engine_live;
pub mod error;
pub mod lifecycle;
pub mod notifier;
pub mod projection;
pub mod storage;
pub mod supervisor;
pub mod unit_of_work;
pub mod user_ledger;
pub mod waitlist;
pub mod zone;
pub mod zone_admin;
pub mod zone_live;
pub mod zone_state;

pub use admission::GateStats;
pub use book_state::{BookQuery, BookView};
pub use bundle::{Bundle, BundleError, BundlePart, BundleRequest};
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::*;
pub use engine::{AdmissionStats, Engine, EngineConfig};
pub use error::EngineError;
pub use lifecycle::LifecycleConfig;
pub use storage::{Change, Created, IdempotencyTag, Storage, StorageError};
pub use waitlist::{Hold, WaitStatus, WaitlistEntry, WaitlistId};
