//! Where seats stand on a zone's floor plan.
//!
//! A seat's spot is a point in plan units (roughly centimetres, origin top left) that the
//! web app's map draws the seat around. Seats an admin never placed stand where
//! [`default_spot`] puts them, from the zone's kind and the seat's place in the zone's
//! order, so an existing space gets a plausible floor without anyone drawing it: desk
//! rows with an aisle on a coworking floor, tables of four in a café, booths along the
//! walls of a quiet room.

use serde::{Deserialize, Serialize};

/// A seat's position on its zone's plan, in plan units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Spot {
    pub x: i32,
    pub y: i32,
}

/// The largest coordinate a spot may have; plans are at most a kilometre on a side.
pub const MAX_COORDINATE: i32 = 100_000;

impl Spot {
    /// A spot inside the plan's bounds, or `None`.
    pub fn new(x: i32, y: i32) -> Option<Self> {
        let inside = |v: i32| (0..=MAX_COORDINATE).contains(&v);
        (inside(x) && inside(y)).then_some(Self { x, y })
    }
}

/// The spot of the `index`-th seat (from 0, in display order) of a zone of `kind`.
pub fn default_spot(kind: &str, index: usize) -> Spot {
    let i = index as i32;
    let (x, y) = match kind {
        // Rows of five desks, two rows facing each other, then an aisle.
        "coworking" => {
            let row = i / 5;
            (80 + (i % 5) * 90, 80 + row * 80 + (row / 2) * 60)
        }
        // Tables of four, three tables to a row; the seats sit at a table's corners.
        "cafe" => {
            let (table, chair) = (i / 4, i % 4);
            let (cx, cy) = (140 + (table % 3) * 200, 140 + (table / 3) * 200);
            (cx + (chair % 2) * 80 - 40, cy + (chair / 2) * 80 - 40)
        }
        // Booths along two facing walls, four to a wall.
        "quiet" => (90 + (i % 4) * 110, 80 + ((i / 4) % 2) * 220 + (i / 8) * 300),
        // Anything else: a plain grid, six to a row.
        _ => (80 + (i % 6) * 90, 80 + (i / 6) * 90),
    };
    Spot { x, y }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn default_spots_never_overlap_and_stay_on_the_plan() {
        for kind in ["coworking", "cafe", "quiet", "lounge"] {
            let spots: Vec<Spot> = (0..500).map(|i| default_spot(kind, i)).collect();
            let distinct: HashSet<(i32, i32)> = spots.iter().map(|s| (s.x, s.y)).collect();
            assert_eq!(distinct.len(), spots.len(), "{kind}: two seats on one spot");
            for s in &spots {
                assert!(Spot::new(s.x, s.y).is_some(), "{kind}: {s:?} off the plan");
            }
            // Neighbouring seats are at least a seat's width apart.
            for (a, b) in spots.iter().zip(&spots[1..]) {
                assert!((a.x - b.x).abs() >= 60 || (a.y - b.y).abs() >= 60, "{kind}");
            }
        }
    }

    #[test]
    fn a_spot_outside_the_plan_is_refused() {
        assert!(Spot::new(-1, 0).is_none());
        assert!(Spot::new(0, MAX_COORDINATE + 1).is_none());
        assert_eq!(Spot::new(5, 7), Some(Spot { x: 5, y: 7 }));
    }
}
