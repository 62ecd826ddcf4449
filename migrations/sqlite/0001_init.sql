-- Pica schema for SQLite. Times are INTEGER: reservation bounds in unix seconds,
-- created/updated stamps in unix microseconds.

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
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    created_at     INTEGER NOT NULL
);

CREATE TABLE reservations (
    id               BLOB PRIMARY KEY,
    user_id          INTEGER NOT NULL REFERENCES users (id),
    seat_number      TEXT NOT NULL REFERENCES seats (number),
    zone_id          TEXT NOT NULL REFERENCES zones (id),
    starts_at        INTEGER NOT NULL,
    ends_at          INTEGER NOT NULL,
    status           TEXT NOT NULL
                     CHECK (status IN ('confirmed', 'checked_in', 'completed', 'cancelled', 'no_show')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    idempotency_key  TEXT,
    CHECK (starts_at < ends_at)
);
CREATE INDEX reservations_seat_time ON reservations (seat_number, starts_at);
CREATE INDEX reservations_zone_active ON reservations (zone_id, ends_at) WHERE status IN ('confirmed', 'checked_in');
CREATE INDEX reservations_user ON reservations (user_id, id);
CREATE UNIQUE INDEX reservations_idempotency ON reservations (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Invariant 1's second wall: the zone actor decides, the database refuses an overlap
-- anyway (PostgreSQL does this with an exclusion constraint).
CREATE TRIGGER reservations_no_overlap_insert
BEFORE INSERT ON reservations
WHEN NEW.status IN ('confirmed', 'checked_in')
BEGIN
    SELECT RAISE(ABORT, 'reservations_no_overlap: seat already reserved for an overlapping interval')
    WHERE EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.seat_number = NEW.seat_number
          AND r.status IN ('confirmed', 'checked_in')
          AND r.starts_at < NEW.ends_at
          AND r.ends_at > NEW.starts_at
    );
END;

CREATE TABLE books (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    title            TEXT NOT NULL,
    author           TEXT NOT NULL,
    isbn             TEXT,
    condition        TEXT NOT NULL CHECK (condition IN ('new', 'pre_loved')),
    total_copies     INTEGER NOT NULL CHECK (total_copies >= 0),
    reserved_copies  INTEGER NOT NULL DEFAULT 0
                     CHECK (reserved_copies >= 0 AND reserved_copies <= total_copies),
    price_cents      INTEGER CHECK (price_cents IS NULL OR price_cents >= 0)
);
