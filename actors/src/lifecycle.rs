//! The automatic lifecycle of a reservation, as pure functions of the reservation and
//! the time: when check-in opens and closes, and which status a reservation is due to
//! move to on its own (`no_show`, `completed`).
//!
//! The zone actor asks these on every sweep (see [`crate::zone::messages::ZoneMsg::Sweep`]); the
//! scheduler only triggers sweeps, it never decides anything itself.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Interval, Reservation, ReservationStatus};
use crate::error::EngineError;

/// The lifecycle rules. Durations are configurable (see the service's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// A `confirmed` reservation not checked in this long after its start (or after it
    /// was made, if it was made after its start) becomes `no_show`.
    pub no_show_after: Duration,
    /// How long before its start a reservation can be checked in.
    pub check_in_opens_before: Duration,
    /// How long a waiter's hold on a freed seat lasts before it passes on.
    pub hold_for: Duration,
    /// Open waitlist entries (waiting or holding) one user may have in one zone.
    pub max_waitlist_per_user: usize,
    /// Open waitlist entries one zone keeps in memory.
    pub max_waitlist_per_zone: usize,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            no_show_after: Duration::minutes(15),
            check_in_opens_before: Duration::minutes(15),
            hold_for: Duration::minutes(10),
            max_waitlist_per_user: 5,
            max_waitlist_per_zone: 5_000,
        }
    }
}

/// The moment a `confirmed` reservation becomes a no-show: `no_show_after` past its
/// start — or past its creation, for a reservation made after its start (booking the
/// slot in progress) — and never later than its end.
pub fn no_show_deadline(r: &Reservation, config: &LifecycleConfig) -> DateTime<Utc> {
    deadline(r.interval, r.created_at, config)
}

fn deadline(
    interval: Interval,
    created_at: DateTime<Utc>,
    config: &LifecycleConfig,
) -> DateTime<Utc> {
    (interval.start.max(created_at) + config.no_show_after).min(interval.end)
}

/// `[opens, closes)`: check-in opens `check_in_opens_before` the start and closes at the
/// no-show deadline.
pub fn check_in_window(
    r: &Reservation,
    config: &LifecycleConfig,
) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        r.interval.start - config.check_in_opens_before,
        no_show_deadline(r, config),
    )
}

/// Why a check-in at `now` is refused, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckInRefusal {
    NotYetOpen { opens: DateTime<Utc> },
    Closed { closed: DateTime<Utc> },
}

pub fn check_in_allowed(
    r: &Reservation,
    now: DateTime<Utc>,
    config: &LifecycleConfig,
) -> Result<(), CheckInRefusal> {
    let (opens, closes) = check_in_window(r, config);
    if now < opens {
        Err(CheckInRefusal::NotYetOpen { opens })
    } else if now >= closes {
        Err(CheckInRefusal::Closed { closed: closes })
    } else {
        Ok(())
    }
}

/// The refusal of a check-in outside its window, worded for the member.
pub(crate) fn check_in_refusal(refusal: CheckInRefusal, config: &LifecycleConfig) -> EngineError {
    EngineError::Refused(match refusal {
        CheckInRefusal::NotYetOpen { .. } => format!(
            "Check-in is not open yet: it opens {} minutes before the start",
            config.check_in_opens_before.num_minutes()
        ),
        CheckInRefusal::Closed { .. } => format!(
            "Check-in has closed: a reservation must be checked in within {} minutes of its start",
            config.no_show_after.num_minutes()
        ),
    })
}

/// The status `r` is due to move to on its own at `now`, if any: a `confirmed`
/// reservation past its no-show deadline becomes `no_show`; a `checked_in` one whose
/// end has passed becomes `completed`.
pub fn due_transition(
    r: &Reservation,
    now: DateTime<Utc>,
    config: &LifecycleConfig,
) -> Option<ReservationStatus> {
    due_status(r.status, r.interval, r.created_at, now, config)
}

/// [`due_transition`] of a reservation given by the parts it depends on (a zone keeps
/// its reservations without their seat and zone).
pub(crate) fn due_status(
    status: ReservationStatus,
    interval: Interval,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
    config: &LifecycleConfig,
) -> Option<ReservationStatus> {
    match status {
        ReservationStatus::Confirmed if now >= deadline(interval, created_at, config) => {
            Some(ReservationStatus::NoShow)
        }
        ReservationStatus::CheckedIn if now >= interval.end => Some(ReservationStatus::Completed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Interval, SeatNumber, ZoneId};
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, m, 0).unwrap()
    }

    fn booking(status: ReservationStatus, created: DateTime<Utc>) -> Reservation {
        Reservation {
            id: Uuid::now_v7(),
            user_id: 1,
            seat: SeatNumber("A1".into()),
            zone: ZoneId("coworking".into()),
            interval: Interval::new(at(9, 0), at(11, 0)).unwrap(),
            status,
            created_at: created,
            series: None,
        }
    }

    #[test]
    fn no_show_is_due_fifteen_minutes_after_the_start() {
        let c = LifecycleConfig::default();
        let r = booking(ReservationStatus::Confirmed, at(7, 0));
        assert_eq!(due_transition(&r, at(9, 14), &c), None);
        assert_eq!(
            due_transition(&r, at(9, 15), &c),
            Some(ReservationStatus::NoShow)
        );
        assert_eq!(
            due_transition(&r, at(12, 0), &c),
            Some(ReservationStatus::NoShow),
            "a reservation that ended unvisited is a no-show, not completed"
        );
    }

    #[test]
    fn a_booking_made_after_its_start_gets_its_grace_from_creation() {
        let c = LifecycleConfig::default();
        let r = booking(ReservationStatus::Confirmed, at(9, 20));
        assert_eq!(no_show_deadline(&r, &c), at(9, 35));
        assert_eq!(due_transition(&r, at(9, 30), &c), None);
        assert_eq!(
            due_transition(&r, at(9, 35), &c),
            Some(ReservationStatus::NoShow)
        );
        // ... but never later than its end.
        let late = booking(ReservationStatus::Confirmed, at(10, 55));
        assert_eq!(no_show_deadline(&late, &c), at(11, 0));
    }

    #[test]
    fn checked_in_completes_at_the_end_and_others_never_move() {
        let c = LifecycleConfig::default();
        let r = booking(ReservationStatus::CheckedIn, at(7, 0));
        assert_eq!(due_transition(&r, at(10, 59), &c), None);
        assert_eq!(
            due_transition(&r, at(11, 0), &c),
            Some(ReservationStatus::Completed)
        );
        for status in [
            ReservationStatus::Cancelled,
            ReservationStatus::NoShow,
            ReservationStatus::Completed,
        ] {
            assert_eq!(
                due_transition(&booking(status, at(7, 0)), at(23, 0), &c),
                None
            );
        }
    }

    #[test]
    fn check_in_window_opens_before_the_start_and_closes_at_the_deadline() {
        let c = LifecycleConfig::default();
        let r = booking(ReservationStatus::Confirmed, at(7, 0));
        assert_eq!(
            check_in_allowed(&r, at(8, 44), &c),
            Err(CheckInRefusal::NotYetOpen { opens: at(8, 45) })
        );
        assert_eq!(check_in_allowed(&r, at(8, 45), &c), Ok(()));
        assert_eq!(check_in_allowed(&r, at(9, 14), &c), Ok(()));
        assert_eq!(
            check_in_allowed(&r, at(9, 15), &c),
            Err(CheckInRefusal::Closed { closed: at(9, 15) })
        );
    }
}
