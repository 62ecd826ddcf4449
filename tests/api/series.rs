//! Weekly series over HTTP: every date or none (a conflict names its dates), one
//! occurrence or the rest cancelled, the separate per-member limit of occurrences, a
//! series racing single bookings on its seat audited against the database, idempotent
//! retries, a restart, and the series as one recurring `.ics` entry whose rule yields
//! exactly its occurrences.

use chrono::{DateTime, Utc};
use icalendar::{Component, EventLike};
use pica_actors::{Reservation, ReservationStatus};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::seats::series_body;
use crate::helpers::{Backend, TestApp, audit, body, calendar_events, day, slot};

on_both_backends!(
    a_series_books_every_date_or_none_and_names_the_dates_in_the_way,
    one_occurrence_or_the_rest_of_a_series_can_be_cancelled,
    series_occurrences_count_against_their_own_limit_across_a_restart,
    a_series_racing_single_bookings_on_its_seat_is_all_or_nothing,
    a_retried_series_is_booked_once,
    bad_series_requests_are_refused_and_change_nothing,
    a_series_is_one_recurring_ics_event_whose_rule_yields_its_occurrences,
);

/// Days 1 and 3 from today and the same weekdays a week later.
const DATES: [i64; 4] = [1, 3, 8, 10];

fn occurrences(series: &Value) -> &Vec<Value> {
    series["occurrences"].as_array().unwrap()
}

fn ids(series: &Value) -> Vec<String> {
    occurrences(series)
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect()
}

fn of_series<'a>(all: &'a [Reservation], series: &str) -> Vec<&'a Reservation> {
    all.iter()
        .filter(|r| r.series.is_some_and(|s| s.to_string() == series))
        .collect()
}

async fn a_series_books_every_date_or_none_and_names_the_dates_in_the_way(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let bob = app.user("bob").await;
    app.reserved(&bob, slot("Q3", 8, 10, 11)).await;

    // Q3 is taken on one of the four dates: 409 naming that date, and nothing booked.
    let r = app
        .reserve_series(&ana, series_body("Q3", &[1, 3], 9, 12, 1, 2))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refusal = body(r).await;
    assert_eq!(
        refusal["detail"],
        "1 of the series' dates cannot be booked, so none was"
    );
    let conflicts = refusal["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{refusal}");
    let d = day(8);
    assert_eq!(conflicts[0]["date"], d.to_string());
    assert_eq!(
        conflicts[0]["occurrence"]["start"],
        format!("{d}T09:00:00+07:00")
    );
    assert_eq!(
        conflicts[0]["conflict"],
        json!({"start": format!("{d}T10:00:00+07:00"), "end": format!("{d}T11:00:00+07:00")})
    );
    assert_eq!(
        conflicts[0]["detail"],
        "Seat is already reserved for an overlapping interval"
    );
    let ana_id = app.user_id("ana").await;
    let stored = app.reservations_in_db().await;
    assert!(stored.iter().all(|r| r.user_id != ana_id), "{stored:?}");

    // On a free seat every date is booked, 09:00-12:00 local time each.
    let series = app
        .reserved_series(&ana, series_body("Q4", &[1, 3], 9, 12, 1, 2))
        .await;
    let id = series["id"].as_str().unwrap();
    assert_eq!(series["zone"], "quiet");
    assert_eq!(series["start_time"], "09:00");
    assert_eq!(series["weeks"], 2);
    let dates: Vec<&str> = occurrences(&series)
        .iter()
        .map(|o| o["reservation_date"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = DATES.iter().map(|&n| day(n).to_string()).collect();
    assert_eq!(dates, expected);
    for o in occurrences(&series) {
        let d = o["reservation_date"].as_str().unwrap();
        assert_eq!(o["start"], format!("{d}T09:00:00+07:00"));
        assert_eq!(o["end"], format!("{d}T12:00:00+07:00"));
        assert_eq!(o["status"], "confirmed");
        assert_eq!(o["series_id"], id);
    }
    let stored = app.reservations_in_db().await;
    assert_eq!(of_series(&stored, id).len(), 4);
    audit(&stored);

    // The series reads back the same, and each occurrence is one of ana's reservations.
    let read = body(
        app.get_as(&ana, &format!("/api/secure/reservation-series/{id}"))
            .await,
    )
    .await;
    assert_eq!(ids(&read), ids(&series));
    let mine = body(app.my_reservations(&ana, "").await).await;
    let listed = mine["items"].as_array().unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed.iter().all(|r| r["series_id"] == id));
    // Someone else's series is a 404, like a missing one.
    let theirs = app
        .get_as(&bob, &format!("/api/secure/reservation-series/{id}"))
        .await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}

async fn one_occurrence_or_the_rest_of_a_series_can_be_cancelled(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let bob = app.user("bob").await;
    let series = app
        .reserved_series(&ana, series_body("A5", &[1, 3], 9, 12, 1, 2))
        .await;
    let id = series["id"].as_str().unwrap().to_string();
    let occ = ids(&series);

    // One occurrence, like any reservation.
    assert_eq!(app.cancelled(&ana, &occ[1]).await["status"], "cancelled");
    // The rest from the second week on.
    let r = app
        .cancel_series(&ana, &id, &format!("?from={}", day(8)))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = body(r).await;
    let statuses: Vec<&str> = occurrences(&after)
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["confirmed", "cancelled", "cancelled", "cancelled"]
    );
    let stored = app.reservations_in_db().await;
    let statuses: Vec<ReservationStatus> =
        of_series(&stored, &id).iter().map(|r| r.status).collect();
    use ReservationStatus::{Cancelled, Confirmed};
    assert_eq!(statuses, [Confirmed, Cancelled, Cancelled, Cancelled]);
    // The freed dates are bookable again.
    app.reserved(&bob, slot("A5", 8, 9, 12)).await;

    // Without `from`, everything that has not ended goes.
    let after = body(app.cancel_series(&ana, &id, "").await).await;
    assert!(
        occurrences(&after)
            .iter()
            .all(|o| o["status"] == "cancelled")
    );
    // Someone else cannot cancel it; a bad date is refused.
    let r = app.cancel_series(&bob, &id, "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.cancel_series(&ana, &id, "?from=next-week").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let stored = app.reservations_in_db().await;
    audit(&stored);
    assert_eq!(
        stored
            .iter()
            .filter(|r| r.status == Confirmed && r.seat.0 == "A5")
            .count(),
        1,
        "only bob's booking is left on A5"
    );
}

async fn series_occurrences_count_against_their_own_limit_across_a_restart(backend: Backend) {
    let limits = [
        ("PICA_MAX_ACTIVE_RESERVATIONS", "1"),
        ("PICA_MAX_SERIES_OCCURRENCES", "5"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &limits).await else {
        return;
    };
    let ana = app.user("ana").await;
    let series = app
        .reserved_series(&ana, series_body("C1", &[1, 3], 9, 11, 1, 2))
        .await;
    // Four occurrences do not use up the single limit of one ...
    app.reserved(&ana, slot("C2", 2, 9, 11)).await;
    let r = app.reserve(&ana, slot("C2", 4, 9, 11)).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // ... and a series of two more would pass the limit of five occurrences.
    let two_more = series_body("C3", &[2], 14, 15, 2, 2);
    let r = app.reserve_series(&ana, two_more.clone()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        body(r).await["detail"],
        "A series may not take you past 5 active occurrences (4 held, 2 asked)"
    );
    // A series overlapping her own single booking names that date.
    let r = app
        .reserve_series(&ana, series_body("C4", &[2], 10, 12, 2, 1))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let refusal = body(r).await;
    assert_eq!(refusal["conflicts"][0]["date"], day(2).to_string());
    assert_eq!(
        refusal["conflicts"][0]["detail"],
        "You already hold an overlapping reservation"
    );

    // After a restart the ledger is rebuilt from the database and counts the same.
    let db = app.stop().await;
    let app = TestApp::spawn_on(db, &limits).await;
    let ana = app.access_token("ana", "pw-ana-123").await;
    let r = app.reserve_series(&ana, two_more.clone()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // One occurrence cancelled frees one place: 3 + 2 fits.
    app.cancelled(&ana, &ids(&series)[0]).await;
    app.reserved_series(&ana, two_more).await;
    audit(&app.reservations_in_db().await);
}

async fn a_series_racing_single_bookings_on_its_seat_is_all_or_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let seats = ["A10", "A11", "A12", "A13", "A14", "A15"];
    let racers = 6;
    let mut members = Vec::new();
    for i in 0..seats.len() * (racers + 1) {
        members.push(app.user(&format!("member{i}")).await);
    }
    // On each seat one member books a series while others book single dates of it
    // (some overlapping an occurrence, some beside it), all at once.
    let mut attempts = Vec::new();
    for (s, seat) in seats.iter().enumerate() {
        let tokens = &members[s * (racers + 1)..(s + 1) * (racers + 1)];
        let series = series_body(seat, &[1, 3], 9, 12, 1, 2);
        attempts.push((tokens[0].clone(), true, series));
        for (k, token) in tokens[1..].iter().enumerate() {
            let n = DATES[k % DATES.len()];
            let (from, to) = if k % 3 == 2 {
                (12, 13)
            } else {
                (10 + k as u32 % 2, 12)
            };
            attempts.push((token.clone(), false, slot(seat, n, from, to)));
        }
    }
    let app = &app;
    let answers = futures_util::future::join_all(attempts.iter().map(
        |(token, is_series, request)| async move {
            let r = if *is_series {
                app.reserve_series(token, request.clone()).await
            } else {
                app.reserve(token, request.clone()).await
            };
            let status = r.status();
            (status, body(r).await)
        },
    ))
    .await;

    let stored = app.reservations_in_db().await;
    audit(&stored);
    for (attempt, (status, answer)) in attempts.iter().zip(&answers) {
        assert!(
            *status == StatusCode::CREATED || *status == StatusCode::CONFLICT,
            "{status}: {answer}"
        );
        if !attempt.1 {
            continue;
        }
        let seat = attempt.2["seat_number"].as_str().unwrap();
        let singles: Vec<&Reservation> = stored
            .iter()
            .filter(|r| r.seat.0 == seat && r.series.is_none())
            .collect();
        let overlapping_single = |start: &str| -> bool {
            let start: DateTime<Utc> = start.parse().unwrap();
            let occurrence =
                pica_actors::Interval::new(start, start + chrono::Duration::hours(3)).unwrap();
            singles.iter().any(|r| r.interval.overlaps(&occurrence))
        };
        if *status == StatusCode::CREATED {
            // Every occurrence is stored, and no single booking overlaps any of them.
            let series = of_series(&stored, answer["id"].as_str().unwrap());
            assert_eq!(series.len(), 4, "{seat}: {answer}");
            for o in occurrences(answer) {
                assert!(!overlapping_single(o["start"].as_str().unwrap()), "{seat}");
            }
        } else {
            // None is stored, and each named date really is held by a single booking.
            assert!(
                stored
                    .iter()
                    .all(|r| r.seat.0 != seat || r.series.is_none()),
                "{seat}: a refused series left occurrences"
            );
            let named = answer["conflicts"].as_array().unwrap();
            assert!(!named.is_empty(), "{answer}");
            for c in named {
                assert!(
                    overlapping_single(c["occurrence"]["start"].as_str().unwrap()),
                    "{c}"
                );
            }
        }
    }
}

async fn a_retried_series_is_booked_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let send = || {
        app.as_user(
            app.post("/api/secure/reservation-series")
                .header("Idempotency-Key", "standing-desk")
                .json(&series_body("Q6", &[1, 3], 9, 12, 1, 2)),
            &ana,
        )
    };
    let first = send().await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = body(first).await;
    let again = send().await;
    assert_eq!(again.status(), StatusCode::CREATED);
    let again = body(again).await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(ids(&again), ids(&first));
    let stored = app.reservations_in_db().await;
    assert_eq!(stored.iter().filter(|r| r.series.is_some()).count(), 4);
}

async fn bad_series_requests_are_refused_and_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let good = series_body("Q7", &[1], 9, 12, 1, 2);
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases = [
        (
            with("weekdays", json!([])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weekdays",
        ),
        (
            with("weekdays", json!(["funday"])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a day",
        ),
        (
            with("start_time", json!("9am")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "HH:MM",
        ),
        (
            with("start_time", json!("09:10")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "slot",
        ),
        (
            with("end_time", json!("23:00")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "opening hours",
        ),
        (
            with("weeks", json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "weeks",
        ),
        (
            with("weeks", json!(6)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "beyond the booking horizon",
        ),
        (
            with("first_date", json!(day(-1).to_string())),
            StatusCode::UNPROCESSABLE_ENTITY,
            "past",
        ),
        (
            with("seat_number", json!("Z99")),
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
    ];
    for (request, status, says) in cases {
        let r = app.reserve_series(&ana, request.clone()).await;
        assert_eq!(r.status(), status, "{request}");
        let detail = body(r).await["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(says), "{request}: {detail}");
    }
    let r = app.reserve_series(&ana, with("weeks", json!("four"))).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .get_as(&ana, "/api/secure/reservation-series/not-a-uuid")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(app.reservations_in_db().await.is_empty());
}

async fn a_series_is_one_recurring_ics_event_whose_rule_yields_its_occurrences(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    let series = app
        .reserved_series(&ana, series_body("Q8", &[1, 3], 9, 12, 1, 2))
        .await;
    let id = series["id"].as_str().unwrap();
    app.cancelled(&ana, &ids(&series)[2]).await;

    let path = format!("/api/secure/reservation-series/{id}/calendar");
    let download = async || {
        let r = app.get_as(&ana, &path).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/calendar; charset=utf-8");
        let text = r.text().await.unwrap();
        let mut events = calendar_events(&text);
        assert_eq!(events.len(), 1, "{text}");
        (events.remove(0), text)
    };
    let (event, text) = download().await;
    assert_eq!(event.get_uid(), Some(format!("{id}@pica").as_str()));
    assert_eq!(event.get_summary(), Some("Seat Q8, Quiet Room (weekly)"));
    assert!(text.contains("TZID=Asia/Jakarta"), "{text}");
    let rule = event.property_value("RRULE").unwrap();
    assert!(
        rule.contains("FREQ=WEEKLY") && rule.contains("COUNT=4"),
        "{rule}"
    );
    // The rule with its exception yields exactly the three occurrences still booked.
    let expanded = event.get_recurrence().unwrap().all(100);
    let starts: Vec<DateTime<Utc>> = expanded
        .dates
        .iter()
        .map(|d| d.with_timezone(&Utc))
        .collect();
    let booked: Vec<DateTime<Utc>> = occurrences(&series)
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, o)| o["start"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts, booked);
    // Downloaded again, the entry keeps its UID (a calendar app updates it in place).
    let (again, _) = download().await;
    assert_eq!(again.get_uid(), event.get_uid());
    let theirs = app.get_as(&app.user("bob").await, &path).await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
}
