-- Idempotency keys of every creating POST, one row per (user, endpoint, key). A row is
-- written in the same transaction as what its request created, so it exists exactly
-- when the creation committed. `fingerprint` is the hex SHA-256 of the request body's
-- canonical JSON: a retry with another body is refused. The id columns say what the
-- request created (a bundle sets two). Stamps are unix microseconds.

CREATE TABLE idempotency_keys (
    user_id              INTEGER NOT NULL REFERENCES users (id),
    scope                TEXT NOT NULL,
    key                  TEXT NOT NULL,
    -- NULL only for keys carried over from reservations made before this table:
    -- their bodies were not kept, so a retry is answered without comparing bodies.
    fingerprint          TEXT,
    reservation_id       BLOB REFERENCES reservations (id),
    book_reservation_id  BLOB REFERENCES book_reservations (id),
    waitlist_entry_id    BLOB REFERENCES waitlist_entries (id),
    api_key_id           BLOB REFERENCES api_keys (id),
    created_at           INTEGER NOT NULL,
    PRIMARY KEY (user_id, scope, key),
    CHECK (reservation_id IS NOT NULL OR book_reservation_id IS NOT NULL
           OR waitlist_entry_id IS NOT NULL OR api_key_id IS NOT NULL)
);

-- Reservation keys used to live on the reservation row; they keep answering retries.
INSERT INTO idempotency_keys (user_id, scope, key, fingerprint, reservation_id, created_at)
SELECT user_id, 'reservations', idempotency_key, NULL, id, created_at
FROM reservations WHERE idempotency_key IS NOT NULL;
