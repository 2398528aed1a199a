//! What one allocation relayed: packets and payload bytes each way, counted on
//! the data plane's hot paths with relaxed atomic adds on the allocation's own
//! counters (no lock, no lookup: the data plane holds them with the relay
//! socket), and its rate over the last few seconds, from samples taken once a
//! second off the hot path ([`Traffic::sample`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How far back the rate looks.
pub(crate) const RATE_WINDOW: Duration = Duration::from_secs(5);

/// How often [`Traffic::sample`] should be called.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Samples kept: one per [`SAMPLE_EVERY`] over [`RATE_WINDOW`], and one more.
const SAMPLES: usize = 6;

/// One allocation's counters.
pub(crate) struct Traffic {
    created: Instant,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    /// (when, bytes in, bytes out), oldest first.
    samples: Mutex<VecDeque<(Instant, u64, u64)>>,
}

impl Traffic {
    pub(crate) fn new() -> Self {
        Self {
            created: Instant::now(),
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            packets_out: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
        }
    }

    /// The client sent a datagram of `bytes` on through the relay.
    pub(crate) fn count_in(&self, bytes: usize) {
        self.packets_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The relay passed a datagram of `bytes` to the client.
    pub(crate) fn count_out(&self, bytes: usize) {
        self.packets_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub(crate) fn age(&self) -> Duration {
        self.created.elapsed()
    }

    pub(crate) fn totals(&self) -> webcall_domain::operations::Traffic {
        webcall_domain::operations::Traffic {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }

    fn samples(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, u64, u64)>> {
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the byte counts at `now`, forgetting those older than the window.
    pub(crate) fn sample(&self, now: Instant) {
        let totals = self.totals();
        let mut samples = self.samples();
        while samples.len() >= SAMPLES
            || samples
                .front()
                .is_some_and(|(at, ..)| now.duration_since(*at) > RATE_WINDOW)
        {
            samples.pop_front();
        }
        samples.push_back((now, totals.bytes_in, totals.bytes_out));
    }

    /// Bits per second in and out since the oldest sample of the window (since
    /// the allocation was made, before the first sample).
    pub(crate) fn rates(&self, now: Instant) -> (u64, u64) {
        let totals = self.totals();
        let (since, bytes_in, bytes_out) = self
            .samples()
            .iter()
            .copied()
            .find(|(at, ..)| now.duration_since(*at) <= RATE_WINDOW)
            .unwrap_or((self.created, 0, 0));
        let secs = now.duration_since(since).as_secs_f64();
        if secs < 0.001 {
            return (0, 0);
        }
        let bps = |bytes: u64| (bytes as f64 * 8.0 / secs) as u64;
        (
            bps(totals.bytes_in - bytes_in),
            bps(totals.bytes_out - bytes_out),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_way() {
        let traffic = Traffic::new();
        traffic.count_in(100);
        traffic.count_in(20);
        traffic.count_out(7);
        let totals = traffic.totals();
        assert_eq!((totals.packets_in, totals.bytes_in), (2, 120));
        assert_eq!((totals.packets_out, totals.bytes_out), (1, 7));
    }

    #[test]
    fn the_rate_covers_the_window_only() {
        let traffic = Traffic::new();
        let start = traffic.created;
        // 10 s of 1000 bytes a second in, then 2 s of 5000 a second.
        for second in 1..=12u64 {
            traffic.count_in(if second <= 10 { 1000 } else { 5000 });
            traffic.sample(start + Duration::from_secs(second));
        }
        let (rate_in, rate_out) = traffic.rates(start + Duration::from_secs(12));
        // The window's oldest sample is at 7 s: 3000 + 10,000 bytes since, over 5 s.
        assert_eq!(rate_in, 13_000 * 8 / 5);
        assert_eq!(rate_out, 0);
    }

    #[test]
    fn before_any_sample_the_rate_is_since_the_allocation_was_made() {
        let traffic = Traffic::new();
        traffic.count_out(1000);
        let (_, rate_out) = traffic.rates(traffic.created + Duration::from_secs(2));
        assert_eq!(rate_out, 4000);
    }
}
