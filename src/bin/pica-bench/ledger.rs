//! The generator's own record of what the server acknowledged and refused, which the
//! audit compares with the database.

use std::collections::HashMap;

use uuid::Uuid;

/// What a worker saw happen to one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// 201 with this id.
    Created(Uuid),
    /// 4xx: the server refused; nothing may be stored.
    CreateRefused,
    /// 5xx or no answer: it may or may not be stored.
    CreateUnknown,
    Cancelled(Uuid),
    CancelRefused(Uuid),
    CancelUnknown(Uuid),
}

/// The status a reservation must have in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Created (2xx) and never cancelled with a 2xx: still active.
    Active,
    /// A cancel was acknowledged.
    Cancelled,
    /// A cancel's answer was lost: either.
    Either,
}

#[derive(Debug, Default)]
pub struct Ledger {
    pub reservations: HashMap<Uuid, Expect>,
    pub refused_creates: u64,
    pub unknown_creates: u64,
    pub acknowledged_cancels: u64,
    pub refused_cancels: u64,
}

impl Ledger {
    /// Applies one worker's events, in the order that worker saw them.
    pub fn apply(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            match event {
                Event::Created(id) => {
                    self.reservations.insert(id, Expect::Active);
                }
                Event::CreateRefused => self.refused_creates += 1,
                Event::CreateUnknown => self.unknown_creates += 1,
                Event::Cancelled(id) => {
                    self.acknowledged_cancels += 1;
                    self.reservations.insert(id, Expect::Cancelled);
                }
                Event::CancelRefused(_) => self.refused_cancels += 1,
                Event::CancelUnknown(id) => {
                    if let Some(e @ Expect::Active) = self.reservations.get_mut(&id) {
                        *e = Expect::Either;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_cancel_answer_allows_either_status_until_acknowledged() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut ledger = Ledger::default();
        ledger.apply([
            Event::Created(a),
            Event::Created(b),
            Event::CancelUnknown(a),
            Event::CreateRefused,
        ]);
        assert_eq!(ledger.reservations[&a], Expect::Either);
        assert_eq!(ledger.reservations[&b], Expect::Active);
        ledger.apply([Event::CancelRefused(b), Event::Cancelled(a)]);
        assert_eq!(ledger.reservations[&b], Expect::Active);
        assert_eq!(ledger.reservations[&a], Expect::Cancelled);
        assert_eq!(ledger.refused_creates, 1);
    }
}
