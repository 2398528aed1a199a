//! Logging: human-readable in dev, JSON lines in prod, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::AppEnv;

const DEFAULT_FILTER: &str = "info,sqlx=warn";

/// `webcall doctor`'s filter: warnings, and from the relay it starts for its
/// self-test errors only (its report says what the relay did). The TURN
/// library's own lines are off: its client and server log a refresh racing the
/// probe's deallocation ("no allocation found", "bind() failed") as errors,
/// about one run in 40, and the report already says whether each path worked.
pub const QUIET_FILTER: &str =
    "warn,webcall_turn=error,webcall::relay=error,webcall::listener=error,turn=off";

/// As [`init`], but writing to stderr (stdout carries a report).
pub fn init_quiet(env: AppEnv, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(QUIET_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match env {
        AppEnv::Dev => builder.compact().try_init(),
        AppEnv::Prod => builder.json().flatten_event(true).try_init(),
    };
}

/// Installs the global subscriber (a second call is a no-op, for tests).
pub fn init(env: AppEnv, filter: Option<&str>) {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match env {
        AppEnv::Dev => builder.compact().try_init(),
        AppEnv::Prod => builder.json().flatten_event(true).try_init(),
    };
}
