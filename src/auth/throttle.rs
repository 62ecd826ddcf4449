//! Brute-force protection for login: fixed windows counting *failed* attempts per
//! username and per client address. Pure and clock-driven, so tests move time.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dashmap::DashMap;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    failures: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub per_username: u32,
    pub per_address: u32,
    pub window: Duration,
}

/// Most tracked keys before expired windows are swept (a bound on memory).
const SWEEP_ABOVE: usize = 100_000;

pub struct LoginThrottle {
    limits: ThrottleLimits,
    users: DashMap<String, Window>,
    addresses: DashMap<IpAddr, Window>,
}

impl LoginThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            users: DashMap::new(),
            addresses: DashMap::new(),
        }
    }

    /// `Err(retry_after)` while either the username or the address is locked out.
    pub fn check(
        &self,
        username: &str,
        address: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        let user = blocked(
            &self.users,
            &username.to_lowercase(),
            self.limits.per_username,
            self.limits.window,
            now,
        );
        let addr = blocked(
            &self.addresses,
            &address,
            self.limits.per_address,
            self.limits.window,
            now,
        );
        match user.max(addr) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str, address: IpAddr, now: DateTime<Utc>) {
        bump(
            &self.users,
            username.to_lowercase(),
            self.limits.window,
            now,
        );
        bump(&self.addresses, address, self.limits.window, now);
        if self.users.len() + self.addresses.len() > SWEEP_ABOVE {
            let window = self.limits.window;
            self.users.retain(|_, w| !expired(w, window, now));
            self.addresses.retain(|_, w| !expired(w, window, now));
        }
    }

    /// A successful login clears the username's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        self.users.remove(&username.to_lowercase());
    }
}

fn expired(w: &Window, window: Duration, now: DateTime<Utc>) -> bool {
    now >= w.started + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX)
}

fn blocked<K: Eq + Hash>(
    map: &DashMap<K, Window>,
    key: &K,
    limit: u32,
    window: Duration,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let w = map.get(key)?;
    if expired(&w, window, now) || w.failures < limit {
        return None;
    }
    let ends = w.started + chrono::Duration::from_std(window).ok()?;
    (ends - now)
        .to_std()
        .ok()
        .map(|d| d.max(Duration::from_secs(1)))
}

fn bump<K: Eq + Hash>(map: &DashMap<K, Window>, key: K, window: Duration, now: DateTime<Utc>) {
    let mut w = map.entry(key).or_insert(Window {
        started: now,
        failures: 0,
    });
    if expired(&w, window, now) {
        *w = Window {
            started: now,
            failures: 0,
        };
    }
    w.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_900_000_000 + s, 0).unwrap()
    }

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            per_username: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn username_locks_after_limit_and_recovers_after_the_window() {
        let th = throttle();
        for _ in 0..3 {
            assert!(th.check("Ana", A, t(0)).is_ok());
            th.record_failure("Ana", A, t(0));
        }
        assert_eq!(
            th.check("ana", B, t(10)),
            Err(Duration::from_secs(50)),
            "case-insensitive, any address"
        );
        assert!(
            th.check("ben", B, t(10)).is_ok(),
            "other users are unaffected"
        );
        assert!(th.check("ana", B, t(60)).is_ok(), "the window has passed");
    }

    #[test]
    fn address_locks_across_usernames() {
        let th = throttle();
        for i in 0..5 {
            th.record_failure(&format!("user{i}"), A, t(0));
        }
        assert!(th.check("someone", A, t(1)).is_err());
        assert!(th.check("someone", B, t(1)).is_ok());
    }

    #[test]
    fn success_clears_the_username() {
        let th = throttle();
        for _ in 0..2 {
            th.record_failure("ana", A, t(0));
        }
        th.record_success("ana");
        th.record_failure("ana", A, t(0));
        assert!(th.check("ana", B, t(0)).is_ok());
    }
}
