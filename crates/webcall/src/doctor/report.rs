//! What `webcall doctor` prints: one line per check (`ok`, `info`, `WARN` or
//! `FAIL`, its name, what it found), a `fix:` line under each one that is not
//! ok, and one summary line at the end.

use std::fmt::Display;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Ok,
    /// Nothing to fix, but worth knowing (a running server holds the port).
    Info,
    /// Works here, but something will not (browsers elsewhere cannot reach the relay).
    Warn,
    Fail,
}

/// One check's outcome: what was found, and what to do when it is not ok.
#[derive(Debug)]
pub(super) struct Outcome {
    pub(super) mark: Mark,
    pub(super) text: String,
    pub(super) fix: Option<String>,
}

pub(super) fn ok(text: impl Display) -> Outcome {
    Outcome {
        mark: Mark::Ok,
        text: text.to_string(),
        fix: None,
    }
}

pub(super) fn info(text: impl Display) -> Outcome {
    Outcome {
        mark: Mark::Info,
        text: text.to_string(),
        fix: None,
    }
}

pub(super) fn warn(text: impl Display, fix: impl Display) -> Outcome {
    Outcome {
        mark: Mark::Warn,
        text: text.to_string(),
        fix: Some(fix.to_string()),
    }
}

pub(super) fn fail(text: impl Display, fix: impl Display) -> Outcome {
    Outcome {
        mark: Mark::Fail,
        text: text.to_string(),
        fix: Some(fix.to_string()),
    }
}

/// The checks printed so far.
#[derive(Default)]
pub(super) struct Report {
    checks: usize,
    /// Names of the checks that warned or failed (each once), and how many lines.
    warned: Vec<&'static str>,
    failed: Vec<&'static str>,
    warnings: usize,
    failures: usize,
}

impl Report {
    /// Prints one check.
    pub(super) fn check(&mut self, name: &'static str, outcome: Outcome) {
        let mark = match outcome.mark {
            Mark::Ok => "ok  ",
            Mark::Info => "info",
            Mark::Warn => "WARN",
            Mark::Fail => "FAIL",
        };
        println!("{mark}  {name:<14} {}", outcome.text);
        if let Some(fix) = &outcome.fix {
            println!("      {:<14} fix: {fix}", "");
        }
        self.checks += 1;
        let list = match outcome.mark {
            Mark::Warn => {
                self.warnings += 1;
                &mut self.warned
            }
            Mark::Fail => {
                self.failures += 1;
                &mut self.failed
            }
            Mark::Ok | Mark::Info => return,
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }

    /// A line that is no check (what the ICE servers will be).
    pub(super) fn note(&self, name: &str, text: impl Display) {
        println!("      {name:<14} {text}");
    }

    /// Prints the one summary line; whether no check failed.
    pub(super) fn finish(self) -> bool {
        let mut parts = Vec::new();
        if !self.failed.is_empty() {
            parts.push(format!(
                "{} failed ({})",
                self.failures,
                self.failed.join(", ")
            ));
        }
        if !self.warned.is_empty() {
            parts.push(format!(
                "{} to look at ({})",
                self.warnings,
                self.warned.join(", ")
            ));
        }
        if parts.is_empty() {
            println!("\nall {} checks passed", self.checks);
        } else {
            println!(
                "\n{} checks: {}; see the fix: lines above",
                self.checks,
                parts.join(", ")
            );
        }
        self.failed.is_empty()
    }
}
