//! What the unit of work's transactions have done since the engine started, for
//! `/metrics`: how many committed and failed, how many intents each carried, how long
//! each `Storage::commit` took, and how many intents failed for good.
//!
//! The commit path records a handful of relaxed atomic adds per transaction (never per
//! request, and no lock); readers take a [`CommitStats`] snapshot. The counts outlive
//! any one unit of work: the engine owns them and hands them to each one it spawns.
//!
//! "Transaction" means one call of `Storage::commit`. When a batch of several intents
//! fails, each intent with changes is then committed alone: the failed batch counts as
//! one failed transaction and every retry as one more transaction, committed or failed.
//! A batch whose intents carry no changes (barriers only) calls no commit and counts
//! nowhere.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the intents-per-transaction buckets: 1, 2, 4, … 1024 (the default
/// `max_batch`).
pub const INTENTS_PER_BATCH_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Upper bounds (microseconds) of the commit-duration buckets, 100 µs to 1 s: a local
/// SQLite commit takes well under a millisecond, a PostgreSQL one a few, and anything
/// near a second means the database is stalling every writer behind it.
pub const COMMIT_MICROS_BOUNDS: [u64; 13] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// A histogram with fixed bounds: one counter per bucket (not cumulative, so a sample is
/// one add), one for samples above the last bound, and the sum of the samples.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [u64; N],
    buckets: [AtomicU64; N],
    above: AtomicU64,
    sum: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    pub fn new(bounds: [u64; N]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bounds ascend");
        Self {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            above: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    pub fn record(&self, value: u64) {
        match self.bounds.iter().position(|&bound| value <= bound) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.above.fetch_add(1, Ordering::Relaxed),
        };
        self.sum.fetch_add(value, Ordering::Relaxed);
    }

    /// Cumulative counts per bound, as Prometheus wants them. The count is the sum of
    /// the buckets read, so the `+Inf` bucket always equals it even while commits go on.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (bound, cumulative)
            })
            .collect();
        HistogramSnapshot {
            buckets,
            count: cumulative + self.above.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// (upper bound, samples at or below it), ascending.
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum: u64,
}

/// The unit of work's counters; see the module documentation for what counts.
#[derive(Debug)]
pub struct UowStats {
    /// Transactions in flight now (set by the unit of work as batches go and land).
    in_flight: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    failed_intents: AtomicU64,
    intents_per_batch: Histogram<11>,
    commit_micros: Histogram<13>,
}

impl Default for UowStats {
    fn default() -> Self {
        Self {
            in_flight: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failed_intents: AtomicU64::new(0),
            intents_per_batch: Histogram::new(INTENTS_PER_BATCH_BOUNDS),
            commit_micros: Histogram::new(COMMIT_MICROS_BOUNDS),
        }
    }
}

impl UowStats {
    /// One `Storage::commit` of `intents` intents that took `took`.
    pub(crate) fn record_transaction(&self, intents: usize, took: Duration, committed: bool) {
        self.intents_per_batch.record(intents as u64);
        self.commit_micros
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        let outcome = if committed {
            &self.committed
        } else {
            &self.failed
        };
        outcome.fetch_add(1, Ordering::Relaxed);
    }

    /// How many transactions are in flight now.
    pub(crate) fn set_in_flight(&self, n: usize) {
        self.in_flight.store(n as u64, Ordering::Relaxed);
    }

    /// Intents whose commit failed for good (their participants undo).
    pub(crate) fn record_failed_intents(&self, n: usize) {
        if n > 0 {
            self.failed_intents.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> CommitStats {
        CommitStats {
            in_flight: self.in_flight.load(Ordering::Relaxed),
            committed: self.committed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            failed_intents: self.failed_intents.load(Ordering::Relaxed),
            intents_per_batch: self.intents_per_batch.snapshot(),
            commit_micros: self.commit_micros.snapshot(),
        }
    }
}

/// A reading of [`UowStats`]. Each field is read on its own, so during commits the
/// transaction counts and the histograms' counts may differ by the transaction being
/// recorded; at rest `committed + failed` equals both histograms' `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitStats {
    /// Transactions in flight now (at most `PICA_PG_COMMITS_IN_FLIGHT` on PostgreSQL,
    /// one on SQLite).
    pub in_flight: u64,
    /// Transactions committed, retries of single intents included.
    pub committed: u64,
    /// Transactions that failed: batches (whose intents are then retried alone) and
    /// single-intent transactions (whose failure is final).
    pub failed: u64,
    /// Intents whose commit failed for good.
    pub failed_intents: u64,
    /// Intents with changes in each transaction.
    pub intents_per_batch: HistogramSnapshot,
    /// Time each `Storage::commit` took, in microseconds.
    pub commit_micros: HistogramSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = Histogram::new(INTENTS_PER_BATCH_BOUNDS);
        for v in [1, 2, 3, 4, 5, 1024, 1025, 5000] {
            h.record(v);
        }
        let s = h.snapshot();
        let at = |bound: u64| s.buckets.iter().find(|(b, _)| *b == bound).unwrap().1;
        assert_eq!(s.buckets.len(), 11);
        assert_eq!(
            s.buckets.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
            INTENTS_PER_BATCH_BOUNDS
        );
        // Cumulative: 1 | 2 | 3,4 | 5 | … | 1024; then two above every bound.
        assert_eq!((at(1), at(2), at(4), at(8), at(512)), (1, 2, 4, 5, 5));
        assert_eq!(at(1024), 6);
        assert_eq!(s.count, 8);
        assert_eq!(s.sum, 1 + 2 + 3 + 4 + 5 + 1024 + 1025 + 5000);
        assert!(s.buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn commit_durations_are_bucketed_in_microseconds() {
        let stats = UowStats::default();
        stats.record_transaction(3, Duration::from_micros(80), true);
        stats.record_transaction(1, Duration::from_millis(3), false);
        stats.record_transaction(1, Duration::from_secs(2), true);
        stats.record_failed_intents(1);
        stats.record_failed_intents(0);
        let s = stats.snapshot();
        assert_eq!((s.committed, s.failed, s.failed_intents), (2, 1, 1));
        let at = |bound: u64| {
            s.commit_micros
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .unwrap()
                .1
        };
        assert_eq!((at(100), at(2_500), at(5_000), at(1_000_000)), (1, 1, 2, 2));
        assert_eq!(s.commit_micros.count, 3);
        assert_eq!(s.commit_micros.sum, 80 + 3_000 + 2_000_000);
        assert_eq!((s.intents_per_batch.count, s.intents_per_batch.sum), (3, 5));
    }
}
