//! The port the engine persists through. The service implements it with sqlx.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::{
    Book, BookId, BookReservation, BookReservationId, BookReservationStatus, Reservation,
    ReservationId, ReservationStatus, SeatLayout, SeatNumber, SeatService, ZoneId, ZoneLayout,
};
use crate::waitlist::WaitlistId;

pub use crate::domain::IdempotencyTag;

/// What a request carrying an idempotency key created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Reservation(ReservationId),
    BookReservation(BookReservationId),
    Bundle {
        seat: ReservationId,
        book: BookReservationId,
    },
    WaitlistEntry(WaitlistId),
    ApiKey(uuid::Uuid),
}

/// One write inside a unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A weekly series' pattern; its occurrences follow as `CreateReservation`s in the
    /// same intent.
    CreateSeries {
        series: crate::series::ReservationSeries,
    },
    CreateReservation {
        reservation: Reservation,
    },
    /// Moves a reservation from `from` to `to`; the storage refuses it unless the row is
    /// still in `from` (a second wall behind the actor's decision).
    SetReservationStatus {
        id: ReservationId,
        from: ReservationStatus,
        to: ReservationStatus,
        at: DateTime<Utc>,
    },
    /// A new seat at the end of a zone (admin).
    AddSeat {
        zone: ZoneId,
        seat: SeatLayout,
    },
    /// Puts a seat in or out of service (admin).
    SetSeatService {
        seat: SeatNumber,
        service: SeatService,
    },
    /// Puts a seat at a new spot on its zone's floor plan (admin).
    MoveSeat {
        seat: SeatNumber,
        spot: crate::floor_plan::Spot,
    },
    /// Inserts a `reserved` book reservation and adds its copies to the book's
    /// `reserved_copies` (the database's CHECK refuses more than the total).
    CreateBookReservation {
        reservation: BookReservation,
    },
    /// Moves a book reservation from `from` to `to` (compare-and-set) and releases its
    /// copies when it stops being `reserved`; a pick-up also takes them off the total.
    SetBookReservationStatus {
        id: BookReservationId,
        book_id: BookId,
        copies: u32,
        from: BookReservationStatus,
        to: BookReservationStatus,
        at: DateTime<Utc>,
    },
    /// Sets a book's total copies (compare-and-set on `from`).
    SetBookTotal {
        book_id: BookId,
        from: u32,
        to: u32,
    },
    /// Check-out: moves a reservation from `from` to `to` (compare-and-set) and cuts
    /// its end to `ends_at`.
    EndReservation {
        id: ReservationId,
        from: ReservationStatus,
        to: ReservationStatus,
        ends_at: DateTime<Utc>,
        at: DateTime<Utc>,
    },
    /// A new waitlist entry.
    CreateWaitlistEntry {
        entry: crate::waitlist::WaitlistEntry,
    },
    /// Stores `entry`'s status, hold and reservation; refused unless the row is still
    /// in `from` (compare-and-set).
    UpdateWaitlistEntry {
        entry: crate::waitlist::WaitlistEntry,
        from: crate::waitlist::WaitStatus,
        at: DateTime<Utc>,
    },
    /// Remembers an idempotency key with what its request created (in the same
    /// transaction, which the storage refuses if the key is already taken).
    RecordIdempotency {
        tag: IdempotencyTag,
        created: Created,
    },
}

impl Change {
    /// The change recording `tag`, if there is one.
    pub fn record(tag: Option<IdempotencyTag>, created: Created) -> Option<Change> {
        tag.map(|tag| Change::RecordIdempotency { tag, created })
    }
}

#[derive(Debug, Clone, Error)]
pub enum StorageError {
    /// The database refused the change (constraint, trigger, stale status).
    #[error("rejected by the database: {0}")]
    Rejected(String),
    /// The database could not be reached or failed.
    #[error("database failure: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Every zone with its seats, in display order.
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError>;

    /// The zone's reservations that are active and end after `now`.
    async fn load_active_reservations(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError>;

    /// Applies all `changes` in one transaction: all or nothing.
    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError>;

    /// How many [`commit`](Self::commit)s may run at once (on changes to disjoint rows:
    /// see `unit_of_work::flights`); 1 unless the storage has connections for more.
    fn concurrent_commits(&self) -> usize {
        1
    }

    /// The book catalog with its committed stock, by id.
    async fn load_books(&self) -> Result<Vec<Book>, StorageError> {
        Ok(Vec::new())
    }

    /// Every book reservation that still holds copies (`reserved`).
    async fn load_active_book_reservations(&self) -> Result<Vec<BookReservation>, StorageError> {
        Ok(Vec::new())
    }

    /// The zone's open waitlist entries (`waiting` or `offered`), oldest first.
    async fn load_open_waitlist(
        &self,
        _zone: &ZoneId,
    ) -> Result<Vec<crate::waitlist::WaitlistEntry>, StorageError> {
        Ok(Vec::new())
    }

    /// [`load_open_waitlist`](Self::load_open_waitlist) of every zone of `zones`, each
    /// oldest first (a zone without any is absent). The engine's first start reads
    /// them at once rather than once per zone: a thousand zones are a thousand round
    /// trips otherwise. By default, one zone after another.
    async fn load_open_waitlists(
        &self,
        zones: &[ZoneId],
    ) -> Result<std::collections::HashMap<ZoneId, Vec<crate::waitlist::WaitlistEntry>>, StorageError>
    {
        let mut all = std::collections::HashMap::new();
        for zone in zones {
            let entries = self.load_open_waitlist(zone).await?;
            if !entries.is_empty() {
                all.insert(zone.clone(), entries);
            }
        }
        Ok(all)
    }
}
