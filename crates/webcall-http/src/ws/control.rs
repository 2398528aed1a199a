//! The reader's requests to the connection's writer (a reply frame, a close).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

/// What the reader asks of the writer.
pub(super) enum Control {
    Frame(String),
    Close(u16, &'static str),
}

/// The reader's requests to the writer: a few at a time, so a small shared queue
/// rather than a channel, whose first block of 32 slots every idle peer would hold.
#[derive(Default)]
pub(super) struct ControlQueue {
    items: Mutex<VecDeque<Control>>,
    /// The reader is done.
    closed: AtomicBool,
    notify: Notify,
}

impl ControlQueue {
    /// Most requests waiting; past it they are dropped (the writer is stuck).
    const LIMIT: usize = 256;

    pub(super) fn send(&self, item: Control) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() < Self::LIMIT {
            items.push_back(item);
        }
        drop(items);
        self.notify.notify_one();
    }

    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// The next request; `None` once the reader is done and all are taken.
    pub(super) async fn recv(&self) -> Option<Control> {
        loop {
            if let Some(item) = self
                .items
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front()
            {
                return Some(item);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            self.notify.notified().await;
        }
    }
}
