//! A small command-line parser: `pica-bench COMMAND [--key value | --key=value | --flag]...`.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

/// Options that take no value.
const FLAGS: &[&str] = &["ceiling", "no-audit", "no-cancel", "quiet", "help"];

pub struct Args {
    pub command: String,
    values: HashMap<String, String>,
    flags: HashSet<String>,
    used: std::cell::RefCell<HashSet<String>>,
}

impl Args {
    pub fn parse(raw: impl IntoIterator<Item = String>) -> anyhow::Result<Args> {
        let mut raw = raw.into_iter();
        let mut command = None;
        let mut values = HashMap::new();
        let mut flags = HashSet::new();
        while let Some(arg) = raw.next() {
            if let Some(key) = arg.strip_prefix("--") {
                if let Some((k, v)) = key.split_once('=') {
                    values.insert(k.to_string(), v.to_string());
                } else if FLAGS.contains(&key) {
                    flags.insert(key.to_string());
                } else {
                    let value = raw.next().ok_or_else(|| anyhow!("--{key} needs a value"))?;
                    values.insert(key.to_string(), value);
                }
            } else if arg == "-h" {
                flags.insert("help".into());
            } else if command.is_none() {
                command = Some(arg);
            } else {
                bail!("unexpected argument {arg:?}");
            }
        }
        Ok(Args {
            command: command.unwrap_or_else(|| "help".into()),
            values,
            flags,
            used: Default::default(),
        })
    }

    pub fn flag(&self, key: &str) -> bool {
        self.used.borrow_mut().insert(key.to_string());
        self.flags.contains(key)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.used.borrow_mut().insert(key.to_string());
        self.values.get(key).map(String::as_str)
    }

    pub fn get_or(&self, key: &str, default: &str) -> String {
        self.get(key).unwrap_or(default).to_string()
    }

    pub fn parsed<T: FromStr>(&self, key: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| anyhow!("--{key} {raw:?}: {e}")),
        }
    }

    /// A comma-separated list, e.g. `--connections 16,64,256`.
    pub fn list<T: FromStr>(&self, key: &str, default: &str) -> anyhow::Result<Vec<T>>
    where
        T::Err: std::fmt::Display,
    {
        let raw = self.get_or(key, default);
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().map_err(|e| anyhow!("--{key} {s:?}: {e}")))
            .collect()
    }

    /// A duration such as `10`, `10s`, `500ms` or `2m`.
    pub fn duration(&self, key: &str, default: Duration) -> anyhow::Result<Duration> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => parse_duration(raw).with_context(|| format!("--{key} {raw:?}")),
        }
    }

    /// Fails on options nobody asked for (typos).
    pub fn reject_unknown(&self) -> anyhow::Result<()> {
        let used = self.used.borrow();
        let unknown: Vec<_> = self
            .values
            .keys()
            .chain(self.flags.iter())
            .filter(|k| !used.contains(*k))
            .map(|k| format!("--{k}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            bail!(
                "unknown option(s) for `{}`: {}",
                self.command,
                unknown.join(", ")
            )
        }
    }
}

pub fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let raw = raw.trim();
    let (number, unit) = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((raw, "s"), |i| raw.split_at(i));
    let n: f64 = number.parse().context("not a number")?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        other => bail!("unknown unit {other:?} (use ms, s or m)"),
    };
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_values_flags_and_lists() {
        let args = Args::parse(
            [
                "run",
                "--url",
                "http://x",
                "--connections=16,64",
                "--ceiling",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(args.command, "run");
        assert_eq!(args.get("url"), Some("http://x"));
        assert_eq!(
            args.list::<usize>("connections", "1").unwrap(),
            vec![16, 64]
        );
        assert!(args.flag("ceiling"));
        assert!(args.reject_unknown().is_ok());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
    }

    #[test]
    fn unknown_options_are_reported() {
        let args = Args::parse(["run", "--conections", "3"].map(String::from)).unwrap();
        assert!(args.reject_unknown().is_err());
    }
}
