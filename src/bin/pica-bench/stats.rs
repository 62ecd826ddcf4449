//! Latency percentiles, throughput and status counts of one point.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::audit::AuditReport;
use crate::load::status_counts;
use crate::plan::{Op, Plan, Scenario, Shape};

pub struct Sample {
    pub op: Op,
    /// 0: no answer.
    pub status: u16,
    pub micros: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    /// Percentiles by the nearest-rank method over `micros` (sorted here).
    pub fn of(micros: &mut [u32]) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1;
            f64::from(micros[i]) / 1000.0
        };
        let sum: u64 = micros.iter().map(|&m| u64::from(m)).sum();
        Latency {
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
            mean_ms: sum as f64 / micros.len() as f64 / 1000.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpStats {
    pub requests: u64,
    pub rps: f64,
    pub latency: Latency,
    pub status: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    pub scenario: Scenario,
    pub shape: Shape,
    pub connections: usize,
    /// Length of the measured window (after the warm-up).
    pub seconds: f64,
    pub requests: u64,
    pub rps: f64,
    pub latency: Latency,
    pub status: BTreeMap<String, u64>,
    /// Requests with no answer or a 5xx answer.
    pub errors: u64,
    pub ops: BTreeMap<String, OpStats>,
    /// Latency of the answers that were not 503 (the requests the server accepted).
    pub accepted: Latency,
    /// How many answers were 503 (refused: admission control, or a restarting or
    /// failing engine) and how long they took.
    pub refused: u64,
    pub refused_latency: Latency,
    /// Requests per second offered with `--rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rps: Option<f64>,
    /// The echo server's throughput at the same connection count, same run.
    pub ceiling_rps: Option<f64>,
    pub ratio_to_ceiling: Option<f64>,
    pub audit: Option<AuditReport>,
}

pub fn summarize(plan: &Plan, samples: Vec<Sample>, window: Duration) -> PointResult {
    let secs = window.as_secs_f64();
    let mut all: Vec<u32> = samples.iter().map(|s| s.micros).collect();
    let mut per_op: BTreeMap<Op, (Vec<u32>, Vec<u16>)> = BTreeMap::new();
    for s in &samples {
        let entry = per_op.entry(s.op).or_default();
        entry.0.push(s.micros);
        entry.1.push(s.status);
    }
    let ops = per_op
        .into_iter()
        .map(|(op, (mut micros, statuses))| {
            let stats = OpStats {
                requests: micros.len() as u64,
                rps: micros.len() as f64 / secs,
                latency: Latency::of(&mut micros),
                status: status_counts(statuses.iter()),
            };
            (op.name().to_string(), stats)
        })
        .collect();
    let mut accepted: Vec<u32> = samples
        .iter()
        .filter(|s| s.status != 503)
        .map(|s| s.micros)
        .collect();
    let mut refused: Vec<u32> = samples
        .iter()
        .filter(|s| s.status == 503)
        .map(|s| s.micros)
        .collect();
    let errors = samples
        .iter()
        .filter(|s| s.status == 0 || s.status >= 500)
        .count() as u64;
    PointResult {
        scenario: plan.scenario,
        shape: plan.shape,
        connections: plan.connections,
        seconds: secs,
        requests: samples.len() as u64,
        rps: samples.len() as f64 / secs,
        latency: Latency::of(&mut all),
        status: status_counts(samples.iter().map(|s| &s.status)),
        errors,
        ops,
        accepted: Latency::of(&mut accepted),
        refused: refused.len() as u64,
        refused_latency: Latency::of(&mut refused),
        offered_rps: plan.rate,
        ceiling_rps: None,
        ratio_to_ceiling: None,
        audit: None,
    }
}

/// One line for the terminal.
pub fn line(p: &PointResult) -> String {
    let status: Vec<String> = p.status.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let mut out = format!(
        "{:<6} {:<4} c={:<5} {:>8} req {:>9.0} req/s  p50 {:>6.2}  p90 {:>6.2}  p99 {:>7.2}  max {:>8.2} ms  [{}]",
        p.scenario.name(),
        match p.shape {
            Shape::Day => "day",
            Shape::Slot => "slot",
        },
        p.connections,
        p.requests,
        p.rps,
        p.latency.p50_ms,
        p.latency.p90_ms,
        p.latency.p99_ms,
        p.latency.max_ms,
        status.join(" ")
    );
    if p.refused > 0 || p.offered_rps.is_some() {
        out.push_str(&format!(
            "\n         accepted p99 {:.2} ms (max {:.2}); {} refused with 503, p99 {:.2} ms (max {:.2})",
            p.accepted.p99_ms, p.accepted.max_ms, p.refused, p.refused_latency.p99_ms, p.refused_latency.max_ms
        ));
        if let Some(rate) = p.offered_rps {
            out.push_str(&format!("; offered {rate:.0} req/s"));
        }
    }
    if let (Some(c), Some(r)) = (p.ceiling_rps, p.ratio_to_ceiling) {
        out.push_str(&format!("  ceiling {c:.0} req/s = {:.0}%", r * 100.0));
    }
    if let Some(a) = &p.audit {
        if a.ok {
            out.push_str(&format!("  audit ok ({} rows)", a.rows));
        } else {
            out.push_str(&format!("  AUDIT FAILED: {} violations", a.violation_count));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut micros: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        let l = Latency::of(&mut micros);
        assert_eq!(
            (l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(l.mean_ms, 50.5);
        assert_eq!(Latency::of(&mut []).max_ms, 0.0);
    }
}
