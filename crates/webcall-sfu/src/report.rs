//! The engine's debug report (`RUST_LOG=webcall_sfu=debug`): every few
//! seconds, each session's state in one line — what it sends (the layers
//! arriving and their rates), what it gets (per forwarded video the wanted and
//! the sent layer) and its bandwidth estimate. What a routed call that goes
//! wrong is diagnosed from.

use std::time::{Duration, Instant};

use crate::engine::Engine;

/// How often each session's state is written to the debug log.
const REPORT_EVERY: Duration = Duration::from_secs(5);

impl Engine {
    /// Writes the report when it is due.
    pub(crate) fn report_now_and_then(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_report) >= REPORT_EVERY {
            self.last_report = now;
            self.report(now);
        }
    }

    /// Each session at debug level: what it sends (layers arriving, their
    /// rates) and what it gets (per forwarded video: the layer wanted and the
    /// layer sent).
    fn report(&self, now: Instant) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        for s in self.sessions.values() {
            let sends: Vec<String> = s
                .incoming
                .iter()
                .map(|t| format!("{}:{:?}:{}", t.mid, t.source, t.traffic.describe(now)))
                .collect();
            let gets: Vec<String> = s
                .outgoing
                .iter()
                .filter(|o| o.source.is_video())
                .map(|o| {
                    format!(
                        "{}/{}:{:?}:want={:?}:now={:?}",
                        o.publisher, o.in_mid, o.state, o.target, o.forward.current
                    )
                })
                .collect();
            tracing::debug!(
                room = %s.room,
                peer = %s.peer,
                connected = s.connected,
                estimate = ?s.estimate,
                sends = ?sends,
                gets = ?gets,
                "session state"
            );
        }
    }
}
