//! The book stock actor: one supervised actor owning the book catalog and its stock.
//!
//! From the bottom up: [`state`] (the pure core), [`messages`], and [`actor`], which
//! decides each request, including its side of a bundle (see [`crate::bundle`]).

pub mod actor;
pub mod messages;
pub mod state;

pub use actor::{BookActorState, BookArgs, BookStockActor};
pub use messages::{BookMsg, BookSlot};
