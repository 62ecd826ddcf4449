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
    pub calendar: Calendar,
    pub max_active_reservations: usize,
    pub db_max_connections: u32,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub actor_timeout: Duration,
    pub seed_demo: bool,
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
        Ok(Settings {
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://pica.db".into()),
            bind: get("PICA_BIND")
                .unwrap_or_else(|| "127.0.0.1:8000".into())
                .parse()
                .context("PICA_BIND must be an address like 127.0.0.1:8000")?,
            jwt_secret,
            jwt_secret_generated,
            token_ttl: Duration::from_secs(parse(&get, "PICA_TOKEN_TTL_SECONDS", 3600)?),
            calendar: Calendar {
                timezone,
                opens,
                closes,
                slot_minutes,
                horizon_days: parse(&get, "PICA_HORIZON_DAYS", 30)?,
            },
            max_active_reservations: max_active,
            db_max_connections: parse(&get, "PICA_DB_MAX_CONNECTIONS", 10)?,
            body_limit_bytes: parse(&get, "PICA_BODY_LIMIT_BYTES", 64 * 1024)?,
            request_timeout: Duration::from_secs(parse(&get, "PICA_REQUEST_TIMEOUT_SECONDS", 15)?),
            actor_timeout: Duration::from_millis(parse(&get, "PICA_ACTOR_TIMEOUT_MS", 5000)?),
            seed_demo: parse(&get, "PICA_SEED_DEMO", true)?,
        })
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
    fn defaults_match_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.calendar.timezone, chrono_tz::Asia::Jakarta);
        assert_eq!(s.calendar.slot_minutes, 30);
        assert_eq!(s.calendar.horizon_days, 30);
        assert_eq!(s.max_active_reservations, 3);
        assert!(s.jwt_secret_generated);
        assert!(s.database_url.starts_with("sqlite:"));
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
        ] {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}
