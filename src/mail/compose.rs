//! The words of each message: subject and plain text in the space's time zone, and for
//! a booking its calendar entry as an `.ics` attachment (the same entry, with the same
//! `UID`, as `GET /api/secure/reservations/{id}/calendar` gives, so importing both
//! leaves one entry).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use icalendar::Calendar;
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use pica_actors::{Interval, Reservation, ReservationSeries, WaitlistEntry};
use uuid::Uuid;

use crate::http::calendar_file::{event, series_event};
use crate::storage::MailKind;

/// A message before it has an envelope.
pub(super) struct Letter {
    subject: String,
    text: String,
    /// `(file name, iCalendar text)`.
    calendar: Option<(String, String)>,
}

/// The Message-ID of the message about `subject`: the same on every attempt, so a
/// message sent twice (the server accepted it but the outbox could not record that
/// before a crash) carries one id, and mail clients and servers can drop the repeat.
pub(super) fn message_id(kind: MailKind, subject: Uuid, from: &Mailbox) -> String {
    format!("<{}.{subject}@{}>", kind.as_str(), from.email.domain())
}

fn day_and_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .format("%a %-d %b %Y, %H:%M")
        .to_string()
}

fn time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%H:%M").to_string()
}

/// "Tue 2 Dec 2026, 09:00-11:00 (Asia/Jakarta)".
fn when(interval: &Interval, tz: Tz) -> String {
    format!(
        "{}-{} ({})",
        day_and_time(interval.start, tz),
        time(interval.end, tz),
        tz.name()
    )
}

pub(super) fn booking_confirmed(r: &Reservation, zone_name: &str, tz: Tz) -> Letter {
    let mut calendar = Calendar::new();
    calendar.name("Pica");
    calendar.push(event(r, zone_name, tz));
    let file = format!(
        "pica-{}-{}.ics",
        r.seat.0,
        r.interval.start.with_timezone(&tz).date_naive()
    );
    Letter {
        subject: format!(
            "Booked: seat {}, {}",
            r.seat.0,
            day_and_time(r.interval.start, tz)
        ),
        text: format!(
            "Your seat {} in {zone_name} is booked for {}.\n\n\
             Check in at the seat within the check-in window, or the seat is released.\n\
             The attached calendar file adds the booking to your calendar.\n",
            r.seat.0,
            when(&r.interval, tz)
        ),
        calendar: Some((file, calendar.to_string())),
    }
}

/// One message for a whole weekly series, its dates listed and the series attached as
/// one recurring calendar entry (the same as
/// `GET /api/secure/reservation-series/{id}/calendar` gives).
pub(super) fn series_confirmed(
    series: &ReservationSeries,
    occurrences: &[Reservation],
    zone_name: &str,
    tz: Tz,
) -> Option<Letter> {
    let entry = series_event(series, occurrences, zone_name, tz).ok()?;
    let mut calendar = Calendar::new();
    calendar.name("Pica");
    calendar.push(entry);
    let dates: Vec<String> = occurrences
        .iter()
        .map(|r| format!("  {}\n", when(&r.interval, tz)))
        .collect();
    Some(Letter {
        subject: format!(
            "Booked weekly: seat {}, {} dates from {}",
            series.seat.0,
            occurrences.len(),
            series.first_date.format("%a %-d %b %Y")
        ),
        text: format!(
            "Your seat {} in {zone_name} is booked on these {} dates:\n\n{}\n\
             Cancel one date or the rest of the series in Pica. Check in at the seat \
             each time within the check-in window, or that date is released.\n\
             The attached calendar file adds the whole series to your calendar.\n",
            series.seat.0,
            occurrences.len(),
            dates.concat()
        ),
        calendar: Some((
            format!(
                "pica-{}-weekly-from-{}.ics",
                series.seat.0, series.first_date
            ),
            calendar.to_string(),
        )),
    })
}

pub(super) fn reminder(r: &Reservation, zone_name: &str, tz: Tz) -> Letter {
    Letter {
        subject: format!(
            "Reminder: seat {} at {}",
            r.seat.0,
            day_and_time(r.interval.start, tz)
        ),
        text: format!(
            "Your seat {} in {zone_name} is booked for {}.\n\n\
             Check in when you arrive, or the seat is released as a no-show.\n",
            r.seat.0,
            when(&r.interval, tz)
        ),
        calendar: None,
    }
}

/// `None` for an entry without a hold (nothing to offer).
pub(super) fn hold_offered(e: &WaitlistEntry, zone_name: &str, tz: Tz) -> Option<Letter> {
    let hold = e.hold.as_ref()?;
    let deadline = format!("{} ({})", day_and_time(hold.expires_at, tz), tz.name());
    Some(Letter {
        subject: format!("A seat is free for you: {} until {deadline}", hold.seat.0),
        text: format!(
            "Seat {} in {zone_name} came free for the time you are waiting for, {}.\n\n\
             It is held for you until {deadline}. Confirm the hold in Pica before then, \
             or it passes to the next person waiting.\n",
            hold.seat.0,
            when(&e.interval, tz)
        ),
        calendar: None,
    })
}

pub(super) fn no_show(r: &Reservation, zone_name: &str, tz: Tz) -> Letter {
    Letter {
        subject: format!("Released: seat {} (no check-in)", r.seat.0),
        text: format!(
            "You did not check in for seat {} in {zone_name}, {}, so it was released \
             for others.\n\nIf you still need a seat, book again in Pica.\n",
            r.seat.0,
            when(&r.interval, tz)
        ),
        calendar: None,
    }
}

impl Letter {
    pub(super) fn into_message(
        self,
        from: &Mailbox,
        to: Mailbox,
        message_id: String,
    ) -> Result<Message, lettre::error::Error> {
        let builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(self.subject)
            .message_id(Some(message_id));
        match self.calendar {
            None => builder.singlepart(SinglePart::plain(self.text)),
            Some((file, ics)) => {
                let ics_type = ContentType::parse("text/calendar; charset=utf-8")
                    .expect("a valid content type");
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(self.text))
                        .singlepart(Attachment::new(file).body(ics, ics_type)),
                )
            }
        }
    }
}
