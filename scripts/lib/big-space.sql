-- A big space for the restart benchmark (scripts/bench-restart), filled in bulk into a
-- migrated, empty SQLite database. The shell script replaces :zones, :seats, :active
-- (active reservations per seat: one-hour bookings, four a day from tomorrow on) and
-- :history (finished reservations per seat, in the past) before running it.
PRAGMA synchronous = OFF;
BEGIN;
WITH RECURSIVE z(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM z WHERE n < :zones)
INSERT INTO zones (id, name, kind, position)
SELECT printf('z%04d', n), printf('Floor %d', n), 'coworking', n FROM z;

WITH RECURSIVE z(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM z WHERE n < :zones),
               s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :seats)
INSERT INTO seats (number, zone_id, status, position)
SELECT printf('Z%04dS%04d', z.n, s.n), printf('z%04d', z.n), 'in_service', s.n FROM z, s;

-- Three active reservations per member, never overlapping (one seat, different hours).
WITH RECURSIVE u(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM u
                        WHERE n < (:zones * :seats * :active + 2) / 3)
INSERT INTO users (username, email, password_hash, role, created_at)
SELECT printf('member%d', n), printf('member%d@example.com', n), '!', 'member', 0 FROM u;

-- Tomorrow 00:00 UTC; slots at 02:00, 05:00, 08:00 and 11:00 UTC (09:00-18:00 in Jakarta).
WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < :active - 1),
               seat(i, number, zone) AS (
                   SELECT row_number() OVER (ORDER BY number) - 1, number, zone_id FROM seats)
INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, status,
                          created_at, updated_at)
SELECT randomblob(16), (seat.i * :active + k.n) / 3 + 1, seat.number, seat.zone,
       CAST(strftime('%s', 'now', 'start of day', '+1 day') AS INTEGER)
           + (k.n / 4) * 86400 + (2 + (k.n % 4) * 3) * 3600,
       CAST(strftime('%s', 'now', 'start of day', '+1 day') AS INTEGER)
           + (k.n / 4) * 86400 + (3 + (k.n % 4) * 3) * 3600,
       'confirmed', 0, 0
FROM seat, k;

WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n < :history - 1),
               seat(i, number, zone) AS (
                   SELECT row_number() OVER (ORDER BY number) - 1, number, zone_id FROM seats)
INSERT INTO reservations (id, user_id, seat_number, zone_id, starts_at, ends_at, status,
                          created_at, updated_at)
SELECT randomblob(16), (seat.i * :active + k.n % :active) / 3 + 1, seat.number, seat.zone,
       CAST(strftime('%s', 'now', 'start of day', '-8 days') AS INTEGER)
           - (k.n / 4) * 86400 + (2 + (k.n % 4) * 3) * 3600,
       CAST(strftime('%s', 'now', 'start of day', '-8 days') AS INTEGER)
           - (k.n / 4) * 86400 + (3 + (k.n % 4) * 3) * 3600,
       'completed', 0, 0
FROM seat, k
WHERE :history > 0;
COMMIT;
ANALYZE;
