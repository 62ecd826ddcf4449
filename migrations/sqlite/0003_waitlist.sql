-- Waitlist entries and the holds offered to them. A hold is an `offered` entry: the
-- seat it holds (`seat_number`) and until when (`hold_expires_at`); its id is the
-- entry's. Bounds are unix seconds, stamps unix microseconds, as in 0001.

CREATE TABLE waitlist_entries (
    id               BLOB PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    zone_id          TEXT NOT NULL REFERENCES zones (id),
    starts_at        INTEGER NOT NULL,
    ends_at          INTEGER NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('waiting', 'offered', 'fulfilled', 'expired', 'cancelled')),
    seat_number      TEXT REFERENCES seats (number),
    hold_expires_at  INTEGER,
    reservation_id   BLOB REFERENCES reservations (id),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK (starts_at < ends_at),
    CHECK (status <> 'offered' OR (seat_number IS NOT NULL AND hold_expires_at IS NOT NULL))
);
CREATE INDEX waitlist_zone_open ON waitlist_entries (zone_id, created_at)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_user ON waitlist_entries (user_id, id);
