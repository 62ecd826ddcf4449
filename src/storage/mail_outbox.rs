//! The mail outbox (table `mail_outbox`, migrations sqlite 0010 / postgres 0009): the
//! messages to send, written in the transaction of the change that causes them (the
//! unit of work's commit, see `engine`) or by the reminder scan, and drained by the
//! mailer (`crate::mail`). `UNIQUE (kind, subject_id)` and `ON CONFLICT DO NOTHING`
//! make every insert idempotent: a retried commit or a second scan adds nothing.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use pica_actors::{Change, ReservationStatus, WaitStatus};
use sqlx::Row;
use uuid::Uuid;

use super::dialect::{Bound, ROW_CLASSES, Stamp, both, execute, fetch, on_pool, pieces};
use super::{Db, DbError};

/// What a message is about; with its subject's id it names the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A seat reservation was made (subject: the reservation).
    BookingConfirmed,
    /// A weekly series was booked: one message for all its occurrences (subject: the
    /// series).
    SeriesConfirmed,
    /// A confirmed reservation starts soon (subject: the reservation).
    Reminder,
    /// A waiter was offered a held seat (subject: the waitlist entry).
    HoldOffered,
    /// A reservation was released as a no-show (subject: the reservation).
    NoShow,
}

impl MailKind {
    pub const ALL: [MailKind; 5] = [
        Self::BookingConfirmed,
        Self::SeriesConfirmed,
        Self::Reminder,
        Self::HoldOffered,
        Self::NoShow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookingConfirmed => "booking_confirmed",
            Self::SeriesConfirmed => "series_confirmed",
            Self::Reminder => "reminder",
            Self::HoldOffered => "hold_offered",
            Self::NoShow => "no_show",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A pending message the mailer may try now.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    pub id: i64,
    pub kind: MailKind,
    pub subject_id: Uuid,
    /// Tries made before this one.
    pub attempts: u32,
}

/// How full the outbox is: pending rows, and when the earliest of them is due.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailQueue {
    pub pending: u64,
    pub next_due: Option<DateTime<Utc>>,
}

/// How a message left the queue without being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailEnd {
    /// Every attempt failed, or the server refused it for good.
    Failed,
    /// There was nothing to say any more (the reservation was cancelled before its
    /// reminder, the account is gone).
    Skipped,
}

/// The mail that `changes` cause: a confirmation per new reservation (one per weekly
/// series, not one per occurrence), an offer per entry that became `offered`, a notice
/// per reservation released as a no-show.
pub(super) fn mail_caused_by(changes: &[Change]) -> Vec<(MailKind, Uuid)> {
    changes
        .iter()
        .filter_map(|change| match change {
            Change::CreateSeries { series } => Some((MailKind::SeriesConfirmed, series.id)),
            Change::CreateReservation { reservation } if reservation.series.is_none() => {
                Some((MailKind::BookingConfirmed, reservation.id))
            }
            Change::SetReservationStatus {
                id,
                to: ReservationStatus::NoShow,
                ..
            } => Some((MailKind::NoShow, *id)),
            Change::CreateWaitlistEntry { entry } | Change::UpdateWaitlistEntry { entry, .. }
                if entry.status == WaitStatus::Offered =>
            {
                Some((MailKind::HoldOffered, entry.id))
            }
            _ => None,
        })
        .collect()
}

/// One insert per row class (see `dialect::ROW_CLASSES`), `$1` the stamp shared by
/// every row. A piece shorter than its class repeats its last row, which the conflict
/// clause then skips: a handful of statement texts serve every batch size, so each is
/// prepared once per connection.
pub(super) static INSERT_MAIL: LazyLock<Vec<String>> = LazyLock::new(|| {
    ROW_CLASSES
        .iter()
        .map(|&n| {
            let rows: Vec<String> = (0..n)
                .map(|i| format!("(${}, ${}, $1, $1)", 2 + 2 * i, 3 + 2 * i))
                .collect();
            format!(
                "INSERT INTO mail_outbox (kind, subject_id, next_attempt_at, created_at) \
                 VALUES {} ON CONFLICT (kind, subject_id) DO NOTHING",
                rows.join(", ")
            )
        })
        .collect()
});

both!(connection: pub(super) trait OutboxWrites {
    /// Queues `mail`, due `now`, inside the caller's transaction.
    async fn queue_mail(
        &mut self,
        mail: &[(MailKind, Uuid)],
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        for (class, piece) in pieces(mail) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(INSERT_MAIL[class].as_str()))
                .bind(Stamp(now));
            let last = piece[piece.len() - 1];
            for (kind, id) in piece.iter().chain(std::iter::repeat_n(&last, ROW_CLASSES[class] - piece.len())) {
                query = query.bind(kind.as_str()).bind(*id);
            }
            query.execute(&mut *self).await?;
        }
        Ok(())
    }
});

both!(row: trait QueuedMailRow {
    fn queued_mail(&self) -> Result<QueuedMail, sqlx::Error> {
        let kind: &str = self.try_get("kind")?;
        let attempts: i32 = self.try_get("attempts")?;
        Ok(QueuedMail {
            id: self.try_get("id")?,
            kind: MailKind::parse(kind)
                .ok_or_else(|| super::decode_error(format!("unknown mail kind {kind}")))?,
            subject_id: self.try_get("subject_id")?,
            attempts: u32::try_from(attempts).unwrap_or(0),
        })
    }
});

impl Db {
    /// Queues a reminder for every `confirmed` reservation starting within `lead` of
    /// `now` (the engine's clock), stamped `stamp` (the wall clock). Repeating the scan
    /// adds nothing. Returns how many were queued.
    pub async fn queue_reminders(
        &self,
        now: DateTime<Utc>,
        lead: chrono::Duration,
        stamp: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        // `status IN (...)` repeats the predicate of the partial index on active
        // reservations (zone, end), and `zone_id IN zones` gives its leading column, so
        // the scan can read only active rows, not the table's whole history (SQLite's
        // plan searches that index).
        let sql = "INSERT INTO mail_outbox (kind, subject_id, next_attempt_at, created_at) \
                   SELECT 'reminder', id, $1, $1 FROM reservations \
                   WHERE zone_id IN (SELECT id FROM zones) \
                   AND status IN ('confirmed', 'checked_in') AND ends_at > $2 \
                   AND status = 'confirmed' AND starts_at > $2 AND starts_at <= $3 \
                   ON CONFLICT (kind, subject_id) DO NOTHING";
        Ok(execute!(
            self,
            sqlx::query(sql)
                .bind(Stamp(stamp))
                .bind(Bound(now))
                .bind(Bound(now + lead))
        )?)
    }

    /// Up to `limit` pending messages due at `now`, the longest-due first.
    pub async fn due_mail(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, DbError> {
        let sql = "SELECT id, kind, subject_id, attempts FROM mail_outbox \
                   WHERE status = 'pending' AND next_attempt_at <= $1 \
                   ORDER BY next_attempt_at, id LIMIT $2";
        Ok(fetch!(self, all queued_mail, sqlx::query(sql)
            .bind(Stamp(now))
            .bind(i64::from(limit)))?)
    }

    /// The pending rows: how many, and when the next is due.
    pub async fn mail_queue(&self) -> Result<MailQueue, DbError> {
        let sql = "SELECT COUNT(*), MIN(next_attempt_at) FROM mail_outbox WHERE status = 'pending'";
        let (pending, next): (i64, Option<Stamp>) =
            on_pool!(self, |pool| sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(MailQueue {
            pending: u64::try_from(pending).unwrap_or(0),
            next_due: next.map(|s| s.0),
        })
    }

    /// Takes `mail` for one attempt: counts the attempt and pushes the row's due time
    /// to `lease_until`, so that another server (or this one after a crash) leaves it
    /// alone until then. False when someone else took it first.
    pub async fn claim_mail(
        &self,
        mail: &QueuedMail,
        lease_until: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $1 \
                   WHERE id = $2 AND status = 'pending' AND attempts = $3";
        let attempts = i32::try_from(mail.attempts).unwrap_or(i32::MAX);
        let rows = execute!(
            self,
            sqlx::query(sql)
                .bind(Stamp(lease_until))
                .bind(mail.id)
                .bind(attempts)
        )?;
        Ok(rows == 1)
    }

    /// The SMTP server accepted message `id`.
    pub async fn mail_sent(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError> {
        let sql = "UPDATE mail_outbox SET status = 'sent', sent_at = $1, last_error = NULL \
                   WHERE id = $2";
        execute!(self, sqlx::query(sql).bind(Stamp(at)).bind(id))?;
        Ok(())
    }

    /// An attempt failed with `error`; the next is due `at`.
    pub async fn mail_retry_at(
        &self,
        id: i64,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), DbError> {
        let sql = "UPDATE mail_outbox SET next_attempt_at = $1, last_error = $2 \
                   WHERE id = $3 AND status = 'pending'";
        execute!(self, sqlx::query(sql).bind(Stamp(at)).bind(error).bind(id))?;
        Ok(())
    }

    /// Message `id` leaves the queue unsent, for `reason`.
    pub async fn mail_ended(&self, id: i64, end: MailEnd, reason: &str) -> Result<(), DbError> {
        let status = match end {
            MailEnd::Failed => "failed",
            MailEnd::Skipped => "skipped",
        };
        let sql = "UPDATE mail_outbox SET status = $1, last_error = $2 \
                   WHERE id = $3 AND status = 'pending'";
        execute!(self, sqlx::query(sql).bind(status).bind(reason).bind(id))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use pica_actors::{Hold, Interval, Reservation, SeatNumber, WaitlistEntry, ZoneId};

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn bookings_offers_and_no_shows_cause_mail_and_nothing_else_does() {
        let r = Reservation {
            id: Uuid::now_v7(),
            user_id: 1,
            seat: SeatNumber("Q1".into()),
            zone: ZoneId("quiet".into()),
            interval: Interval::new(at(9), at(11)).unwrap(),
            status: ReservationStatus::Confirmed,
            created_at: at(7),
            series: None,
        };
        let mut entry = WaitlistEntry {
            id: Uuid::now_v7(),
            user_id: 2,
            zone: r.zone.clone(),
            interval: r.interval,
            status: WaitStatus::Waiting,
            hold: None,
            reservation_id: None,
            created_at: at(7),
        };
        let waiting = Change::CreateWaitlistEntry {
            entry: entry.clone(),
        };
        entry.status = WaitStatus::Offered;
        entry.hold = Some(Hold {
            seat: r.seat.clone(),
            expires_at: at(8),
        });
        let status = |to| Change::SetReservationStatus {
            id: r.id,
            from: ReservationStatus::Confirmed,
            to,
            at: at(9),
        };
        let changes = [
            Change::CreateReservation {
                reservation: r.clone(),
            },
            waiting,
            Change::UpdateWaitlistEntry {
                entry: entry.clone(),
                from: WaitStatus::Waiting,
                at: at(8),
            },
            status(ReservationStatus::Cancelled),
            status(ReservationStatus::NoShow),
        ];
        assert_eq!(
            mail_caused_by(&changes),
            [
                (MailKind::BookingConfirmed, r.id),
                (MailKind::HoldOffered, entry.id),
                (MailKind::NoShow, r.id),
            ]
        );
    }

    #[test]
    fn kinds_read_back_as_written() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("spam"), None);
    }
}
