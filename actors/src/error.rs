//! Why the engine refused or failed a request. The edge maps each to a status code.

use crate::domain::{Interval, ReservationStatus, SeatNumber};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("Seat '{0}' does not exist")]
    UnknownSeat(SeatNumber),
    #[error("Seat '{0}' is out of service")]
    SeatOutOfService(SeatNumber),
    #[error("Seat is already reserved for an overlapping interval")]
    SeatTaken { conflict: Interval },
    #[error("You already hold an overlapping reservation")]
    UserOverlap { conflict: Interval },
    #[error("You already hold the maximum of {limit} active reservations")]
    UserLimit { limit: usize },
    #[error("Reservation not found")]
    ReservationNotFound,
    #[error("Reservation is {status} and can no longer be changed")]
    NotChangeable { status: ReservationStatus },
    #[error("Reservation has already ended")]
    AlreadyEnded,
    #[error("Reservation is already being changed; retry")]
    ChangeInProgress,
    #[error("The change could not be saved; nothing was changed")]
    CommitFailed,
    #[error("The engine is busy; retry shortly")]
    Overloaded,
    #[error("The zone is restarting; retry shortly")]
    Unavailable,
}
