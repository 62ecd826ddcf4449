//! The port the engine persists through. The service implements it with sqlx.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::{Reservation, ReservationId, ReservationStatus, ZoneId, ZoneLayout};

/// One write inside a unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    CreateReservation {
        reservation: Reservation,
        idempotency_key: Option<String>,
    },
    /// Moves a reservation from `from` to `to`; the storage refuses it unless the row is
    /// still in `from` (a second wall behind the actor's decision).
    SetReservationStatus {
        id: ReservationId,
        from: ReservationStatus,
        to: ReservationStatus,
        at: DateTime<Utc>,
    },
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
}
