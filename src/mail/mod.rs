//! Email notifications (docs/email.md), on when `PICA_SMTP_URL` is set.
//!
//! The engine never sends mail. Its commits write outbox rows in the same transaction
//! as their cause (`storage::EngineStorage`), and this module's mailer, one tokio task,
//! drains the outbox: it wakes when a commit queued mail, when a retry falls due, and
//! every `PICA_MAIL_POLL_MS` to queue due reminders. A slow or dead SMTP server delays
//! only the mail; bookings go on at full speed.

mod compose;
mod deliver;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use pica_actors::Engine;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use stats::MailStats;

use crate::config::MailSettings;
use crate::storage::Db;
use deliver::Courier;

/// Messages read from the outbox per query while draining.
const BATCH: u32 = 32;

/// The running mailer.
pub struct Mailer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Mailer {
    /// Starts draining the outbox of `db`. `wake` is the one the engine's storage pokes
    /// after a commit that queued mail.
    pub fn start(
        db: Db,
        engine: Engine,
        settings: MailSettings,
        tz: chrono_tz::Tz,
        wake: Arc<Notify>,
        stats: Arc<MailStats>,
    ) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.smtp_url.expose())
            .context("PICA_SMTP_URL")?
            .timeout(Some(settings.smtp_timeout))
            .build();
        info!(smtp = ?settings.smtp_url, from = %settings.from, "email notifications are on");
        let courier = Courier {
            db,
            engine,
            settings,
            tz,
            transport,
            stats,
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(courier, wake, stopped));
        Ok(Self { stop, task })
    }

    /// Stops after the message in hand (its attempt is bounded by the SMTP timeout);
    /// whatever is still queued stays in the outbox for the next start.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn run(courier: Courier, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
    let poll = courier.settings.poll_every;
    let mut next_scan = tokio::time::Instant::now();
    while !*stopped.borrow() {
        if tokio::time::Instant::now() >= next_scan {
            queue_reminders(&courier).await;
            next_scan = tokio::time::Instant::now() + poll;
        }
        drain(&courier, &stopped).await;
        let queue = match courier.db.mail_queue().await {
            Ok(queue) => queue,
            Err(err) => {
                warn!(error = %err, "could not read the mail outbox");
                Default::default()
            }
        };
        courier.stats.set_pending(queue.pending);
        // Sleep until the next retry is due or the next scan, unless woken first.
        let until_due = queue.next_due.map_or(poll, |due| {
            (due - Utc::now()).to_std().unwrap_or(Duration::ZERO)
        });
        let until_scan = next_scan.saturating_duration_since(tokio::time::Instant::now());
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(until_due.min(until_scan)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// Queues a reminder for every confirmed reservation starting within the lead time, as
/// of the engine's clock (which tests move).
async fn queue_reminders(courier: &Courier) {
    let lead = chrono::Duration::from_std(courier.settings.reminder_before).unwrap_or_default();
    let now = courier.engine.clock().now();
    match courier.db.queue_reminders(now, lead, Utc::now()).await {
        Ok(0) => {}
        Ok(n) => info!(reminders = n, "queued reminders"),
        Err(err) => warn!(error = %err, "could not queue reminders"),
    }
}

/// Tries every message that is due, until none is or the mailer is told to stop.
async fn drain(courier: &Courier, stopped: &watch::Receiver<bool>) {
    loop {
        let due = match courier.db.due_mail(Utc::now(), BATCH).await {
            Ok(due) => due,
            Err(err) => return warn!(error = %err, "could not read the mail outbox"),
        };
        if due.is_empty() {
            return;
        }
        for mail in &due {
            if *stopped.borrow() {
                return;
            }
            if let Err(err) = courier.attempt(mail).await {
                // The row keeps its lease and is tried again when it ends.
                return warn!(error = %err, id = mail.id, "could not update the mail outbox");
            }
        }
    }
}
