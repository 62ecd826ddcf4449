//! Why the engine refused or failed a request. The edge maps each to a status code.

use crate::domain::{BookReservationStatus, Interval, ReservationStatus, SeatNumber};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    #[error("Seat '{0}' does not exist")]
    UnknownSeat(SeatNumber),
    #[error("Seat '{0}' already exists")]
    SeatExists(SeatNumber),
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
    /// The engine's first start is still loading zones: a new booking could overlap
    /// one of the member's reservations in a zone not loaded yet, so it must wait.
    #[error("The server is still loading reservations; retry shortly")]
    Starting,
    #[error("Book not found")]
    BookNotFound,
    #[error("Not enough copies available: {available} left")]
    OutOfStock { available: u32 },
    #[error("Book reservation not found")]
    BookReservationNotFound,
    #[error("Book reservation is {status} and can no longer be changed")]
    BookReservationNotChangeable { status: BookReservationStatus },
    #[error("Stock cannot go below the {reserved} reserved copies")]
    StockBelowReserved { reserved: u32 },
    /// A prepared part of a bundle was released before it was submitted (its deadline
    /// passed, or its actor restarted).
    #[error("The booking took too long and was released; nothing was changed")]
    PrepareExpired,
    #[error("Waitlist entry not found")]
    WaitlistEntryNotFound,
    /// A lifecycle or waitlist rule refused the request (check-in window, expired hold,
    /// a seat that is free anyway, ...); the text says which.
    #[error("{0}")]
    Refused(String),
    /// Some occurrences of a series could not be booked, so none was; each is named
    /// with its reason (seat taken, or an overlap with the user's own reservation).
    #[error("{} of the series' dates cannot be booked, so none was", conflicts.len())]
    SeriesConflict { conflicts: Vec<OccurrenceConflict> },
    /// Booking the series would take the user past their limit of series occurrences.
    #[error(
        "A series may not take you past {limit} active occurrences ({held} held, {asked} asked)"
    )]
    SeriesLimit {
        limit: usize,
        held: usize,
        asked: usize,
    },
}

/// One occurrence of a refused series and why it could not be booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceConflict {
    pub interval: Interval,
    pub reason: Box<EngineError>,
}
