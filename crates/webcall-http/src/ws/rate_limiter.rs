//! The frame rate limiter of one signaling connection: a token bucket its reader
//! asks before it handles each client frame (docs/protocol.md §8).

use std::time::{Duration, Instant};

/// A token bucket: `rate` frames per second, bursts of `burst`. Past the burst,
/// frames are dropped with an `error` (at most one a second); a client that
/// keeps sending at twice the burst in dropped frames is closed with 4029.
pub(super) struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
    dropped: f64,
    last_warning: Option<Instant>,
}

/// What to do with a frame.
pub(super) enum Admit {
    /// Handle it.
    Yes,
    /// Drop it; `warn`: tell the client so (once a second at most).
    No { warn: bool },
    /// Close the connection (4029).
    Abuse,
}

impl RateLimiter {
    pub(super) fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
            dropped: 0.0,
            last_warning: None,
        }
    }

    pub(super) fn take(&mut self) -> Admit {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        // Dropped frames are forgiven at the same rate.
        self.dropped = (self.dropped - elapsed * self.rate).max(0.0);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        self.dropped += 1.0;
        if self.dropped > 2.0 * self.burst {
            return Admit::Abuse;
        }
        let warn = self
            .last_warning
            .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1));
        if warn {
            self.last_warning = Some(now);
        }
        Admit::No { warn }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_admits_a_burst_then_the_rate_then_calls_abuse() {
        let mut limiter = RateLimiter::new(50.0, 100.0);
        for _ in 0..100 {
            assert!(matches!(limiter.take(), Admit::Yes));
        }
        assert!(matches!(limiter.take(), Admit::No { warn: true }));
        assert!(matches!(limiter.take(), Admit::No { warn: false }));
        let abuse = (0..400).any(|_| matches!(limiter.take(), Admit::Abuse));
        assert!(abuse);
    }
}
