//! Reading one variable: empty counts as unset, a default when it is unset,
//! and on a bad value a [`ConfigError`] that names the variable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

/// A start-up configuration problem, naming the variable; the missing or weak
/// secrets are all named at once (the first in `var`, the others in `more`).
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
    /// Further problems found with the first (each names its variable).
    pub more: Vec<ConfigError>,
}

impl ConfigError {
    /// Every problem, the first one first.
    pub fn problems(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((self.var, self.problem.as_str())).chain(
            self.more
                .iter()
                .flat_map(|e| e.problems().collect::<Vec<_>>()),
        )
    }

    /// One error naming every problem of `errors` (`None` when there is none).
    pub(super) fn all(mut errors: Vec<ConfigError>) -> Option<ConfigError> {
        if errors.is_empty() {
            return None;
        }
        let mut first = errors.remove(0);
        first.more.extend(errors);
        Some(first)
    }
}

/// One problem per line: `VAR: what is wrong`.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (var, problem)) in self.problems().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{var}: {problem}")?;
        }
        Ok(())
    }
}

pub(super) fn problem(var: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        problem: problem.into(),
        more: Vec::new(),
    }
}

/// The variables as given (the environment, or a map in tests).
pub(super) struct Vars<'a>(pub(super) &'a HashMap<String, String>);

impl Vars<'_> {
    /// The trimmed value; unset or empty is `None`.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// The value parsed, or `default` when unset.
    pub(super) fn parse_or<T: std::str::FromStr>(
        &self,
        var: &'static str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| problem(var, format!("cannot parse {raw:?}"))),
        }
    }

    /// Whole seconds, at least one; `default` when unset.
    pub(super) fn secs(
        &self,
        var: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let value: u64 = self.parse_or(var, default.as_secs())?;
        if value == 0 {
            return Err(problem(var, "must be at least 1 second"));
        }
        Ok(Duration::from_secs(value))
    }

    /// `true`/`false` (or 1/0, yes/no, on/off); `default` when unset.
    pub(super) fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        self.get(var).map_or(Ok(default), |v| {
            parse_bool(&v).ok_or_else(|| problem(var, "must be true or false"))
        })
    }

    /// A comma list, items trimmed, empty ones dropped.
    pub(super) fn list(&self, var: &str) -> Vec<String> {
        list(&self.get(var))
    }

    /// A comma list of IPs or CIDRs (a bare address is a one-address network);
    /// `hint` follows "must be a comma list of IPs or CIDRs" on a bad one.
    pub(super) fn nets(&self, var: &'static str, hint: &str) -> Result<Vec<IpNet>, ConfigError> {
        self.list(var)
            .iter()
            .map(|s| parse_net(s))
            .collect::<Option<_>>()
            .ok_or_else(|| problem(var, format!("must be a comma list of IPs or CIDRs{hint}")))
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn list(value: &Option<String>) -> Vec<String> {
    value
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A bare address is a one-address network.
fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// A DNS name as a certificate names it: dot-separated labels of letters,
/// digits and hyphens (not an IP address, no port, no scheme).
pub(super) fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.parse::<IpAddr>().is_err()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
