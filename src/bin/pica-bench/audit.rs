//! The audit after every point: reads every reservation from the database and checks
//! the invariants against the generator's ledger.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use pica::storage::Db;
use pica_actors::{Reservation, ReservationStatus};
use serde::Serialize;
use uuid::Uuid;

use crate::ledger::{Expect, Ledger};

/// At most this many violations are listed (all are counted).
const SHOWN: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub ok: bool,
    pub rows: usize,
    pub active_rows: usize,
    pub acknowledged_creates: usize,
    pub acknowledged_cancels: u64,
    pub refused_creates: u64,
    pub unknown_creates: u64,
    /// Rows of the generator's users that no 2xx announced; allowed only up to
    /// `unknown_creates` (writes whose answer was lost).
    pub unacknowledged_rows: usize,
    pub violation_count: usize,
    pub violations: Vec<String>,
    pub seconds: f64,
}

pub struct Auditor {
    db: Db,
    /// Reservations that existed before this run (earlier runs on the same database).
    before: HashSet<Uuid>,
    users: HashSet<i64>,
}

impl Auditor {
    pub async fn connect(url: &str, users: impl IntoIterator<Item = i64>) -> anyhow::Result<Self> {
        let db = Db::connect(url, 2)
            .await
            .with_context(|| format!("connecting to {url} for the audit"))?;
        let before = db
            .all_reservations()
            .await
            .context("reading reservations")?
            .into_iter()
            .map(|r| r.id)
            .collect();
        Ok(Auditor {
            db,
            before,
            users: users.into_iter().collect(),
        })
    }

    pub async fn audit(&self, ledger: &Ledger) -> anyhow::Result<AuditReport> {
        let started = std::time::Instant::now();
        let rows = self
            .db
            .all_reservations()
            .await
            .context("reading reservations for the audit")?;
        let mut report = check(&rows, ledger, &self.before, &self.users);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    pub async fn close(self) {
        self.db.close().await;
    }
}

/// The audit itself, on rows already read.
pub fn check(
    rows: &[Reservation],
    ledger: &Ledger,
    before: &HashSet<Uuid>,
    users: &HashSet<i64>,
) -> AuditReport {
    let mut violations = Vec::new();
    let active: Vec<&Reservation> = rows.iter().filter(|r| r.status.is_active()).collect();

    // Invariant 1 (docs/architecture.md): no two active reservations overlap on a seat.
    let mut by_seat: HashMap<&str, Vec<&Reservation>> = HashMap::new();
    for r in &active {
        by_seat.entry(r.seat.0.as_str()).or_default().push(r);
    }
    for list in by_seat.values_mut() {
        overlaps(list, "seat", &mut violations);
    }
    // Invariant 2 (docs/architecture.md): no user holds two overlapping active
    // reservations.
    let mut by_user: HashMap<i64, Vec<&Reservation>> = HashMap::new();
    for r in &active {
        by_user.entry(r.user_id).or_default().push(r);
    }
    for list in by_user.values_mut() {
        overlaps(list, "user", &mut violations);
    }

    // Every acknowledged write is stored, with the status its answers imply.
    let stored: HashMap<Uuid, &Reservation> = rows.iter().map(|r| (r.id, r)).collect();
    for (id, expect) in &ledger.reservations {
        match stored.get(id) {
            None => violations.push(format!("acknowledged reservation {id} is not stored")),
            Some(r) => {
                let fine = match expect {
                    Expect::Active => r.status.is_active(),
                    Expect::Cancelled => r.status == ReservationStatus::Cancelled,
                    Expect::Either => {
                        r.status.is_active() || r.status == ReservationStatus::Cancelled
                    }
                };
                if !fine {
                    violations.push(format!(
                        "reservation {id} is {} but its answers imply {expect:?}",
                        r.status
                    ));
                }
            }
        }
    }

    // Nothing refused is stored: every new row of our users was announced by a 2xx,
    // except at most one per write whose answer was lost.
    let unacknowledged = rows
        .iter()
        .filter(|r| users.contains(&r.user_id))
        .filter(|r| !before.contains(&r.id) && !ledger.reservations.contains_key(&r.id))
        .count();
    if unacknowledged as u64 > ledger.unknown_creates {
        violations.push(format!(
            "{unacknowledged} stored reservations were never acknowledged, but only {} \
             writes had an unknown outcome: a refused write was stored",
            ledger.unknown_creates
        ));
    }

    let violation_count = violations.len();
    violations.truncate(SHOWN);
    AuditReport {
        ok: violation_count == 0,
        rows: rows.len(),
        active_rows: active.len(),
        acknowledged_creates: ledger.reservations.len(),
        acknowledged_cancels: ledger.acknowledged_cancels,
        refused_creates: ledger.refused_creates,
        unknown_creates: ledger.unknown_creates,
        unacknowledged_rows: unacknowledged,
        violation_count,
        violations,
        seconds: 0.0,
    }
}

/// Sweeps `list` by start; any reservation starting before the furthest end seen so
/// far overlaps the one holding that end.
fn overlaps(list: &mut [&Reservation], what: &str, violations: &mut Vec<String>) {
    list.sort_by_key(|r| (r.interval.start, r.interval.end));
    let mut furthest: Option<&Reservation> = None;
    for r in list.iter() {
        if let Some(f) = furthest {
            if r.interval.start < f.interval.end {
                violations.push(format!(
                    "{what} overlap: {} ({} {} {}..{}) and {} ({} {} {}..{})",
                    f.id,
                    f.seat,
                    f.user_id,
                    f.interval.start,
                    f.interval.end,
                    r.id,
                    r.seat,
                    r.user_id,
                    r.interval.start,
                    r.interval.end
                ));
            }
            if r.interval.end <= f.interval.end {
                continue;
            }
        }
        furthest = Some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Event;
    use chrono::{TimeZone, Utc};
    use pica_actors::{Interval, SeatNumber, ZoneId};

    fn r(user: i64, seat: &str, from: u32, to: u32, status: ReservationStatus) -> Reservation {
        let at = |h| Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap();
        Reservation {
            id: Uuid::now_v7(),
            user_id: user,
            seat: SeatNumber(seat.into()),
            zone: ZoneId("coworking".into()),
            interval: Interval::new(at(from), at(to)).unwrap(),
            status,
            created_at: at(0),
            series: None,
        }
    }

    fn acknowledge(rows: &[Reservation]) -> Ledger {
        let mut ledger = Ledger::default();
        ledger.apply(rows.iter().map(|r| Event::Created(r.id)));
        ledger.apply(
            rows.iter()
                .filter(|r| r.status == ReservationStatus::Cancelled)
                .map(|r| Event::Cancelled(r.id)),
        );
        ledger
    }

    use ReservationStatus::{Cancelled, Confirmed};

    #[test]
    fn a_clean_history_passes() {
        let rows = vec![
            r(1, "A1", 9, 11, Confirmed),
            r(2, "A1", 11, 12, Confirmed),
            r(2, "A1", 9, 12, Cancelled),
            r(1, "A2", 11, 12, Confirmed),
        ];
        let report = check(
            &rows,
            &acknowledge(&rows),
            &HashSet::new(),
            &HashSet::from([1, 2]),
        );
        assert!(report.ok, "{:?}", report.violations);
    }

    #[test]
    fn seat_and_user_overlaps_are_caught() {
        let rows = vec![
            r(1, "A1", 8, 20, Confirmed),
            r(2, "A1", 9, 10, Confirmed),
            r(3, "A2", 9, 11, Confirmed),
            r(3, "A3", 10, 12, Confirmed),
        ];
        let report = check(&rows, &acknowledge(&rows), &HashSet::new(), &HashSet::new());
        assert_eq!(report.violation_count, 2, "{:?}", report.violations);
    }

    #[test]
    fn missing_acknowledged_rows_wrong_statuses_and_stored_refusals_are_caught() {
        let rows = vec![r(1, "A1", 8, 9, Confirmed), r(1, "A2", 8, 9, Cancelled)];
        let mut ledger = acknowledge(&rows[..1]);
        ledger.apply([Event::Cancelled(rows[0].id), Event::Created(Uuid::now_v7())]);
        ledger.apply([Event::CreateRefused]);
        let report = check(&rows, &ledger, &HashSet::new(), &HashSet::from([1]));
        // rows[0] should be cancelled, the ghost id is missing, rows[1] was refused.
        assert_eq!(report.violation_count, 3, "{:?}", report.violations);

        // A write with a lost answer may explain one unacknowledged row.
        let mut ledger = acknowledge(&rows[..1]);
        ledger.apply([Event::CreateUnknown]);
        let report = check(&rows, &ledger, &HashSet::new(), &HashSet::from([1]));
        assert!(report.ok, "{:?}", report.violations);
        assert_eq!(report.unacknowledged_rows, 1);
    }
}
