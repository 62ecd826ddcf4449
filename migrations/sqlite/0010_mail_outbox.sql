-- The mail outbox (docs/email.md): one row per message to send, written in the same
-- transaction as the change that causes it (or by the reminder scan), and drained by
-- the mailer. UNIQUE (kind, subject_id) makes a retried commit or a second scan a
-- no-op (ON CONFLICT DO NOTHING), so a cause never yields two messages. `subject_id`
-- is the reservation's id, or the waitlist entry's for a hold offer; no foreign key,
-- since it points into one of two tables. Stamps are unix microseconds.

CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL
                     CHECK (kind IN ('booking_confirmed', 'series_confirmed', 'reminder', 'hold_offered', 'no_show')),
    subject_id       BLOB NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    UNIQUE (kind, subject_id)
);
-- The mailer's work list and the queue-depth gauge read only pending rows.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
