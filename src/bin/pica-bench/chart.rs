//! Writes an SVG from the run reports in a directory: per backend, throughput (with
//! the echo ceiling) and latency percentiles per scenario and connection count.
//!
//! Drawn by hand rather than with `plotters`, for measured reasons: a port to plotters'
//! SVG backend (2026-12-01) came out no shorter (449 lines against 417), made
//! BENCHMARKS.svg six times larger (114 KB against 18 KB: every dash of a dashed line
//! becomes its own element) and lost the hover tooltips with each point's figures,
//! which plotters cannot emit.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::stats::Latency;

#[derive(Deserialize)]
struct Report {
    label: String,
    #[serde(default)]
    machine: Option<Machine>,
    #[serde(default)]
    ceiling: Vec<Point>,
    #[serde(default)]
    points: Vec<Point>,
}

#[derive(Deserialize)]
struct Machine {
    cores: usize,
    cpu: String,
}

#[derive(Deserialize)]
struct Point {
    scenario: String,
    shape: String,
    connections: usize,
    rps: f64,
    latency: Latency,
    #[serde(default)]
    ratio_to_ceiling: Option<f64>,
    #[serde(default)]
    errors: u64,
}

impl Point {
    fn series(&self) -> String {
        format!("{} ({})", self.scenario, self.shape)
    }
}

/// Reads one percentile out of a [`Latency`].
type Percentile = fn(&Latency) -> f64;

const COLORS: [&str; 6] = [
    "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];
const CEILING: &str = "#9e9e9e";
const W: f64 = 1280.0;
const ROW_H: f64 = 400.0;
const TOP: f64 = 78.0;
const PANEL_W: f64 = 520.0;
const PANEL_H: f64 = 270.0;

pub fn write(input: &Path, output: &Path) -> anyhow::Result<()> {
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(input).with_context(|| format!("reading {}", input.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            match serde_json::from_str::<Report>(&text) {
                Ok(r) if !r.points.is_empty() || !r.ceiling.is_empty() => reports.push(r),
                Ok(_) => {}
                Err(e) => eprintln!("skipping {}: {e}", path.display()),
            }
        }
    }
    if reports.is_empty() {
        bail!("no run reports in {}", input.display());
    }
    // SQLite first, then PostgreSQL, then anything else by name.
    reports.sort_by_key(|r| {
        let rank = match r.label.as_str() {
            "sqlite" => 0,
            "postgres" => 1,
            _ => 2,
        };
        (rank, r.label.clone())
    });
    let svg = render(&reports);
    std::fs::write(output, svg).with_context(|| format!("writing {}", output.display()))?;
    eprintln!("chart written to {}", output.display());
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 1, 2, 2.5, 5 × 10^k at or above `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let k = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * k >= v {
            return m * k;
        }
    }
    10.0 * k
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else {
        format!("{v:.0}")
    }
}

fn render(reports: &[Report]) -> String {
    let height = TOP + ROW_H * reports.len() as f64 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" viewBox="0 0 {W} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="28" font-size="20" text-anchor="middle" font-weight="bold">Pica seat-contention benchmark: throughput and latency per connection count</text>"#,
        W / 2.0
    );
    let machine = reports
        .iter()
        .find_map(|r| r.machine.as_ref())
        .map(|m| format!("{} cores, {}; ", m.cores, m.cpu))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        r##"<text x="{}" y="50" font-size="12" text-anchor="middle" fill="#555">{}generator and server on the same machine; grey bars: axum echo ceiling measured in the same run; % = share of the ceiling</text>"##,
        W / 2.0,
        esc(&machine)
    );
    for (row, report) in reports.iter().enumerate() {
        let y0 = TOP + ROW_H * row as f64;
        let _ = writeln!(
            s,
            r#"<text x="40" y="{}" font-size="16" font-weight="bold">{}</text>"#,
            y0 + 18.0,
            esc(&report.label)
        );
        let series = series_of(report);
        throughput_panel(&mut s, report, &series, 80.0, y0 + 40.0);
        latency_panel(&mut s, report, &series, 80.0 + PANEL_W + 130.0, y0 + 40.0);
        legend(&mut s, &series, y0 + 40.0 + PANEL_H + 48.0);
    }
    s.push_str("</svg>\n");
    s
}

fn series_of(report: &Report) -> Vec<String> {
    let mut series: Vec<String> = Vec::new();
    for p in &report.points {
        if !series.contains(&p.series()) {
            series.push(p.series());
        }
    }
    series
}

fn connections_of(report: &Report) -> Vec<usize> {
    let mut cs: Vec<usize> = report
        .points
        .iter()
        .chain(&report.ceiling)
        .map(|p| p.connections)
        .collect();
    cs.sort_unstable();
    cs.dedup();
    cs
}

fn axes(s: &mut String, x: f64, y: f64, title: &str, y_label: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="13" text-anchor="middle" font-weight="bold">{}</text>"#,
        x + PANEL_W / 2.0,
        y - 8.0,
        esc(title)
    );
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="#333"/><line x1="{x}" y1="{y}" x2="{x}" y2="{}" stroke="#333"/>"##,
        y + PANEL_H,
        x + PANEL_W,
        y + PANEL_H,
        y + PANEL_H
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate({},{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        x - 52.0,
        y + PANEL_H / 2.0,
        esc(y_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">concurrent connections</text>"#,
        x + PANEL_W / 2.0,
        y + PANEL_H + 34.0
    );
}

fn throughput_panel(s: &mut String, report: &Report, series: &[String], x: f64, y: f64) {
    axes(s, x, y, "throughput (requests/s)", "requests per second");
    let cs = connections_of(report);
    let max = report
        .points
        .iter()
        .chain(&report.ceiling)
        .map(|p| p.rps)
        .fold(0.0, f64::max);
    let top = nice_max(max * 1.08);
    for i in 0..=5 {
        let v = top * i as f64 / 5.0;
        let yy = y + PANEL_H - PANEL_H * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{yy}" x2="{}" y2="{yy}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x + PANEL_W,
            x - 6.0,
            yy + 4.0,
            short(v)
        );
    }
    let group = PANEL_W / cs.len().max(1) as f64;
    let bars = series.len() + 1;
    let bar = group * 0.8 / bars as f64;
    for (gi, c) in cs.iter().enumerate() {
        let gx = x + group * gi as f64 + group * 0.1;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{c}</text>"#,
            gx + group * 0.4,
            y + PANEL_H + 16.0
        );
        let mut draw = |slot: usize, rps: f64, color: &str, note: Option<String>| {
            let h = PANEL_H * rps / top;
            let bx = gx + bar * slot as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{bx:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{} req/s</title></rect>"#,
                y + PANEL_H - h,
                bar * 0.92,
                rps.round()
            );
            if let Some(note) = note {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{note}</text>"#,
                    bx + bar * 0.46,
                    y + PANEL_H - h - 3.0
                );
            }
        };
        if let Some(p) = report.ceiling.iter().find(|p| p.connections == *c) {
            draw(0, p.rps, CEILING, Some(short(p.rps)));
        }
        for (si, name) in series.iter().enumerate() {
            if let Some(p) = report
                .points
                .iter()
                .find(|p| p.connections == *c && &p.series() == name)
            {
                let note = p
                    .ratio_to_ceiling
                    .map(|r| format!("{:.0}%", r * 100.0))
                    .or_else(|| Some(short(p.rps)));
                draw(si + 1, p.rps, COLORS[si % COLORS.len()], note);
            }
        }
    }
}

fn latency_panel(s: &mut String, report: &Report, series: &[String], x: f64, y: f64) {
    axes(
        s,
        x,
        y,
        "latency: p99 solid, p90 dashed, p50 dotted (log scale)",
        "milliseconds",
    );
    let cs = connections_of(report);
    let max = report
        .points
        .iter()
        .map(|p| p.latency.p99_ms.max(25.0))
        .fold(1.0, f64::max);
    let (lo, hi) = (0.1f64, 10f64.powf(max.log10().ceil()));
    let ly = |v: f64| {
        let v = v.clamp(lo, hi);
        y + PANEL_H - PANEL_H * (v.log10() - lo.log10()) / (hi.log10() - lo.log10())
    };
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let yy = ly(tick);
        let label = if tick < 1.0 {
            format!("{tick:.1}")
        } else {
            format!("{tick:.0}")
        };
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
            x + PANEL_W,
            x - 6.0,
            yy + 4.0
        );
        tick *= 10.0;
    }
    let target = ly(25.0);
    let _ = writeln!(
        s,
        r##"<line x1="{x}" y1="{target:.1}" x2="{}" y2="{target:.1}" stroke="#d62728" stroke-dasharray="6,4" stroke-width="1"/><text x="{}" y="{:.1}" font-size="10" fill="#d62728" text-anchor="end">p99 target 25 ms</text>"##,
        x + PANEL_W,
        x + PANEL_W - 4.0,
        target - 4.0
    );
    let step = PANEL_W / cs.len().max(1) as f64;
    let cx = |i: usize| x + step * (i as f64 + 0.5);
    for (i, c) in cs.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{c}</text>"#,
            cx(i),
            y + PANEL_H + 16.0
        );
    }
    for (si, name) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let pts: Vec<(usize, &Point)> = cs
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                report
                    .points
                    .iter()
                    .find(|p| p.connections == *c && &p.series() == name)
                    .map(|p| (i, p))
            })
            .collect();
        let pick: [(Percentile, &str); 3] = [
            (|l| l.p99_ms, ""),
            (|l| l.p90_ms, r#" stroke-dasharray="6,3""#),
            (|l| l.p50_ms, r#" stroke-dasharray="2,3""#),
        ];
        for (get, dash) in pick {
            let path: Vec<String> = pts
                .iter()
                .map(|(i, p)| format!("{:.1},{:.1}", cx(*i), ly(get(&p.latency))))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
        }
        for (i, p) in &pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{name} c={}: p50 {:.2} p90 {:.2} p99 {:.2} max {:.2} ms, {} errors</title></circle>"#,
                cx(*i),
                ly(p.latency.p99_ms),
                p.connections,
                p.latency.p50_ms,
                p.latency.p90_ms,
                p.latency.p99_ms,
                p.latency.max_ms,
                p.errors
            );
        }
    }
}

fn legend(s: &mut String, series: &[String], y: f64) {
    let mut x = 80.0;
    let mut item = |label: &str, color: &str| {
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="14" height="14" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            y - 11.0,
            x + 20.0,
            y,
            esc(label)
        );
        x += 40.0 + 7.0 * label.len() as f64;
    };
    item("echo ceiling", CEILING);
    for (i, name) in series.iter().enumerate() {
        item(name, COLORS[i % COLORS.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_maxima() {
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(1234.0), 2000.0);
        assert_eq!(nice_max(2100.0), 2500.0);
        assert_eq!(short(12345.0), "12k");
    }
}
