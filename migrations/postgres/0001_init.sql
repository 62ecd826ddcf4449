-- Pica schema for PostgreSQL.

CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE zones (
    id        TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    position  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE seats (
    number    TEXT PRIMARY KEY,
    zone_id   TEXT NOT NULL REFERENCES zones (id),
    status    TEXT NOT NULL DEFAULT 'in_service'
              CHECK (status IN ('in_service', 'out_of_service')),
    position  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX seats_zone ON seats (zone_id, position);

CREATE TABLE users (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE reservations (
    id               UUID PRIMARY KEY,
    user_id          BIGINT NOT NULL REFERENCES users (id),
    seat_number      TEXT NOT NULL REFERENCES seats (number),
    zone_id          TEXT NOT NULL REFERENCES zones (id),
    starts_at        TIMESTAMPTZ NOT NULL,
    ends_at          TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    idempotency_key  TEXT,
    CHECK (starts_at < ends_at),
    -- Invariant 1's second wall: the database itself refuses overlapping active
    -- reservations on a seat.
    CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        seat_number WITH =,
        tstzrange(starts_at, ends_at, '[)') WITH &&
    ) WHERE (status IN ('confirmed', 'checked_in'))
);
CREATE INDEX reservations_zone_active ON reservations (zone_id, ends_at)
    WHERE status IN ('confirmed', 'checked_in');
CREATE INDEX reservations_user ON reservations (user_id, id);
CREATE UNIQUE INDEX reservations_idempotency ON reservations (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE books (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title            TEXT NOT NULL,
    author           TEXT NOT NULL,
    isbn             TEXT,
    condition        TEXT NOT NULL CHECK (condition IN ('new', 'pre_loved')),
    total_copies     INTEGER NOT NULL CHECK (total_copies >= 0),
    reserved_copies  INTEGER NOT NULL DEFAULT 0
                     CHECK (reserved_copies >= 0 AND reserved_copies <= total_copies),
    price_cents      INTEGER CHECK (price_cents IS NULL OR price_cents >= 0)
);
