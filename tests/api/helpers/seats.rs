//! Typed calls for seats: reservations, availability, the waitlist and holds, zones
//! and seats as an admin manages them.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, body, day};

impl TestApp {
    /// `POST /api/secure/reservations` with `request` (usually a [`super::slot`]).
    pub async fn reserve(&self, token: &str, request: Value) -> Response {
        self.post_as(token, "/api/secure/reservations", &request)
            .await
    }

    /// Reserves and expects 201; returns the created reservation.
    pub async fn reserved(&self, token: &str, request: Value) -> Value {
        let r = self.reserve(token, request).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    /// `POST /api/secure/reservation-series` with `request` (usually a [`series_body`]).
    pub async fn reserve_series(&self, token: &str, request: Value) -> Response {
        self.post_as(token, "/api/secure/reservation-series", &request)
            .await
    }

    /// Reserves a series and expects 201; returns the series with its occurrences.
    pub async fn reserved_series(&self, token: &str, request: Value) -> Value {
        let r = self.reserve_series(token, request).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        body(r).await
    }

    /// `DELETE /api/secure/reservation-series/{id}` with a query such as `?from=...`.
    pub async fn cancel_series(&self, token: &str, id: &str, query: &str) -> Response {
        let path = format!("/api/secure/reservation-series/{id}{query}");
        self.as_user(self.delete(&path), token).await
    }

    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        let path = format!("/api/secure/reservations/{id}");
        self.as_user(self.delete(&path), token).await
    }

    /// Cancels and expects 200; returns the cancelled reservation.
    pub async fn cancelled(&self, token: &str, id: &str) -> Value {
        let r = self.cancel(token, id).await;
        assert_eq!(r.status(), StatusCode::OK);
        body(r).await
    }

    /// `GET /api/secure/my-reservations` with a query string such as `?limit=2`.
    pub async fn my_reservations(&self, token: &str, query: &str) -> Response {
        self.get_as(token, &format!("/api/secure/my-reservations{query}"))
            .await
    }

    /// `POST /api/secure/reservations/{id}/<action>` (check-in, check-out).
    pub async fn reservation_action(&self, token: &str, id: &str, action: &str) -> Response {
        let path = format!("/api/secure/reservations/{id}/{action}");
        self.as_user(self.post(&path), token).await
    }

    /// The public zones with their seats.
    pub async fn zones(&self) -> Value {
        body(self.get("/api/public/zones").send().await.unwrap()).await
    }

    /// A zone's availability on day `n`.
    pub async fn availability(&self, zone: &str, n: i64) -> Value {
        let path = format!("/api/public/zones/{zone}/availability?date={}", day(n));
        body(self.get(&path).send().await.unwrap()).await
    }

    /// Seat reservations of day `n` as the zone (memory) shows them: `seat`'s free
    /// intervals.
    pub async fn free_of(&self, zone: &str, seat: &str, n: i64) -> Vec<Value> {
        self.availability(zone, n).await["seats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["seat_number"] == seat)
            .unwrap()["free"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Joins `zone`'s waitlist for day 1 between local hours `from` and `to`.
    pub async fn join_waitlist(&self, token: &str, zone: &str, from: u32, to: u32) -> Response {
        self.post_as(
            token,
            "/api/secure/waitlist",
            &waitlist_body(zone, from, to),
        )
        .await
    }

    /// `PATCH /api/admin/seats/{seat}` to `status` (`in_service`, `out_of_service`).
    pub async fn set_seat_status(&self, admin: &str, seat: &str, status: &str) -> Response {
        let path = format!("/api/admin/seats/{seat}");
        self.patch_as(admin, &path, &json!({"status": status}))
            .await
    }

    /// `PATCH /api/admin/seats/{seat}/spot` to `(x, y)` on the zone's floor plan.
    pub async fn move_seat(&self, admin: &str, seat: &str, x: i64, y: i64) -> Response {
        let path = format!("/api/admin/seats/{seat}/spot");
        self.patch_as(admin, &path, &json!({"x": x, "y": y})).await
    }

    pub async fn create_zone(&self, admin: &str, zone: Value) -> Response {
        self.post_as(admin, "/api/admin/zones", &zone).await
    }

    pub async fn add_seat(&self, admin: &str, zone: &str, seat: &str) -> Response {
        let path = format!("/api/admin/zones/{zone}/seats");
        self.post_as(admin, &path, &json!({"seat_number": seat}))
            .await
    }
}

/// A waitlist request for `zone` on day 1 between local hours `from` and `to`.
/// A weekly series on `seat`, local hours `from`-`to`, on the weekdays of days `on`
/// (days from today), for `weeks` weeks starting on day `first`.
pub fn series_body(seat: &str, on: &[i64], from: u32, to: u32, first: i64, weeks: u32) -> Value {
    use chrono::Datelike;
    let weekdays: Vec<String> = on
        .iter()
        .map(|&n| day(n).weekday().to_string().to_ascii_lowercase())
        .collect();
    json!({
        "seat_number": seat,
        "weekdays": weekdays,
        "start_time": format!("{from:02}:00"),
        "end_time": format!("{to:02}:00"),
        "first_date": day(first).to_string(),
        "weeks": weeks,
    })
}

pub fn waitlist_body(zone: &str, from: u32, to: u32) -> Value {
    let d = day(1);
    json!({
        "zone": zone,
        "start": format!("{d}T{from:02}:00:00+07:00"),
        "end": format!("{d}T{to:02}:00:00+07:00"),
    })
}
