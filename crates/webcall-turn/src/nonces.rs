//! The relay's nonces (RFC 8489 §9.2): the gate's own, handed to clients, and
//! the crate's, learnt from its answers and put on requests handed to it. One
//! [`NonceCache`] per crate server (per listener thread): a client's datagrams
//! always reach the same one.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use stun::agent::TransactionId;

/// Nonces. Clients get the gate's own: 16 characters (96 random bits), so a
/// 401 to an unauthenticated Allocate stays near twice the request's size (the
/// crate's are 32 hex characters). Each lives an hour: handed out for half an
/// hour, then accepted for another half as the previous one.
///
/// The crate checks nonces too, against the ones it minted; the gate learns one
/// from the crate's answers (handing it an unauthenticated request at most once
/// per half hour, or per [`NONCE_REFRESH_BACKOFF`] while it has none) and signs
/// authenticated requests again with it before they reach the crate
/// ([`crate::wire::with_nonce`]). The crate's nonce map then grows by one entry
/// per half hour, whatever the request rate.
#[derive(Default)]
pub(crate) struct NonceCache {
    inner: Mutex<NonceState>,
}

#[derive(Default)]
struct NonceState {
    current: Option<(String, Instant)>,
    previous: Option<String>,
    /// The crate's nonce, and when it was learnt.
    upstream: Option<(String, Instant)>,
    /// The request handed to the crate for a nonce: its answer is not sent on.
    fetching: Option<TransactionId>,
    refresh_claimed_at: Option<Instant>,
}

/// Hand out a new nonce, and fetch a new one from the crate, once the current
/// one is this old (the crate refuses its nonces after an hour).
const NONCE_ROTATE_AFTER: Duration = Duration::from_secs(30 * 60);
/// At most one request is handed to the crate for a fresh nonce per this interval.
const NONCE_REFRESH_BACKOFF: Duration = Duration::from_secs(5);

fn mint_nonce() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>())
}

impl NonceCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, NonceState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nonce to hand out (a new one every half hour).
    pub(crate) fn current(&self) -> String {
        let mut state = self.lock();
        match &state.current {
            Some((nonce, at)) if at.elapsed() < NONCE_ROTATE_AFTER => nonce.clone(),
            _ => {
                let nonce = mint_nonce();
                let old = state.current.replace((nonce.clone(), Instant::now()));
                state.previous = old.map(|(n, _)| n);
                nonce
            }
        }
    }

    /// True for the one caller that should hand an unauthenticated request to
    /// the crate, so that its answer brings the gate a fresh crate nonce.
    pub(crate) fn claim_refresh(&self, transaction: TransactionId) -> bool {
        let mut state = self.lock();
        let fresh = state
            .upstream
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < NONCE_ROTATE_AFTER);
        let backing_off = state
            .refresh_claimed_at
            .is_some_and(|at| at.elapsed() < NONCE_REFRESH_BACKOFF);
        if fresh || backing_off {
            return false;
        }
        state.refresh_claimed_at = Some(Instant::now());
        state.fetching = Some(transaction);
        true
    }

    /// Whether `transaction` is the request handed to the crate for a nonce.
    pub(crate) fn fetched(&self, transaction: TransactionId) -> bool {
        let mut state = self.lock();
        let fetched = state.fetching == Some(transaction);
        if fetched {
            state.fetching = None;
        }
        fetched
    }

    pub(crate) fn accepts(&self, nonce: &str) -> bool {
        let state = self.lock();
        state
            .current
            .as_ref()
            .is_some_and(|(n, at)| n == nonce && at.elapsed() < 2 * NONCE_ROTATE_AFTER)
            || state.previous.as_deref() == Some(nonce)
    }

    /// The crate's nonce, for requests handed to it. Before the gate has learnt
    /// one, any string: the crate answers 438 with a fresh one, which the gate
    /// learns and the client retries.
    pub(crate) fn upstream(&self) -> String {
        let state = self.lock();
        state
            .upstream
            .as_ref()
            .map_or_else(|| "-".to_owned(), |(n, _)| n.clone())
    }

    /// Learns a nonce the crate minted (seen in one of its answers).
    pub(crate) fn adopt(&self, nonce: String) {
        let mut state = self.lock();
        if state.upstream.as_ref().is_some_and(|(n, _)| *n == nonce) {
            return;
        }
        state.upstream = Some((nonce, Instant::now()));
        state.refresh_claimed_at = None;
    }
}
