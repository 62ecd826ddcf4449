//! Invariant 2 (docs/architecture.md) across zones: one user never holds two
//! overlapping active reservations, never more than `limit` active single ones, and
//! never more than `series_limit` active occurrences of weekly series. The two counts
//! are apart so that a member's standing Monday desk does not use up the bookings they
//! make day to day; overlaps are checked across both.
//!
//! Zone actors run in parallel, so this check cannot live inside one zone. The ledger is
//! a sharded map whose per-user entry is claimed atomically (under its shard's lock) in
//! the same turn in which a zone decides, so two zones can never both accept
//! overlapping requests of one user. Claims are released by the unit of work's outcome
//! when a commit fails, and when a reservation stops being active.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use dashmap::DashMap;

use crate::domain::{Interval, Reservation, ReservationId, UserId, ZoneId};
use crate::error::{EngineError, OccurrenceConflict};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Claim {
    id: ReservationId,
    /// Shared by every claim a zone loads at its start (a million claims, one string).
    zone: Arc<ZoneId>,
    interval: Interval,
    /// An occurrence of a series (counted against `series_limit`, not `limit`).
    series: bool,
}

#[derive(Debug)]
pub struct UserLedger {
    /// Keyed by member ids the database assigned, never by a key a client picks, so
    /// foldhash (seeded per process) rather than SipHash: a big space's start puts a
    /// million claims in here.
    claims: DashMap<UserId, Vec<Claim>, foldhash::fast::RandomState>,
    /// Most active single reservations per user.
    limit: usize,
    /// Most active series occurrences per user, across their series.
    series_limit: usize,
    /// False while the engine's first start is still loading zones. A claim checked
    /// then could miss an overlap with a reservation in a zone not loaded yet, so new
    /// claims are refused with [`EngineError::Starting`] until every zone has loaded;
    /// zones already up serve everything else meanwhile. Only ever goes false → true.
    loaded: AtomicBool,
}

impl UserLedger {
    /// A ledger whose series limit is `limit` too, until [`with_series_limit`](Self::with_series_limit).
    pub fn new(limit: usize) -> Self {
        Self {
            claims: DashMap::default(),
            limit,
            series_limit: limit,
            loaded: AtomicBool::new(true),
        }
    }

    /// The same ledger, refusing new claims until [`finish_loading`](Self::finish_loading):
    /// the engine's first start, while zones load their claims concurrently.
    pub fn loading(self) -> Self {
        self.loaded.store(false, Ordering::Release);
        self
    }

    /// Every zone's claims are in: new claims are checked from now on.
    pub fn finish_loading(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// `Starting` until every zone's claims are in.
    fn check_loaded(&self) -> Result<(), EngineError> {
        if self.is_loaded() {
            Ok(())
        } else {
            Err(EngineError::Starting)
        }
    }

    pub fn with_series_limit(mut self, series_limit: usize) -> Self {
        self.series_limit = series_limit;
        self
    }

    pub fn series_limit(&self) -> usize {
        self.series_limit
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Atomically checks and records a claim. Claims that ended before `now` no longer
    /// count and are dropped. Refused with `Starting` while the ledger is loading.
    pub fn try_claim(
        &self,
        user: UserId,
        id: ReservationId,
        zone: &ZoneId,
        interval: Interval,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.check_loaded()?;
        self.claim(user, id, zone, interval, now)
    }

    /// Puts back a claim that was the user's a moment ago (a hold whose swap for a
    /// reservation was refused or did not commit) or one rebuilt with its zone (the
    /// holds a starting zone finds): checked like [`try_claim`](Self::try_claim), but
    /// allowed while the ledger is loading, since it only restores what was there.
    pub fn restore(
        &self,
        user: UserId,
        id: ReservationId,
        zone: &ZoneId,
        interval: Interval,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.claim(user, id, zone, interval, now)
    }

    fn claim(
        &self,
        user: UserId,
        id: ReservationId,
        zone: &ZoneId,
        interval: Interval,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let mut claims = self.claims.entry(user).or_default();
        claims.retain(|c| c.interval.end > now);
        if let Some(c) = claims.iter().find(|c| c.interval.overlaps(&interval)) {
            return Err(EngineError::UserOverlap {
                conflict: c.interval,
            });
        }
        if claims.iter().filter(|c| !c.series).count() >= self.limit {
            return Err(EngineError::UserLimit { limit: self.limit });
        }
        claims.push(Claim {
            id,
            zone: Arc::new(zone.clone()),
            interval,
            series: false,
        });
        Ok(())
    }

    /// Claims every occurrence of a series at once, or none (under the user's shard
    /// lock, like [`try_claim`](Self::try_claim)): no occurrence may overlap the user's
    /// other claims (each one that does is named), and the user's series occurrences
    /// stay within `series_limit`.
    pub fn try_claim_series(
        &self,
        user: UserId,
        zone: &ZoneId,
        occurrences: &[(ReservationId, Interval)],
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.check_loaded()?;
        let mut claims = self.claims.entry(user).or_default();
        claims.retain(|c| c.interval.end > now);
        let conflicts: Vec<OccurrenceConflict> = occurrences
            .iter()
            .filter_map(|(_, interval)| {
                let c = claims.iter().find(|c| c.interval.overlaps(interval))?;
                Some(OccurrenceConflict {
                    interval: *interval,
                    reason: Box::new(EngineError::UserOverlap {
                        conflict: c.interval,
                    }),
                })
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(EngineError::SeriesConflict { conflicts });
        }
        let held = claims.iter().filter(|c| c.series).count();
        if held + occurrences.len() > self.series_limit {
            return Err(EngineError::SeriesLimit {
                limit: self.series_limit,
                held,
                asked: occurrences.len(),
            });
        }
        let zone = Arc::new(zone.clone());
        claims.extend(occurrences.iter().map(|(id, interval)| Claim {
            id: *id,
            zone: zone.clone(),
            interval: *interval,
            series: true,
        }));
        Ok(())
    }

    pub fn release(&self, user: UserId, id: &ReservationId) {
        if let Some(mut claims) = self.claims.get_mut(&user) {
            claims.retain(|c| &c.id != id);
        }
        self.claims.remove_if(&user, |_, claims| claims.is_empty());
    }

    /// Replaces every claim of `zone` by the zone's active reservations as rebuilt from
    /// the database. Called by a restarting zone once no write of it is in flight; it
    /// walks every user's claims, so the engine's first start, when the ledger holds
    /// nothing of the zone yet, uses [`load_zone`](Self::load_zone) instead.
    pub fn reset_zone(&self, zone: &ZoneId, active: &[Reservation]) {
        for mut claims in self.claims.iter_mut() {
            claims.retain(|c| *c.zone != *zone);
        }
        self.load_zone(zone, active);
        self.claims.retain(|_, claims| !claims.is_empty());
    }

    /// Adds the claims of `zone`'s active reservations, touching only their users.
    pub fn load_zone(&self, zone: &ZoneId, active: &[Reservation]) {
        let zone = Arc::new(zone.clone());
        for r in active.iter().filter(|r| r.status.is_active()) {
            self.claims.entry(r.user_id).or_default().push(Claim {
                id: r.id,
                zone: zone.clone(),
                interval: r.interval,
                series: r.series.is_some(),
            });
        }
    }

    /// The zone of `user`'s claim `id` (an active reservation or a hold), if they hold
    /// it: where a cancel of that reservation is decided.
    pub fn zone_of(&self, user: UserId, id: &ReservationId) -> Option<ZoneId> {
        let claims = self.claims.get(&user)?;
        claims
            .iter()
            .find(|c| &c.id == id)
            .map(|c| (*c.zone).clone())
    }

    /// Number of claims a user holds (for tests and metrics).
    pub fn claims_of(&self, user: UserId) -> usize {
        self.claims.get(&user).map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
    }
    fn iv(a: u32, b: u32) -> Interval {
        Interval::new(at(a), at(b)).unwrap()
    }
    fn zone(z: &str) -> ZoneId {
        ZoneId(z.into())
    }

    #[test]
    fn overlapping_claims_across_zones_are_refused() {
        let ledger = UserLedger::new(3);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(9, 11), at(0))
            .unwrap();
        let err = ledger.try_claim(1, Uuid::now_v7(), &zone("quiet"), iv(10, 12), at(0));
        assert_eq!(
            err,
            Err(EngineError::UserOverlap {
                conflict: iv(9, 11)
            })
        );
        // Another user, or a touching interval, is fine.
        ledger
            .try_claim(2, Uuid::now_v7(), &zone("quiet"), iv(10, 12), at(0))
            .unwrap();
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("quiet"), iv(11, 12), at(0))
            .unwrap();
    }

    #[test]
    fn limit_counts_only_claims_that_have_not_ended() {
        let ledger = UserLedger::new(2);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(1, 2), at(0))
            .unwrap();
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(3, 4), at(0))
            .unwrap();
        assert_eq!(
            ledger.try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(5, 6), at(0)),
            Err(EngineError::UserLimit { limit: 2 })
        );
        // At 02:00 the first claim has ended and no longer counts.
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(5, 6), at(2))
            .unwrap();
    }

    #[test]
    fn a_loading_ledger_refuses_new_claims_but_restores_old_ones() {
        let ledger = UserLedger::new(2).loading();
        let hold = Uuid::now_v7();
        assert_eq!(
            ledger.try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(3, 4), at(0)),
            Err(EngineError::Starting)
        );
        let series = [(Uuid::now_v7(), iv(5, 6))];
        assert_eq!(
            ledger.try_claim_series(1, &zone("cafe"), &series, at(0)),
            Err(EngineError::Starting)
        );
        assert_eq!(ledger.claims_of(1), 0);
        // A hold put back (or rebuilt with its zone) is still checked against the rest.
        ledger
            .restore(1, hold, &zone("cafe"), iv(3, 4), at(0))
            .unwrap();
        assert_eq!(
            ledger.restore(1, Uuid::now_v7(), &zone("quiet"), iv(3, 5), at(0)),
            Err(EngineError::UserOverlap { conflict: iv(3, 4) })
        );
        ledger.finish_loading();
        assert!(ledger.is_loaded());
        assert_eq!(
            ledger.try_claim(1, Uuid::now_v7(), &zone("quiet"), iv(3, 5), at(0)),
            Err(EngineError::UserOverlap { conflict: iv(3, 4) })
        );
        ledger
            .try_claim_series(1, &zone("cafe"), &series, at(0))
            .unwrap();
        assert_eq!(ledger.zone_of(1, &hold), Some(zone("cafe")));
    }

    #[test]
    fn a_series_is_claimed_whole_or_not_at_all_and_counted_apart() {
        let ledger = UserLedger::new(1).with_series_limit(3);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(10, 11), at(0))
            .unwrap();
        let ids = |ivs: &[Interval]| -> Vec<(ReservationId, Interval)> {
            ivs.iter().map(|iv| (Uuid::now_v7(), *iv)).collect()
        };
        // One occurrence overlaps the single booking: it is named, nothing is claimed.
        let refused =
            ledger.try_claim_series(1, &zone("quiet"), &ids(&[iv(8, 9), iv(10, 12)]), at(0));
        assert_eq!(
            refused,
            Err(EngineError::SeriesConflict {
                conflicts: vec![OccurrenceConflict {
                    interval: iv(10, 12),
                    reason: Box::new(EngineError::UserOverlap {
                        conflict: iv(10, 11)
                    }),
                }]
            })
        );
        assert_eq!(ledger.claims_of(1), 1);
        // Occurrences do not use up the single limit (1, already reached) ...
        ledger
            .try_claim_series(1, &zone("quiet"), &ids(&[iv(12, 13), iv(14, 15)]), at(0))
            .unwrap();
        // ... but count one each against the series limit.
        assert_eq!(
            ledger.try_claim_series(1, &zone("quiet"), &ids(&[iv(16, 17), iv(18, 19)]), at(0)),
            Err(EngineError::SeriesLimit {
                limit: 3,
                held: 2,
                asked: 2
            })
        );
        assert_eq!(
            ledger.try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(20, 21), at(0)),
            Err(EngineError::UserLimit { limit: 1 })
        );
        assert_eq!(ledger.claims_of(1), 3);
    }

    #[test]
    fn a_claim_names_its_zone_until_released() {
        let ledger = UserLedger::new(3);
        let id = Uuid::now_v7();
        ledger
            .try_claim(1, id, &zone("quiet"), iv(9, 11), at(0))
            .unwrap();
        assert_eq!(ledger.zone_of(1, &id), Some(zone("quiet")));
        // Only its own user's claim.
        assert_eq!(ledger.zone_of(2, &id), None);
        ledger.release(1, &id);
        assert_eq!(ledger.zone_of(1, &id), None);
    }

    #[test]
    fn release_frees_the_interval() {
        let ledger = UserLedger::new(3);
        let id = Uuid::now_v7();
        ledger
            .try_claim(1, id, &zone("cafe"), iv(9, 11), at(0))
            .unwrap();
        ledger.release(1, &id);
        assert_eq!(ledger.claims_of(1), 0);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(9, 11), at(0))
            .unwrap();
    }

    #[test]
    fn reset_zone_replaces_only_that_zones_claims() {
        let ledger = UserLedger::new(3);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(9, 10), at(0))
            .unwrap();
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("quiet"), iv(12, 13), at(0))
            .unwrap();
        ledger.reset_zone(&zone("cafe"), &[]);
        assert_eq!(ledger.claims_of(1), 1);
        ledger
            .try_claim(1, Uuid::now_v7(), &zone("cafe"), iv(9, 10), at(0))
            .unwrap();
    }
}
