//! The engine's [`Storage`] port: the reads it rebuilds its actors from, and the unit of
//! work's commit, which applies a batch of changes in one transaction.

use std::collections::{HashMap, HashSet};
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
use super::layout::LayoutWrites;
use super::mail_outbox::{MailKind, OutboxWrites, mail_caused_by};
use super::reservations::ReservationWrites;
use super::rounds::{Round, Rounds};
use super::series::SeriesWrites;
use super::sqlite_writer::SqliteWriter;
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

    async fn load_open_waitlists(
        &self,
        zones: &[ZoneId],
    ) -> Result<HashMap<ZoneId, Vec<WaitlistEntry>>, StorageError> {
        let wanted: HashSet<&ZoneId> = zones.iter().collect();
        let mut all: HashMap<ZoneId, Vec<WaitlistEntry>> = HashMap::new();
        // In order, so each zone's list stays oldest first.
        for entry in self.all_open_waitlists().await.map_err(storage_error)? {
            if wanted.contains(&entry.zone) {
                all.entry(entry.zone.clone()).or_default().push(entry);
            }
        }
        Ok(all)
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
    /// Applies `changes` and queues `mail` in one transaction.
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

/// The engine's storage in the service: it rebuilds from the shared pool, and commits
/// on a writer of its own, connections opened at start and kept ([`Db::writer`]): one
/// on SQLite, where the unit of work has one transaction in flight, and one per
/// transaction in flight on PostgreSQL (`PICA_PG_COMMITS_IN_FLIGHT`, see
/// `unit_of_work::flights` in the engine for which batches may overlap). So a writer
/// connection is always free for a commit: it never waits behind the edge's reads for
/// a pooled connection, and its prepared statements stay warm. (The edge's own writes,
/// accounts and tokens, still take SQLite's write lock in turn with it.)
///
/// On SQLite the batches of booking traffic (reservation inserts, status changes,
/// idempotency records, and the mail they cause) go instead to a writer of their own that commits a
/// whole batch in one hand-off to its thread (`sqlite_writer`); the rest still goes
/// through `writer`.
///
/// With mail on (`PICA_SMTP_URL`), each commit also queues, in the same transaction,
/// the mail its changes cause (a transactional outbox: the message exists exactly when
/// its cause committed: invariant 16, docs/architecture.md), then wakes the mailer.
/// With mail off, commits write nothing more.
pub struct EngineStorage {
    /// The shared pool: start-up reads.
    db: Db,
    /// The unit of work's own connections.
    writer: Db,
    /// SQLite's direct writer, unless turned off (`PICA_SQLITE_DIRECT_WRITER`) or the
    /// database is not a file.
    direct: Option<SqliteWriter>,
    /// How many commits may run at once on `writer`.
    concurrent_commits: usize,
    /// The mailer's wake-up, when mail is on.
    mail: Option<Arc<Notify>>,
}

impl EngineStorage {
    /// `pg_commits_in_flight` applies on PostgreSQL (and must not exceed the writer's
    /// connections); SQLite commits one at a time.
    pub fn new(db: Db, writer: Db, pg_commits_in_flight: usize, mail: Option<Arc<Notify>>) -> Self {
        let concurrent_commits = match writer {
            Db::Sqlite(_) => 1,
            Db::Postgres(_) => pg_commits_in_flight.max(1),
        };
        Self {
            db,
            writer,
            direct: None,
            concurrent_commits,
            mail,
        }
    }

    /// Whether booking batches go to SQLite's direct writer.
    pub fn writes_directly(&self) -> bool {
        self.direct.is_some()
    }

    /// On an SQLite database file, with `direct` on, opens the direct writer; anywhere
    /// else this changes nothing.
    pub async fn with_sqlite_direct_writer(mut self, direct: bool) -> Result<Self, String> {
        if let (true, Db::Sqlite(pool)) = (direct, &self.writer) {
            // An in-memory database (`sqlite::memory:`, `mode=memory`) has no file
            // another connection could open.
            let path = pool.connect_options().get_filename().to_path_buf();
            if path.is_file() {
                self.direct = Some(SqliteWriter::open(&path).await?);
            }
        }
        Ok(self)
    }
}

#[async_trait]
impl Storage for EngineStorage {
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

    async fn load_open_waitlists(
        &self,
        zones: &[ZoneId],
    ) -> Result<HashMap<ZoneId, Vec<WaitlistEntry>>, StorageError> {
        self.db.load_open_waitlists(zones).await
    }

    async fn commit(&self, changes: &[Change]) -> Result<(), StorageError> {
        let mail = match &self.mail {
            Some(_) => mail_caused_by(changes),
            None => Vec::new(),
        };
        let queued = !mail.is_empty();
        match &self.direct {
            Some(direct) if SqliteWriter::takes(changes) => direct.commit(changes, mail).await?,
            _ => self.writer.commit_batch(changes, &mail).await?,
        }
        let Some(wake) = &self.mail else {
            return Ok(());
        };
        if queued {
            // A permit is stored if the mailer is busy, so no wake-up is lost.
            wake.notify_one();
        }
        Ok(())
    }

    fn concurrent_commits(&self) -> usize {
        self.concurrent_commits
    }

    async fn load_books(&self) -> Result<Vec<Book>, StorageError> {
        self.db.load_books().await
    }

    async fn load_active_book_reservations(&self) -> Result<Vec<BookReservation>, StorageError> {
        self.db.load_active_book_reservations().await
    }
}

both!(connection: trait UnitOfWork {
    /// Reservation inserts and status changes go out in rounds (`rounds`), one
    /// statement of each kind per round: a batch costs a few round trips rather than
    /// one per change or per short run.
    async fn apply_batch(&mut self, changes: &[Change]) -> Result<(), sqlx::Error> {
        let mut rounds = Rounds::default();
        // Idempotency keys go in last, after the rows they point to.
        let mut records = Vec::new();
        for change in changes {
            match change {
                Change::CreateReservation { reservation } => rounds.create(reservation),
                Change::SetReservationStatus { id, .. } => rounds.status(*id, change),
                Change::RecordIdempotency { tag, created } => records.push((tag, *created)),
                _ => {
                    // A barrier: what was gathered before it goes out first.
                    self.write_rounds(&mut rounds).await?;
                    self.apply_one(change).await?;
                }
            }
        }
        self.write_rounds(&mut rounds).await?;
        self.insert_idempotency_keys(&records, Utc::now()).await
    }

    /// Sends the rounds gathered so far, in order.
    async fn write_rounds(&mut self, rounds: &mut Rounds<'_>) -> Result<(), sqlx::Error> {
        for round in rounds.take() {
            match round {
                Round::Statuses(updates) => self.set_reservation_statuses(&updates).await?,
                Round::Creates(creates) => self.insert_reservations(&creates).await?,
            }
        }
        Ok(())
    }

    /// A change that is neither a reservation insert, a status change nor a key record.
    async fn apply_one(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        match change {
            Change::CreateSeries { .. } => self.insert_series(change).await,
            Change::EndReservation { .. } => self.end_reservation(change).await,
            Change::CreateWaitlistEntry { .. } | Change::UpdateWaitlistEntry { .. } => {
                self.apply_waitlist_change(change).await
            }
            Change::AddSeat { .. } | Change::SetSeatService { .. } | Change::MoveSeat { .. } => {
                self.apply_layout_change(change).await
            }
            Change::CreateBookReservation { .. }
            | Change::SetBookReservationStatus { .. }
            | Change::SetBookTotal { .. } => self.apply_book_change(change).await,
            Change::CreateReservation { .. }
            | Change::SetReservationStatus { .. }
            | Change::RecordIdempotency { .. } => {
                unreachable!("gathered into rounds: {change:?}")
            }
        }
    }
});
