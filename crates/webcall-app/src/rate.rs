//! A sliding-window rate limit per key: at most `max` events in any `window`.
//! The check and the count are one step under one lock, so concurrent callers
//! cannot pass the limit together. Room creations use it as it is; the login
//! throttle counts failures with it, giving back an attempt that turns out right.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub struct RateLimit<K> {
    max: usize,
    window: chrono::Duration,
    inner: Mutex<State<K>>,
}

struct State<K> {
    events: HashMap<K, VecDeque<DateTime<Utc>>>,
    /// Keys whose events have all left the window are dropped when the map
    /// reaches this size (then twice what is left).
    sweep_at: usize,
}

const INITIAL_SWEEP_AT: usize = 1024;

impl<K: Hash + Eq> RateLimit<K> {
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window: chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX),
            inner: Mutex::new(State {
                events: HashMap::new(),
                sweep_at: INITIAL_SWEEP_AT,
            }),
        }
    }

    /// Counts an event of `key` at `now`; or, when `key` had `max` events in
    /// the window already, counts nothing and says how long until one leaves it.
    pub fn admit(&self, key: K, now: DateTime<Utc>) -> Result<(), Duration> {
        let window = self.window;
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if state.events.len() >= state.sweep_at {
            state
                .events
                .retain(|_, times| times.back().is_some_and(|t| now - *t < window));
            state.sweep_at = (state.events.len() * 2).max(INITIAL_SWEEP_AT);
        }
        let times = state.events.entry(key).or_default();
        while times.front().is_some_and(|t| now - *t >= window) {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = *times.front().expect("max is at least one");
            let wait = (oldest + window - now).to_std().unwrap_or_default();
            return Err(wait.max(Duration::from_secs(1)));
        }
        times.push_back(now);
        Ok(())
    }

    /// Takes back one event of `key` counted at `at` (a reservation given back).
    pub fn give_back<Q: Hash + Eq + ?Sized>(&self, key: &Q, at: DateTime<Utc>)
    where
        K: Borrow<Q>,
    {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = state.events.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                state.events.remove(key);
            }
        }
    }

    /// Forgets every event of `key`.
    pub fn clear<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.events.remove(key);
    }

    #[cfg(test)]
    pub(crate) fn tracked_keys(&self) -> usize {
        self.inner.lock().unwrap().events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_events_per_window_then_a_wait_until_the_oldest_leaves() {
        let limit = RateLimit::new(3, Duration::from_secs(60));
        let t0 = Utc::now();
        for i in 0..3 {
            let at = t0 + chrono::Duration::seconds(i * 10);
            assert!(limit.admit("ada", at).is_ok(), "event {i}");
        }
        let at = t0 + chrono::Duration::seconds(30);
        assert_eq!(limit.admit("ada", at), Err(Duration::from_secs(30)));
        assert!(limit.admit("bob", at).is_ok(), "other keys unaffected");
        // A refusal is not counted: the oldest leaves at 60 s.
        assert!(limit
            .admit("ada", t0 + chrono::Duration::seconds(60))
            .is_ok());
        assert!(limit
            .admit("ada", t0 + chrono::Duration::seconds(61))
            .is_err());
    }

    #[test]
    fn concurrent_callers_cannot_pass_the_limit_together() {
        let limit = std::sync::Arc::new(RateLimit::new(5, Duration::from_secs(60)));
        let now = Utc::now();
        let admitted: usize = (0..16)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || (0..4).filter(|_| limit.admit(1, now).is_ok()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(admitted, 5);
    }

    #[test]
    fn idle_keys_are_swept_so_memory_stays_bounded() {
        let limit = RateLimit::new(5, Duration::from_secs(60));
        let t0 = Utc::now();
        for i in 0..INITIAL_SWEEP_AT {
            limit.admit(i, t0).unwrap();
        }
        let later = t0 + chrono::Duration::seconds(120);
        limit.admit(usize::MAX, later).unwrap();
        assert_eq!(limit.tracked_keys(), 1);
    }
}
