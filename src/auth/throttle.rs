//! Brute-force protection for login. Fixed windows count failed attempts under three
//! keys, each with its own limit:
//!
//! - the pair (username, client address): the tight limit, so one source gets only a
//!   few guesses at one account;
//! - the client address alone: bounds one source guessing across many usernames;
//! - the username alone, from anywhere: a higher limit, bounding guesses spread over
//!   many addresses. A stranger's failures count here and under their own pair, never
//!   under the owner's pair, so they cannot lock the owner out with a few guesses.
//!
//! An attempt *reserves* its place under all three keys before the password is checked
//! (one lock, check-and-increment in one step), so concurrent attempts cannot get more
//! password checks than the limits allow. The reservation then becomes a failure, or is
//! refunded (success, or no check happened). Pure and clock-driven, so tests move time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Failures per (username, address) pair in one window.
    pub per_username: u32,
    /// Failures per client address, across usernames.
    pub per_address: u32,
    /// Failures per username from all addresses together.
    pub per_username_global: u32,
    pub window: Duration,
}

/// Most keys tracked at once (a bound on memory: an entry is a username and a window,
/// about 100 bytes). Past it, expired windows are swept; if it is still full, attempts
/// under new keys are refused until windows expire.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, IpAddr),
    Address(IpAddr),
    Username(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
    /// Attempts reserved and not yet settled: they count against the limit.
    pending: u32,
}

impl Window {
    fn expired(&self, window: chrono::Duration, now: DateTime<Utc>) -> bool {
        self.started
            .checked_add_signed(window)
            .is_some_and(|ends| now >= ends)
    }
}

/// Why an attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A limit is reached; retry after this long.
    Locked(Duration),
    /// The throttle tracks as many keys as it may; retry shortly.
    Full,
}

/// A reserved attempt. Settle it with [`LoginThrottle::failed`],
/// [`LoginThrottle::succeeded`] or [`LoginThrottle::refund`]; one that is never settled
/// (the request was dropped mid-check) counts as a failure.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: [Key; 3],
    settled: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.throttle.settle(&self.keys, Outcome::Failed);
        }
    }
}

impl Attempt<'_> {
    /// The password was wrong (or the username unknown).
    pub fn failed(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, Outcome::Failed);
    }

    /// The password was right: this attempt is refunded and the pair's failures are
    /// cleared. The address's and the username's other failures stay: they were not
    /// the owner's.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, Outcome::Succeeded);
    }

    /// No password check happened (the hashing pool was full, the database failed).
    pub fn refund(mut self) {
        self.settled = true;
        self.throttle.settle(&self.keys, Outcome::Refunded);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Failed,
    Succeeded,
    Refunded,
}

struct State {
    windows: HashMap<Key, Window>,
    last_sweep: Option<DateTime<Utc>>,
}

pub struct LoginThrottle {
    limits: ThrottleLimits,
    max_tracked: usize,
    // One lock over all keys: an attempt checks and reserves under three keys at once,
    // and the work under it is a few hash lookups (next to an argon2 run per attempt).
    state: Mutex<State>,
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self::with_capacity(limits, MAX_TRACKED)
    }

    pub fn with_capacity(limits: ThrottleLimits, max_tracked: usize) -> Self {
        Self {
            limits,
            max_tracked,
            state: Mutex::new(State {
                windows: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.limits.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Reserves an attempt for `username` from `address`, or refuses it when a limit
    /// (counting attempts in flight) is reached.
    pub fn reserve(
        &self,
        username: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Attempt<'_>, Refusal> {
        let name = username.to_lowercase();
        let keys = [
            Key::Pair(name.clone(), address),
            Key::Address(address),
            Key::Username(name),
        ];
        let limits = [
            self.limits.per_username,
            self.limits.per_address,
            self.limits.per_username_global,
        ];
        let window = self.window();
        let mut state = self.lock();
        let new_keys = keys
            .iter()
            .filter(|k| !state.windows.contains_key(*k))
            .count();
        if state.windows.len() + new_keys > self.max_tracked {
            self.sweep(&mut state, now);
            if state.windows.len() + new_keys > self.max_tracked {
                return Err(Refusal::Full);
            }
        }
        let mut wait: Option<Duration> = None;
        for (key, limit) in keys.iter().zip(limits) {
            let Some(w) = state.windows.get_mut(key) else {
                if limit == 0 {
                    wait = wait.max(Some(self.limits.window));
                }
                continue;
            };
            if w.expired(window, now) {
                // The window has passed: its failures are forgotten, attempts in flight
                // carry over into the new one.
                *w = Window {
                    started: now,
                    failures: 0,
                    pending: w.pending,
                };
            }
            if w.failures + w.pending >= limit {
                let left = if w.failures >= limit {
                    w.started
                        .checked_add_signed(window)
                        .and_then(|ends| (ends - now).to_std().ok())
                        .unwrap_or(self.limits.window)
                } else {
                    // Full only because of attempts in flight, which may yet be refunded.
                    Duration::ZERO
                };
                wait = wait.max(Some(left.max(Duration::from_secs(1))));
            }
        }
        if let Some(wait) = wait {
            return Err(Refusal::Locked(wait));
        }
        for key in &keys {
            state
                .windows
                .entry(key.clone())
                .or_insert(Window {
                    started: now,
                    failures: 0,
                    pending: 0,
                })
                .pending += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
            settled: false,
        })
    }

    fn settle(&self, keys: &[Key; 3], outcome: Outcome) {
        let mut state = self.lock();
        for key in keys {
            let Some(w) = state.windows.get_mut(key) else {
                continue;
            };
            w.pending = w.pending.saturating_sub(1);
            match outcome {
                Outcome::Failed => w.failures += 1,
                Outcome::Succeeded if matches!(key, Key::Pair(..)) => w.failures = 0,
                Outcome::Succeeded | Outcome::Refunded => {}
            }
            if w.failures == 0 && w.pending == 0 {
                state.windows.remove(key);
            }
        }
    }

    /// Drops windows that have passed and hold no attempt in flight. At most once a
    /// second, so a full table does not make every attempt scan it.
    fn sweep(&self, state: &mut State, now: DateTime<Utc>) {
        if state
            .last_sweep
            .is_some_and(|at| now < at + chrono::Duration::seconds(1))
        {
            return;
        }
        state.last_sweep = Some(now);
        let window = self.window();
        state
            .windows
            .retain(|_, w| w.pending > 0 || !w.expired(window, now));
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.lock().windows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_900_000_000 + s, 0).unwrap()
    }

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            per_username: 3,
            per_address: 5,
            per_username_global: 4,
            window: Duration::from_secs(60),
        }
    }

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(limits())
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
    const C: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 3));

    fn fail(th: &LoginThrottle, user: &str, addr: IpAddr, at: DateTime<Utc>) {
        th.reserve(user, addr, at).expect("not locked yet").failed();
    }

    #[test]
    fn the_pair_locks_after_its_limit_and_recovers_after_the_window() {
        let th = throttle();
        for _ in 0..3 {
            fail(&th, "Ana", A, t(0));
        }
        assert_eq!(
            th.reserve("ana", A, t(10)).err(),
            Some(Refusal::Locked(Duration::from_secs(50))),
            "case-insensitive"
        );
        assert!(
            th.reserve("ben", A, t(10)).is_ok(),
            "other users are unaffected"
        );
        assert!(th.reserve("ana", A, t(60)).is_ok(), "the window has passed");
    }

    #[test]
    fn a_stranger_elsewhere_does_not_lock_the_owner_out() {
        let th = throttle();
        for _ in 0..3 {
            fail(&th, "ana", B, t(0));
        }
        assert!(
            th.reserve("ana", B, t(1)).is_err(),
            "the stranger is locked"
        );
        th.reserve("ana", A, t(1))
            .expect("the owner is not")
            .succeeded();
        // Spread over more addresses, the stranger reaches the username's global limit.
        fail(&th, "ana", C, t(2));
        assert!(
            th.reserve("ana", A, t(3)).is_err(),
            "the global limit holds"
        );
        assert!(
            th.reserve("ana", A, t(60)).is_ok(),
            "until the window passes"
        );
    }

    #[test]
    fn the_address_locks_across_usernames() {
        let th = throttle();
        for i in 0..5 {
            fail(&th, &format!("user{i}"), A, t(0));
        }
        assert!(th.reserve("someone", A, t(1)).is_err());
        assert!(th.reserve("someone", B, t(1)).is_ok());
    }

    #[test]
    fn success_clears_the_pair_and_refunds_its_reservation() {
        let th = throttle();
        for _ in 0..2 {
            fail(&th, "ana", A, t(0));
        }
        th.reserve("ana", A, t(0)).unwrap().succeeded();
        for _ in 0..2 {
            fail(&th, "ana", A, t(0));
        }
        // The pair was cleared (2 of 3 again), but the global count kept all 4.
        assert!(th.reserve("ana", A, t(0)).is_err(), "global limit 4");
        th.reserve("ben", A, t(0)).unwrap().refund();
        assert_eq!(
            th.tracked(),
            3,
            "ben's refunded attempt left nothing behind"
        );
    }

    #[test]
    fn attempts_in_flight_count_and_an_abandoned_one_is_a_failure() {
        let th = throttle();
        let held: Vec<_> = (0..3)
            .map(|_| th.reserve("ana", A, t(0)).unwrap())
            .collect();
        assert_eq!(
            th.reserve("ana", A, t(0)).err(),
            Some(Refusal::Locked(Duration::from_secs(1))),
            "full of attempts in flight: retry soon"
        );
        let mut held = held.into_iter();
        held.next().unwrap().refund();
        drop(held.next()); // dropped unsettled
        held.next().unwrap().failed();
        // Two failures, one free place.
        th.reserve("ana", A, t(0)).unwrap().failed();
        assert!(th.reserve("ana", A, t(0)).is_err());
    }

    #[test]
    fn concurrent_reservations_never_exceed_the_limit() {
        let th = throttle();
        let granted = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..100 {
                s.spawn(|| {
                    if let Ok(attempt) = th.reserve("ana", A, t(0)) {
                        granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        attempt.failed();
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 3);
    }

    #[test]
    fn the_number_of_keys_is_bounded() {
        let th = LoginThrottle::with_capacity(limits(), 6);
        fail(&th, "ana", A, t(0)); // 3 keys
        fail(&th, "ben", A, t(0)); // 2 more (the address is shared)
        assert_eq!(
            th.reserve("cleo", B, t(1)).err(),
            Some(Refusal::Full),
            "3 more keys do not fit"
        );
        // Known keys still work while the table is full.
        assert!(th.reserve("ana", A, t(1)).is_ok());
        // Once the windows have passed, a sweep makes room.
        assert!(th.reserve("cleo", B, t(61)).is_ok());
        assert!(th.tracked() <= 6);
    }
}
