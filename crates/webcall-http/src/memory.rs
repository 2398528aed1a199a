//! Gives freed heap memory back to the system after a slow consumer is closed.
//!
//! A peer that stopped reading had up to a MiB of frames queued, which its
//! resume buffer keeps until the resume grace ends; glibc's malloc keeps such
//! freed memory in its per-thread arenas, so the process's RSS would stay at its
//! peak after the peer is gone. `malloc_trim` returns what is free. It walks
//! every arena, so it runs on the blocking pool, at most once per
//! [`MIN_INTERVAL`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

const MIN_INTERVAL: Duration = Duration::from_secs(5);

static LAST: Mutex<Option<Instant>> = Mutex::new(None);

/// Returns free heap memory to the system after `delay` (glibc only; elsewhere
/// nothing).
pub fn trim_after(delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        trim_soon();
    });
}

fn trim_soon() {
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| at.elapsed() < MIN_INTERVAL) {
        return;
    }
    *last = Some(Instant::now());
    drop(last);
    tokio::task::spawn_blocking(trim);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
