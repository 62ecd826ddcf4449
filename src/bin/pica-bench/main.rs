//! `pica-bench` — Pica's load generator, its echo ceiling and its chart.
//!
//! ```text
//! pica-bench run --url http://127.0.0.1:8000 --database-url sqlite://pica.db \
//!     --scenario hot,spread,mixed --connections 16,64,256,1024 --duration 10s --ceiling
//! pica-bench ceiling --connections 16,64 --duration 10s
//! pica-bench echo --bind 127.0.0.1:0
//! pica-bench chart --in bench-results --out BENCHMARKS.svg
//! ```
//!
//! `run` registers and logs in users first (argon2 is slow on purpose), then runs every
//! scenario at every connection count, audits the database after each point, and
//! writes `{out}/{label}.json`. It exits non-zero if any audit finds a violation.

mod args;
mod audit;
mod chart;
mod echo;
mod ledger;
mod load;
mod plan;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::args::Args;
use crate::audit::Auditor;
use crate::echo::EchoProcess;
use crate::ledger::Ledger;
use crate::load::Point;
use crate::plan::{Calendar, Plan, Scenario, Shape, Space, Stop};
use crate::stats::PointResult;

const USAGE: &str = "\
usage: pica-bench COMMAND [OPTIONS]

commands:
  run      load a running Pica server, audit its database after every point
  ceiling  load an echo server only (the ceiling)
  echo     serve the echo ceiling (--bind 127.0.0.1:0, --lifetime 30m)
  chart    write an SVG of every bench-results/*.json (--in DIR, --out FILE)

run / ceiling options:
  --url URL               the Pica server (run)
  --database-url URL      its database, for the audit (run; required unless --no-audit)
  --scenario LIST         hot, spread, mixed, each optionally :day or :slot
                          (default hot:day,spread:slot,mixed:slot)
  --connections LIST      concurrent connections, one worker each (default 64)
  --duration D            measured time per point (default 10s), or
  --requests N            a fixed number of requests per point instead
  --warmup D              unmeasured time before each point (default 1s; 0 with --requests)
  --users N               users to register and log in (default: most connections)
  --hot-seats N           seats the hot scenario fights over (default 4)
  --no-cancel             hot/spread winners keep their seat instead of cancelling it
  --ceiling               also measure the echo ceiling at every connection count
  --ceiling-url URL       use this echo server instead of starting one
  --out DIR               where to write LABEL.json (default bench-results)
  --label NAME            result name (default: the database backend)
  --timeout D             client timeout per request (default 30s)
  --seed N                random seed (default 1)
  --rate R                offer R requests/s in all (each worker paces itself to
                          its share) instead of sending again as soon as answered;
                          with many connections this overloads on purpose (see
                          BENCHMARKS.md, admission control)
  --quiet                 no progress bar";

#[derive(Serialize)]
struct Machine {
    cores: usize,
    cpu: String,
    memory_gib: f64,
    kernel: String,
}

impl Machine {
    fn describe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel,
        }
    }
}

#[derive(Serialize)]
struct Settings {
    duration_s: Option<f64>,
    requests: Option<u64>,
    warmup_s: f64,
    users: usize,
    hot_seats: Vec<String>,
    cancel_winners: bool,
    seed: u64,
    rate: Option<f64>,
}

#[derive(Serialize)]
struct RunReport {
    label: String,
    backend: String,
    started_at: String,
    command: Vec<String>,
    machine: Machine,
    settings: Settings,
    ceiling: Vec<PointResult>,
    points: Vec<PointResult>,
    audit_ok: bool,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    let args = Args::parse(argv.iter().skip(1).cloned())?;
    if args.flag("help") || args.command == "help" {
        println!("{USAGE}");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let command = args.command.clone();
    match command.as_str() {
        "run" | "ceiling" => {
            let ok = runtime.block_on(run(&args, &argv, command == "ceiling"))?;
            if !ok {
                eprintln!("pica-bench: the audit found invariant violations");
                std::process::exit(2);
            }
            Ok(())
        }
        "echo" => {
            let bind = args.get_or("bind", "127.0.0.1:0").parse()?;
            let lifetime = args.duration("lifetime", Duration::from_secs(1800))?;
            args.reject_unknown()?;
            runtime.block_on(echo::serve(bind, lifetime))
        }
        "chart" => {
            let input = PathBuf::from(args.get_or("in", "bench-results"));
            let output = PathBuf::from(args.get_or("out", "BENCHMARKS.svg"));
            args.reject_unknown()?;
            chart::write(&input, &output)
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}

/// Parses `hot`, `hot:day`, ... into scenarios with their request shape.
fn scenarios(args: &Args, ceiling_only: bool) -> anyhow::Result<Vec<(Scenario, Shape)>> {
    if ceiling_only {
        return Ok(Vec::new());
    }
    let raw: Vec<String> = args.list("scenario", "hot:day,spread:slot,mixed:slot")?;
    let forced: Option<Shape> = args
        .get("shape")
        .map(str::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    raw.iter()
        .map(|spec| {
            let (name, shape) = spec.split_once(':').unwrap_or((spec, ""));
            let scenario: Scenario = name.parse().map_err(anyhow::Error::msg)?;
            let shape = match (shape, forced, scenario) {
                ("", Some(s), _) => s,
                ("", None, Scenario::Hot) => Shape::Day,
                ("", None, _) => Shape::Slot,
                (s, _, _) => s.parse().map_err(anyhow::Error::msg)?,
            };
            Ok((scenario, shape))
        })
        .collect()
}

async fn run(args: &Args, argv: &[String], ceiling_only: bool) -> anyhow::Result<bool> {
    let scenarios = scenarios(args, ceiling_only)?;
    let url = if ceiling_only {
        None
    } else {
        Some(
            args.get("url")
                .context("--url is required (the running Pica server)")?
                .trim_end_matches('/')
                .to_string(),
        )
    };
    let no_audit = args.flag("no-audit");
    let database_url = args.get("database-url").map(str::to_string);
    if url.is_some() && database_url.is_none() && !no_audit {
        bail!("--database-url is required for the audit (or pass --no-audit)");
    }
    let connections: Vec<usize> = args.list("connections", "64")?;
    if connections.is_empty() || connections.contains(&0) {
        bail!("--connections must list positive numbers");
    }
    let stop = match args.get("requests") {
        Some(n) => Stop::Requests(n.parse().context("--requests")?),
        None => Stop::After(args.duration("duration", Duration::from_secs(10))?),
    };
    let default_warmup = match stop {
        Stop::Requests(_) => Duration::ZERO,
        Stop::After(_) => Duration::from_secs(1),
    };
    let warmup = args.duration("warmup", default_warmup)?;
    let max_connections = connections.iter().copied().max().unwrap_or(1);
    let users_wanted: usize = args.parsed("users", max_connections)?;
    let hot_count: usize = args.parsed("hot-seats", 4)?;
    let cancel_winners = !args.flag("no-cancel");
    let ceiling = args.flag("ceiling") || ceiling_only;
    let ceiling_url = args.get("ceiling-url").map(str::to_string);
    let out_dir = PathBuf::from(args.get_or("out", "bench-results"));
    let timeout = args.duration("timeout", Duration::from_secs(30))?;
    let seed: u64 = args.parsed("seed", 1)?;
    let rate: Option<f64> = args.get("rate").map(str::parse).transpose()?;
    if rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of requests per second");
    }
    let progress = !args.flag("quiet");
    let backend = match &database_url {
        Some(u) if u.starts_with("postgres") => "postgres",
        Some(_) => "sqlite",
        None if ceiling_only => "echo",
        None => "unknown",
    };
    let label = args.get_or("label", backend);
    args.reject_unknown()?;

    let calendar = Calendar {
        tz: chrono_tz::Asia::Jakarta,
        opens: 8,
        closes: 22,
        horizon_days: 30,
    };
    let space = match &url {
        Some(url) => load::fetch_space(url).await?,
        None => Space {
            zones: vec![("coworking".into(), vec!["A1".into(), "A2".into()])],
        },
    };
    let seats = space.seats();
    let hot_seats: Vec<String> = seats.iter().take(hot_count.max(1)).cloned().collect();
    let users = match &url {
        Some(url) if !scenarios.is_empty() => {
            eprintln!(
                "registering and logging in {users_wanted} users (argon2: slow on purpose)..."
            );
            load::setup_users(url, "bench-u", users_wanted).await?
        }
        _ => Vec::new(),
    };
    let users = Arc::new(users);
    let space = Arc::new(space);
    let auditor = match (&database_url, no_audit || url.is_none()) {
        (Some(db), false) => Some(Auditor::connect(db, users.iter().map(|u| u.id)).await?),
        _ => None,
    };

    // Lives as long as the whole matrix could take, then stops by itself.
    let mut echo_process = None;
    let echo_url = match (ceiling, ceiling_url) {
        (false, _) => None,
        (true, Some(u)) => Some(u.trim_end_matches('/').to_string()),
        (true, None) => {
            let p = EchoProcess::spawn(Duration::from_secs(3600)).await?;
            eprintln!("echo ceiling server at {}", p.url);
            let u = p.url.clone();
            echo_process = Some(p);
            Some(u)
        }
    };

    let point_for = |base: &str, scenario: Scenario, shape: Shape, c: usize| Point {
        base: base.to_string(),
        plan: Arc::new(Plan {
            scenario,
            shape,
            connections: c,
            stop,
            warmup,
            hot_seats: hot_seats.clone(),
            cancel_winners,
            calendar: calendar.clone(),
            space: space.clone(),
            rate: if scenario == Scenario::Echo {
                None
            } else {
                rate
            },
            seed: plan::point_seed(seed, c, scenario),
        }),
        users: if scenario == Scenario::Echo {
            Arc::new(users.iter().take(1).cloned().collect())
        } else {
            users.clone()
        },
        timeout,
        progress,
    };

    let started_at = chrono::Utc::now().to_rfc3339();
    let mut ledger = Ledger::default();
    let mut ceiling_points = Vec::new();
    let mut points = Vec::new();
    let mut audit_ok = true;
    for &c in &connections {
        let mut ceiling_rps = None;
        if let Some(echo) = &echo_url {
            let mut throwaway = Ledger::default();
            let point = load::run_point(
                Arc::new(point_for(echo, Scenario::Echo, Shape::Slot, c)),
                &mut throwaway,
            )
            .await?;
            println!("{}", stats::line(&point));
            ceiling_rps = Some(point.rps);
            ceiling_points.push(point);
        }
        let Some(base) = &url else { continue };
        for &(scenario, shape) in &scenarios {
            let mut point =
                load::run_point(Arc::new(point_for(base, scenario, shape, c)), &mut ledger).await?;
            if let Some(ceiling) = ceiling_rps {
                point.ceiling_rps = Some(ceiling);
                point.ratio_to_ceiling = Some(point.rps / ceiling);
            }
            if let Some(auditor) = &auditor {
                let report = auditor.audit(&ledger).await?;
                audit_ok &= report.ok;
                for v in &report.violations {
                    eprintln!("  violation: {v}");
                }
                point.audit = Some(report);
            }
            println!("{}", stats::line(&point));
            points.push(point);
        }
    }
    if let Some(p) = echo_process {
        p.stop().await;
    }
    if let Some(a) = auditor {
        a.close().await;
    }

    let report = RunReport {
        label: label.clone(),
        backend: backend.to_string(),
        started_at,
        command: argv.to_vec(),
        machine: Machine::describe(),
        settings: Settings {
            duration_s: match stop {
                Stop::After(d) => Some(d.as_secs_f64()),
                Stop::Requests(_) => None,
            },
            requests: match stop {
                Stop::Requests(n) => Some(n),
                Stop::After(_) => None,
            },
            warmup_s: warmup.as_secs_f64(),
            users: users.len(),
            hot_seats,
            cancel_winners,
            seed,
            rate,
        },
        ceiling: ceiling_points,
        points,
        audit_ok,
    };
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(format!("{label}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    eprintln!("results written to {}", path.display());
    Ok(audit_ok)
}
