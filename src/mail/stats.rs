//! The mailer's counts, kept in atomics by the mailer and set into `/metrics` at scrape
//! time (like the other state-read series in `http::metrics`), so the mailer never
//! needs the server's recorder.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, gauge};

use crate::storage::MailKind;

/// Per-kind counters, indexed like [`MailKind::ALL`].
#[derive(Debug, Default)]
struct PerKind([AtomicU64; 4]);

impl PerKind {
    fn add(&self, kind: MailKind) {
        let i = MailKind::ALL
            .iter()
            .position(|k| *k == kind)
            .expect("every kind is in ALL");
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, name: &'static str) {
        for (kind, n) in MailKind::ALL.iter().zip(&self.0) {
            counter!(name, "kind" => kind.as_str()).absolute(n.load(Ordering::Relaxed));
        }
    }
}

#[derive(Debug, Default)]
pub struct MailStats {
    sent: PerKind,
    failures: PerKind,
    given_up: PerKind,
    skipped: PerKind,
    pending: AtomicU64,
}

impl MailStats {
    /// The SMTP server accepted a message.
    pub(super) fn sent(&self, kind: MailKind) {
        self.sent.add(kind);
    }

    /// An attempt failed (it may be retried).
    pub(super) fn failure(&self, kind: MailKind) {
        self.failures.add(kind);
    }

    /// A message was marked failed: its last attempt failed, or it was refused for good.
    pub(super) fn given_up(&self, kind: MailKind) {
        self.given_up.add(kind);
    }

    /// A message had nothing left to say and was dropped unsent.
    pub(super) fn skipped(&self, kind: MailKind) {
        self.skipped.add(kind);
    }

    /// Pending rows in the outbox, as of the mailer's last pass.
    pub(super) fn set_pending(&self, n: u64) {
        self.pending.store(n, Ordering::Relaxed);
    }

    /// Sets the series (to be called under the server's recorder, at scrape time).
    pub fn record(&self) {
        self.sent.record("pica_mail_sent_total");
        self.failures.record("pica_mail_failures_total");
        self.given_up.record("pica_mail_given_up_total");
        self.skipped.record("pica_mail_skipped_total");
        gauge!("pica_mail_outbox_pending").set(self.pending.load(Ordering::Relaxed) as f64);
    }
}
