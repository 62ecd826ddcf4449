-- Book reservations. A `reserved` reservation holds `copies` of its book; the book
-- stock actor keeps books.reserved_copies equal to the sum of those copies, in the
-- same transaction as the reservation rows, and the CHECK on books (reserved copies
-- between 0 and the total) is the second wall behind the actor (invariant 3).
-- Stamps are unix microseconds.

CREATE TABLE book_reservations (
    id                   BLOB PRIMARY KEY,
    user_id              INTEGER NOT NULL REFERENCES users (id),
    book_id              INTEGER NOT NULL REFERENCES books (id),
    copies               INTEGER NOT NULL CHECK (copies > 0),
    status               TEXT NOT NULL
                         CHECK (status IN ('reserved', 'picked_up', 'cancelled', 'expired')),
    created_at           INTEGER NOT NULL,
    expires_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    -- The seat reservation booked together with it in a bundle.
    seat_reservation_id  BLOB REFERENCES reservations (id)
);
CREATE INDEX book_reservations_user ON book_reservations (user_id, id);
CREATE INDEX book_reservations_active ON book_reservations (book_id) WHERE status = 'reserved';
