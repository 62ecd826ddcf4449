//! A circuit breaker as a pure state machine: the caller passes the time in, so it is
//! tested without sleeping and driven in the service by the injectable clock.
//!
//! - **Closed**: calls go through; `threshold` failed calls in a row open the circuit.
//! - **Open**: calls are refused (the caller answers 503 with `Retry-After`) until
//!   `open_for` has passed.
//! - **Half-open**: one probe call goes through, the others are refused; the probe's
//!   success closes the circuit, its failure opens it again.

use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the circuit (at least 1).
    pub threshold: u32,
    /// How long the circuit stays open before a probe is let through.
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed { failures: u32 },
    Open { until: DateTime<Utc> },
    HalfOpen { probing: bool },
}

/// What a caller was let through as; report the outcome with the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call while the circuit is closed.
    Call,
    /// The single trial call of a half-open circuit.
    Probe,
}

#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    state: BreakerState,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                threshold: config.threshold.max(1),
                ..config
            },
            state: BreakerState::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Lets a call through, or refuses it with how long until it is worth trying again
    /// (at least one second).
    pub fn admit(&mut self, now: DateTime<Utc>) -> Result<Admission, Duration> {
        match self.state {
            BreakerState::Closed { .. } => Ok(Admission::Call),
            BreakerState::Open { until } if now < until => {
                let left = (until - now).to_std().unwrap_or_default();
                Err(left.max(Duration::from_secs(1)))
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { probing: false } => {
                self.state = BreakerState::HalfOpen { probing: true };
                Ok(Admission::Probe)
            }
            BreakerState::HalfOpen { probing: true } => Err(Duration::from_secs(1)),
        }
    }

    /// The partner answered. Closes a half-open circuit; resets the failure count.
    pub fn record_success(&mut self, admission: Admission) {
        match (admission, self.state) {
            (Admission::Call, BreakerState::Closed { .. })
            | (Admission::Probe, BreakerState::HalfOpen { .. }) => {
                self.state = BreakerState::Closed { failures: 0 };
            }
            // A call let through before the circuit opened says nothing about now.
            _ => {}
        }
    }

    /// The partner failed (unreachable, timed out, or a server error).
    pub fn record_failure(&mut self, admission: Admission, now: DateTime<Utc>) {
        let open = BreakerState::Open {
            until: now + self.config.open_for,
        };
        match (admission, self.state) {
            (Admission::Call, BreakerState::Closed { failures }) => {
                let failures = failures + 1;
                self.state = if failures >= self.config.threshold {
                    open
                } else {
                    BreakerState::Closed { failures }
                };
            }
            (Admission::Probe, BreakerState::HalfOpen { .. }) => self.state = open,
            _ => {}
        }
    }

    /// The call was abandoned before an outcome (the client went away): a probe's
    /// slot is freed so the next call can probe.
    pub fn abandon(&mut self, admission: Admission) {
        if admission == Admission::Probe && self.state == (BreakerState::HalfOpen { probing: true })
        {
            self.state = BreakerState::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    fn breaker(threshold: u32, open_ms: u64) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            threshold,
            open_for: Duration::from_millis(open_ms),
        })
    }

    #[test]
    fn opens_after_threshold_consecutive_failures_only() {
        let mut b = breaker(3, 10_000);
        for _ in 0..2 {
            let a = b.admit(t(0)).unwrap();
            b.record_failure(a, t(0));
        }
        // A success in between resets the count.
        let a = b.admit(t(0)).unwrap();
        b.record_success(a);
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        for i in 0..3 {
            assert_eq!(b.admit(t(i)), Ok(Admission::Call));
            b.record_failure(Admission::Call, t(i));
        }
        assert_eq!(b.state(), BreakerState::Open { until: t(10_002) });
        assert_eq!(b.admit(t(2_500)), Err(Duration::from_millis(7_502)));
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let mut b = breaker(1, 1_500);
        let a = b.admit(t(0)).unwrap();
        b.record_failure(a, t(0));
        assert_eq!(b.admit(t(1_000)), Err(Duration::from_secs(1)));
    }

    #[test]
    fn half_open_lets_one_probe_through_and_its_success_closes() {
        let mut b = breaker(1, 1_000);
        let a = b.admit(t(0)).unwrap();
        b.record_failure(a, t(0));
        assert!(b.admit(t(999)).is_err());
        assert_eq!(b.admit(t(1_000)), Ok(Admission::Probe));
        assert_eq!(b.state(), BreakerState::HalfOpen { probing: true });
        assert_eq!(b.admit(t(1_001)), Err(Duration::from_secs(1)), "one probe");
        b.record_success(Admission::Probe);
        assert_eq!(b.state(), BreakerState::Closed { failures: 0 });
        assert_eq!(b.admit(t(1_002)), Ok(Admission::Call));
    }

    #[test]
    fn a_failed_probe_opens_again_from_its_failure_time() {
        let mut b = breaker(2, 1_000);
        b.record_failure(Admission::Call, t(0));
        b.record_failure(Admission::Call, t(0));
        assert_eq!(b.admit(t(5_000)), Ok(Admission::Probe));
        b.record_failure(Admission::Probe, t(5_100));
        assert_eq!(b.state(), BreakerState::Open { until: t(6_100) });
        assert!(b.admit(t(6_000)).is_err());
        assert_eq!(b.admit(t(6_100)), Ok(Admission::Probe));
    }

    #[test]
    fn stale_outcomes_do_not_move_the_state() {
        let mut b = breaker(1, 1_000);
        // Two calls in flight; the first fails and opens the circuit.
        let first = b.admit(t(0)).unwrap();
        let second = b.admit(t(0)).unwrap();
        b.record_failure(first, t(10));
        // The second's success arrives later: the circuit stays open.
        b.record_success(second);
        assert_eq!(b.state(), BreakerState::Open { until: t(1_010) });
        // A stale call failing while half-open does not reopen; only the probe counts.
        assert_eq!(b.admit(t(2_000)), Ok(Admission::Probe));
        b.record_failure(Admission::Call, t(2_000));
        assert_eq!(b.state(), BreakerState::HalfOpen { probing: true });
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let mut b = breaker(1, 1_000);
        b.record_failure(Admission::Call, t(0));
        assert_eq!(b.admit(t(1_000)), Ok(Admission::Probe));
        b.abandon(Admission::Probe);
        assert_eq!(b.admit(t(1_001)), Ok(Admission::Probe));
        b.abandon(Admission::Call);
        assert_eq!(b.state(), BreakerState::HalfOpen { probing: true });
    }
}
