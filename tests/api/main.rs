//! The integration tests, one binary: each module checks one feature through the real
//! server (started on port 0 against a fresh SQLite file or PostgreSQL database, see
//! `helpers`), most of them on both backends through `on_both_backends!`. One binary
//! links the service once instead of once per feature.
//!
//! Three tests stay binaries of their own (`tests/exposure.rs`, `tests/password_load.rs`,
//! `tests/snapshot_load.rs`): their bounds on latency, memory and open files are set for
//! a machine that runs nothing else, and cargo runs test binaries one after another.

#[macro_use]
mod helpers;

mod access;
mod admin;
mod admission;
mod api_docs;
mod bad_input;
mod batch_writes;
mod bench_smoke;
mod books;
mod bundles;
mod calendar;
mod durability;
mod email;
mod engine;
mod events;
mod floor_plan;
mod idempotency;
mod lifecycle;
mod login_throttle;
mod medimatch;
mod metrics;
mod openapi_input;
mod reservations;
mod series;
mod start_up;
mod web;
