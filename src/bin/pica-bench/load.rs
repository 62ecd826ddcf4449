//! Driving load: users, scenarios, one HTTP connection per worker, latency samples and
//! the log of acknowledged and refused writes that the audit checks afterwards.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use chrono::{Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::ledger::{Event, Ledger};
use crate::stats::{PointResult, Sample, summarize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// Every client wants the same few seats on the same day; winners cancel at once,
    /// so the seats are fought over for the whole run.
    Hot,
    /// Random seats, days and slots across all zones; winners cancel at once.
    Spread,
    /// Availability reads, listing, reserving and cancelling in realistic proportions.
    Mixed,
    /// The ceiling: the same requests against an echo server that does no work.
    Echo,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hot" => Ok(Scenario::Hot),
            "spread" => Ok(Scenario::Spread),
            "mixed" => Ok(Scenario::Mixed),
            "echo" => Ok(Scenario::Echo),
            other => Err(format!("unknown scenario {other:?} (hot, spread, mixed)")),
        }
    }
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Hot => "hot",
            Scenario::Spread => "spread",
            Scenario::Mixed => "mixed",
            Scenario::Echo => "echo",
        }
    }
}

/// How a reservation is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The seed's form `{seat_number, reservation_date}`: the whole opening day.
    Day,
    /// `{seat_number, start, end}` on 30-minute slot boundaries.
    Slot,
}

impl std::str::FromStr for Shape {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "day" => Ok(Shape::Day),
            "slot" => Ok(Shape::Slot),
            other => Err(format!("unknown shape {other:?} (day, slot)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve,
    Cancel,
    List,
    Availability,
    Echo,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Reserve => "reserve",
            Op::Cancel => "cancel",
            Op::List => "list",
            Op::Availability => "availability",
            Op::Echo => "echo",
        }
    }
}

/// When a point stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

/// The space's bookable calendar as the generator needs it (the server's defaults:
/// Asia/Jakarta, 08:00-22:00, 30-minute slots, 30 days ahead).
#[derive(Debug, Clone)]
pub struct Calendar {
    pub tz: Tz,
    pub opens: u32,
    pub closes: u32,
    pub horizon_days: u64,
}

impl Calendar {
    /// The local date `n` days after today. Days from 1 on are used, so a run late in
    /// the evening never asks for a closed day.
    pub fn day(&self, n: u64) -> NaiveDate {
        let today = Utc::now().with_timezone(&self.tz).date_naive();
        today.checked_add_days(Days::new(n)).unwrap_or(today)
    }

    fn slots_per_day(&self) -> u32 {
        (self.closes - self.opens) * 2
    }

    fn at(&self, day: NaiveDate, slot: u32) -> String {
        let minutes = self.opens * 60 + slot * 30;
        let time = NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0).unwrap_or_default();
        match self.tz.from_local_datetime(&day.and_time(time)).single() {
            Some(t) => t.to_rfc3339(),
            None => format!("{day}T{time}Z"),
        }
    }

    pub fn day_body(seat: &str, day: NaiveDate) -> String {
        format!(r#"{{"seat_number":"{seat}","reservation_date":"{day}"}}"#)
    }

    /// `{seat_number, start, end}` for `len` slots from slot `first` of `day`.
    pub fn slot_body(&self, seat: &str, day: NaiveDate, first: u32, len: u32) -> String {
        let last = (first + len).min(self.slots_per_day());
        format!(
            r#"{{"seat_number":"{seat}","start":"{}","end":"{}"}}"#,
            self.at(day, first),
            self.at(day, last)
        )
    }
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub auth: HeaderValue,
}

pub struct Space {
    /// (zone, seat numbers) as the server lists them.
    pub zones: Vec<(String, Vec<String>)>,
}

impl Space {
    pub fn seats(&self) -> Vec<String> {
        self.zones
            .iter()
            .flat_map(|(_, s)| s.iter().cloned())
            .collect()
    }
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

/// Everything one point of the matrix needs.
pub struct Plan {
    pub base: String,
    pub scenario: Scenario,
    pub shape: Shape,
    pub connections: usize,
    pub stop: Stop,
    pub warmup: Duration,
    /// Seats the `hot` scenario fights over.
    pub hot_seats: Vec<String>,
    /// Whether `hot`/`spread` winners cancel at once (keeps the seats contended and
    /// the durable write path busy for the whole run).
    pub cancel_winners: bool,
    pub calendar: Calendar,
    pub space: Arc<Space>,
    pub users: Arc<Vec<User>>,
    pub timeout: Duration,
    pub progress: bool,
    pub seed: u64,
    /// Requests per second offered by all workers together (each paces itself to its
    /// share); `None`: every worker sends its next request as soon as it has an answer.
    pub rate: Option<f64>,
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
pub async fn run_point(plan: Arc<Plan>, ledger: &mut Ledger) -> anyhow::Result<PointResult> {
    if plan.users.is_empty() && plan.scenario != Scenario::Echo {
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
        let (plan, shared) = (plan.clone(), shared.clone());
        workers.spawn(async move { worker(w, plan, shared).await });
    }
    let progress = tokio::spawn(progress_bar(plan.clone(), shared.clone(), started));
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

async fn progress_bar(plan: Arc<Plan>, shared: Arc<Shared>, started: Instant) {
    if !plan.progress {
        return;
    }
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
    plan: Arc<Plan>,
    shared: Arc<Shared>,
    user: Option<User>,
    rng: StdRng,
    out: WorkerOut,
    /// Reservations this worker holds (newest last), to cancel.
    held: Vec<Uuid>,
    /// Cancels whose outcome is unknown, retried when the point ends.
    retry: Vec<Uuid>,
    reserve_url: String,
    /// With `--rate`: when this worker's next request is due.
    next_at: Option<tokio::time::Instant>,
}

async fn worker(index: usize, plan: Arc<Plan>, shared: Arc<Shared>) -> WorkerOut {
    let http = match client(plan.timeout) {
        Ok(h) => h,
        Err(_) => {
            return WorkerOut {
                samples: Vec::new(),
                events: Vec::new(),
                last_done: None,
            };
        }
    };
    let user = (!plan.users.is_empty()).then(|| plan.users[index % plan.users.len()].clone());
    let mut w = Worker {
        http,
        reserve_url: format!("{}/api/secure/reservations", plan.base),
        user,
        rng: StdRng::seed_from_u64(plan.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        out: WorkerOut {
            samples: Vec::with_capacity(4096),
            events: Vec::new(),
            last_done: None,
        },
        held: Vec::new(),
        retry: Vec::new(),
        next_at: None,
        plan,
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
            match self.plan.scenario {
                Scenario::Hot | Scenario::Spread => {
                    if self.plan.cancel_winners && !self.held.is_empty() {
                        self.cancel_newest().await;
                    } else {
                        self.reserve().await;
                    }
                }
                Scenario::Mixed => self.mixed_step().await,
                Scenario::Echo => self.echo().await,
            }
        }
    }

    /// With `--rate`, waits for this worker's next slot: `connections / rate` seconds
    /// apart, the first at a random offset so the workers do not fire together. A
    /// worker whose answer came late sends at once but does not catch up with a burst,
    /// so a server that only slows down (instead of refusing) is offered less.
    async fn pace(&mut self) {
        let Some(rate) = self.plan.rate else { return };
        let interval = Duration::from_secs_f64(self.plan.connections as f64 / rate);
        let now = tokio::time::Instant::now();
        let due = match self.next_at {
            Some(due) => due,
            None => now + interval.mul_f64(self.rng.gen_range(0.0..1.0)),
        };
        tokio::time::sleep_until(due).await;
        self.next_at = Some((due + interval).max(tokio::time::Instant::now()));
    }

    /// Releases whatever this worker still holds so the next point starts from free
    /// seats; not measured.
    async fn release(&mut self) {
        if self.plan.scenario == Scenario::Echo {
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

    async fn mixed_step(&mut self) {
        let roll = self.rng.gen_range(0..100);
        let limit = 3;
        match roll {
            0..40 => self.availability().await,
            40..60 => self.list().await,
            _ => {
                let wants_cancel = roll >= 85;
                if (wants_cancel && !self.held.is_empty()) || self.held.len() >= limit {
                    let pick = self.rng.gen_range(0..self.held.len());
                    let id = self.held.swap_remove(pick);
                    self.held.push(id);
                    self.cancel_newest().await;
                } else {
                    self.reserve().await;
                }
            }
        }
    }

    fn reserve_body(&mut self) -> String {
        let plan = &self.plan;
        let cal = &plan.calendar;
        match plan.scenario {
            Scenario::Hot => {
                let seat = &plan.hot_seats[self.rng.gen_range(0..plan.hot_seats.len())];
                let day = cal.day(1);
                match plan.shape {
                    Shape::Day => Calendar::day_body(seat, day),
                    // Everyone wants 10:00-12:00.
                    Shape::Slot => cal.slot_body(seat, day, 4, 4),
                }
            }
            _ => {
                let seats = &plan.space.zones;
                let (_, zone_seats) = &seats[self.rng.gen_range(0..seats.len())];
                let seat = &zone_seats[self.rng.gen_range(0..zone_seats.len())];
                let day = cal.day(self.rng.gen_range(1..=cal.horizon_days));
                match plan.shape {
                    Shape::Day => Calendar::day_body(seat, day),
                    Shape::Slot => {
                        let slots = cal.slots_per_day();
                        let len = self.rng.gen_range(1..=4);
                        let first = self.rng.gen_range(0..=slots - len);
                        cal.slot_body(seat, day, first, len)
                    }
                }
            }
        }
    }

    async fn reserve(&mut self) {
        let body = self.reserve_body();
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

    async fn availability(&mut self) {
        let zones = &self.plan.space.zones;
        let zone = zones[self.rng.gen_range(0..zones.len())].0.clone();
        let day = self
            .plan
            .calendar
            .day(self.rng.gen_range(1..=self.plan.calendar.horizon_days));
        let url = format!(
            "{}/api/public/zones/{zone}/availability?date={day}",
            self.plan.base
        );
        self.send(Op::Availability, Method::GET, &url, None).await;
    }

    async fn list(&mut self) {
        let url = format!("{}/api/secure/my-reservations?limit=20", self.plan.base);
        self.send(Op::List, Method::GET, &url, None).await;
    }

    async fn echo(&mut self) {
        let body = self.reserve_body();
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
