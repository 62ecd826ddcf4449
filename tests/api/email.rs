//! Email notifications (docs/email.md) against a real SMTP server (`helpers::smtp_sink`):
//! what is sent for a booking, a hold, a no-show and a reminder, exactly once each; that
//! a dead or hung server never holds a booking up, and its mail arrives once the server
//! is back, across a restart of Pica too; that failures show in `/metrics`; and that
//! with mail off nothing is queued.
//!
//! "Exactly once" is checked soundly: after the expected messages arrive, the test waits
//! until the outbox has no pending row (nothing more can be sent), then counts.

use std::sync::Arc;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use icalendar::Component;
use mail_parser::MimeHeaders;
use pica_actors::{Clock, ManualClock};
use reqwest::StatusCode;

use crate::helpers::smtp_sink::{Received, SmtpSink};
use crate::helpers::sse::id_of;
use crate::helpers::{Backend, TestApp, body, calendar_events, day, eventually, slot};

on_both_backends!(
    a_booking_sends_one_confirmation_with_its_calendar_file,
    a_weekly_series_sends_one_confirmation_with_its_recurring_entry,
    a_hold_offer_and_a_no_show_send_one_message_each,
    a_reminder_goes_once_and_only_for_a_confirmed_reservation,
    a_hung_smtp_server_does_not_hold_bookings_up,
    mail_queued_before_a_restart_is_delivered_once_after_it,
    failed_attempts_show_in_metrics_and_the_last_marks_the_message_failed,
    with_mail_off_nothing_is_queued,
);

/// Fast retries and a short SMTP timeout, so the tests see failures and recoveries
/// quickly; `extra` adds or overrides.
fn mail_env(sink: &SmtpSink, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PICA_SMTP_URL", sink.url().as_str()),
        ("PICA_MAIL_FROM", "Pica <pica@example.org>"),
        ("PICA_MAIL_BACKOFF_MS", "50"),
        ("PICA_SMTP_TIMEOUT_MS", "500"),
        ("PICA_MAIL_POLL_MS", "100"),
        ("PICA_MAIL_MAX_ATTEMPTS", "30"),
        // A token stamped by a manual clock must outlive the clock's moves.
        ("PICA_TOKEN_TTL_SECONDS", "172800"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn mail_app(backend: Backend, sink: &SmtpSink, extra: &[(&str, &str)]) -> Option<TestApp> {
    TestApp::spawn_with(backend, &pairs(&mail_env(sink, extra))).await
}

/// `hour:minute` local time (Asia/Jakarta) on day `n`.
fn local_time(n: i64, hour: u32, minute: u32) -> DateTime<Utc> {
    let naive = day(n).and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap());
    chrono_tz::Asia::Jakarta
        .from_local_datetime(&naive)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// A mail-enabled server whose clock stands at 07:00 tomorrow, with sweeps only when
/// the test asks.
async fn clocked(
    backend: Backend,
    sink: &SmtpSink,
    extra: &[(&str, &str)],
) -> Option<(TestApp, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(local_time(1, 7, 0)));
    let mut env = mail_env(sink, &[("PICA_SWEEP_SECONDS", "0")]);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let app = TestApp::spawn_with_clock(backend, &pairs(&env), clock.clone()).await?;
    Some((app, clock))
}

/// Waits until the outbox has no pending row: every message was sent or given up.
async fn outbox_settled(app: &TestApp) {
    eventually(20, "the outbox to settle", || async {
        app.state.db.mail_queue().await.unwrap().pending == 0
    })
    .await;
}

/// The kind and subject a message is about, from its Message-ID `<kind.subject@domain>`.
fn about(m: &Received) -> (String, String) {
    let parsed = m.parsed();
    let id = parsed.message_id().expect("a Message-ID").to_string();
    let (local, domain) = id.split_once('@').unwrap();
    assert_eq!(domain, "example.org", "{id}");
    let (kind, subject) = local.split_once('.').unwrap();
    (kind.to_string(), subject.to_string())
}

fn of_kind<'a>(messages: &'a [Received], kind: &str) -> Vec<&'a Received> {
    messages.iter().filter(|m| about(m).0 == kind).collect()
}

/// The value of one series in `/metrics`, if it is there.
async fn metric(app: &TestApp, series: &str) -> Option<f64> {
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

async fn a_booking_sends_one_confirmation_with_its_calendar_file(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = mail_app(backend, &sink, &[]).await else {
        return;
    };
    let ana = app.user("ana").await;
    let r = app.reserved(&ana, slot("Q3", 2, 9, 11)).await;
    let id = id_of(&r);
    sink.wait_for(1, 20).await;
    outbox_settled(&app).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "exactly one message");
    let m = &messages[0];
    assert_eq!(m.rcpt_to, vec!["ana@example.com".to_string()]);
    assert_eq!(m.mail_from, "pica@example.org");
    assert_eq!(about(m), ("booking_confirmed".into(), id.clone()));
    let parsed = m.parsed();
    let to = parsed
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address());
    assert_eq!(to, Some("ana@example.com"));
    let subject = parsed.subject().unwrap();
    assert!(subject.starts_with("Booked: seat Q3"), "{subject}");
    // The attachment is the reservation's calendar entry.
    let ics = parsed.attachments().next().expect("an attachment");
    assert!(ics.attachment_name().unwrap().ends_with(".ics"));
    assert!(
        ics.content_type()
            .is_some_and(|t| t.ctype() == "text" && t.subtype() == Some("calendar"))
    );
    let events = calendar_events(ics.text_contents().unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get_uid(), Some(format!("{id}@pica").as_str()));
    assert_eq!(events[0].get_summary(), Some("Seat Q3, Quiet Room"));
    // Counted just after the row is marked sent.
    eventually(20, "the message counted as sent", || async {
        metric(&app, "pica_mail_sent_total{kind=\"booking_confirmed\"}").await == Some(1.0)
    })
    .await;
    app.stop().await;
}

async fn a_weekly_series_sends_one_confirmation_with_its_recurring_entry(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = mail_app(backend, &sink, &[]).await else {
        return;
    };
    let ana = app.user("ana").await;
    let request = crate::helpers::seats::series_body("Q4", &[1, 3], 9, 12, 1, 2);
    let series = app.reserved_series(&ana, request).await;
    let id = series["id"].as_str().unwrap().to_string();
    sink.wait_for(1, 20).await;
    outbox_settled(&app).await;
    // One message for the four occurrences, none per occurrence.
    let messages = sink.messages();
    assert_eq!(messages.len(), 1, "exactly one message");
    let m = &messages[0];
    assert_eq!(about(m), ("series_confirmed".into(), id.clone()));
    assert_eq!(m.rcpt_to, vec!["ana@example.com".to_string()]);
    let parsed = m.parsed();
    let subject = parsed.subject().unwrap();
    assert!(
        subject.starts_with("Booked weekly: seat Q4, 4 dates"),
        "{subject}"
    );
    let text = parsed.body_text(0).unwrap();
    for o in series["occurrences"].as_array().unwrap() {
        let date = o["reservation_date"].as_str().unwrap();
        let shown = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .unwrap()
            .format("%-d %b %Y")
            .to_string();
        assert!(text.contains(&shown), "{shown} in {text}");
    }
    let ics = parsed.attachments().next().expect("an attachment");
    let events = calendar_events(ics.text_contents().unwrap());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get_uid(), Some(format!("{id}@pica").as_str()));
    let rule = events[0].property_value("RRULE").unwrap();
    assert!(
        rule.contains("FREQ=WEEKLY") && rule.contains("COUNT=4"),
        "{rule}"
    );
    app.stop().await;
}

async fn a_hold_offer_and_a_no_show_send_one_message_each(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((app, clock)) = clocked(backend, &sink, &[]).await else {
        return;
    };
    // A quiet room of one seat, so one booking fills it.
    let admin = app.make_admin("boss").await;
    for n in 2..=8 {
        let r = app
            .set_seat_status(&admin, &format!("Q{n}"), "out_of_service")
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let reader = app.user("reader").await;
    let wendy = app.user("wendy").await;
    let booked = id_of(&app.reserved(&reader, slot("Q1", 1, 9, 11)).await);
    let r = app.join_waitlist(&wendy, "quiet", 9, 11).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let entry = id_of(&body(r).await);
    // The reader cancels: Wendy is offered the seat.
    app.cancelled(&reader, &booked).await;
    let messages = sink.wait_for(2, 20).await;
    let offers = of_kind(&messages, "hold_offered");
    assert_eq!(offers.len(), 1);
    assert_eq!(about(offers[0]).1, entry);
    assert_eq!(offers[0].rcpt_to, vec!["wendy@example.com".to_string()]);
    let parsed = offers[0].parsed();
    let subject = parsed.subject().unwrap();
    // Offered at 07:00 for ten minutes: the deadline in the space's zone.
    assert!(
        subject.contains("Q1 until") && subject.contains("07:10 (Asia/Jakarta)"),
        "{subject}"
    );
    // She confirms it (a reservation: a confirmation) and then never comes: no-show.
    let r = app
        .post(&format!("/api/secure/holds/{entry}/confirm"))
        .bearer_auth(&wendy)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let hers = id_of(&body(r).await);
    clock.set(local_time(1, 9, 15));
    let report = app.state.engine.sweep().await.unwrap();
    assert_eq!(report.transitions, 1);
    sink.wait_for(4, 20).await;
    outbox_settled(&app).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 4, "two confirmations, an offer, a no-show");
    assert_eq!(of_kind(&messages, "booking_confirmed").len(), 2);
    assert_eq!(of_kind(&messages, "hold_offered").len(), 1);
    let no_shows = of_kind(&messages, "no_show");
    assert_eq!(no_shows.len(), 1);
    assert_eq!(about(no_shows[0]).1, hers);
    assert_eq!(no_shows[0].rcpt_to, vec!["wendy@example.com".to_string()]);
    let parsed = no_shows[0].parsed();
    assert!(parsed.subject().unwrap().starts_with("Released: seat Q1"));
    app.stop().await;
}

async fn a_reminder_goes_once_and_only_for_a_confirmed_reservation(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some((app, clock)) = clocked(backend, &sink, &[("PICA_MAIL_REMINDER_MINUTES", "60")]).await
    else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let hers = id_of(&app.reserved(&ana, slot("Q1", 1, 9, 11)).await);
    let his = id_of(&app.reserved(&ben, slot("Q2", 1, 9, 11)).await);
    app.cancelled(&ben, &his).await;
    sink.wait_for(2, 20).await;
    outbox_settled(&app).await;
    assert!(
        of_kind(&sink.messages(), "reminder").is_empty(),
        "not due yet"
    );
    // 08:05: within the hour before 09:00. The mailer's scan sees it on its next poll.
    clock.set(local_time(1, 8, 5));
    let messages = sink.wait_for(3, 20).await;
    let reminders = of_kind(&messages, "reminder");
    assert_eq!(reminders.len(), 1);
    assert_eq!(about(reminders[0]).1, hers);
    assert_eq!(reminders[0].rcpt_to, vec!["ana@example.com".to_string()]);
    assert!(
        reminders[0]
            .parsed()
            .subject()
            .unwrap()
            .starts_with("Reminder: seat Q1")
    );
    // A later scan finds the reminder already queued and adds nothing.
    clock.set(local_time(1, 8, 30));
    let queued = app
        .state
        .db
        .queue_reminders(clock.now(), chrono::Duration::minutes(60), Utc::now())
        .await
        .unwrap();
    assert_eq!(queued, 0);
    outbox_settled(&app).await;
    assert_eq!(
        sink.messages().len(),
        3,
        "two confirmations and one reminder"
    );
    app.stop().await;
}

async fn a_hung_smtp_server_does_not_hold_bookings_up(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.mute(true);
    let Some(app) = mail_app(backend, &sink, &[]).await else {
        return;
    };
    let ana = app.user("ana").await;
    let first = app.reserved(&ana, slot("Q1", 2, 9, 11)).await;
    // The mailer is now stuck talking to a server that never answers...
    eventually(20, "the mailer to connect", || async { sink.hung() > 0 }).await;
    // ...and bookings go on regardless.
    let mut ids = vec![id_of(&first)];
    for (seat, n) in [("Q2", 3), ("Q3", 4)] {
        let r = app.reserve(&ana, slot(seat, n, 9, 11)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(id_of(&body(r).await));
    }
    eventually(20, "a failed attempt in /metrics", || async {
        metric(&app, "pica_mail_failures_total{kind=\"booking_confirmed\"}")
            .await
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(sink.messages().is_empty());
    // The server answers again: every message arrives, once.
    sink.mute(false);
    sink.wait_for(3, 30).await;
    outbox_settled(&app).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 3);
    let mut got: Vec<String> = messages.iter().map(|m| about(m).1).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    app.stop().await;
}

async fn mail_queued_before_a_restart_is_delivered_once_after_it(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.stop();
    let env = mail_env(&sink, &[]);
    let Some(app) = TestApp::spawn_with(backend, &pairs(&env)).await else {
        return;
    };
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let mut ids = vec![
        id_of(&app.reserved(&ana, slot("Q1", 2, 9, 11)).await),
        id_of(&app.reserved(&ben, slot("Q2", 2, 9, 11)).await),
    ];
    eventually(20, "a failed attempt", || async {
        metric(&app, "pica_mail_failures_total{kind=\"booking_confirmed\"}")
            .await
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    let db = app.stop().await;
    // A new server on the same database, and the SMTP server is back.
    sink.restart().await;
    let app = TestApp::spawn_on(db, &pairs(&env)).await;
    sink.wait_for(2, 30).await;
    outbox_settled(&app).await;
    let messages = sink.messages();
    assert_eq!(messages.len(), 2, "each message exactly once");
    let mut got: Vec<String> = messages.iter().map(|m| about(m).1).collect();
    got.sort();
    ids.sort();
    assert_eq!(got, ids);
    app.stop().await;
}

async fn failed_attempts_show_in_metrics_and_the_last_marks_the_message_failed(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.stop();
    let Some(app) = mail_app(backend, &sink, &[("PICA_MAIL_MAX_ATTEMPTS", "2")]).await else {
        return;
    };
    let ana = app.user("ana").await;
    app.reserved(&ana, slot("Q1", 2, 9, 11)).await;
    let given_up = "pica_mail_given_up_total{kind=\"booking_confirmed\"}";
    eventually(20, "the message to be given up", || async {
        metric(&app, given_up).await == Some(1.0)
    })
    .await;
    outbox_settled(&app).await;
    let failures = "pica_mail_failures_total{kind=\"booking_confirmed\"}";
    assert_eq!(metric(&app, failures).await, Some(2.0));
    assert_eq!(
        metric(&app, "pica_mail_sent_total{kind=\"booking_confirmed\"}").await,
        Some(0.0)
    );
    eventually(20, "the queue gauge to read 0", || async {
        metric(&app, "pica_mail_outbox_pending").await == Some(0.0)
    })
    .await;
    // A failed message is out of the queue: nothing will try it again.
    let queue = app.state.db.mail_queue().await.unwrap();
    assert_eq!((queue.pending, queue.next_due), (0, None));
    app.stop().await;
}

async fn with_mail_off_nothing_is_queued(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let ana = app.user("ana").await;
    app.reserved(&ana, slot("Q1", 2, 9, 11)).await;
    let queue = app.state.db.mail_queue().await.unwrap();
    assert_eq!(queue.pending, 0);
    assert!(queue.next_due.is_none());
    assert_eq!(metric(&app, "pica_mail_outbox_pending").await, None);
    app.stop().await;
}
