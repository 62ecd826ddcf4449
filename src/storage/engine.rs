//! The engine's [`Storage`] port: the reads it rebuilds its actors from, and the unit of
//! work's commit, which applies a batch of changes in one transaction.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pica_actors::{
    Book, BookReservation, Change, Reservation, Storage, StorageError, WaitlistEntry, ZoneId,
    ZoneLayout,
};

use tokio::sync::Notify;
use uuid::Uuid;

use super::books::BookWrites;
use super::dialect::{Dialect, both, on_pool};
use super::idempotency::Record;
use super::layout::LayoutWrites;
use super::mail_outbox::{MailKind, OutboxWrites, mail_caused_by};
use super::reservations::ReservationWrites;
use super::series::SeriesWrites;
use super::waitlist::WaitlistWrites;
use super::{Db, storage_error};

#[async_trait]
impl Storage for Db {
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
        self.layout().await.map_err(storage_error)
    }

    async fn load_active_reservations(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        self.active_reservations(zone, now)
            .await
            .map_err(storage_error)
    }

    async fn load_open_waitlist(&self, zone: &ZoneId) -> Result<Vec<WaitlistEntry>, StorageError> {
        self.open_waitlist(zone).await.map_err(storage_error)
    }

    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        self.commit_batch(changes, &[]).await
    }

    async fn load_books(&self) -> Result<Vec<Book>, StorageError> {
        self.books().await.map_err(storage_error)
    }

    async fn load_active_book_reservations(&self) -> Result<Vec<BookReservation>, StorageError> {
        self.active_book_reservations().await.map_err(storage_error)
    }
}

impl Db {
    /// Applies `changes` and queues `mail` in one transaction. The unit of work is the
    /// only writer, so on SQLite a plain BEGIN never waits.
    async fn commit_batch(
        &self,
        changes: &[Change],
        mail: &[(MailKind, Uuid)],
    ) -> Result<(), StorageError> {
        on_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            tx.apply_batch(changes).await?;
            if !mail.is_empty() {
                tx.queue_mail(mail, Utc::now()).await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(storage_error)
    }
}

/// The engine's storage when mail is on (`PICA_SMTP_URL`): each commit also queues, in
/// the same transaction, the mail its changes cause (a transactional outbox: the message
/// exists exactly when its cause committed: invariant 16, docs/architecture.md), then
/// wakes the mailer. With mail off the engine gets the plain [`Db`], whose commits write
/// nothing more.
pub struct MailingStorage {
    db: Db,
    wake: Arc<Notify>,
}

impl MailingStorage {
    pub fn new(db: Db, wake: Arc<Notify>) -> Self {
        Self { db, wake }
    }
}

#[async_trait]
impl Storage for MailingStorage {
    async fn load_layout(&self) -> Result<Vec<ZoneLayout>, StorageError> {
        self.db.load_layout().await
    }

    async fn load_active_reservations(
        &self,
        zone: &ZoneId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Reservation>, StorageError> {
        self.db.load_active_reservations(zone, now).await
    }

    async fn load_open_waitlist(&self, zone: &ZoneId) -> Result<Vec<WaitlistEntry>, StorageError> {
        self.db.load_open_waitlist(zone).await
    }

    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        let mail = mail_caused_by(changes);
        self.db.commit_batch(changes, &mail).await?;
        if !mail.is_empty() {
            // A permit is stored if the mailer is busy, so no wake-up is lost.
            self.wake.notify_one();
        }
        Ok(())
    }

    async fn load_books(&self) -> Result<Vec<Book>, StorageError> {
        self.db.load_books().await
    }

    async fn load_active_book_reservations(&self) -> Result<Vec<BookReservation>, StorageError> {
        self.db.load_active_book_reservations().await
    }
}

both!(connection: trait UnitOfWork {
    /// Runs of reservation inserts (and of status changes) go out as few statements as
    /// the dialect allows: a batch costs a few round trips rather than one per change.
    async fn apply_batch(&mut self, changes: &[Change]) -> Result<(), sqlx::Error> {
        let mut rest = changes;
        // Idempotency keys go in last, after the rows they point to; collecting them
        // keeps the records between reservation inserts from cutting those into short
        // runs.
        let mut records = Vec::new();
        while let Some(change) = rest.first() {
            let done = match change {
                Change::CreateSeries { .. } => {
                    self.insert_series(change).await?;
                    1
                }
                Change::CreateReservation { .. } => {
                    let (creates, n) = reservation_run(rest, &mut records);
                    self.insert_reservations(&creates).await?;
                    n
                }
                Change::RecordIdempotency { tag, created } => {
                    records.push((tag, *created));
                    1
                }
                Change::SetReservationStatus { .. } => {
                    let n = status_run_len(rest);
                    self.set_reservation_statuses(&rest[..n]).await?;
                    n
                }
                Change::EndReservation { .. } => {
                    self.end_reservation(change).await?;
                    1
                }
                Change::CreateWaitlistEntry { .. } | Change::UpdateWaitlistEntry { .. } => {
                    self.apply_waitlist_change(change).await?;
                    1
                }
                Change::AddSeat { .. }
                | Change::SetSeatService { .. }
                | Change::MoveSeat { .. } => {
                    self.apply_layout_change(change).await?;
                    1
                }
                Change::CreateBookReservation { .. }
                | Change::SetBookReservationStatus { .. }
                | Change::SetBookTotal { .. } => {
                    self.apply_book_change(change).await?;
                    1
                }
            };
            rest = &rest[done..];
        }
        self.insert_idempotency_keys(&records, Utc::now()).await
    }
});

/// The leading run of reservation inserts (with the key records between them, which do
/// not break the run): the reservations to insert together, and how many changes the
/// run spans. The records are added to `records`.
fn reservation_run<'a>(
    changes: &'a [Change],
    records: &mut Vec<Record<'a>>,
) -> (Vec<&'a Reservation>, usize) {
    let mut creates = Vec::new();
    let mut n = 0;
    for change in changes {
        match change {
            Change::CreateReservation { reservation } => creates.push(reservation),
            Change::RecordIdempotency { tag, created } => records.push((tag, *created)),
            _ => break,
        }
        n += 1;
    }
    (creates, n)
}

/// The leading run of status changes, cut before a reservation appears a second time
/// (one statement could not apply both changes in order).
fn status_run_len(changes: &[Change]) -> usize {
    let mut seen = std::collections::HashSet::new();
    changes
        .iter()
        .take_while(|c| matches!(c, Change::SetReservationStatus { id, .. } if seen.insert(*id)))
        .count()
}
