-- The mail outbox (docs/email.md): one row per message to send, written in the same
-- transaction as the change that causes it (or by the reminder scan), and drained by
-- the mailer. UNIQUE (kind, subject_id) makes a retried commit or a second scan a
-- no-op (ON CONFLICT DO NOTHING), so a cause never yields two messages. `subject_id`
-- is the reservation's id, or the waitlist entry's for a hold offer; no foreign key,
-- since it points into one of two tables.

CREATE TABLE mail_outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT NOT NULL
                     CHECK (kind IN ('booking_confirmed', 'series_confirmed', 'reminder', 'hold_offered', 'no_show')),
    subject_id       UUID NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    UNIQUE (kind, subject_id)
);
-- The mailer's work list and the queue-depth gauge read only pending rows.
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';
