//! Waitlist entries and the holds offered to them (table `waitlist_entries`, migration
//! 0003): the engine's writes and rebuild read, the edge's reads.

use pica_actors::{
    Change, Hold, Interval, SeatNumber, WaitStatus, WaitlistEntry, WaitlistId, ZoneId,
};
use sqlx::Row;

use super::dialect::{Bound, Stamp, both, fetch};
use super::{Db, DbError, Page, decode_error, fetch_page, one_row, stale};

/// The columns of an entry followed by the rest of the statement (a literal for sqlx).
macro_rules! select_entries {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, zone_id, starts_at, ends_at, status, seat_number, \
             hold_expires_at, reservation_id, created_at FROM waitlist_entries ",
            $rest
        )
    };
}

pub type WaitlistQuery = Page<WaitStatus, WaitlistId>;

both!(row: trait EntryRow {
    fn entry(&self) -> Result<WaitlistEntry, sqlx::Error> {
        let (start, end): (Bound, Bound) = (self.try_get("starts_at")?, self.try_get("ends_at")?);
        let seat: Option<String> = self.try_get("seat_number")?;
        let expires: Option<Stamp> = self.try_get("hold_expires_at")?;
        Ok(WaitlistEntry {
            id: self.try_get("id")?,
            user_id: self.try_get("user_id")?,
            zone: ZoneId(self.try_get("zone_id")?),
            interval: Interval::new(start.0, end.0)
                .ok_or_else(|| decode_error("waitlist entry with empty interval"))?,
            status: WaitStatus::parse(self.try_get("status")?)
                .ok_or_else(|| decode_error("unknown waitlist status"))?,
            hold: seat.zip(expires).map(|(seat, expires)| Hold {
                seat: SeatNumber(seat),
                expires_at: expires.0,
            }),
            reservation_id: self.try_get("reservation_id")?,
            created_at: self.try_get::<Stamp, _>("created_at")?.0,
        })
    }
});

both!(connection: pub(super) trait WaitlistWrites {
    /// Creates an entry, or compare-and-sets one that is still in status `from`.
    async fn apply_waitlist_change(&mut self, change: &Change) -> Result<(), sqlx::Error> {
        match change {
            Change::CreateWaitlistEntry { entry: e } => {
                let hold = e.hold.as_ref();
                sqlx::query(
                    "INSERT INTO waitlist_entries (id, user_id, zone_id, starts_at, ends_at, \
                     status, seat_number, hold_expires_at, reservation_id, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                )
                .bind(e.id)
                .bind(e.user_id)
                .bind(&e.zone.0)
                .bind(Bound(e.interval.start))
                .bind(Bound(e.interval.end))
                .bind(e.status.as_str())
                .bind(hold.map(|h| h.seat.0.as_str()))
                .bind(hold.map(|h| Stamp(h.expires_at)))
                .bind(e.reservation_id)
                .bind(Stamp(e.created_at))
                .execute(&mut *self)
                .await
                .map(drop)
            }
            Change::UpdateWaitlistEntry { entry: e, from, at } => {
                let hold = e.hold.as_ref();
                let done = sqlx::query(
                    "UPDATE waitlist_entries SET status = $1, seat_number = $2, \
                     hold_expires_at = $3, reservation_id = $4, updated_at = $5 \
                     WHERE id = $6 AND status = $7",
                )
                .bind(e.status.as_str())
                .bind(hold.map(|h| h.seat.0.as_str()))
                .bind(hold.map(|h| Stamp(h.expires_at)))
                .bind(e.reservation_id)
                .bind(Stamp(*at))
                .bind(e.id)
                .bind(from.as_str())
                .execute(&mut *self)
                .await?;
                one_row(done.rows_affected(), || stale(e.id))
            }
            _ => unreachable!("not a waitlist change: {change:?}"),
        }
    }
});

impl Db {
    /// The zone's entries still waiting or offered a hold, in arrival order.
    pub(super) async fn open_waitlist(
        &self,
        zone: &ZoneId,
    ) -> Result<Vec<WaitlistEntry>, sqlx::Error> {
        let sql = select_entries!(
            "WHERE zone_id = $1 AND status IN ('waiting', 'offered') ORDER BY created_at, id"
        );
        fetch!(self, all entry, sqlx::query(sql).bind(&zone.0))
    }

    /// Every zone's open entries, each zone's oldest first: read once by the engine's
    /// first start (the same partial index as [`open_waitlist`](Self::open_waitlist)).
    pub(super) async fn all_open_waitlists(&self) -> Result<Vec<WaitlistEntry>, sqlx::Error> {
        let sql = select_entries!(
            "WHERE status IN ('waiting', 'offered') ORDER BY zone_id, created_at, id"
        );
        fetch!(self, all entry, sqlx::query(sql))
    }

    pub async fn waitlist_entry(&self, id: WaitlistId) -> Result<Option<WaitlistEntry>, DbError> {
        let sql = select_entries!("WHERE id = $1");
        Ok(fetch!(self, optional entry, sqlx::query(sql).bind(id))?)
    }

    pub async fn waitlist_of(&self, q: &WaitlistQuery) -> Result<Vec<WaitlistEntry>, DbError> {
        Ok(fetch_page!(self, select_entries, entry, q)?)
    }
}
