//! A reservation as an iCalendar file, parsed back by the `icalendar` crate and checked
//! field by field: times in the space's zone, a UID that stays the same, the status.

use icalendar::{CalendarDateTime, Component, DatePerhapsTime, Event, EventLike, EventStatus};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};

use crate::helpers::{Backend, TestApp, calendar_events, day, slot};

on_both_backends!(
    a_reservation_is_an_ics_event_in_the_space_zone_with_a_stable_uid,
    a_feed_lists_upcoming_reservations_until_its_address_is_replaced,
);

async fn ics(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.get_as(token, &format!("/api/secure/reservations/{id}/calendar"))
        .await
}

async fn event_of(r: reqwest::Response) -> Event {
    let mut events = events_of(r).await;
    assert_eq!(events.len(), 1);
    events.remove(0)
}

async fn events_of(r: reqwest::Response) -> Vec<Event> {
    calendar_events(&r.text().await.unwrap())
}

fn local(d: Option<DatePerhapsTime>) -> (String, String) {
    match d {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { date_time, tzid })) => {
            (date_time.format("%Y-%m-%d %H:%M").to_string(), tzid)
        }
        other => panic!("not a time in a zone: {other:?}"),
    }
}

async fn a_reservation_is_an_ics_event_in_the_space_zone_with_a_stable_uid(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let token = app.user("ana").await;
    let reservation = app.reserved(&token, slot("Q3", 2, 9, 11)).await;
    let id = reservation["id"].as_str().unwrap();

    let r = ics(&app, &token, id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/calendar; charset=utf-8");
    let disposition = r.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"pica-Q3-{}.ics\"", day(2))
    );
    let event = event_of(r).await;
    assert_eq!(event.get_uid(), Some(format!("{id}@pica").as_str()));
    assert_eq!(event.get_summary(), Some("Seat Q3, Quiet Room"));
    assert_eq!(event.get_location(), Some("Quiet Room"));
    let zone = "Asia/Jakarta".to_string();
    assert_eq!(
        local(event.get_start()),
        (format!("{} 09:00", day(2)), zone.clone())
    );
    assert_eq!(local(event.get_end()), (format!("{} 11:00", day(2)), zone));
    assert_eq!(event.get_status(), Some(EventStatus::Confirmed));

    // Cancelled: the same entry (same UID) now says so.
    app.cancelled(&token, id).await;
    let again = event_of(ics(&app, &token, id).await).await;
    assert_eq!(again.get_uid(), event.get_uid());
    assert_eq!(again.get_status(), Some(EventStatus::Cancelled));

    // Someone else's, or no such reservation: 404 like any other.
    let budi = app.user("budi").await;
    assert_eq!(ics(&app, &budi, id).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        ics(&app, &token, "not-a-uuid").await.status(),
        StatusCode::NOT_FOUND
    );
    let nobody = app
        .get(&format!("/api/secure/reservations/{id}/calendar"))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::FORBIDDEN);
}

async fn new_feed(app: &TestApp, token: &str) -> String {
    let r = app
        .post_as(token, "/api/secure/calendar-feed", &serde_json::json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let url = crate::helpers::body(r).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    let base = app.url("/api/public/calendar/pica_cal_");
    assert!(url.starts_with(&base), "{url}");
    url
}

async fn a_feed_lists_upcoming_reservations_until_its_address_is_replaced(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let first = app.reserved(&ana, slot("A1", 1, 9, 10)).await;
    let second = app.reserved(&ana, slot("C2", 2, 14, 16)).await;
    let dropped = app.reserved(&ana, slot("Q1", 3, 9, 10)).await;
    app.cancelled(&ana, dropped["id"].as_str().unwrap()).await;
    let budi = app.user("budi").await;
    app.reserved(&budi, slot("A2", 1, 9, 10)).await;

    let url = new_feed(&app, &ana).await;
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "text/calendar; charset=utf-8");
    let uids: Vec<String> = events_of(r)
        .await
        .iter()
        .map(|e| e.get_uid().unwrap().to_string())
        .collect();
    let uid = |r: &serde_json::Value| format!("{}@pica", r["id"].as_str().unwrap());
    // Soonest first; not the cancelled one, not budi's.
    assert_eq!(uids, vec![uid(&first), uid(&second)]);

    // A new address replaces the old one, which then answers 404.
    let replaced = new_feed(&app, &ana).await;
    assert_ne!(replaced, url);
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let again = app.client.get(&replaced).send().await.unwrap();
    assert_eq!(events_of(again).await.len(), 2);
    for wrong in [
        "pica_cal_nope",
        "garbage",
        "pica_cal_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let r = app
            .get(&format!("/api/public/calendar/{wrong}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{wrong}");
    }
}
