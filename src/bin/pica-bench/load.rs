//! Running a point: one HTTP connection per worker sending what `plan.rs` decides,
//! latency samples, and the log of acknowledged and refused writes that the audit
//! checks afterwards.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::ledger::{Event, Ledger};
use crate::plan::{
    Booking, Op, Plan, Scenario, Space, Step, Stop, WorkerPlan, next_due, pacing_interval, user_for,
};
use crate::stats::{PointResult, Sample, summarize};

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub auth: HeaderValue,
}

pub fn client(timeout: Duration) -> anyhow::Result<Client> {
    Client::builder()
        .pool_max_idle_per_host(1)
        .pool_idle_timeout(None)
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("building the HTTP client")
}

pub async fn fetch_space(base: &str) -> anyhow::Result<Space> {
    #[derive(Deserialize)]
    struct Seat {
        seat_number: String,
    }
    #[derive(Deserialize)]
    struct Zone {
        id: String,
        seats: Vec<Seat>,
    }
    let zones: Vec<Zone> = client(Duration::from_secs(30))?
        .get(format!("{base}/api/public/zones"))
        .send()
        .await
        .with_context(|| format!("GET {base}/api/public/zones: is the server running?"))?
        .error_for_status()?
        .json()
        .await?;
    let zones: Vec<_> = zones
        .into_iter()
        .map(|z| (z.id, z.seats.into_iter().map(|s| s.seat_number).collect()))
        .collect();
    if zones
        .iter()
        .all(|(_, s): &(String, Vec<String>)| s.is_empty())
    {
        bail!("the server lists no seats");
    }
    Ok(Space { zones })
}

/// Registers (or reuses, when the name is taken) `count` users named `{prefix}{i}` and
/// logs each in. Registration and login hash with argon2 on purpose, so this runs
/// before any timed phase, a few at a time.
pub async fn setup_users(base: &str, prefix: &str, count: usize) -> anyhow::Result<Vec<User>> {
    let http = client(Duration::from_secs(120))?;
    let gate = Arc::new(Semaphore::new(4));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (http, gate, base) = (http.clone(), gate.clone(), base.to_string());
        let name = format!("{prefix}{i}");
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await?;
            let user = login_user(&http, &base, &name).await?;
            anyhow::Ok((i, user))
        });
    }
    let started = Instant::now();
    let mut users: Vec<Option<User>> = vec![None; count];
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, user) = joined??;
        users[i] = Some(user);
        done += 1;
        if done % 64 == 0 || done == count {
            eprintln!(
                "  users ready: {done}/{count} ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(users.into_iter().flatten().collect())
}

async fn login_user(http: &Client, base: &str, name: &str) -> anyhow::Result<User> {
    let password = format!("bench-{name}-42");
    let register = serde_json::json!({
        "username": name,
        "email": format!("{name}@bench.example.com"),
        "password": password,
    });
    let r = http
        .post(format!("{base}/api/public/register"))
        .json(&register)
        .send()
        .await?;
    // 409: registered by an earlier run on this database, same password.
    if !(r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT) {
        bail!("register {name}: {} {}", r.status(), r.text().await?);
    }
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
    }
    let r = http
        .post(format!("{base}/api/public/login"))
        .json(&serde_json::json!({"username": name, "password": password}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("login {name}: {} {}", r.status(), r.text().await?);
    }
    let token: Token = r.json().await?;
    let auth = HeaderValue::from_str(&format!("Bearer {}", token.access_token))?;
    #[derive(Deserialize)]
    struct Me {
        user: MeUser,
    }
    #[derive(Deserialize)]
    struct MeUser {
        id: i64,
    }
    let me: Me = http
        .get(format!("{base}/api/secure/"))
        .header(AUTHORIZATION, auth.clone())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(User {
        id: me.user.id,
        auth,
    })
}

/// One point of the matrix as it is run: its plan, and where and as whom to send it.
pub struct Point {
    pub base: String,
    pub plan: Arc<Plan>,
    pub users: Arc<Vec<User>>,
    pub timeout: Duration,
    pub progress: bool,
}

struct Shared {
    stop: AtomicBool,
    budget: AtomicI64,
    completed: AtomicU64,
    errors: AtomicU64,
    measure_from: Instant,
}

struct WorkerOut {
    samples: Vec<Sample>,
    events: Vec<Event>,
    last_done: Option<Instant>,
}

/// Runs one point: `connections` workers, each with its own keep-alive connection and
/// user, until the stop condition; then the workers release what they still hold.
pub async fn run_point(point: Arc<Point>, ledger: &mut Ledger) -> anyhow::Result<PointResult> {
    let plan = point.plan.clone();
    if point.users.is_empty() && plan.scenario != Scenario::Echo {
        bail!("no users");
    }
    let started = Instant::now();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        budget: AtomicI64::new(match plan.stop {
            Stop::Requests(n) => n as i64,
            Stop::After(_) => i64::MAX,
        }),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        measure_from: started + plan.warmup,
    });
    let mut workers = JoinSet::new();
    for w in 0..plan.connections {
        let (point, shared) = (point.clone(), shared.clone());
        workers.spawn(async move { worker(w, point, shared).await });
    }
    let progress = tokio::spawn(progress_bar(point.clone(), shared.clone(), started));
    if let Stop::After(d) = plan.stop {
        let until = tokio::time::Instant::from_std(started + plan.warmup + d);
        tokio::time::sleep_until(until).await;
        shared.stop.store(true, Ordering::SeqCst);
    }
    let mut samples = Vec::new();
    let mut last_done = started;
    let mut failure = None;
    while let Some(joined) = workers.join_next().await {
        match joined.map_err(|e| anyhow!("worker panicked: {e}")) {
            Ok(out) => {
                samples.extend(out.samples);
                ledger.apply(out.events);
                if let Some(t) = out.last_done {
                    last_done = last_done.max(t);
                }
            }
            Err(e) => failure = Some(e),
        }
    }
    shared.stop.store(true, Ordering::SeqCst);
    let _ = progress.await;
    if let Some(e) = failure {
        return Err(e);
    }
    let window = last_done
        .saturating_duration_since(shared.measure_from)
        .max(Duration::from_millis(1));
    Ok(summarize(&plan, samples, window))
}

async fn progress_bar(point: Arc<Point>, shared: Arc<Shared>, started: Instant) {
    if !point.progress {
        return;
    }
    let plan = &point.plan;
    let tty = std::io::stderr().is_terminal();
    let label = format!(
        "{:>6} c={:<4}",
        plan.scenario.name(),
        plan.connections.to_string()
    );
    let mut tick = tokio::time::interval(Duration::from_millis(if tty { 250 } else { 2000 }));
    let mut last = (Instant::now(), 0u64);
    loop {
        tick.tick().await;
        let done = shared.completed.load(Ordering::Relaxed);
        let now = Instant::now();
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, done);
        let elapsed = started.elapsed().as_secs_f64();
        let fraction = match plan.stop {
            Stop::After(d) => elapsed / (plan.warmup + d).as_secs_f64(),
            Stop::Requests(n) => done as f64 / n.max(1) as f64,
        }
        .clamp(0.0, 1.0);
        let width = 30;
        let filled = (fraction * width as f64).round() as usize;
        let line = format!(
            "  {label} [{}{}] {:5.1}s {:>9} req {:>8.0} req/s {:>5} errors",
            "#".repeat(filled),
            ".".repeat(width - filled),
            elapsed,
            done,
            rate,
            shared.errors.load(Ordering::Relaxed)
        );
        let stopping = shared.stop.load(Ordering::Relaxed);
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{line}");
            if stopping {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
        if stopping {
            return;
        }
    }
}

/// The result of one request: status 0 means no HTTP answer (connection error or
/// client timeout), whose effect on the server is unknown.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

struct Worker {
    http: Client,
    point: Arc<Point>,
    shared: Arc<Shared>,
    user: Option<User>,
    draws: WorkerPlan,
    out: WorkerOut,
    /// Reservations this worker holds (oldest first), to cancel.
    held: Vec<Uuid>,
    /// Cancels whose outcome is unknown, retried when the point ends.
    retry: Vec<Uuid>,
    reserve_url: String,
    /// With `--rate`: when this worker's next request is due.
    next_at: Option<tokio::time::Instant>,
}

async fn worker(index: usize, point: Arc<Point>, shared: Arc<Shared>) -> WorkerOut {
    let http = match client(point.timeout) {
        Ok(h) => h,
        Err(_) => {
            return WorkerOut {
                samples: Vec::new(),
                events: Vec::new(),
                last_done: None,
            };
        }
    };
    let user = user_for(index, point.users.len()).map(|u| point.users[u].clone());
    let mut w = Worker {
        http,
        reserve_url: format!("{}/api/secure/reservations", point.base),
        user,
        draws: WorkerPlan::new(point.plan.clone(), index),
        out: WorkerOut {
            samples: Vec::with_capacity(4096),
            events: Vec::new(),
            last_done: None,
        },
        held: Vec::new(),
        retry: Vec::new(),
        next_at: None,
        point,
        shared,
    };
    w.run().await;
    w.release().await;
    w.out
}

impl Worker {
    async fn run(&mut self) {
        loop {
            if self.shared.stop.load(Ordering::Relaxed) {
                return;
            }
            if self.shared.budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
                return;
            }
            self.pace().await;
            match self.draws.next(self.held.len()) {
                Step::Reserve(booking) => self.reserve(&booking).await,
                Step::Cancel(pick) => {
                    let id = self.held.swap_remove(pick);
                    self.held.push(id);
                    self.cancel_newest().await;
                }
                Step::Availability { zone, day } => self.availability(zone, day).await,
                Step::List => self.list().await,
                Step::Echo(booking) => self.echo(&booking).await,
            }
        }
    }

    /// With `--rate`, waits until this worker's next request is due (see
    /// `plan::next_due`).
    async fn pace(&mut self) {
        let plan = &self.point.plan;
        let Some(interval) = pacing_interval(plan.connections, plan.rate) else {
            return;
        };
        let due = match self.next_at {
            Some(due) => due,
            None => tokio::time::Instant::now() + self.draws.first_offset(interval),
        };
        tokio::time::sleep_until(due).await;
        self.next_at = Some(next_due(due, interval, tokio::time::Instant::now()));
    }

    /// Releases whatever this worker still holds so the next point starts from free
    /// seats; not measured.
    async fn release(&mut self) {
        if self.point.plan.scenario == Scenario::Echo {
            return;
        }
        let mut pending: Vec<Uuid> = self.held.drain(..).chain(self.retry.drain(..)).collect();
        for _attempt in 0..5 {
            let mut again = Vec::new();
            for id in pending {
                let answer = self.send_cancel(id).await;
                match answer.status {
                    200..=299 => self.out.events.push(Event::Cancelled(id)),
                    // 409: already cancelled by an earlier attempt whose answer was lost.
                    409 | 404 => self.out.events.push(Event::CancelRefused(id)),
                    // Refused by admission control: still active; try again.
                    503 if is_busy(&answer.body) => again.push(id),
                    _ => {
                        self.out.events.push(Event::CancelUnknown(id));
                        again.push(id);
                    }
                }
            }
            if again.is_empty() {
                return;
            }
            pending = again;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn reserve(&mut self, booking: &Booking) {
        let body = self.point.plan.calendar.body(booking);
        let url = self.reserve_url.clone();
        let answer = self.send(Op::Reserve, Method::POST, &url, Some(body)).await;
        match answer.status {
            201 | 200 => match parse_id(&answer.body) {
                Some(id) => {
                    self.out.events.push(Event::Created(id));
                    self.held.push(id);
                }
                None => self.out.events.push(Event::CreateUnknown),
            },
            400..=499 => self.out.events.push(Event::CreateRefused),
            // Refused by admission control before anything was queued: nothing may be
            // stored, which the audit checks.
            503 if is_busy(&answer.body) => self.out.events.push(Event::CreateRefused),
            // Other 5xx (timeouts, failed commits) and lost answers: the write may or
            // may not have happened.
            _ => self.out.events.push(Event::CreateUnknown),
        }
    }

    async fn cancel_newest(&mut self) {
        let Some(id) = self.held.pop() else { return };
        let url = format!("{}/{id}", self.reserve_url);
        let answer = self.send(Op::Cancel, Method::DELETE, &url, None).await;
        match answer.status {
            200..=299 => self.out.events.push(Event::Cancelled(id)),
            400..=499 => self.out.events.push(Event::CancelRefused(id)),
            // Refused by admission control: still active (the audit checks it), and
            // still ours to cancel.
            503 if is_busy(&answer.body) => {
                self.out.events.push(Event::CancelRefused(id));
                self.held.push(id);
            }
            _ => {
                self.out.events.push(Event::CancelUnknown(id));
                self.retry.push(id);
            }
        }
    }

    async fn send_cancel(&mut self, id: Uuid) -> Answer {
        let url = format!("{}/{id}", self.reserve_url);
        self.request(Method::DELETE, &url, None).await
    }

    async fn availability(&mut self, zone: usize, day: u64) {
        let plan = &self.point.plan;
        let url = format!(
            "{}/api/public/zones/{}/availability?date={}",
            self.point.base,
            plan.space.zones[zone].0,
            plan.calendar.day(day)
        );
        self.send(Op::Availability, Method::GET, &url, None).await;
    }

    async fn list(&mut self) {
        let url = format!("{}/api/secure/my-reservations?limit=20", self.point.base);
        self.send(Op::List, Method::GET, &url, None).await;
    }

    async fn echo(&mut self, booking: &Booking) {
        let body = self.point.plan.calendar.body(booking);
        let url = self.reserve_url.clone();
        self.send(Op::Echo, Method::POST, &url, Some(body)).await;
    }

    /// Sends one request and records its latency (if inside the measured window).
    async fn send(&mut self, op: Op, method: Method, url: &str, body: Option<String>) -> Answer {
        let begun = Instant::now();
        let answer = self.request(method, url, body).await;
        let done = Instant::now();
        self.shared.completed.fetch_add(1, Ordering::Relaxed);
        if answer.status == 0 {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
        }
        if begun >= self.shared.measure_from {
            self.out.samples.push(Sample {
                op,
                status: answer.status,
                micros: done.duration_since(begun).as_micros().min(u32::MAX as u128) as u32,
            });
            self.out.last_done = Some(done);
        }
        answer
    }

    async fn request(&mut self, method: Method, url: &str, body: Option<String>) -> Answer {
        let mut request = self.http.request(method, url);
        if let Some(user) = &self.user {
            request = request.header(AUTHORIZATION, user.auth.clone());
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(bytes) => Answer {
                        status,
                        body: bytes.to_vec(),
                    },
                    Err(_) => Answer {
                        status: 0,
                        body: Vec::new(),
                    },
                }
            }
            Err(_) => Answer {
                status: 0,
                body: Vec::new(),
            },
        }
    }
}

/// A 503 from admission control (the engine's `Overloaded`), as opposed to a timeout
/// or a failed commit whose outcome is unknown.
pub fn is_busy(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Detail {
        detail: String,
    }
    serde_json::from_slice::<Detail>(body).is_ok_and(|d| d.detail.contains("busy"))
}

fn parse_id(body: &[u8]) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct Created {
        id: Uuid,
    }
    serde_json::from_slice::<Created>(body).ok().map(|c| c.id)
}

/// Counts answers per status code (`"error"` for no answer).
pub fn status_counts<'a>(statuses: impl Iterator<Item = &'a u16>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for s in statuses {
        let key = if *s == 0 {
            "error".to_string()
        } else {
            s.to_string()
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}
