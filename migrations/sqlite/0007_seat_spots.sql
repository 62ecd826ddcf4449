-- Where each seat stands on its zone's floor plan, in plan units (about a centimetre).
-- NULL (every seat from before plans existed) means the default spot for the zone's kind
-- and the seat's place in the zone's order, computed when the layout is read.
ALTER TABLE seats ADD COLUMN x INTEGER CHECK (x BETWEEN 0 AND 100000);
ALTER TABLE seats ADD COLUMN y INTEGER CHECK (y BETWEEN 0 AND 100000);
