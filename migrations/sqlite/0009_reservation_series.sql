-- Weekly series: the pattern a member booked ("A1, 09:00-12:00, Mondays and Wednesdays,
-- 4 weeks from 2026-12-07"). Its occurrences are ordinary reservations pointing at it;
-- the pattern is kept for the calendar file's recurrence rule.
CREATE TABLE reservation_series (
    id           BLOB PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    seat_number  TEXT NOT NULL REFERENCES seats (number),
    zone_id      TEXT NOT NULL REFERENCES zones (id),
    weekdays     TEXT NOT NULL,      -- 'mon,wed', Monday first
    starts       TEXT NOT NULL,      -- local 'HH:MM'
    ends         TEXT NOT NULL,      -- local 'HH:MM'
    first_date   TEXT NOT NULL,      -- local 'YYYY-MM-DD'
    weeks        INTEGER NOT NULL CHECK (weeks > 0),
    created_at   INTEGER NOT NULL
);
CREATE INDEX reservation_series_user ON reservation_series (user_id, id);

ALTER TABLE reservations ADD COLUMN series_id BLOB REFERENCES reservation_series (id);
CREATE INDEX reservations_series ON reservations (series_id, starts_at)
    WHERE series_id IS NOT NULL;
