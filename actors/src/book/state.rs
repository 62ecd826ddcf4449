//! The deterministic heart of the book stock actor: the catalog with its stock, the
//! reservations that hold copies, and the decisions to reserve, release, pick up and
//! restock.
//!
//! Like a zone, a decision is applied *tentatively* (pending) and later settled or undone
//! once the unit of work knows whether its transaction committed. Several changes of one
//! book may be in flight at once (pipelining), so decisions are conservative: a pending
//! reservation already counts as reserved, a pending release does not free anything yet,
//! and a pending restock counts with the smaller of the old and new totals. Whatever
//! subset of the pending changes commits, in whatever order, `0 <= reserved <= total`
//! holds (docs/architecture.md, invariant 3), which the database's CHECK constraint
//! enforces a second time.
//!
//! A pick-up hands the copies over: they leave both `reserved` and `total`, which leaves
//! the available count unchanged. A total-changing pick-up and an absolute restock of
//! the same book are never in flight together (the later one gets `ChangeInProgress`),
//! so a restock's compare-and-set always sees the total it was decided on.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::{
    Book, BookCondition, BookId, BookReservation, BookReservationId, BookReservationStatus,
    BookStock, UserId,
};
use crate::error::EngineError;

/// Identifies one pending change. A reservation's changes use the reservation's id (it
/// has at most one pending change at a time); a restock gets a fresh id.
pub type OpId = Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    Create,
    Status(BookReservationStatus),
}

#[derive(Debug, Clone)]
struct Held {
    reservation: BookReservation,
    pending: Pending,
}

#[derive(Debug, Clone)]
struct Shelf {
    /// Committed values.
    book: Book,
    /// Copies of pending (not yet committed) reservations.
    pending_reserve: u32,
    /// Pending pick-ups (each lowers the total when it commits).
    pending_pickups: u32,
    /// The new total of a pending restock.
    pending_total: Option<u32>,
}

impl Shelf {
    /// Copies held, committed or pending.
    fn held(&self) -> u32 {
        self.book.reserved_copies + self.pending_reserve
    }

    /// What a new reservation could take, whatever the pending changes' outcomes.
    fn available(&self) -> u32 {
        let total = match self.pending_total {
            Some(to) => to.min(self.book.total_copies),
            None => self.book.total_copies,
        };
        total.saturating_sub(self.held())
    }

    fn stock(&self) -> BookStock {
        BookStock {
            book_id: self.book.id,
            total_copies: self.book.total_copies,
            reserved_copies: self.book.reserved_copies,
            available_copies: self
                .book
                .total_copies
                .saturating_sub(self.book.reserved_copies),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Create(BookReservationId),
    Status(BookReservationId, BookReservationStatus),
    Total(BookId, u32),
}

/// A book as the catalog shows it: its committed stock and the copies a new
/// reservation could take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    pub book: Book,
    pub available_copies: u32,
}

/// A catalog query: `q` matches title or author (case-insensitive), `after` is the id
/// of the previous page's last book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookQuery {
    pub q: Option<String>,
    pub condition: Option<BookCondition>,
    pub after: Option<BookId>,
    pub limit: usize,
}

#[derive(Debug, Clone, Default)]
pub struct BookState {
    shelves: BTreeMap<BookId, Shelf>,
    held: HashMap<BookReservationId, Held>,
    ops: HashMap<OpId, Op>,
}

impl BookState {
    /// Builds the state from the catalog and the reservations holding copies, as stored.
    pub fn new(books: Vec<Book>, active: Vec<BookReservation>) -> Self {
        let shelves = books
            .into_iter()
            .map(|book| {
                let shelf = Shelf {
                    book,
                    pending_reserve: 0,
                    pending_pickups: 0,
                    pending_total: None,
                };
                (shelf.book.id, shelf)
            })
            .collect();
        let held = active
            .into_iter()
            .filter(|r| r.status.is_active())
            .map(|reservation| {
                let held = Held {
                    reservation,
                    pending: Pending::None,
                };
                (held.reservation.id, held)
            })
            .collect();
        Self {
            shelves,
            held,
            ops: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.shelves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shelves.is_empty()
    }

    pub fn view(&self, id: BookId) -> Option<BookView> {
        self.shelves.get(&id).map(|shelf| BookView {
            book: shelf.book.clone(),
            available_copies: shelf.available(),
        })
    }

    /// Books matching `query`, by id, at most `query.limit`.
    pub fn list(&self, query: &BookQuery) -> Vec<BookView> {
        let needle = query.q.as_deref().map(str::to_lowercase);
        let from = query
            .after
            .map_or(i64::MIN, |after| after.saturating_add(1));
        self.shelves
            .range(from..)
            .map(|(_, shelf)| shelf)
            .filter(|shelf| query.condition.is_none_or(|c| shelf.book.condition == c))
            .filter(|shelf| {
                needle.as_deref().is_none_or(|n| {
                    shelf.book.title.to_lowercase().contains(n)
                        || shelf.book.author.to_lowercase().contains(n)
                })
            })
            .take(query.limit)
            .map(|shelf| BookView {
                book: shelf.book.clone(),
                available_copies: shelf.available(),
            })
            .collect()
    }

    /// The committed stock of a book.
    pub fn stock(&self, id: BookId) -> Option<BookStock> {
        self.shelves.get(&id).map(Shelf::stock)
    }

    /// A reservation that holds copies (committed or pending).
    pub fn reservation(&self, id: &BookReservationId) -> Option<&BookReservation> {
        self.held.get(id).map(|h| &h.reservation)
    }

    /// Checks whether `copies` of `book` could be reserved, without changing anything.
    pub fn check_reserve(&self, book: BookId, copies: u32) -> Result<(), EngineError> {
        let shelf = self.shelves.get(&book).ok_or(EngineError::BookNotFound)?;
        let available = shelf.available();
        if copies == 0 || copies > available {
            return Err(EngineError::OutOfStock { available });
        }
        Ok(())
    }

    /// Records `reservation` as pending creation; its id is the change's [`OpId`].
    /// The caller must have had [`check_reserve`](Self::check_reserve) succeed for it in
    /// the same turn.
    pub fn apply_reserve(&mut self, reservation: BookReservation) {
        debug_assert!(
            self.check_reserve(reservation.book_id, reservation.copies)
                .is_ok()
        );
        let Some(shelf) = self.shelves.get_mut(&reservation.book_id) else {
            return;
        };
        shelf.pending_reserve += reservation.copies;
        self.ops.insert(reservation.id, Op::Create(reservation.id));
        self.held.insert(
            reservation.id,
            Held {
                reservation,
                pending: Pending::Create,
            },
        );
    }

    /// Begins moving a reservation to `to` (cancelled, picked up, expired). With
    /// `user` set, another user's reservation is reported as not found
    /// (docs/architecture.md, invariant 5).
    /// Returns the reservation as it was; its id is the change's [`OpId`].
    pub fn begin_status_change(
        &mut self,
        id: &BookReservationId,
        user: Option<UserId>,
        to: BookReservationStatus,
    ) -> Result<BookReservation, EngineError> {
        let held = self
            .held
            .get_mut(id)
            .filter(|h| user.is_none_or(|u| h.reservation.user_id == u))
            .ok_or(EngineError::BookReservationNotFound)?;
        if held.pending != Pending::None {
            return Err(EngineError::ChangeInProgress);
        }
        if !held.reservation.status.is_active() || to.is_active() {
            return Err(EngineError::BookReservationNotChangeable {
                status: held.reservation.status,
            });
        }
        let shelf = self
            .shelves
            .get_mut(&held.reservation.book_id)
            .ok_or(EngineError::BookNotFound)?;
        if to == BookReservationStatus::PickedUp {
            if shelf.pending_total.is_some() {
                return Err(EngineError::ChangeInProgress);
            }
            shelf.pending_pickups += 1;
        }
        held.pending = Pending::Status(to);
        self.ops.insert(*id, Op::Status(*id, to));
        Ok(held.reservation.clone())
    }

    /// Begins setting a book's total to `to`. Returns the change's id and the committed
    /// total it replaces.
    pub fn begin_restock(&mut self, book: BookId, to: u32) -> Result<(OpId, u32), EngineError> {
        let shelf = self
            .shelves
            .get_mut(&book)
            .ok_or(EngineError::BookNotFound)?;
        if shelf.pending_total.is_some() || shelf.pending_pickups > 0 {
            return Err(EngineError::ChangeInProgress);
        }
        if to < shelf.held() {
            return Err(EngineError::StockBelowReserved {
                reserved: shelf.held(),
            });
        }
        shelf.pending_total = Some(to);
        let op = Uuid::now_v7();
        self.ops.insert(op, Op::Total(book, to));
        Ok((op, shelf.book.total_copies))
    }

    /// The change committed. Returns the book's committed stock after it, or `None` if
    /// the change is unknown (decided twice, or from before a rebuild).
    pub fn settle(&mut self, op: &OpId) -> Option<BookStock> {
        match self.ops.remove(op)? {
            Op::Create(id) => {
                let held = self.held.get_mut(&id)?;
                held.pending = Pending::None;
                let copies = held.reservation.copies;
                let shelf = self.shelves.get_mut(&held.reservation.book_id)?;
                shelf.pending_reserve -= copies;
                shelf.book.reserved_copies += copies;
                Some(shelf.stock())
            }
            Op::Status(id, to) => {
                let held = self.held.remove(&id)?;
                let copies = held.reservation.copies;
                let shelf = self.shelves.get_mut(&held.reservation.book_id)?;
                shelf.book.reserved_copies -= copies;
                if to == BookReservationStatus::PickedUp {
                    shelf.pending_pickups -= 1;
                    shelf.book.total_copies -= copies;
                }
                Some(shelf.stock())
            }
            Op::Total(book, to) => {
                let shelf = self.shelves.get_mut(&book)?;
                shelf.pending_total = None;
                shelf.book.total_copies = to;
                Some(shelf.stock())
            }
        }
    }

    /// The change did not commit: forget it.
    pub fn undo(&mut self, op: &OpId) {
        match self.ops.remove(op) {
            Some(Op::Create(id)) => {
                if let Some(held) = self.held.remove(&id)
                    && let Some(shelf) = self.shelves.get_mut(&held.reservation.book_id)
                {
                    shelf.pending_reserve -= held.reservation.copies;
                }
            }
            Some(Op::Status(id, to)) => {
                if let Some(held) = self.held.get_mut(&id) {
                    held.pending = Pending::None;
                    if to == BookReservationStatus::PickedUp
                        && let Some(shelf) = self.shelves.get_mut(&held.reservation.book_id)
                    {
                        shelf.pending_pickups -= 1;
                    }
                }
            }
            Some(Op::Total(book, _)) => {
                if let Some(shelf) = self.shelves.get_mut(&book) {
                    shelf.pending_total = None;
                }
            }
            None => {}
        }
    }

    /// Committed reservations, not being changed, whose hold ended at or before `now`.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<BookReservationId> {
        let mut due: Vec<_> = self
            .held
            .values()
            .filter(|h| h.pending == Pending::None && h.reservation.expires_at <= now)
            .map(|h| h.reservation.id)
            .collect();
        due.sort();
        due
    }

    /// True when every book's committed `reserved_copies` is the sum of its committed
    /// reservations' copies and within `0..=total` (for tests and audits).
    pub fn is_consistent(&self) -> bool {
        self.shelves.values().all(|shelf| {
            let committed: u32 = self
                .held
                .values()
                .filter(|h| h.reservation.book_id == shelf.book.id && h.pending != Pending::Create)
                .map(|h| h.reservation.copies)
                .sum();
            committed == shelf.book.reserved_copies
                && shelf.book.reserved_copies <= shelf.book.total_copies
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }

    fn book(id: BookId, title: &str, author: &str, total: u32) -> Book {
        Book {
            id,
            title: title.into(),
            author: author.into(),
            isbn: None,
            condition: if id % 2 == 0 {
                BookCondition::PreLoved
            } else {
                BookCondition::New
            },
            total_copies: total,
            reserved_copies: 0,
            price_cents: None,
        }
    }

    fn reservation(user: UserId, book: BookId, copies: u32) -> BookReservation {
        BookReservation {
            id: Uuid::now_v7(),
            user_id: user,
            book_id: book,
            copies,
            status: BookReservationStatus::Reserved,
            created_at: at(8),
            expires_at: at(10),
            seat_reservation: None,
        }
    }

    fn state() -> BookState {
        BookState::new(
            vec![
                book(1, "Deep Work", "Cal Newport", 3),
                book(2, "Clean Code", "Robert C. Martin", 1),
            ],
            vec![],
        )
    }

    fn reserve(s: &mut BookState, user: UserId, book: BookId, copies: u32) -> BookReservation {
        s.check_reserve(book, copies).unwrap();
        let r = reservation(user, book, copies);
        s.apply_reserve(r.clone());
        r
    }

    #[test]
    fn pending_reservations_count_and_undo_gives_them_back() {
        let mut s = state();
        let a = reserve(&mut s, 1, 1, 2);
        assert_eq!(s.view(1).unwrap().available_copies, 1);
        assert_eq!(
            s.check_reserve(1, 2),
            Err(EngineError::OutOfStock { available: 1 })
        );
        s.undo(&a.id);
        assert_eq!(s.view(1).unwrap().available_copies, 3);
        assert!(s.reservation(&a.id).is_none());
        let b = reserve(&mut s, 1, 1, 3);
        assert_eq!(s.settle(&b.id).unwrap().reserved_copies, 3);
        assert_eq!(
            s.check_reserve(1, 1),
            Err(EngineError::OutOfStock { available: 0 })
        );
        assert!(s.is_consistent());
    }

    #[test]
    fn unknown_book_and_zero_copies_are_refused() {
        let s = state();
        assert_eq!(s.check_reserve(9, 1), Err(EngineError::BookNotFound));
        assert!(matches!(
            s.check_reserve(1, 0),
            Err(EngineError::OutOfStock { .. })
        ));
    }

    #[test]
    fn a_release_frees_copies_only_once_committed() {
        let mut s = state();
        let r = reserve(&mut s, 1, 2, 1);
        s.settle(&r.id);
        let before = s
            .begin_status_change(&r.id, Some(1), BookReservationStatus::Cancelled)
            .unwrap();
        assert_eq!(before.status, BookReservationStatus::Reserved);
        assert_eq!(s.view(2).unwrap().available_copies, 0, "pending cancel");
        s.undo(&r.id);
        assert_eq!(s.view(2).unwrap().available_copies, 0);
        s.begin_status_change(&r.id, Some(1), BookReservationStatus::Cancelled)
            .unwrap();
        let stock = s.settle(&r.id).unwrap();
        assert_eq!((stock.reserved_copies, stock.available_copies), (0, 1));
        assert!(s.reservation(&r.id).is_none());
        assert!(s.is_consistent());
    }

    #[test]
    fn others_reservations_are_not_found_and_changes_do_not_overlap() {
        let mut s = state();
        let r = reserve(&mut s, 1, 1, 1);
        assert_eq!(
            s.begin_status_change(&r.id, Some(1), BookReservationStatus::Cancelled),
            Err(EngineError::ChangeInProgress),
            "its creation is still pending"
        );
        s.settle(&r.id);
        assert_eq!(
            s.begin_status_change(&r.id, Some(2), BookReservationStatus::Cancelled),
            Err(EngineError::BookReservationNotFound)
        );
        s.begin_status_change(&r.id, None, BookReservationStatus::PickedUp)
            .unwrap();
        assert_eq!(
            s.begin_status_change(&r.id, Some(1), BookReservationStatus::Cancelled),
            Err(EngineError::ChangeInProgress)
        );
        assert!(matches!(
            s.begin_status_change(&Uuid::now_v7(), None, BookReservationStatus::Cancelled),
            Err(EngineError::BookReservationNotFound)
        ));
    }

    #[test]
    fn a_pick_up_takes_the_copies_off_the_total() {
        let mut s = state();
        let r = reserve(&mut s, 1, 1, 2);
        s.settle(&r.id);
        s.begin_status_change(&r.id, None, BookReservationStatus::PickedUp)
            .unwrap();
        assert_eq!(s.view(1).unwrap().available_copies, 1);
        assert_eq!(s.begin_restock(1, 5), Err(EngineError::ChangeInProgress));
        let stock = s.settle(&r.id).unwrap();
        assert_eq!(
            (
                stock.total_copies,
                stock.reserved_copies,
                stock.available_copies
            ),
            (1, 0, 1)
        );
        assert!(s.is_consistent());
    }

    #[test]
    fn restock_cannot_go_below_what_is_held_and_counts_the_lower_total_while_pending() {
        let mut s = state();
        let r = reserve(&mut s, 1, 1, 2);
        assert_eq!(
            s.begin_restock(1, 1),
            Err(EngineError::StockBelowReserved { reserved: 2 })
        );
        let (op, from) = s.begin_restock(1, 6).unwrap();
        assert_eq!(from, 3);
        assert_eq!(
            s.view(1).unwrap().available_copies,
            1,
            "old total until committed"
        );
        assert_eq!(s.begin_restock(1, 7), Err(EngineError::ChangeInProgress));
        s.settle(&op);
        assert_eq!(s.view(1).unwrap().available_copies, 4);
        let (op, _) = s.begin_restock(1, 2).unwrap();
        assert_eq!(s.view(1).unwrap().available_copies, 0, "new lower total");
        s.undo(&op);
        assert_eq!(s.view(1).unwrap().available_copies, 4);
        s.settle(&r.id);
        assert!(s.is_consistent());
    }

    #[test]
    fn due_lists_committed_reservations_past_their_hold() {
        let mut s = state();
        let a = reserve(&mut s, 1, 1, 1);
        let b = reserve(&mut s, 2, 1, 1);
        assert!(s.due(at(11)).is_empty(), "pending ones are not due");
        s.settle(&a.id);
        s.settle(&b.id);
        assert!(s.due(at(9)).is_empty());
        let mut both = vec![a.id, b.id];
        both.sort();
        assert_eq!(s.due(at(10)), both);
        s.begin_status_change(&a.id, None, BookReservationStatus::Expired)
            .unwrap();
        assert_eq!(s.due(at(10)), vec![b.id]);
    }

    #[test]
    fn list_searches_filters_and_pages() {
        let s = BookState::new(
            vec![
                book(1, "Deep Work", "Cal Newport", 3),
                book(2, "Clean Code", "Robert C. Martin", 1),
                book(3, "Clean Architecture", "Robert C. Martin", 2),
                book(4, "Laskar Pelangi", "Andrea Hirata", 2),
            ],
            vec![],
        );
        let ids = |q: BookQuery| -> Vec<BookId> { s.list(&q).iter().map(|v| v.book.id).collect() };
        let all = BookQuery {
            limit: 10,
            ..BookQuery::default()
        };
        assert_eq!(ids(all.clone()), vec![1, 2, 3, 4]);
        assert_eq!(
            ids(BookQuery {
                q: Some("CLEAN".into()),
                ..all.clone()
            }),
            vec![2, 3]
        );
        assert_eq!(
            ids(BookQuery {
                q: Some("martin".into()),
                condition: Some(BookCondition::New),
                ..all.clone()
            }),
            vec![3]
        );
        assert_eq!(
            ids(BookQuery {
                after: Some(2),
                limit: 1,
                ..all.clone()
            }),
            vec![3]
        );
    }
}

/// Property test: the state machine against a simple model of the stock, under random
/// interleavings of decisions and commit outcomes.
#[cfg(test)]
mod model {
    use super::*;
    use proptest::prelude::*;

    const BOOKS: usize = 3;

    #[derive(Debug, Clone)]
    enum Step {
        Reserve { book: usize, copies: u32 },
        Cancel { pick: usize },
        PickUp { pick: usize },
        Expire { pick: usize },
        Restock { book: usize, to: u32 },
        Settle { pick: usize },
        Undo { pick: usize },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..BOOKS, 1..4u32).prop_map(|(book, copies)| Step::Reserve { book, copies }),
            1 => any::<usize>().prop_map(|pick| Step::Cancel { pick }),
            1 => any::<usize>().prop_map(|pick| Step::PickUp { pick }),
            1 => any::<usize>().prop_map(|pick| Step::Expire { pick }),
            1 => (0..BOOKS, 0..8u32).prop_map(|(book, to)| Step::Restock { book, to }),
            3 => any::<usize>().prop_map(|pick| Step::Settle { pick }),
            2 => any::<usize>().prop_map(|pick| Step::Undo { pick }),
        ]
    }

    /// What the model remembers of a pending change.
    #[derive(Debug, Clone, Copy)]
    enum ModelOp {
        Reserve {
            book: usize,
            copies: u32,
            id: Uuid,
        },
        Release {
            book: usize,
            copies: u32,
            id: Uuid,
            pickup: bool,
        },
        Restock {
            book: usize,
            to: u32,
            id: Uuid,
        },
    }

    /// The model: per book the committed total and the committed reservations; a list
    /// of pending changes. A reservation may only take copies that are free whatever
    /// the pending changes' outcomes.
    #[derive(Debug, Default)]
    struct Model {
        total: [u32; BOOKS],
        committed: Vec<(Uuid, usize, u32)>,
        pending: Vec<ModelOp>,
    }

    impl Model {
        fn reserved(&self, book: usize) -> u32 {
            self.committed
                .iter()
                .filter(|(_, b, _)| *b == book)
                .map(|(_, _, c)| c)
                .sum()
        }

        fn free(&self, book: usize) -> u32 {
            let mut total = self.total[book];
            let mut held = self.reserved(book);
            for op in &self.pending {
                match *op {
                    ModelOp::Reserve {
                        book: b, copies, ..
                    } if b == book => held += copies,
                    ModelOp::Restock { book: b, to, .. } if b == book => total = total.min(to),
                    _ => {}
                }
            }
            total.saturating_sub(held)
        }

        fn busy(&self, id: Uuid) -> bool {
            self.pending.iter().any(|op| match *op {
                ModelOp::Reserve { id: i, .. }
                | ModelOp::Release { id: i, .. }
                | ModelOp::Restock { id: i, .. } => i == id,
            })
        }

        fn total_change_pending(&self, book: usize, pickups_too: bool) -> bool {
            self.pending.iter().any(|op| match *op {
                ModelOp::Restock { book: b, .. } => b == book,
                ModelOp::Release {
                    book: b, pickup, ..
                } => pickups_too && pickup && b == book,
                _ => false,
            })
        }

        /// Applies a committed change; the database's CHECK must hold after it.
        fn commit(&mut self, op: ModelOp) {
            match op {
                ModelOp::Reserve { book, copies, id } => self.committed.push((id, book, copies)),
                ModelOp::Release {
                    book,
                    copies,
                    id,
                    pickup,
                } => {
                    self.committed.retain(|(i, _, _)| *i != id);
                    if pickup {
                        self.total[book] -= copies;
                    }
                }
                ModelOp::Restock { book, to, .. } => self.total[book] = to,
            }
            for book in 0..BOOKS {
                assert!(
                    self.reserved(book) <= self.total[book],
                    "the database would refuse: book {book} {self:?}"
                );
            }
        }
    }

    fn id_of(op: &ModelOp) -> Uuid {
        match *op {
            ModelOp::Reserve { id, .. }
            | ModelOp::Release { id, .. }
            | ModelOp::Restock { id, .. } => id,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn stock_matches_the_model_and_never_breaks_invariant_3(
            totals in proptest::array::uniform3(0..5u32),
            steps in proptest::collection::vec(step(), 1..120),
        ) {
            let books = (0..BOOKS)
                .map(|i| Book {
                    id: i as BookId + 1,
                    title: format!("Book {i}"),
                    author: "A. Author".into(),
                    isbn: None,
                    condition: BookCondition::New,
                    total_copies: totals[i],
                    reserved_copies: 0,
                    price_cents: None,
                })
                .collect();
            let mut state = BookState::new(books, vec![]);
            let mut model = Model { total: totals, ..Model::default() };
            let bid = |b: usize| b as BookId + 1;

            for step in steps {
                match step {
                    Step::Reserve { book, copies } => {
                        let free = model.free(book);
                        let decided = state.check_reserve(bid(book), copies);
                        if copies <= free {
                            prop_assert_eq!(decided, Ok(()));
                            let mut r = super::tests_support::reservation(1, bid(book), copies);
                            r.id = Uuid::now_v7();
                            state.apply_reserve(r.clone());
                            model.pending.push(ModelOp::Reserve { book, copies, id: r.id });
                        } else {
                            prop_assert_eq!(decided, Err(EngineError::OutOfStock { available: free }));
                        }
                    }
                    Step::Cancel { pick } | Step::PickUp { pick } | Step::Expire { pick } => {
                        let all: Vec<(Uuid, usize, u32)> = model.committed.clone();
                        if all.is_empty() { continue; }
                        let (id, book, copies) = all[pick % all.len()];
                        let to = match step {
                            Step::Cancel { .. } => BookReservationStatus::Cancelled,
                            Step::PickUp { .. } => BookReservationStatus::PickedUp,
                            _ => BookReservationStatus::Expired,
                        };
                        let pickup = to == BookReservationStatus::PickedUp;
                        let decided = state.begin_status_change(&id, None, to);
                        if model.busy(id) || (pickup && model.total_change_pending(book, false)) {
                            prop_assert_eq!(decided, Err(EngineError::ChangeInProgress));
                        } else {
                            prop_assert!(decided.is_ok());
                            model.pending.push(ModelOp::Release { book, copies, id, pickup });
                        }
                    }
                    Step::Restock { book, to } => {
                        let decided = state.begin_restock(bid(book), to);
                        let held = model.reserved(book)
                            + model.pending.iter().map(|op| match *op {
                                ModelOp::Reserve { book: b, copies, .. } if b == book => copies,
                                _ => 0,
                            }).sum::<u32>();
                        if model.total_change_pending(book, true) {
                            prop_assert_eq!(decided, Err(EngineError::ChangeInProgress));
                        } else if to < held {
                            prop_assert_eq!(decided, Err(EngineError::StockBelowReserved { reserved: held }));
                        } else {
                            let (id, from) = decided.unwrap();
                            prop_assert_eq!(from, model.total[book]);
                            model.pending.push(ModelOp::Restock { book, to, id });
                        }
                    }
                    Step::Settle { pick } | Step::Undo { pick } => {
                        if model.pending.is_empty() { continue; }
                        let op = model.pending.remove(pick % model.pending.len());
                        if matches!(step, Step::Settle { .. }) {
                            let stock = state.settle(&id_of(&op));
                            prop_assert!(stock.is_some());
                            model.commit(op);
                        } else {
                            state.undo(&id_of(&op));
                        }
                    }
                }
                prop_assert!(state.is_consistent());
                for book in 0..BOOKS {
                    let view = state.view(bid(book)).unwrap();
                    prop_assert_eq!(view.available_copies, model.free(book));
                    prop_assert_eq!(view.book.total_copies, model.total[book]);
                    prop_assert_eq!(view.book.reserved_copies, model.reserved(book));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    pub fn reservation(user: UserId, book: BookId, copies: u32) -> BookReservation {
        let now = Utc::now();
        BookReservation {
            id: Uuid::now_v7(),
            user_id: user,
            book_id: book,
            copies,
            status: BookReservationStatus::Reserved,
            created_at: now,
            expires_at: now,
            seat_reservation: None,
        }
    }
}
