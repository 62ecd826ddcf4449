//! Domain values shared by the engine and the service.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub type UserId = i64;
pub type ReservationId = Uuid;

/// A zone slug such as `coworking`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ZoneId(pub String);

/// A seat number such as `A1`, unique across the space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeatNumber(pub String);

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for SeatNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A half-open time interval `[start, end)` with `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interval {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Interval {
    /// Returns `None` unless `start < end`.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.start <= at && at < self.end
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Confirmed,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 5] = [
        Self::Confirmed,
        Self::CheckedIn,
        Self::Completed,
        Self::Cancelled,
        Self::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::CheckedIn => "checked_in",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::NoShow => "no_show",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Active reservations hold their seat (invariant 1 in docs/architecture.md) and
    /// count against the user (invariant 2).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Confirmed | Self::CheckedIn)
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub id: ReservationId,
    pub user_id: UserId,
    pub seat: SeatNumber,
    pub zone: ZoneId,
    pub interval: Interval,
    pub status: ReservationStatus,
    pub created_at: DateTime<Utc>,
    /// The weekly series this reservation is an occurrence of, if any
    /// ([`crate::series`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<crate::series::SeriesId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatService {
    InService,
    OutOfService,
}

impl SeatService {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InService => "in_service",
            Self::OutOfService => "out_of_service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "in_service" => Some(Self::InService),
            "out_of_service" => Some(Self::OutOfService),
            _ => None,
        }
    }
}

/// What the live map shows for a seat right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LiveSeatState {
    Available,
    Reserved,
    Occupied,
    OutOfService,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatLayout {
    pub number: SeatNumber,
    pub service: SeatService,
    /// Where the seat stands on its zone's floor plan.
    pub spot: crate::floor_plan::Spot,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneLayout {
    pub id: ZoneId,
    pub name: String,
    pub kind: String,
    pub seats: Vec<SeatLayout>,
}

/// A request to hold a seat for an interval, already validated by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    pub user_id: UserId,
    pub seat: SeatNumber,
    pub interval: Interval,
    /// Recorded with the reservation, so a retry finds it.
    pub idempotency_key: Option<IdempotencyTag>,
}

/// A committed change, as announced to subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    ReservationCreated {
        reservation: Reservation,
    },
    ReservationStatusChanged {
        reservation: Reservation,
        from: ReservationStatus,
    },
    SeatAdded {
        zone: ZoneId,
        seat: SeatLayout,
    },
    SeatServiceChanged {
        zone: ZoneId,
        seat: SeatNumber,
        service: SeatService,
    },
    /// An admin moved a seat on its zone's floor plan.
    SeatMoved {
        zone: ZoneId,
        seat: SeatNumber,
        spot: crate::floor_plan::Spot,
    },
    /// Book events are routed under the pseudo-zone [`books_zone`] (`books`).
    BookReservationCreated {
        reservation: BookReservation,
    },
    BookReservationStatusChanged {
        reservation: BookReservation,
        from: BookReservationStatus,
    },
    /// A book's committed stock after a change (published by the book stock actor once
    /// the change committed).
    BookStockChanged {
        stock: BookStock,
    },
    /// A waitlist entry was created or changed status (a hold offered, confirmed,
    /// expired or withdrawn). `from` is `None` for a new entry.
    WaitlistUpdated {
        entry: WaitlistEntry,
        from: Option<WaitStatus>,
    },
}

impl DomainEvent {
    pub fn zone(&self) -> &ZoneId {
        match self {
            Self::BookReservationCreated { .. }
            | Self::BookReservationStatusChanged { .. }
            | Self::BookStockChanged { .. } => books_zone(),
            Self::ReservationCreated { reservation }
            | Self::ReservationStatusChanged { reservation, .. } => &reservation.zone,
            Self::SeatAdded { zone, .. }
            | Self::SeatServiceChanged { zone, .. }
            | Self::SeatMoved { zone, .. } => zone,
            Self::WaitlistUpdated { entry, .. } => &entry.zone,
        }
    }
}

pub type BookId = i64;
pub type BookReservationId = Uuid;

/// The pseudo-zone book events are announced under (`?zone=books` on the event stream).
pub fn books_zone() -> &'static ZoneId {
    static BOOKS: std::sync::LazyLock<ZoneId> = std::sync::LazyLock::new(|| ZoneId("books".into()));
    &BOOKS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookCondition {
    New,
    PreLoved,
}

impl BookCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::PreLoved => "pre_loved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "new" => Some(Self::New),
            "pre_loved" => Some(Self::PreLoved),
            _ => None,
        }
    }
}

/// A catalog entry with its committed stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Book {
    pub id: BookId,
    pub title: String,
    pub author: String,
    pub isbn: Option<String>,
    pub condition: BookCondition,
    pub total_copies: u32,
    pub reserved_copies: u32,
    pub price_cents: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookReservationStatus {
    /// Holding copies until picked up, cancelled or expired.
    Reserved,
    PickedUp,
    Cancelled,
    Expired,
}

impl BookReservationStatus {
    pub const ALL: [BookReservationStatus; 4] = [
        Self::Reserved,
        Self::PickedUp,
        Self::Cancelled,
        Self::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::PickedUp => "picked_up",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Only a `reserved` reservation holds copies.
    pub fn is_active(self) -> bool {
        self == Self::Reserved
    }
}

impl fmt::Display for BookReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookReservation {
    pub id: BookReservationId,
    pub user_id: UserId,
    pub book_id: BookId,
    pub copies: u32,
    pub status: BookReservationStatus,
    pub created_at: DateTime<Utc>,
    /// When an uncollected reservation expires and its copies return to the shelf.
    pub expires_at: DateTime<Utc>,
    /// The seat reservation booked together with it in a bundle, if any.
    pub seat_reservation: Option<ReservationId>,
}

/// One book's stock: `available_copies = total_copies - reserved_copies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookStock {
    pub book_id: BookId,
    pub total_copies: u32,
    pub reserved_copies: u32,
    pub available_copies: u32,
}

/// A client's `Idempotency-Key` on a creating request. It is committed in the same
/// transaction as what the request created, so a retry finds it exactly when the
/// creation happened, even after a restart, and never when it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyTag {
    pub user_id: UserId,
    /// What the key was given to (the endpoint): the same key on two endpoints is two
    /// keys.
    pub scope: String,
    pub key: String,
    /// Digest of the request's body; a retry with another body is refused.
    pub fingerprint: String,
}

/// A waitlist entry's id (also its hold's; see [`crate::waitlist`]).
pub type WaitlistId = Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitStatus {
    Waiting,
    Offered,
    Fulfilled,
    Expired,
    Cancelled,
}

impl WaitStatus {
    pub const ALL: [WaitStatus; 5] = [
        Self::Waiting,
        Self::Offered,
        Self::Fulfilled,
        Self::Expired,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Fulfilled => "fulfilled",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Open entries live in the zone's memory; the others are history.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Waiting | Self::Offered)
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A seat held for a waiter until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub seat: SeatNumber,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitlistEntry {
    pub id: WaitlistId,
    pub user_id: UserId,
    pub zone: ZoneId,
    pub interval: Interval,
    pub status: WaitStatus,
    /// The seat offered, once the entry was offered one (kept afterwards as history).
    pub hold: Option<Hold>,
    /// The reservation made by confirming the hold.
    pub reservation_id: Option<ReservationId>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn half_open_intervals_touching_do_not_overlap() {
        let a = Interval::new(at(8), at(10)).unwrap();
        let b = Interval::new(at(10), at(12)).unwrap();
        assert!(!a.overlaps(&b));
        assert!(!b.overlaps(&a));
        let c = Interval::new(at(9), at(11)).unwrap();
        assert!(a.overlaps(&c) && c.overlaps(&b));
    }

    #[test]
    fn empty_or_reversed_interval_is_refused() {
        assert!(Interval::new(at(10), at(10)).is_none());
        assert!(Interval::new(at(11), at(10)).is_none());
    }

    #[test]
    fn status_round_trips_through_text() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ReservationStatus::parse("bogus"), None);
    }
}
