//! A weekly series as a member asks for it ("A1, 09:00–12:00, Mondays and Wednesdays,
//! 4 weeks from 2026-12-07"), parsed into a [`WeeklyPattern`] and expanded into its
//! occurrences by the space's booking rules. Every occurrence must be bookable on its
//! own (opening hours, slot grid, horizon); a pattern that runs past the horizon is
//! refused whole rather than cut short, so a member never gets fewer dates than asked.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use pica_actors::Interval;

use crate::config::Calendar;
use crate::http::error::ApiError;

/// Most weeks one series may span (the horizon usually bounds it first).
pub const MAX_WEEKS: u32 = 26;

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(detail.into())
}

/// A validated weekly pattern: distinct weekdays (Monday first), a local time range on
/// the slot grid inside opening hours, a first date and a number of weeks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyPattern {
    pub weekdays: Vec<Weekday>,
    pub starts: NaiveTime,
    pub ends: NaiveTime,
    pub first_date: NaiveDate,
    pub weeks: u32,
}

/// Parses a weekday: `mon`, `monday`, `Mon` ...
fn weekday(raw: &str) -> Result<Weekday, ApiError> {
    raw.trim().parse().map_err(|_| {
        invalid(format!(
            "{raw:?} is not a day of the week (use mon, tue, wed, thu, fri, sat, sun)"
        ))
    })
}

impl WeeklyPattern {
    pub fn parse(
        calendar: &Calendar,
        weekdays: &[String],
        start_time: &str,
        end_time: &str,
        first_date: &str,
        weeks: u32,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        if weekdays.is_empty() || weekdays.len() > 7 {
            return Err(invalid(
                "`weekdays` must list 1 to 7 days, like [\"mon\", \"wed\"]",
            ));
        }
        let mut days = weekdays
            .iter()
            .map(|d| weekday(d))
            .collect::<Result<Vec<_>, _>>()?;
        days.sort_by_key(|d| d.num_days_from_monday());
        days.dedup();
        if !(1..=MAX_WEEKS).contains(&weeks) {
            return Err(invalid(format!("`weeks` must be 1 to {MAX_WEEKS}")));
        }
        let time = |name: &str, raw: &str| {
            NaiveTime::parse_from_str(raw.trim(), "%H:%M")
                .map_err(|_| invalid(format!("`{name}` must be a local time HH:MM, got {raw:?}")))
        };
        let (starts, ends) = (time("start_time", start_time)?, time("end_time", end_time)?);
        if starts >= ends {
            return Err(invalid("`end_time` must be after `start_time`"));
        }
        for (name, t) in [("start_time", starts), ("end_time", ends)] {
            if !calendar.on_slot_grid(t) {
                return Err(invalid(format!(
                    "`{name}` must be on a {}-minute slot boundary",
                    calendar.slot_minutes
                )));
            }
        }
        if starts < calendar.opens || ends > calendar.closes {
            return Err(invalid(format!(
                "Each occurrence must lie within opening hours {}-{}",
                calendar.opens.format("%H:%M"),
                calendar.closes.format("%H:%M")
            )));
        }
        let first_date = calendar.bookable_date(first_date, now)?;
        Ok(Self {
            weekdays: days,
            starts,
            ends,
            first_date,
            weeks,
        })
    }

    /// The local dates the pattern covers: each listed weekday in the `weeks` weeks
    /// from `first_date` on.
    pub fn dates(&self) -> Vec<NaiveDate> {
        (0..i64::from(self.weeks) * 7)
            .map(|offset| self.first_date + Duration::days(offset))
            .filter(|d| self.weekdays.contains(&d.weekday()))
            .collect()
    }

    /// Every occurrence as an interval, in time order; refused if one has already
    /// started or falls beyond the booking horizon.
    pub fn occurrences(
        &self,
        calendar: &Calendar,
        now: DateTime<Utc>,
    ) -> Result<Vec<Interval>, ApiError> {
        let dates = self.dates();
        let last_bookable = calendar.today(now) + Duration::days(i64::from(calendar.horizon_days));
        if let Some(last) = dates.last().filter(|&&d| d > last_bookable) {
            return Err(invalid(format!(
                "The series would run to {last}, beyond the booking horizon of {} days \
                 (last bookable day {last_bookable}); ask for fewer weeks",
                calendar.horizon_days
            )));
        }
        let mut out = Vec::with_capacity(dates.len());
        for date in dates {
            let start = calendar.local(date, self.starts)?;
            let end = calendar.local(date, self.ends)?;
            if start < calendar.current_slot_start(now) {
                return Err(invalid(format!(
                    "The occurrence on {date} at {} has already begun; start the series later",
                    self.starts.format("%H:%M")
                )));
            }
            out.push(Interval::new(start, end).ok_or_else(|| invalid("empty occurrence"))?);
        }
        if out.is_empty() {
            return Err(invalid("The pattern has no dates"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::tests::calendar;
    use chrono::TimeZone;

    /// Tuesday 2030-01-01, 10:00 in Jakarta.
    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 3, 0, 0).unwrap()
    }

    fn pattern(
        days: &[&str],
        from: &str,
        to: &str,
        first: &str,
        weeks: u32,
    ) -> Result<WeeklyPattern, ApiError> {
        let days: Vec<String> = days.iter().map(|d| d.to_string()).collect();
        WeeklyPattern::parse(&calendar(), &days, from, to, first, weeks, now())
    }

    #[test]
    fn mondays_and_wednesdays_for_four_weeks_are_eight_dates() {
        let p = pattern(&["wed", "Monday", "mon"], "09:00", "12:00", "2030-01-06", 4).unwrap();
        assert_eq!(p.weekdays, vec![Weekday::Mon, Weekday::Wed]);
        let dates: Vec<String> = p.dates().iter().map(|d| d.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2030-01-07",
                "2030-01-09",
                "2030-01-14",
                "2030-01-16",
                "2030-01-21",
                "2030-01-23",
                "2030-01-28",
                "2030-01-30"
            ]
        );
        let occurrences = p.occurrences(&calendar(), now()).unwrap();
        assert_eq!(occurrences.len(), 8);
        // 09:00 in Jakarta (UTC+7) is 02:00 UTC.
        assert_eq!(
            occurrences[0].start,
            Utc.with_ymd_and_hms(2030, 1, 7, 2, 0, 0).unwrap()
        );
        assert_eq!(
            occurrences[0].end - occurrences[0].start,
            Duration::hours(3)
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let detail = |r: Result<WeeklyPattern, ApiError>| r.unwrap_err().to_string();
        assert!(detail(pattern(&[], "09:00", "12:00", "2030-01-06", 4)).contains("weekdays"));
        assert!(
            detail(pattern(&["funday"], "09:00", "12:00", "2030-01-06", 4)).contains("not a day")
        );
        assert!(detail(pattern(&["mon"], "09:15", "12:00", "2030-01-06", 4)).contains("slot"));
        assert!(detail(pattern(&["mon"], "07:00", "12:00", "2030-01-06", 4)).contains("opening"));
        assert!(detail(pattern(&["mon"], "12:00", "09:00", "2030-01-06", 4)).contains("after"));
        assert!(detail(pattern(&["mon"], "09:00", "12:00", "2029-12-31", 4)).contains("past"));
        assert!(detail(pattern(&["mon"], "09:00", "12:00", "2030-01-06", 0)).contains("weeks"));
    }

    #[test]
    fn a_series_past_the_horizon_or_begun_already_is_refused_whole() {
        let long = pattern(&["mon"], "09:00", "12:00", "2030-01-06", 6).unwrap();
        let refusal = long
            .occurrences(&calendar(), now())
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("beyond the booking horizon"), "{refusal}");
        // Today (a Tuesday) at 09:00 has passed at 10:00.
        let begun = pattern(&["tue"], "09:00", "12:00", "2030-01-01", 1).unwrap();
        let refusal = begun
            .occurrences(&calendar(), now())
            .unwrap_err()
            .to_string();
        assert!(refusal.contains("already begun"), "{refusal}");
    }
}
