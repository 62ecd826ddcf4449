-- The big space of scripts/lib/big-space.sql, for PostgreSQL: the same zones, seats,
-- members and reservations, filled in bulk into a migrated, empty database. Run with
-- psql, which substitutes its variables: psql -v zones=100 -v seats=100 -v active=100
-- -v history=0 -f big-space-pg.sql (active: one-hour bookings per seat, four a day from
-- tomorrow on; history: finished ones, in the past).
\set ON_ERROR_STOP on
SET synchronous_commit = off;
-- A generated space is consistent by construction: skip the row-by-row foreign-key
-- checks (the triggers a replica skips; this needs a superuser).
SET session_replication_role = replica;
BEGIN;
INSERT INTO zones (id, name, kind, position)
SELECT 'z' || lpad(n::text, 4, '0'), 'Floor ' || n, 'coworking', n
FROM generate_series(1, :zones) AS n;

INSERT INTO seats (number, zone_id, status, position)
SELECT 'Z' || lpad(z::text, 4, '0') || 'S' || lpad(s::text, 4, '0'),
       'z' || lpad(z::text, 4, '0'), 'in_service', s
FROM generate_series(1, :zones) AS z, generate_series(1, :seats) AS s;

-- Three active reservations per member, never overlapping (one seat, different hours).
INSERT INTO users (username, email, password_hash, role, created_at)
SELECT 'member' || n, 'member' || n || '@example.com', '!', 'member', 'epoch'
FROM generate_series(1, (:zones * :seats * :active + 2) / 3) AS n;

-- The exclusion constraint's index is built once, after the rows are in, rather than
-- row by row (the rows never overlap, so it builds).
ALTER TABLE reservations DROP CONSTRAINT reservations_no_overlap;

-- Tomorrow 00:00 UTC; slots at 02:00, 05:00, 08:00 and 11:00 UTC (09:00-18:00 in Jakarta).
WITH base AS (SELECT min(id) AS id FROM users WHERE username LIKE 'member%'),
     day AS (SELECT date_trunc('day', now(), 'UTC') + interval '1 day' AS t),
     seat AS (SELECT row_number() OVER (ORDER BY number) - 1 AS i, number, zone_id FROM seats)
INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, status,
                          created_at, updated_at)
SELECT gen_random_uuid(), base.id + (seat.i * :active + k) / 3, seat.number, seat.zone_id,
       day.t + (k / 4) * interval '1 day' + (2 + (k % 4) * 3) * interval '1 hour',
       day.t + (k / 4) * interval '1 day' + (3 + (k % 4) * 3) * interval '1 hour',
       'confirmed', 'epoch', 'epoch'
FROM base, day, seat, generate_series(0, :active - 1) AS k;

WITH base AS (SELECT min(id) AS id FROM users WHERE username LIKE 'member%'),
     day AS (SELECT date_trunc('day', now(), 'UTC') - interval '8 days' AS t),
     seat AS (SELECT row_number() OVER (ORDER BY number) - 1 AS i, number, zone_id FROM seats)
INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, status,
                          created_at, updated_at)
SELECT gen_random_uuid(), base.id + (seat.i * :active + k % :active) / 3, seat.number,
       seat.zone_id,
       day.t - (k / 4) * interval '1 day' + (2 + (k % 4) * 3) * interval '1 hour',
       day.t - (k / 4) * interval '1 day' + (3 + (k % 4) * 3) * interval '1 hour',
       'completed', 'epoch', 'epoch'
FROM base, day, seat, generate_series(0, :history - 1) AS k;

ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
    seat_number WITH =,
    tstzrange(starts_at, ends_at, '[)') WITH &&
) WHERE (status IN ('confirmed', 'checked_in'));
COMMIT;
ANALYZE;
