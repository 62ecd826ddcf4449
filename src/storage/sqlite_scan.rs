//! The engine's rebuild read on SQLite, through SQLite's C API on a connection of the
//! pool. A zone's start reads every active reservation it holds (a million on a big
//! space); through sqlx each row's every value is copied into a fresh allocation and
//! sent to the async side one row at a time, which cost more than everything else in
//! the start together. Here the rows are decoded straight from the statement, on a
//! blocking thread, allocating only the strings a [`Reservation`] owns.
//!
//! The query is [`ACTIVE_RESERVATIONS`], the same one PostgreSQL runs through sqlx
//! (`Db::active_reservations`).

use std::ffi::c_int;
use std::ptr::{self, NonNull};

use chrono::{DateTime, Utc};
use libsqlite3_sys as ffi;
use pica_actors::{Interval, Reservation, ReservationStatus, SeatNumber, ZoneId};
use sqlx::SqlitePool;
use uuid::Uuid;

use super::decode_error;
use super::reservations::ACTIVE_RESERVATIONS;

/// [`ACTIVE_RESERVATIONS`] of `zone` at `now`, read on a blocking thread.
pub(super) async fn active_reservations(
    pool: &SqlitePool,
    zone: &ZoneId,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let zone = zone.clone();
    // The connection moves to the blocking thread and back; its handle is locked away
    // from sqlx's worker thread only there, for the length of the read.
    let (conn, read) = tokio::task::spawn_blocking(move || {
        let read = tokio::runtime::Handle::current()
            .block_on(conn.lock_handle())
            .and_then(|mut locked| {
                let read = read_active(locked.as_raw_handle(), &zone, now);
                read.map_err(|failure| failure.into_error(&mut locked))
            });
        (conn, read)
    })
    .await
    .map_err(|err| sqlx::Error::Io(std::io::Error::other(err)))?;
    drop(conn);
    read
}

/// Why a read failed: SQLite refused (its message is on the connection) or a row did
/// not decode.
enum Failure {
    Sqlite(c_int),
    Decode(sqlx::Error),
}

impl Failure {
    fn into_error(self, locked: &mut sqlx::sqlite::LockedSqliteHandle<'_>) -> sqlx::Error {
        match self {
            Failure::Decode(err) => err,
            Failure::Sqlite(code) => match locked.last_error() {
                Some(err) => sqlx::Error::Database(Box::new(err)),
                None => sqlx::Error::Protocol(format!("SQLite error {code}")),
            },
        }
    }
}

/// A prepared statement, finalized when dropped.
struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared by `read_active` and is finalized once.
        unsafe { ffi::sqlite3_finalize(self.0.as_ptr()) };
    }
}

fn check(code: c_int) -> Result<(), Failure> {
    if code == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(Failure::Sqlite(code))
    }
}

fn read_active(
    db: NonNull<ffi::sqlite3>,
    zone: &ZoneId,
    now: DateTime<Utc>,
) -> Result<Vec<Reservation>, Failure> {
    // `?N` is SQLite's own spelling of a numbered parameter.
    let sql = ACTIVE_RESERVATIONS.replace('$', "?");
    let mut raw = ptr::null_mut();
    // SAFETY: `db` is an open connection whose handle this thread holds locked; the
    // SQL's pointer and length describe a live string.
    check(unsafe {
        ffi::sqlite3_prepare_v2(
            db.as_ptr(),
            sql.as_ptr().cast(),
            sql.len() as c_int,
            &mut raw,
            ptr::null_mut(),
        )
    })?;
    let statement = Statement(NonNull::new(raw).ok_or(Failure::Sqlite(ffi::SQLITE_MISUSE))?);
    let stmt = statement.0.as_ptr();
    // SAFETY: `stmt` is prepared; SQLITE_TRANSIENT makes SQLite copy the zone's text.
    check(unsafe {
        ffi::sqlite3_bind_text(
            stmt,
            1,
            zone.0.as_ptr().cast(),
            zone.0.len() as c_int,
            ffi::SQLITE_TRANSIENT(),
        )
    })?;
    // SAFETY: as above.
    check(unsafe { ffi::sqlite3_bind_int64(stmt, 2, now.timestamp()) })?;
    let mut active = Vec::new();
    loop {
        // SAFETY: `stmt` is prepared and bound; stepping it is this thread's alone.
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_ROW => {
                let row = Row(stmt);
                active.push(row.reservation(zone).map_err(Failure::Decode)?);
            }
            ffi::SQLITE_DONE => return Ok(active),
            code => return Err(Failure::Sqlite(code)),
        }
    }
}

/// The statement's current row (valid until the next step).
struct Row(*mut ffi::sqlite3_stmt);

impl Row {
    fn reservation(&self, zone: &ZoneId) -> Result<Reservation, sqlx::Error> {
        let seat = std::str::from_utf8(self.bytes(2)).map_err(|_| decode_error("seat number"))?;
        let status = self.bytes(5);
        let status = std::str::from_utf8(status)
            .ok()
            .and_then(ReservationStatus::parse)
            .ok_or_else(|| decode_error("unknown reservation status"))?;
        let seconds = |i| {
            DateTime::from_timestamp(self.int(i), 0)
                .ok_or_else(|| decode_error("time out of range"))
        };
        Ok(Reservation {
            id: self.uuid(0)?,
            user_id: self.int(1),
            seat: SeatNumber(seat.to_owned()),
            zone: zone.clone(),
            interval: Interval::new(seconds(3)?, seconds(4)?)
                .ok_or_else(|| decode_error("reservation with empty interval"))?,
            status,
            created_at: DateTime::from_timestamp_micros(self.int(6))
                .ok_or_else(|| decode_error("time out of range"))?,
            series: if self.is_null(7) {
                None
            } else {
                Some(self.uuid(7)?)
            },
        })
    }

    fn int(&self, column: c_int) -> i64 {
        // SAFETY: the statement is on a row and `column` is one of its columns.
        unsafe { ffi::sqlite3_column_int64(self.0, column) }
    }

    fn is_null(&self, column: c_int) -> bool {
        // SAFETY: as in `int`.
        unsafe { ffi::sqlite3_column_type(self.0, column) == ffi::SQLITE_NULL }
    }

    /// A text or blob column's bytes, borrowed from the statement.
    fn bytes(&self, column: c_int) -> &[u8] {
        // SAFETY: as in `int`. The pointer is asked for before the length, as SQLite
        // asks; it stays valid until the statement steps again, and a `Row` (with
        // every slice borrowed from it) is dropped before that.
        unsafe {
            let data = ffi::sqlite3_column_blob(self.0, column);
            let len = ffi::sqlite3_column_bytes(self.0, column);
            if data.is_null() || len <= 0 {
                &[]
            } else {
                std::slice::from_raw_parts(data.cast(), len as usize)
            }
        }
    }

    fn uuid(&self, column: c_int) -> Result<Uuid, sqlx::Error> {
        Uuid::from_slice(self.bytes(column)).map_err(|_| decode_error("reservation id"))
    }
}
