//! Typed configuration from the environment (and a `.env` file, loaded by `main`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use chrono::NaiveTime;
use chrono_tz::Tz;
use rand::RngCore;

/// The signing secret for JWTs. Never printed.
#[derive(Clone)]
pub struct JwtSecret(Vec<u8>);

impl JwtSecret {
    pub const MIN_LEN: usize = 32;

    pub fn new(bytes: Vec<u8>) -> anyhow::Result<Self> {
        if bytes.len() < Self::MIN_LEN {
            bail!(
                "PICA_JWT_SECRET must be at least {} bytes long",
                Self::MIN_LEN
            );
        }
        Ok(Self(bytes))
    }

    pub fn random() -> Self {
        let mut bytes = vec![0u8; 48];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtSecret(..)")
    }
}

/// The key Pica presents to MediMatch. Never printed, never sent anywhere else.
#[derive(Clone)]
pub struct MedimatchApiKey(String);

impl MedimatchApiKey {
    pub fn new(key: String) -> anyhow::Result<Self> {
        // Sent as a header: visible ASCII only. The message must not echo the key.
        if key.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            bail!("MEDIMATCH_API_KEY must be printable ASCII without spaces");
        }
        Ok(Self(key))
    }

    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MedimatchApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MedimatchApiKey(..)")
    }
}

/// The MediMatch partner service; with no `url`, the built-in recommender answers.
#[derive(Debug, Clone)]
pub struct MedimatchSettings {
    pub url: Option<reqwest::Url>,
    pub api_key: Option<MedimatchApiKey>,
    pub connect_timeout: Duration,
    /// The whole budget of one recommendation call, retries included.
    pub timeout: Duration,
    /// Extra tries after a transient failure.
    pub retries: u32,
    /// The first pause between tries (doubling, with jitter).
    pub retry_backoff: Duration,
    /// Consecutive failed calls that open the circuit breaker.
    pub breaker_threshold: u32,
    pub breaker_open: Duration,
    /// How long a successful answer is reused; zero turns the cache off.
    pub cache_ttl: Duration,
}

impl MedimatchSettings {
    fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        request_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let url = get("MEDIMATCH_URL")
            .map(|raw| -> anyhow::Result<reqwest::Url> {
                let url = reqwest::Url::parse(raw.trim())
                    .map_err(|e| anyhow!("MEDIMATCH_URL is not a valid URL: {e}"))?;
                if !matches!(url.scheme(), "http" | "https")
                    || !url.has_host()
                    || url.query().is_some()
                    || url.fragment().is_some()
                {
                    bail!("MEDIMATCH_URL must be an http(s) URL without query, like https://medimatch.example");
                }
                Ok(url)
            })
            .transpose()?;
        let api_key = get("MEDIMATCH_API_KEY")
            .map(MedimatchApiKey::new)
            .transpose()?;
        let ms = |key: &str, default: u64| parse(get, key, default).map(Duration::from_millis);
        let settings = Self {
            url,
            api_key,
            connect_timeout: ms("MEDIMATCH_CONNECT_TIMEOUT_MS", 2_000)?,
            timeout: ms("MEDIMATCH_TIMEOUT_MS", 5_000)?,
            retries: parse(get, "MEDIMATCH_RETRIES", 2)?,
            retry_backoff: ms("MEDIMATCH_RETRY_BACKOFF_MS", 100)?,
            breaker_threshold: parse(get, "MEDIMATCH_BREAKER_THRESHOLD", 5)?,
            breaker_open: ms("MEDIMATCH_BREAKER_OPEN_MS", 30_000)?,
            cache_ttl: ms("MEDIMATCH_CACHE_TTL_MS", 60_000)?,
        };
        if settings.connect_timeout.is_zero() {
            bail!("MEDIMATCH_CONNECT_TIMEOUT_MS must be positive");
        }
        if settings.timeout.is_zero() || settings.timeout >= request_timeout {
            bail!("MEDIMATCH_TIMEOUT_MS must be positive and below PICA_REQUEST_TIMEOUT_SECONDS");
        }
        if settings.retries > 10 {
            bail!("MEDIMATCH_RETRIES must be at most 10");
        }
        if settings.breaker_threshold == 0 {
            bail!("MEDIMATCH_BREAKER_THRESHOLD must be at least 1");
        }
        Ok(settings)
    }
}

/// Where mail goes out: lettre's `smtp://host:port` (plain, or STARTTLS with
/// `?tls=required`) or `smtps://host:port` URL. It may carry a password, so it is never
/// printed whole.
#[derive(Clone)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The URL itself, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Scheme and host only: the user and password stay out of logs.
        let shown = reqwest::Url::parse(&self.0)
            .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")));
        write!(f, "SmtpUrl({})", shown.as_deref().unwrap_or(".."))
    }
}

/// Email notifications (docs/email.md); `None` in [`Settings::mail`] when
/// `PICA_SMTP_URL` is unset, and then nothing about mail runs or is written.
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub smtp_url: SmtpUrl,
    /// `PICA_MAIL_FROM`: the sender, `Pica <pica@example.org>` or a bare address.
    pub from: lettre::message::Mailbox,
    /// `PICA_MAIL_REMINDER_MINUTES` (60): how long before the start the reminder goes.
    pub reminder_before: Duration,
    /// `PICA_MAIL_MAX_ATTEMPTS` (8): tries of one message before it is marked failed.
    pub max_attempts: u32,
    /// `PICA_MAIL_BACKOFF_MS` (30000): the pause after the first failed try, doubling
    /// after each further one (at most an hour).
    pub backoff_base: Duration,
    /// `PICA_SMTP_TIMEOUT_MS` (10000): how long one SMTP conversation may take.
    pub smtp_timeout: Duration,
    /// `PICA_MAIL_POLL_MS` (30000): how often the mailer looks for due reminders and
    /// retries without being woken.
    pub poll_every: Duration,
}

impl MailSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let Some(url) = get("PICA_SMTP_URL").map(|u| u.trim().to_string()) else {
            return Ok(None);
        };
        // Parsing only: nothing connects until the first message.
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&url).map_err(|_| {
            anyhow!("PICA_SMTP_URL must look like smtp://host:25 or smtps://user:pass@host:465")
        })?;
        let from = get("PICA_MAIL_FROM")
            .ok_or_else(|| anyhow!("PICA_MAIL_FROM must be set when PICA_SMTP_URL is"))?;
        let from = from
            .trim()
            .parse()
            .map_err(|e| anyhow!("PICA_MAIL_FROM={from:?} is not an address: {e}"))?;
        let ms = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
            let n = whole_number(get, key, default)?;
            if !range.contains(&n) {
                bail!(
                    "{key} must be between {} and {}, got {n}",
                    range.start(),
                    range.end()
                );
            }
            Ok(Duration::from_millis(n))
        };
        let minutes = whole_number(get, "PICA_MAIL_REMINDER_MINUTES", 60)?;
        if !(1..=7 * 24 * 60).contains(&minutes) {
            bail!("PICA_MAIL_REMINDER_MINUTES must be between 1 and 10080, got {minutes}");
        }
        let max_attempts = whole_number(get, "PICA_MAIL_MAX_ATTEMPTS", 8)?;
        if !(1..=50).contains(&max_attempts) {
            bail!("PICA_MAIL_MAX_ATTEMPTS must be between 1 and 50, got {max_attempts}");
        }
        Ok(Some(Self {
            smtp_url: SmtpUrl(url),
            from,
            reminder_before: Duration::from_secs(60 * minutes),
            max_attempts: max_attempts as u32,
            backoff_base: ms("PICA_MAIL_BACKOFF_MS", 30_000, 1..=3_600_000)?,
            smtp_timeout: ms("PICA_SMTP_TIMEOUT_MS", 10_000, 1..=600_000)?,
            poll_every: ms("PICA_MAIL_POLL_MS", 30_000, 1..=3_600_000)?,
        }))
    }
}

/// Book reservations and bundles.
#[derive(Debug, Clone)]
pub struct BookSettings {
    /// How long an uncollected book reservation holds its copies before it expires.
    pub hold: Duration,
    /// How long a prepared part of a bundle (seat + book) waits to be submitted before
    /// it is released.
    pub prepare_timeout: Duration,
}

impl BookSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let hours: u64 = parse(get, "PICA_BOOK_HOLD_HOURS", 48)?;
        if !(1..=24 * 90).contains(&hours) {
            bail!("PICA_BOOK_HOLD_HOURS must be between 1 and 2160, got {hours}");
        }
        let prepare_ms: u64 = parse(get, "PICA_BUNDLE_PREPARE_TIMEOUT_MS", 5_000)?;
        if !(1..=60_000).contains(&prepare_ms) {
            bail!("PICA_BUNDLE_PREPARE_TIMEOUT_MS must be between 1 and 60000, got {prepare_ms}");
        }
        Ok(Self {
            hold: Duration::from_secs(hours * 3600),
            prepare_timeout: Duration::from_millis(prepare_ms),
        })
    }
}

/// When and how far ahead seats can be booked.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub timezone: Tz,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
    pub slot_minutes: u32,
    pub horizon_days: u32,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: SocketAddr,
    pub jwt_secret: JwtSecret,
    /// True when no secret was configured and a random one is in use.
    pub jwt_secret_generated: bool,
    pub token_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Failed logins allowed per (username, client address), per client address, and
    /// per username from all addresses, in one window.
    pub login_max_failures: u32,
    pub login_max_failures_per_address: u32,
    pub login_max_failures_per_username_global: u32,
    pub login_window: Duration,
    /// Threads running argon2 (each holds 19 MiB), and password checks that may wait
    /// for one before the next is answered 503.
    pub password_hash_threads: usize,
    pub password_hash_queue: usize,
    /// Origins allowed by CORS; empty means CORS is off.
    pub cors_origins: Vec<String>,
    /// `scheme://host[:port]` members reach the server at, for addresses the server
    /// hands out (seat codes, calendar feeds); unset, each request's own host is used.
    pub public_url: Option<String>,
    pub calendar: Calendar,
    pub max_active_reservations: usize,
    /// Active occurrences of weekly series per user (each occurrence counts one),
    /// apart from `max_active_reservations`.
    pub max_series_occurrences: usize,
    pub db_max_connections: u32,
    /// On PostgreSQL, how many of the unit of work's transactions may be in flight at
    /// once (each on a writer connection of its own); SQLite always commits one at a time.
    pub pg_commits_in_flight: usize,
    /// On SQLite, whether the unit of work writes booking batches on a connection and
    /// thread of its own through SQLite's C API (`storage::sqlite_writer`) rather than
    /// through sqlx.
    pub sqlite_direct_writer: bool,
    /// How long a request waits for a database connection before 503.
    pub db_acquire_timeout: Duration,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub actor_timeout: Duration,
    /// Admission control: the most requests in flight at one zone actor, at the book
    /// stock actor, and waiting in the commit queue; past them, 503 at once.
    pub zone_queue_limit: usize,
    pub book_queue_limit: usize,
    pub commit_queue_limit: usize,
    /// Requests the HTTP edge handles at once; past it, 503 before the body is read.
    pub max_in_flight: usize,
    pub seed_demo: bool,
    pub medimatch: MedimatchSettings,
    pub books: BookSettings,
    pub lifecycle: crate::lifecycle::LifecycleSettings,
    pub streams: crate::http::StreamSettings,
    pub connections: ConnectionSettings,
    pub mail: Option<MailSettings>,
}

/// Limits on the TCP connections themselves (see `http::listener`).
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// A request head must arrive within this long of the connection opening or of the
    /// previous response; otherwise the connection is closed.
    pub header_timeout: Duration,
    /// Connections served at once; `None` derives it from the open-file limit.
    pub max_connections: Option<usize>,
    /// Headers one request may carry (431 above).
    pub max_headers: usize,
}

impl ConnectionSettings {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let header_secs: u64 = parse(get, "PICA_HEADER_TIMEOUT_SECONDS", 10)?;
        if !(1..=3600).contains(&header_secs) {
            bail!("PICA_HEADER_TIMEOUT_SECONDS must be between 1 and 3600, got {header_secs}");
        }
        let max_connections = get("PICA_MAX_CONNECTIONS")
            .map(|raw| {
                raw.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        anyhow!("PICA_MAX_CONNECTIONS must be a positive integer, got {raw:?}")
                    })
            })
            .transpose()?;
        let max_headers: usize = parse(get, "PICA_MAX_HEADERS", 100)?;
        if !(8..=1000).contains(&max_headers) {
            bail!("PICA_MAX_HEADERS must be between 8 and 1000, got {max_headers}");
        }
        Ok(Self {
            header_timeout: Duration::from_secs(header_secs),
            max_connections,
            max_headers,
        })
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests can configure without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let (jwt_secret, jwt_secret_generated) = match get("PICA_JWT_SECRET") {
            Some(secret) => (JwtSecret::new(secret.into_bytes())?, false),
            None => (JwtSecret::random(), true),
        };
        let hours = get("PICA_OPENING_HOURS").unwrap_or_else(|| "08:00-22:00".into());
        let (opens, closes) = parse_hours(&hours)?;
        let slot_minutes: u32 = parse(&get, "PICA_SLOT_MINUTES", 30)?;
        if slot_minutes == 0 || 1440 % slot_minutes != 0 {
            bail!("PICA_SLOT_MINUTES must divide a day (e.g. 15, 30, 60), got {slot_minutes}");
        }
        let timezone: Tz = get("PICA_TIMEZONE")
            .unwrap_or_else(|| "Asia/Jakarta".into())
            .parse()
            .map_err(|e| anyhow!("PICA_TIMEZONE: {e}"))?;
        let max_active: usize = parse(&get, "PICA_MAX_ACTIVE_RESERVATIONS", 3)?;
        if max_active == 0 {
            bail!("PICA_MAX_ACTIVE_RESERVATIONS must be at least 1");
        }
        let max_series: usize = parse(&get, "PICA_MAX_SERIES_OCCURRENCES", 20)?;
        let request_timeout = Duration::from_secs(parse(&get, "PICA_REQUEST_TIMEOUT_SECONDS", 15)?);
        let medimatch = MedimatchSettings::from_lookup(&get, request_timeout)?;
        let login_max_failures: u32 = parse(&get, "PICA_LOGIN_MAX_FAILURES", 5)?;
        let login_max_failures_per_address: u32 =
            parse(&get, "PICA_LOGIN_MAX_FAILURES_PER_ADDRESS", 50)?;
        let login_max_failures_per_username_global: u32 =
            parse(&get, "PICA_LOGIN_MAX_FAILURES_PER_USERNAME_GLOBAL", 100)?;
        if login_max_failures == 0 || login_max_failures_per_address == 0 {
            bail!(
                "PICA_LOGIN_MAX_FAILURES and PICA_LOGIN_MAX_FAILURES_PER_ADDRESS must be at least 1"
            );
        }
        if login_max_failures_per_username_global < login_max_failures {
            bail!(
                "PICA_LOGIN_MAX_FAILURES_PER_USERNAME_GLOBAL must be at least PICA_LOGIN_MAX_FAILURES ({login_max_failures})"
            );
        }
        let login_window: u64 = parse(&get, "PICA_LOGIN_WINDOW_SECONDS", 900)?;
        if !(1..=30 * 86_400).contains(&login_window) {
            bail!("PICA_LOGIN_WINDOW_SECONDS must be between 1 and 2592000, got {login_window}");
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let password_hash_threads: usize = parse(&get, "PICA_PASSWORD_HASH_THREADS", cores)?;
        if !(1..=256).contains(&password_hash_threads) {
            bail!(
                "PICA_PASSWORD_HASH_THREADS must be between 1 and 256, got {password_hash_threads}"
            );
        }
        let password_hash_queue: usize = parse(&get, "PICA_PASSWORD_HASH_QUEUE", 64)?;
        if !(1..=100_000).contains(&password_hash_queue) {
            bail!(
                "PICA_PASSWORD_HASH_QUEUE must be between 1 and 100000, got {password_hash_queue}"
            );
        }
        let queue_limit = |key: &str, default: usize| -> anyhow::Result<usize> {
            let limit: usize = parse(&get, key, default)?;
            if !(1..=1_000_000).contains(&limit) {
                bail!("{key} must be between 1 and 1000000, got {limit}");
            }
            Ok(limit)
        };
        let engine_defaults = pica_actors::EngineConfig::default();
        let zone_queue_limit =
            queue_limit("PICA_ZONE_QUEUE_LIMIT", engine_defaults.zone_queue_limit)?;
        let book_queue_limit =
            queue_limit("PICA_BOOK_QUEUE_LIMIT", engine_defaults.book_queue_limit)?;
        let commit_queue_limit = queue_limit("PICA_COMMIT_QUEUE_LIMIT", engine_defaults.max_queue)?;
        let max_in_flight = queue_limit("PICA_MAX_IN_FLIGHT", 1024)?;
        let pg_commits_in_flight: usize = parse(&get, "PICA_PG_COMMITS_IN_FLIGHT", 2)?;
        if !(1..=8).contains(&pg_commits_in_flight) {
            bail!("PICA_PG_COMMITS_IN_FLIGHT must be between 1 and 8, got {pg_commits_in_flight}");
        }
        let sqlite_direct_writer = parse(&get, "PICA_SQLITE_DIRECT_WRITER", true)?;
        Ok(Settings {
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://pica.db".into()),
            bind: get("PICA_BIND")
                .unwrap_or_else(|| "127.0.0.1:8000".into())
                .parse()
                .context("PICA_BIND must be an address like 127.0.0.1:8000")?,
            jwt_secret,
            jwt_secret_generated,
            token_ttl: Duration::from_secs(parse(&get, "PICA_TOKEN_TTL_SECONDS", 900)?),
            refresh_ttl: Duration::from_secs(
                86_400 * parse::<u64>(&get, "PICA_REFRESH_TTL_DAYS", 30)?,
            ),
            login_max_failures,
            login_max_failures_per_address,
            login_max_failures_per_username_global,
            login_window: Duration::from_secs(login_window),
            password_hash_threads,
            password_hash_queue,
            public_url: public_url(get("PICA_PUBLIC_URL"))?,
            cors_origins: get("PICA_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_string())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            calendar: Calendar {
                timezone,
                opens,
                closes,
                slot_minutes,
                horizon_days: parse(&get, "PICA_HORIZON_DAYS", 30)?,
            },
            max_active_reservations: max_active,
            max_series_occurrences: max_series,
            db_max_connections: parse(&get, "PICA_DB_MAX_CONNECTIONS", 10)?,
            pg_commits_in_flight,
            sqlite_direct_writer,
            db_acquire_timeout: Duration::from_millis(parse(
                &get,
                "PICA_DB_ACQUIRE_TIMEOUT_MS",
                5000,
            )?),
            body_limit_bytes: parse(&get, "PICA_BODY_LIMIT_BYTES", 64 * 1024)?,
            request_timeout,
            actor_timeout: Duration::from_millis(parse(&get, "PICA_ACTOR_TIMEOUT_MS", 5000)?),
            zone_queue_limit,
            max_in_flight,
            book_queue_limit,
            commit_queue_limit,
            seed_demo: parse(&get, "PICA_SEED_DEMO", true)?,
            medimatch,
            books: BookSettings::from_lookup(&get)?,
            lifecycle: crate::lifecycle::LifecycleSettings::from_lookup(&get)?,
            streams: crate::http::StreamSettings::from_lookup(&get)?,
            connections: ConnectionSettings::from_lookup(&get)?,
            mail: MailSettings::from_lookup(&get)?,
        })
    }
}

/// A whole number from 0 to 10⁹, or `default` when unset.
pub(crate) fn whole_number(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: u64,
) -> anyhow::Result<u64> {
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= 1_000_000_000)
            .ok_or_else(|| anyhow!("{key}={raw:?}: expected a whole number")),
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match get(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| anyhow!("{key}={raw:?}: {e}")),
    }
}

fn parse_hours(raw: &str) -> anyhow::Result<(NaiveTime, NaiveTime)> {
    let (a, b) = raw
        .split_once('-')
        .ok_or_else(|| anyhow!("PICA_OPENING_HOURS must look like 08:00-22:00"))?;
    let opens =
        NaiveTime::parse_from_str(a.trim(), "%H:%M").context("PICA_OPENING_HOURS opening")?;
    let closes =
        NaiveTime::parse_from_str(b.trim(), "%H:%M").context("PICA_OPENING_HOURS closing")?;
    if opens >= closes {
        bail!("PICA_OPENING_HOURS: opening must be before closing (same day)");
    }
    Ok((opens, closes))
}

/// `PICA_PUBLIC_URL`: an `http(s)://host[:port]` origin, without a path.
fn public_url(raw: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(raw) = raw.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let url = raw.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or("");
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        bail!("PICA_PUBLIC_URL must be an origin like https://pica.example.com, got {raw:?}");
    }
    Ok(Some(url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.calendar.timezone, chrono_tz::Asia::Jakarta);
        assert_eq!(s.calendar.slot_minutes, 30);
        assert_eq!(s.calendar.horizon_days, 30);
        assert_eq!(s.max_active_reservations, 3);
        assert_eq!(s.max_series_occurrences, 20);
        assert!(s.jwt_secret_generated);
        assert!(s.database_url.starts_with("sqlite:"));
    }

    #[test]
    fn the_public_url_is_an_origin_without_its_trailing_slash() {
        assert_eq!(settings(&[]).unwrap().public_url, None);
        let s = settings(&[("PICA_PUBLIC_URL", "https://pica.example.com:8443/")]).unwrap();
        assert_eq!(
            s.public_url.as_deref(),
            Some("https://pica.example.com:8443")
        );
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let err = settings(&[("PICA_JWT_SECRET", "too-short")]).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"));
        assert!(settings(&[("PICA_JWT_SECRET", &"x".repeat(32))]).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (key, value) in [
            ("PICA_BIND", "nowhere"),
            ("PICA_TIMEZONE", "Mars/Olympus"),
            ("PICA_SLOT_MINUTES", "7"),
            ("PICA_OPENING_HOURS", "22:00-08:00"),
            ("PICA_HORIZON_DAYS", "-1"),
            ("PICA_LOGIN_MAX_FAILURES", "0"),
            ("PICA_LOGIN_MAX_FAILURES_PER_USERNAME_GLOBAL", "2"),
            ("PICA_LOGIN_WINDOW_SECONDS", "0"),
            ("PICA_PASSWORD_HASH_THREADS", "0"),
            ("PICA_PASSWORD_HASH_QUEUE", "0"),
            ("PICA_PUBLIC_URL", "pica.example.com"),
            ("PICA_PUBLIC_URL", "https://pica.example.com/app"),
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn queue_limits_default_and_are_validated() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.zone_queue_limit, s.book_queue_limit, s.commit_queue_limit),
            (1024, 1024, 4096)
        );
        assert_eq!(s.max_in_flight, 1024);
        assert_eq!(s.pg_commits_in_flight, 2);
        assert!(s.sqlite_direct_writer);
        let sqlx_writer = settings(&[("PICA_SQLITE_DIRECT_WRITER", "false")]).unwrap();
        assert!(!sqlx_writer.sqlite_direct_writer);
        let err = settings(&[("PICA_SQLITE_DIRECT_WRITER", "yes")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("PICA_SQLITE_DIRECT_WRITER"), "{err}");
        assert_eq!(
            settings(&[("PICA_PG_COMMITS_IN_FLIGHT", "1")])
                .unwrap()
                .pg_commits_in_flight,
            1
        );
        for bad in ["0", "9", "two"] {
            let err = format!(
                "{:#}",
                settings(&[("PICA_PG_COMMITS_IN_FLIGHT", bad)]).unwrap_err()
            );
            assert!(err.contains("PICA_PG_COMMITS_IN_FLIGHT"), "{bad}: {err}");
        }
        assert_eq!(
            settings(&[("PICA_MAX_IN_FLIGHT", "64")])
                .unwrap()
                .max_in_flight,
            64
        );
        let s = settings(&[
            ("PICA_ZONE_QUEUE_LIMIT", "8"),
            ("PICA_BOOK_QUEUE_LIMIT", "4"),
            ("PICA_COMMIT_QUEUE_LIMIT", "16"),
        ])
        .unwrap();
        assert_eq!(
            (s.zone_queue_limit, s.book_queue_limit, s.commit_queue_limit),
            (8, 4, 16)
        );
        for key in [
            "PICA_ZONE_QUEUE_LIMIT",
            "PICA_BOOK_QUEUE_LIMIT",
            "PICA_COMMIT_QUEUE_LIMIT",
            "PICA_MAX_IN_FLIGHT",
        ] {
            for bad in ["0", "-1", "lots"] {
                let err = format!("{:#}", settings(&[(key, bad)]).unwrap_err());
                assert!(err.contains(key), "{key}={bad}: {err}");
            }
        }
    }

    #[test]
    fn mail_is_off_unless_an_smtp_url_is_set() {
        assert!(settings(&[]).unwrap().mail.is_none());
        let m = settings(&[
            ("PICA_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("PICA_MAIL_FROM", "Pica <pica@example.org>"),
        ])
        .unwrap()
        .mail
        .unwrap();
        assert_eq!(m.from.email.to_string(), "pica@example.org");
        assert_eq!(m.reminder_before, Duration::from_secs(3600));
        assert_eq!(m.max_attempts, 8);
        assert_eq!(m.backoff_base, Duration::from_secs(30));
        assert_eq!(m.smtp_timeout, Duration::from_secs(10));
        assert_eq!(m.poll_every, Duration::from_secs(30));
        let m = settings(&[
            ("PICA_SMTP_URL", "smtps://user:pw@mail.example.org:465"),
            ("PICA_MAIL_FROM", "pica@example.org"),
            ("PICA_MAIL_REMINDER_MINUTES", "15"),
            ("PICA_MAIL_MAX_ATTEMPTS", "3"),
            ("PICA_MAIL_BACKOFF_MS", "50"),
            ("PICA_SMTP_TIMEOUT_MS", "500"),
            ("PICA_MAIL_POLL_MS", "100"),
        ])
        .unwrap()
        .mail
        .unwrap();
        assert_eq!(m.reminder_before, Duration::from_secs(900));
        assert_eq!(m.max_attempts, 3);
        assert_eq!(m.backoff_base, Duration::from_millis(50));
        assert_eq!(m.smtp_timeout, Duration::from_millis(500));
        assert_eq!(m.poll_every, Duration::from_millis(100));
        // The URL's password is never printed.
        let printed = format!("{m:?}");
        assert!(!printed.contains("pw"), "{printed}");
        assert!(printed.contains("mail.example.org"), "{printed}");
    }

    #[test]
    fn bad_mail_values_name_the_variable() {
        let err = format!(
            "{:#}",
            settings(&[("PICA_SMTP_URL", "smtp://127.0.0.1:2525")]).unwrap_err()
        );
        assert!(err.contains("PICA_MAIL_FROM"), "{err}");
        for (key, value) in [
            ("PICA_SMTP_URL", "http://mail.example.org"),
            ("PICA_MAIL_FROM", "not an address"),
            ("PICA_MAIL_REMINDER_MINUTES", "0"),
            ("PICA_MAIL_MAX_ATTEMPTS", "0"),
            ("PICA_MAIL_BACKOFF_MS", "0"),
            ("PICA_SMTP_TIMEOUT_MS", "soon"),
            ("PICA_MAIL_POLL_MS", "0"),
        ] {
            let mut pairs = vec![
                ("PICA_SMTP_URL", "smtp://127.0.0.1:2525"),
                ("PICA_MAIL_FROM", "pica@example.org"),
            ];
            pairs.retain(|(k, _)| *k != key);
            pairs.push((key, value));
            let err = format!("{:#}", settings(&pairs).unwrap_err());
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn medimatch_defaults_to_the_built_in_recommender() {
        let m = settings(&[]).unwrap().medimatch;
        assert!(m.url.is_none());
        assert!(m.api_key.is_none());
        assert_eq!(m.timeout, Duration::from_secs(5));
        assert_eq!(m.connect_timeout, Duration::from_secs(2));
        assert_eq!(m.retries, 2);
        assert_eq!(m.breaker_threshold, 5);
        assert_eq!(m.breaker_open, Duration::from_secs(30));
        assert_eq!(m.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn medimatch_partner_settings_are_read() {
        let m = settings(&[
            ("MEDIMATCH_URL", "http://127.0.0.1:9999/api/"),
            ("MEDIMATCH_API_KEY", "k-123"),
            ("MEDIMATCH_TIMEOUT_MS", "250"),
            ("MEDIMATCH_CONNECT_TIMEOUT_MS", "50"),
            ("MEDIMATCH_RETRIES", "0"),
            ("MEDIMATCH_RETRY_BACKOFF_MS", "5"),
            ("MEDIMATCH_BREAKER_THRESHOLD", "2"),
            ("MEDIMATCH_BREAKER_OPEN_MS", "1000"),
            ("MEDIMATCH_CACHE_TTL_MS", "0"),
        ])
        .unwrap()
        .medimatch;
        assert_eq!(m.url.unwrap().as_str(), "http://127.0.0.1:9999/api/");
        assert_eq!(m.api_key.unwrap().expose(), "k-123");
        assert_eq!(m.timeout, Duration::from_millis(250));
        assert_eq!(m.connect_timeout, Duration::from_millis(50));
        assert_eq!(m.retries, 0);
        assert_eq!(m.retry_backoff, Duration::from_millis(5));
        assert_eq!(m.breaker_threshold, 2);
        assert_eq!(m.breaker_open, Duration::from_secs(1));
        assert!(m.cache_ttl.is_zero());
    }

    #[test]
    fn medimatch_api_key_is_never_printed() {
        let s = settings(&[
            ("MEDIMATCH_URL", "https://medimatch.example"),
            ("MEDIMATCH_API_KEY", "sup3r-s3cret-key"),
        ])
        .unwrap();
        let printed = format!("{s:?} {:?}", s.medimatch);
        assert!(!printed.contains("sup3r-s3cret-key"), "{printed}");
        assert!(printed.contains("MedimatchApiKey(..)"));
        // Nor in the message refusing a malformed key.
        let err = format!(
            "{:#}",
            settings(&[("MEDIMATCH_API_KEY", "bad key\u{7f}")]).unwrap_err()
        );
        assert!(
            err.contains("MEDIMATCH_API_KEY") && !err.contains("bad key"),
            "{err}"
        );
    }

    #[test]
    fn bad_medimatch_values_name_the_variable() {
        for (key, value) in [
            ("MEDIMATCH_URL", "not a url"),
            ("MEDIMATCH_URL", "ftp://medimatch.example"),
            ("MEDIMATCH_URL", "http://medimatch.example/?q=1"),
            ("MEDIMATCH_TIMEOUT_MS", "0"),
            ("MEDIMATCH_TIMEOUT_MS", "15000"),
            ("MEDIMATCH_CONNECT_TIMEOUT_MS", "0"),
            ("MEDIMATCH_RETRIES", "11"),
            ("MEDIMATCH_RETRIES", "-1"),
            ("MEDIMATCH_BREAKER_THRESHOLD", "0"),
            ("MEDIMATCH_CACHE_TTL_MS", "soon"),
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}={value}: {err}");
        }
    }
}
