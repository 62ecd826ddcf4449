//! The unit of work's writer on SQLite: a connection of its own on a thread of its
//! own, which takes a whole batch in one hand-off and commits it through SQLite's C
//! API with statements prepared once and kept.
//!
//! Through sqlx every statement is a message to the connection's worker thread and an
//! answer back (BEGIN, each multi-row write, COMMIT), every bound value a fresh
//! allocation, and the worker's wake-ups and hand-offs were a tenth of the process's
//! time on the write-heavy benchmarks. Here a batch crosses threads once each way.
//!
//! It takes the batches made only of reservation inserts, status changes and
//! idempotency records, which is all of booking traffic ([`SqliteWriter::takes`]),
//! with the mail they cause queued in the same transaction; any other batch (series,
//! waitlist, layout and book changes) is written through sqlx, on the writer connection of
//! `EngineStorage`. Both connections belong to the unit of work, which commits one
//! transaction at a time on SQLite, so they never hold the write lock at once. The
//! rows are bound by the same code as sqlx's path (`sqlite_rows`), into the same
//! statements (`dialect`), in the same rounds (`rounds`).

use std::ffi::{CStr, CString, c_int};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::{self, NonNull};
use std::sync::{LazyLock, mpsc};

use chrono::Utc;
use libsqlite3_sys as ffi;
use pica_actors::{Change, ReservationId, StorageError};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::dialect::{
    INSERT_IDEMPOTENCY_KEYS, INSERT_RESERVATIONS, ROW_CLASSES, SET_RESERVATION_STATUSES, first_id,
    pieces,
};
use super::idempotency::Record;
use super::mail_outbox::{INSERT_MAIL, MailKind};
use super::rounds::{Round, Rounds};
use super::sqlite_rows::{self as rows, Binds};
use super::{stale, storage_error};

/// The handle to the writer's thread; dropping it ends the thread, which closes its
/// connection.
pub struct SqliteWriter {
    /// Batches to commit. Unbounded, but never longer than the unit of work's one
    /// transaction in flight.
    jobs: mpsc::Sender<Job>,
}

/// The outbox's inserts with SQLite's own numbered parameters (`?N` for `$N`): in
/// them `$1` (the stamp) comes after the first row's, and SQLite numbers `$N` by
/// first appearance but `?N` by its number, as sqlx binds them.
static INSERT_MAIL_NUMBERED: LazyLock<Vec<String>> = LazyLock::new(|| {
    INSERT_MAIL
        .iter()
        .map(|sql| sql.replace('$', "?"))
        .collect()
});

/// A batch, the mail it causes, and where its outcome goes.
struct Job {
    changes: Vec<Change>,
    mail: Vec<(MailKind, Uuid)>,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

impl SqliteWriter {
    /// Opens a connection to the database file at `path` (already migrated) on a
    /// thread of its own.
    pub async fn open(path: &Path) -> Result<SqliteWriter, String> {
        let path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("the database path {} holds a NUL", path.display()))?;
        let (opened, open) = oneshot::channel();
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("pica-sqlite-writer".into())
            .spawn(move || {
                let mut connection = match Connection::open(&path) {
                    Ok(connection) => connection,
                    Err(err) => {
                        let _ = opened.send(Err(err));
                        return;
                    }
                };
                let _ = opened.send(Ok(()));
                for job in queue {
                    let outcome = connection.commit(&job.changes, &job.mail);
                    // The committer may have gone (the engine stopping); nothing to tell.
                    let _ = job.reply.send(outcome);
                }
            })
            .map_err(|err| format!("starting the writer's thread: {err}"))?;
        open.await
            .map_err(|_| "the writer's thread ended while opening".to_string())??;
        Ok(SqliteWriter { jobs })
    }

    /// Whether this writer takes `changes`: only reservation inserts, status changes
    /// and idempotency records.
    pub fn takes(changes: &[Change]) -> bool {
        changes.iter().all(|change| {
            matches!(
                change,
                Change::CreateReservation { .. }
                    | Change::SetReservationStatus { .. }
                    | Change::RecordIdempotency { .. }
            )
        })
    }

    /// Commits `changes` (which it [`takes`](Self::takes)) and queues `mail` in one
    /// transaction.
    pub async fn commit(
        &self,
        changes: &[Change],
        mail: Vec<(MailKind, Uuid)>,
    ) -> Result<(), StorageError> {
        let gone = || StorageError::Unavailable("the SQLite writer's thread has ended".into());
        let (reply, outcome) = oneshot::channel();
        // The thread owns what it writes: a batch is copied once (its few strings),
        // not borrowed across threads.
        let job = Job {
            changes: changes.to_vec(),
            mail,
            reply,
        };
        self.jobs.send(job).map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}

/// The writer's connection and its statements. Fields drop in order: every statement
/// is finalized before the connection closes.
struct Connection {
    /// The multi-row writes, by kind and row class, prepared on first use.
    writes: [[Option<Statement>; ROW_CLASSES.len()]; 4],
    begin: Statement,
    commit: Statement,
    rollback: Statement,
    db: Handle,
}

/// The multi-row writes, indexing `Connection::writes`.
#[derive(Clone, Copy)]
enum Write {
    Reservations = 0,
    Statuses = 1,
    Keys = 2,
    Mail = 3,
}

impl Write {
    fn sql(self, class: usize) -> &'static str {
        match self {
            Write::Reservations => &INSERT_RESERVATIONS[class],
            Write::Statuses => &SET_RESERVATION_STATUSES[class],
            Write::Keys => &INSERT_IDEMPOTENCY_KEYS[class],
            Write::Mail => &INSERT_MAIL_NUMBERED[class],
        }
    }
}

/// Why a commit failed: SQLite refused (its message), or a round of status changes
/// found a row not in its expected status.
enum Failure {
    Sqlite(String),
    Stale(ReservationId),
}

impl From<Failure> for StorageError {
    /// Worded as the sqlx path words them (`storage_error`).
    fn from(failure: Failure) -> StorageError {
        match failure {
            Failure::Sqlite(message) => StorageError::Rejected(message),
            Failure::Stale(id) => storage_error(stale(id)),
        }
    }
}

impl Connection {
    /// Opens `path` read-write (not creating it) with the pool's settings: FULL
    /// synchronous (an acknowledged commit is on disk), foreign keys on, a 5 s busy
    /// timeout. WAL is the file's own mode, set by the pool.
    fn open(path: &CStr) -> Result<Connection, String> {
        let mut raw = ptr::null_mut();
        let flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX;
        // SAFETY: `path` is NUL-terminated; `raw` receives the handle, which must be
        // closed even when the open failed.
        let code = unsafe { ffi::sqlite3_open_v2(path.as_ptr(), &mut raw, flags, ptr::null()) };
        let db = Handle(NonNull::new(raw).ok_or("SQLite could not allocate a connection")?);
        if code != ffi::SQLITE_OK {
            return Err(format!("opening the writer's connection: {}", db.message()));
        }
        // SAFETY: `db` is open and this thread's alone.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.0.as_ptr(), 1);
            ffi::sqlite3_busy_timeout(db.0.as_ptr(), 5_000);
        }
        db.execute(c"PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        Ok(Connection {
            writes: Default::default(),
            begin: db.prepare("BEGIN IMMEDIATE")?,
            commit: db.prepare("COMMIT")?,
            rollback: db.prepare("ROLLBACK")?,
            db,
        })
    }

    /// `changes` and `mail` in one transaction: committed whole, or rolled back whole.
    fn commit(
        &mut self,
        changes: &[Change],
        mail: &[(MailKind, Uuid)],
    ) -> Result<(), StorageError> {
        // BEGIN IMMEDIATE takes the write lock at once (waiting out the edge's own
        // writes up to the busy timeout), so no statement of the batch can fail for it.
        self.db.run(&self.begin).map_err(Failure::Sqlite)?;
        let done = self
            .apply(changes)
            .and_then(|()| self.queue_mail(mail))
            .and_then(|()| self.db.run(&self.commit).map_err(Failure::Sqlite));
        if done.is_err() && !self.db.autocommit() {
            // Nothing of the batch stays; a failed rollback leaves SQLite to roll back
            // on the next BEGIN's error, and the connection is no worse.
            let _ = self.db.run(&self.rollback);
        }
        done.map_err(StorageError::from)
    }

    /// The writes of `changes`, in the order `Rounds` keeps safe, idempotency records
    /// last (after the rows they point to).
    fn apply(&mut self, changes: &[Change]) -> Result<(), Failure> {
        let mut rounds = Rounds::default();
        let mut records: Vec<Record<'_>> = Vec::new();
        for change in changes {
            match change {
                Change::CreateReservation { reservation } => rounds.create(reservation),
                Change::SetReservationStatus { id, .. } => rounds.status(*id, change),
                Change::RecordIdempotency { tag, created } => records.push((tag, *created)),
                other => {
                    return Err(Failure::Sqlite(format!(
                        "the SQLite writer was handed a change it does not write: {other:?}"
                    )));
                }
            }
        }
        for round in rounds.take() {
            match round {
                Round::Statuses(updates) => {
                    for (class, piece) in pieces(&updates) {
                        let changed = self.write(Write::Statuses, class, |to| {
                            rows::piece(to, piece, class, rows::STATUS_COLUMNS, |to, change| {
                                rows::status(to, change)
                            })
                        })?;
                        if changed != piece.len() as i64 {
                            return Err(Failure::Stale(first_id(piece)));
                        }
                    }
                }
                Round::Creates(creates) => {
                    for (class, piece) in pieces(&creates) {
                        self.write(Write::Reservations, class, |to| {
                            rows::piece(to, piece, class, rows::RESERVATION_COLUMNS, |to, r| {
                                rows::reservation(to, r)
                            })
                        })?;
                    }
                }
            }
        }
        let now = Utc::now();
        for (class, piece) in pieces(&records) {
            self.write(Write::Keys, class, |to| {
                rows::piece(to, piece, class, rows::KEY_COLUMNS, |to, record| {
                    rows::key(to, record, now)
                })
            })?;
        }
        Ok(())
    }

    /// Queues `mail` in the outbox as `OutboxWrites::queue_mail` does: the stamp, then
    /// each message's kind and subject, a short piece padded by repeating its last
    /// message (which the statement's conflict clause skips).
    fn queue_mail(&mut self, mail: &[(MailKind, Uuid)]) -> Result<(), Failure> {
        let now = Utc::now().timestamp_micros();
        for (class, piece) in pieces(mail) {
            let last = &piece[piece.len() - 1];
            let padded = std::iter::repeat_n(last, ROW_CLASSES[class] - piece.len());
            self.write(Write::Mail, class, |to| {
                to.int(now);
                for (kind, subject) in piece.iter().chain(padded) {
                    to.text(kind.as_str());
                    to.uuid(Some(*subject));
                }
            })?;
        }
        Ok(())
    }

    /// Runs the `write` statement of row class `class` with the values `bind` gives
    /// it; the number of rows it changed.
    fn write(
        &mut self,
        write: Write,
        class: usize,
        bind: impl FnOnce(&mut Bound),
    ) -> Result<i64, Failure> {
        let slot = &mut self.writes[write as usize][class];
        if slot.is_none() {
            *slot = Some(self.db.prepare(write.sql(class)).map_err(Failure::Sqlite)?);
        }
        let Some(statement) = slot.as_ref() else {
            unreachable!("prepared above")
        };
        let mut bound = Bound {
            statement: statement.0.as_ptr(),
            next: 1,
            failed: ffi::SQLITE_OK,
        };
        bind(&mut bound);
        if bound.failed != ffi::SQLITE_OK {
            // SAFETY: the statement is this connection's; clearing drops what was bound.
            unsafe { ffi::sqlite3_clear_bindings(statement.0.as_ptr()) };
            return Err(Failure::Sqlite(self.db.message()));
        }
        self.db.run(statement).map_err(Failure::Sqlite)?;
        // SAFETY: `db` is open; the count is of the statement that just ran.
        Ok(unsafe { ffi::sqlite3_changes64(self.db.0.as_ptr()) })
    }
}

/// An open connection, closed when dropped (after its statements: see [`Connection`]).
struct Handle(NonNull<ffi::sqlite3>);

// SAFETY: a connection is used by one thread at a time: made on the writer's thread
// and used only there (it moves into that thread's closure, never shared).
unsafe impl Send for Handle {}

impl Handle {
    /// SQLite's message for the connection's latest error.
    fn message(&self) -> String {
        // SAFETY: `db` is a connection handle (open or failed to open); the message is
        // a NUL-terminated string SQLite owns, copied before any other call.
        unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.0.as_ptr())) }
            .to_string_lossy()
            .into_owned()
    }

    fn autocommit(&self) -> bool {
        // SAFETY: `db` is open.
        unsafe { ffi::sqlite3_get_autocommit(self.0.as_ptr()) != 0 }
    }

    /// Runs `sql` (statements without parameters or rows).
    fn execute(&self, sql: &CStr) -> Result<(), String> {
        // SAFETY: `db` is open; `sql` is NUL-terminated; no callback.
        let code = unsafe {
            ffi::sqlite3_exec(
                self.0.as_ptr(),
                sql.as_ptr(),
                None,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if code == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(self.message())
        }
    }

    /// `sql` prepared to be kept (SQLITE_PREPARE_PERSISTENT).
    fn prepare(&self, sql: &str) -> Result<Statement, String> {
        let mut raw = ptr::null_mut();
        // SAFETY: `db` is open; the pointer and length describe `sql`, which SQLite
        // reads only during the call.
        let code = unsafe {
            ffi::sqlite3_prepare_v3(
                self.0.as_ptr(),
                sql.as_ptr().cast(),
                sql.len() as c_int,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                ptr::null_mut(),
            )
        };
        match NonNull::new(raw) {
            Some(statement) if code == ffi::SQLITE_OK => Ok(Statement(statement)),
            Some(statement) => {
                drop(Statement(statement));
                Err(self.message())
            }
            None => Err(self.message()),
        }
    }

    /// Steps `statement` to its end and resets it, clearing what was bound.
    fn run(&self, statement: &Statement) -> Result<(), String> {
        let raw = statement.0.as_ptr();
        // SAFETY: the statement was prepared on this connection and is stepped by
        // this thread alone; reset and clear leave it ready for the next run.
        let code = unsafe { ffi::sqlite3_step(raw) };
        let outcome = match code {
            ffi::SQLITE_DONE | ffi::SQLITE_ROW => Ok(()),
            _ => Err(self.message()),
        };
        // SAFETY: as above.
        unsafe {
            ffi::sqlite3_reset(raw);
            ffi::sqlite3_clear_bindings(raw);
        }
        outcome
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle is closed once, after `Connection` has finalized every
        // statement on it (a statement left over would only keep it open: BUSY).
        unsafe { ffi::sqlite3_close(self.0.as_ptr()) };
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(NonNull<ffi::sqlite3_stmt>);

// SAFETY: as for `Handle`: made and used on the writer's thread only.
unsafe impl Send for Statement {}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized once, before its connection closes.
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

/// Values bound to a statement's parameters in order; the first failure is kept.
struct Bound {
    statement: *mut ffi::sqlite3_stmt,
    /// The next parameter's number (SQLite counts from 1).
    next: c_int,
    failed: c_int,
}

impl Bound {
    fn done(&mut self, code: c_int) {
        if self.failed == ffi::SQLITE_OK {
            self.failed = code;
        }
        self.next += 1;
    }
}

// Every value is copied by SQLite (SQLITE_TRANSIENT), so nothing bound has to outlive
// the call that bound it.
impl Binds for Bound {
    fn int(&mut self, value: i64) {
        // SAFETY: `statement` is prepared and this thread's; binding past its last
        // parameter returns SQLITE_RANGE, kept as the failure.
        let code = unsafe { ffi::sqlite3_bind_int64(self.statement, self.next, value) };
        self.done(code);
    }

    fn text(&mut self, value: &str) {
        // SAFETY: as in `int`; the pointer and length describe `value`.
        let code = unsafe {
            ffi::sqlite3_bind_text(
                self.statement,
                self.next,
                value.as_ptr().cast(),
                value.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.done(code);
    }

    fn uuid(&mut self, value: Option<Uuid>) {
        let Some(id) = value else {
            return self.null();
        };
        let bytes = id.as_bytes();
        // SAFETY: as in `text`.
        let code = unsafe {
            ffi::sqlite3_bind_blob(
                self.statement,
                self.next,
                bytes.as_ptr().cast(),
                bytes.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.done(code);
    }

    fn null(&mut self) {
        // SAFETY: as in `int`.
        let code = unsafe { ffi::sqlite3_bind_null(self.statement, self.next) };
        self.done(code);
    }
}
