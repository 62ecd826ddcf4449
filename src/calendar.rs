//! The space's booking rules: opening hours, slot granularity and horizon, in the
//! space's time zone. Turns what a client asked for into a validated [`Interval`].

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};
use pica_actors::Interval;

use crate::config::Calendar;
use crate::http::error::ApiError;

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(detail.into())
}

impl Calendar {
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.timezone).date_naive()
    }

    pub(crate) fn local(
        &self,
        date: NaiveDate,
        time: NaiveTime,
    ) -> Result<DateTime<Utc>, ApiError> {
        self.timezone
            .from_local_datetime(&date.and_time(time))
            .single()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| {
                invalid(format!(
                    "{date} {time} does not exist once in the space's time zone"
                ))
            })
    }

    /// Parses `YYYY-MM-DD` and checks it is between today and the booking horizon.
    pub fn bookable_date(&self, raw: &str, now: DateTime<Utc>) -> Result<NaiveDate, ApiError> {
        let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .map_err(|_| invalid(format!("Invalid date {raw:?}: expected YYYY-MM-DD")))?;
        let today = self.today(now);
        if date < today {
            return Err(invalid(format!("{date} is in the past")));
        }
        let last = today + Duration::days(i64::from(self.horizon_days));
        if date > last {
            return Err(invalid(format!(
                "{date} is beyond the booking horizon of {} days (last bookable day {last})",
                self.horizon_days
            )));
        }
        Ok(date)
    }

    /// Opening hours of `date` as an interval.
    pub fn opening_window(&self, date: NaiveDate) -> Result<Interval, ApiError> {
        let start = self.local(date, self.opens)?;
        let end = self.local(date, self.closes)?;
        Interval::new(start, end).ok_or_else(|| invalid("opening hours are empty"))
    }

    /// Whether a local time of day is a slot boundary (`09:30` on a 30-minute grid).
    pub(crate) fn on_slot_grid(&self, t: NaiveTime) -> bool {
        (t.hour() * 60 + t.minute()).is_multiple_of(self.slot_minutes)
            && t.second() == 0
            && t.nanosecond() == 0
    }

    /// The start of the slot `now` falls in.
    pub(crate) fn current_slot_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let local = now.with_timezone(&self.timezone);
        let minute_of_day = local.hour() * 60 + local.minute();
        let floored = minute_of_day - minute_of_day % self.slot_minutes;
        let back = i64::from(minute_of_day - floored) * 60 + i64::from(local.second());
        (now - Duration::seconds(back))
            .with_nanosecond(0)
            .unwrap_or(now)
    }

    /// The seed form: the whole opening day of `date`. Today, it starts at the current
    /// slot.
    pub fn whole_day(&self, raw_date: &str, now: DateTime<Utc>) -> Result<Interval, ApiError> {
        let date = self.bookable_date(raw_date, now)?;
        let window = self.opening_window(date)?;
        let start = window.start.max(self.current_slot_start(now));
        Interval::new(start, window.end)
            .ok_or_else(|| invalid(format!("The space has closed for the rest of {date}")))
    }

    /// An explicit `[start, end)`: RFC 3339, on slot boundaries, within one day's
    /// opening hours, not before the current slot, inside the horizon.
    pub fn explicit(
        &self,
        raw_start: &str,
        raw_end: &str,
        now: DateTime<Utc>,
    ) -> Result<Interval, ApiError> {
        let start = parse_instant("start", raw_start)?;
        let end = parse_instant("end", raw_end)?;
        let interval = Interval::new(start.with_timezone(&Utc), end.with_timezone(&Utc))
            .ok_or_else(|| invalid("`end` must be after `start`"))?;
        for (name, at) in [("start", interval.start), ("end", interval.end)] {
            if !self.on_slot_grid(at.with_timezone(&self.timezone).time()) {
                return Err(invalid(format!(
                    "`{name}` must be on a {}-minute slot boundary",
                    self.slot_minutes
                )));
            }
        }
        let date = interval.start.with_timezone(&self.timezone).date_naive();
        self.bookable_date(&date.to_string(), now)?;
        let window = self.opening_window(date)?;
        if interval.start < window.start || interval.end > window.end {
            return Err(invalid(format!(
                "Reservations must lie within opening hours {}-{} on one day",
                self.opens.format("%H:%M"),
                self.closes.format("%H:%M")
            )));
        }
        if interval.start < self.current_slot_start(now) {
            return Err(invalid("`start` is in the past"));
        }
        Ok(interval)
    }
}

fn parse_instant(name: &str, raw: &str) -> Result<DateTime<FixedOffset>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim()).map_err(|_| {
        invalid(format!(
            "`{name}` must be an RFC 3339 time with offset, got {raw:?}"
        ))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The demo space's rules: Jakarta, 08:00-22:00, 30-minute slots, 30 days ahead.
    pub(crate) fn calendar() -> Calendar {
        Calendar {
            timezone: chrono_tz::Asia::Jakarta,
            opens: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            closes: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            slot_minutes: 30,
            horizon_days: 30,
        }
    }

    /// 2030-03-10 10:40 in Jakarta (UTC+7).
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 3, 10, 3, 40, 0).unwrap()
    }

    #[test]
    fn whole_future_day_is_opening_hours_in_local_time() {
        let day = calendar().whole_day("2030-03-11", now()).unwrap();
        assert_eq!(
            day.start,
            Utc.with_ymd_and_hms(2030, 3, 11, 1, 0, 0).unwrap()
        );
        assert_eq!(
            day.end,
            Utc.with_ymd_and_hms(2030, 3, 11, 15, 0, 0).unwrap()
        );
    }

    #[test]
    fn today_starts_at_the_current_slot() {
        let day = calendar().whole_day("2030-03-10", now()).unwrap();
        assert_eq!(
            day.start,
            Utc.with_ymd_and_hms(2030, 3, 10, 3, 30, 0).unwrap()
        );
    }

    #[test]
    fn past_far_future_and_malformed_dates_are_refused() {
        let c = calendar();
        for bad in [
            "2030-03-09",
            "2030-04-10",
            "2030-02-30",
            "10/03/2030",
            "",
            "2030-03-10T00:00",
        ] {
            assert!(
                matches!(c.whole_day(bad, now()), Err(ApiError::Unprocessable(_))),
                "{bad}"
            );
        }
        assert!(c.whole_day("2030-04-09", now()).is_ok());
    }

    #[test]
    fn explicit_interval_rules() {
        let c = calendar();
        let ok = c
            .explicit(
                "2030-03-11T09:00:00+07:00",
                "2030-03-11T11:30:00+07:00",
                now(),
            )
            .unwrap();
        assert_eq!(
            ok.start,
            Utc.with_ymd_and_hms(2030, 3, 11, 2, 0, 0).unwrap()
        );
        // The same instants written in UTC are fine too.
        assert!(
            c.explicit("2030-03-11T02:00:00Z", "2030-03-11T04:30:00Z", now())
                .is_ok()
        );
        for (start, end) in [
            ("2030-03-11T11:00:00+07:00", "2030-03-11T09:00:00+07:00"), // reversed
            ("2030-03-11T09:00:00+07:00", "2030-03-11T09:00:00+07:00"), // empty
            ("2030-03-11T09:10:00+07:00", "2030-03-11T10:00:00+07:00"), // off-slot
            ("2030-03-11T07:30:00+07:00", "2030-03-11T09:00:00+07:00"), // before opening
            ("2030-03-11T21:00:00+07:00", "2030-03-12T09:00:00+07:00"), // spans the night
            ("2030-03-10T09:00:00+07:00", "2030-03-10T10:00:00+07:00"), // already over
            ("2030-05-11T09:00:00+07:00", "2030-05-11T10:00:00+07:00"), // beyond horizon
            ("2030-03-11 09:00", "2030-03-11 10:00"),                   // no offset
            ("tomorrow", "later"),
        ] {
            assert!(c.explicit(start, end, now()).is_err(), "{start} {end}");
        }
        // The slot in progress may still be booked.
        assert!(
            c.explicit(
                "2030-03-10T10:30:00+07:00",
                "2030-03-10T11:00:00+07:00",
                now()
            )
            .is_ok()
        );
    }
}
