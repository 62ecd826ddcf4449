-- Waitlist entries and the holds offered to them. A hold is an `offered` entry: the
-- seat it holds (`seat_number`) and until when (`hold_expires_at`); its id is the
-- entry's.

CREATE TABLE waitlist_entries (
    id               UUID PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id),
    zone_id          TEXT NOT NULL REFERENCES zones (id),
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('waiting', 'offered', 'fulfilled', 'expired', 'cancelled')),
    seat_number      TEXT REFERENCES seats (number),
    hold_expires_at  TIMESTAMPTZ,
    reservation_id   UUID REFERENCES reservations (id),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    CHECK (starts_at < ends_at),
    CHECK (status <> 'offered' OR (seat_number IS NOT NULL AND hold_expires_at IS NOT NULL)),
    -- A second wall behind the zone actor: two live holds never overlap on a seat.
    CONSTRAINT waitlist_holds_no_overlap EXCLUDE USING gist (
        seat_number WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status = 'offered')
);
CREATE INDEX waitlist_zone_open ON waitlist_entries (zone_id, created_at)
    WHERE status IN ('waiting', 'offered');
CREATE INDEX waitlist_user ON waitlist_entries (user_id, id);
