//! Typed calls for the library: the catalog, book reservations, bundles (seat + book)
//! and the admin's stock changes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pica_actors::notifier::Envelope;
use pica_actors::{BookReservationStatus, DomainEvent};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{TestApp, body};

impl TestApp {
    /// The id of the only book whose title or author matches `q`.
    pub async fn book_id(&self, q: &str) -> i64 {
        let r = self
            .get("/api/public/books")
            .query(&[("q", q)])
            .send()
            .await
            .unwrap();
        let page = body(r).await;
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{q}: {page}");
        items[0]["id"].as_i64().unwrap()
    }

    /// `GET /api/public/books/{id}`.
    pub async fn book(&self, id: i64) -> Response {
        self.get(&format!("/api/public/books/{id}"))
            .send()
            .await
            .unwrap()
    }

    /// `(total, reserved, available)` of a book as the API (the actor's memory) shows it.
    pub async fn stock(&self, id: i64) -> (i64, i64, i64) {
        let r = self.book(id).await;
        assert_eq!(r.status(), StatusCode::OK);
        let b = body(r).await;
        (
            b["total_copies"].as_i64().unwrap(),
            b["reserved_copies"].as_i64().unwrap(),
            b["available_copies"].as_i64().unwrap(),
        )
    }

    /// `POST /api/secure/book-reservations` for `copies` of `book`.
    pub async fn book_reserve(&self, token: &str, book: i64, copies: u32) -> Response {
        let request = json!({"book_id": book, "copies": copies});
        self.post_as(token, "/api/secure/book-reservations", &request)
            .await
    }

    /// `DELETE /api/secure/book-reservations/{id}`: cancels a book reservation.
    pub async fn book_cancel(&self, token: &str, id: &str) -> Response {
        let path = format!("/api/secure/book-reservations/{id}");
        self.as_user(self.delete(&path), token).await
    }

    /// `POST /api/admin/book-reservations/{id}/pick-up`: hands the copies over.
    pub async fn pick_up(&self, token: &str, id: &str) -> Response {
        let path = format!("/api/admin/book-reservations/{id}/pick-up");
        self.as_user(self.post(&path), token).await
    }

    /// `POST /api/secure/bundles`: the seat request and `copies` of `book` together.
    pub async fn bundle(&self, token: &str, seat: Value, book: i64, copies: u32) -> Response {
        self.post_as(
            token,
            "/api/secure/bundles",
            &bundle_body(seat, book, copies),
        )
        .await
    }

    /// `PATCH /api/admin/books/{id}/stock` to `total` copies.
    pub async fn set_book_stock(&self, admin: &str, id: i64, total: i64) -> Response {
        let path = format!("/api/admin/books/{id}/stock");
        self.patch_as(admin, &path, &json!({"total_copies": total}))
            .await
    }
}

/// A bundle request: the seat request and `copies` of `book`.
pub fn bundle_body(seat: Value, book: i64, copies: u32) -> Value {
    json!({"seat": seat, "book": {"book_id": book, "copies": copies}})
}

/// Invariant 3 (docs/architecture.md) over the database, and memory agreeing with it:
/// for every book the stored `reserved_copies` is the sum of its `reserved`
/// reservations' copies and lies within `0..=total`, and the API shows the same
/// numbers.
pub async fn audit_books(app: &TestApp) -> HashMap<i64, (u32, u32)> {
    let db = app.db.connect().await;
    let books = db.books().await.unwrap();
    let reservations = db.all_book_reservations().await.unwrap();
    db.close().await;
    let mut stored = HashMap::new();
    for book in books {
        let held: u32 = reservations
            .iter()
            .filter(|r| r.book_id == book.id && r.status == BookReservationStatus::Reserved)
            .map(|r| r.copies)
            .sum();
        assert_eq!(book.reserved_copies, held, "book {} out of sync", book.id);
        assert!(book.reserved_copies <= book.total_copies, "{book:?}");
        let (total, reserved, available) = app.stock(book.id).await;
        assert_eq!(
            (total, reserved, available),
            (
                book.total_copies as i64,
                book.reserved_copies as i64,
                (book.total_copies - book.reserved_copies) as i64
            ),
            "memory and database disagree on book {}",
            book.id
        );
        stored.insert(book.id, (book.total_copies, book.reserved_copies));
    }
    stored
}

/// The next event, waiting for it (a committed stock change is announced by the book
/// actor right after the client got its answer).
pub async fn next_event(events: &mut broadcast::Receiver<Arc<Envelope>>) -> Arc<Envelope> {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event within 10 s")
        .expect("event stream open")
}

/// Events up to and including the first one `until` accepts.
pub async fn events_until(
    events: &mut broadcast::Receiver<Arc<Envelope>>,
    until: impl Fn(&DomainEvent) -> bool,
) -> Vec<DomainEvent> {
    let mut seen = Vec::new();
    loop {
        let envelope = next_event(events).await;
        let done = until(&envelope.event);
        seen.push(envelope.event.clone());
        if done {
            return seen;
        }
    }
}

pub fn is_stock_of(event: &DomainEvent, book: i64) -> bool {
    matches!(event, DomainEvent::BookStockChanged { stock } if stock.book_id == book)
}
