//! The zone actor: one per seat zone, serializing every request for its seats.
//!
//! It decides in memory (the pure [`state::ZoneState`]), marks the change pending, hands
//! the write to the unit of work together with the client's reply port and moves on: it
//! never waits for a commit. The unit of work later sends `*Decided` back so the zone
//! settles or undoes the change, and only then answers the client.
//!
//! From the bottom up: [`state`] (pure), [`messages`], [`actor_state`] (what the actor
//! holds), one module of handlers per kind of request (reservations, series, seats,
//! sweep, waitlist, the zone's side of a bundle), and [`actor`], which dispatches to them.

pub mod actor;
pub mod actor_state;
mod bundle;
pub mod messages;
mod reservations;
mod seats;
mod series;
pub mod state;
mod sweep;
mod waitlist;

pub use actor::{ZoneActor, ZoneArgs};
pub use actor_state::ZoneActorState;
pub use messages::{FreeIntervals, SeatChange, SweepReport, ZoneMsg, ZoneStats};
