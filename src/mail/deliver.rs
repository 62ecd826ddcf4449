//! One attempt at one queued message: claim the row, write the message from what the
//! database says now, hand it to the SMTP server, and record the outcome in the row.

use std::time::Duration;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use pica_actors::{Engine, ReservationStatus};
use tracing::{debug, warn};

use super::MailStats;
use super::compose::{self, Letter};
use crate::config::MailSettings;
use crate::storage::{Db, DbError, MailEnd, MailKind, QueuedMail};

/// Backoffs never grow past this, whatever the base and the attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The pause after `attempts` failed tries: `base` × 2^(attempts−1), capped.
fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// What became of a message's draft.
enum Draft {
    Ready(Box<Message>),
    /// Nothing to say any more.
    Skip(&'static str),
    /// It can never be sent (a malformed address): no point retrying.
    Refuse(String),
}

pub(super) struct Courier {
    pub(super) db: Db,
    pub(super) engine: Engine,
    pub(super) settings: MailSettings,
    pub(super) tz: chrono_tz::Tz,
    pub(super) transport: AsyncSmtpTransport<Tokio1Executor>,
    pub(super) stats: std::sync::Arc<MailStats>,
}

impl Courier {
    /// How long a claimed row is left alone: longer than an attempt can take, so only
    /// a server that died mid-attempt leaves a row to wait this long.
    fn lease(&self) -> Duration {
        self.settings.smtp_timeout * 2 + Duration::from_secs(60)
    }

    /// Makes one attempt at `mail`. An error is the database's; the row then stays
    /// pending and is tried again once its lease ends.
    pub(super) async fn attempt(&self, mail: &QueuedMail) -> Result<(), DbError> {
        let lease = chrono::Duration::from_std(self.lease()).unwrap_or(chrono::Duration::MAX);
        if !self.db.claim_mail(mail, Utc::now() + lease).await? {
            return Ok(()); // another server took it
        }
        let attempt = mail.attempts + 1;
        let kind = mail.kind;
        let message = match self.draft(mail).await {
            Ok(Draft::Ready(message)) => message,
            Ok(Draft::Skip(reason)) => {
                debug!(kind = kind.as_str(), id = mail.id, reason, "mail skipped");
                self.stats.skipped(kind);
                return self.db.mail_ended(mail.id, MailEnd::Skipped, reason).await;
            }
            Ok(Draft::Refuse(reason)) => {
                return self.give_up(mail, &reason).await;
            }
            Err(err) => return self.failed(mail, attempt, &err.to_string(), false).await,
        };
        // No lock or actor is held here: the engine goes on while the server answers.
        // lettre's own timeout does not bound every read (a server that accepts and
        // never greets would hold the mailer), so the whole conversation is bounded.
        let sent =
            tokio::time::timeout(self.settings.smtp_timeout, self.transport.send(*message)).await;
        match sent {
            Ok(Ok(_)) => {
                // The server has it: from here a crash before the mark means one
                // repeat, with the same Message-ID (at-least-once).
                self.db.mail_sent(mail.id, Utc::now()).await?;
                self.stats.sent(kind);
                debug!(kind = kind.as_str(), id = mail.id, attempt, "mail sent");
                Ok(())
            }
            Ok(Err(err)) => {
                let permanent = err.is_permanent();
                self.failed(mail, attempt, &err.to_string(), permanent)
                    .await
            }
            Err(_) => self.failed(mail, attempt, "timed out", false).await,
        }
    }

    async fn failed(
        &self,
        mail: &QueuedMail,
        attempt: u32,
        error: &str,
        permanent: bool,
    ) -> Result<(), DbError> {
        if permanent || attempt >= self.settings.max_attempts {
            return self.give_up(mail, error).await;
        }
        self.stats.failure(mail.kind);
        let pause = backoff(self.settings.backoff_base, attempt);
        warn!(
            kind = mail.kind.as_str(),
            id = mail.id,
            attempt,
            error,
            retry_in_ms = pause.as_millis() as u64,
            "could not send mail; will retry"
        );
        let next = Utc::now() + chrono::Duration::from_std(pause).unwrap_or_default();
        self.db.mail_retry_at(mail.id, next, error).await
    }

    async fn give_up(&self, mail: &QueuedMail, error: &str) -> Result<(), DbError> {
        self.stats.failure(mail.kind);
        self.stats.given_up(mail.kind);
        warn!(
            kind = mail.kind.as_str(),
            id = mail.id,
            attempts = mail.attempts + 1,
            error,
            "could not send mail; giving up"
        );
        self.db.mail_ended(mail.id, MailEnd::Failed, error).await
    }

    /// The message as of now: a reminder for a reservation no longer confirmed, or for
    /// an account that is gone, has nothing to say.
    async fn draft(&self, mail: &QueuedMail) -> Result<Draft, DbError> {
        let (user_id, letter) = match mail.kind {
            MailKind::HoldOffered => {
                let Some(entry) = self.db.waitlist_entry(mail.subject_id).await? else {
                    return Ok(Draft::Skip("the waitlist entry is gone"));
                };
                let zone = self.zone_name(&entry.zone.0);
                match compose::hold_offered(&entry, &zone, self.tz) {
                    Some(letter) => (entry.user_id, letter),
                    None => return Ok(Draft::Skip("the entry holds no seat")),
                }
            }
            MailKind::SeriesConfirmed => {
                let Some(series) = self.db.series(mail.subject_id).await? else {
                    return Ok(Draft::Skip("the series is gone"));
                };
                let occurrences = self.db.series_occurrences(series.id).await?;
                let zone = self.zone_name(&series.zone.0);
                match compose::series_confirmed(&series, &occurrences, &zone, self.tz) {
                    Some(letter) => (series.user_id, letter),
                    None => return Ok(Draft::Skip("the series has no occurrences")),
                }
            }
            kind => {
                let Some(r) = self.db.reservation(mail.subject_id).await? else {
                    return Ok(Draft::Skip("the reservation is gone"));
                };
                if kind == MailKind::Reminder && r.status != ReservationStatus::Confirmed {
                    return Ok(Draft::Skip("the reservation is no longer confirmed"));
                }
                let zone = self.zone_name(&r.zone.0);
                let letter: Letter = match kind {
                    MailKind::BookingConfirmed => compose::booking_confirmed(&r, &zone, self.tz),
                    MailKind::Reminder => compose::reminder(&r, &zone, self.tz),
                    _ => compose::no_show(&r, &zone, self.tz),
                };
                (r.user_id, letter)
            }
        };
        let Some(user) = self.db.find_user(user_id).await? else {
            return Ok(Draft::Skip("the account is gone"));
        };
        let to: Mailbox = match user.email.parse() {
            Ok(to) => to,
            Err(err) => return Ok(Draft::Refuse(format!("bad recipient address: {err}"))),
        };
        let from = &self.settings.from;
        let id = compose::message_id(mail.kind, mail.subject_id, from);
        match letter.into_message(from, to, id) {
            Ok(message) => Ok(Draft::Ready(Box::new(message))),
            Err(err) => Ok(Draft::Refuse(format!("could not build the message: {err}"))),
        }
    }

    /// The zone's display name.
    fn zone_name(&self, zone: &str) -> String {
        self.engine
            .zone_name(&pica_actors::ZoneId(zone.to_string()))
            .unwrap_or_else(|| zone.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_an_hour() {
        let base = Duration::from_secs(30);
        let pauses: Vec<u64> = (1..=5).map(|n| backoff(base, n).as_secs()).collect();
        assert_eq!(pauses, [30, 60, 120, 240, 480]);
        assert_eq!(backoff(base, 8), Duration::from_secs(3600));
        assert_eq!(backoff(base, u32::MAX), MAX_BACKOFF);
    }
}
