-- The overlap trigger looks for active reservations on the new row's seat that end
-- after it starts. With only (seat_number, starts_at) to go by, it read every
-- reservation ever made on the seat that starts before the new one ends (cancelled
-- and past ones included), so inserts slowed down as history grew. This partial index
-- holds active rows only and covers the trigger's query.
CREATE INDEX reservations_seat_active ON reservations (seat_number, ends_at, starts_at)
    WHERE status IN ('confirmed', 'checked_in');
