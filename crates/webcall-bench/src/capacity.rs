//! `capacity`: hold many idle connections; the server's memory per connection.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, close_label, Tally};
use crate::opts::{CapacityOpts, Common};

#[derive(Default)]
struct Shared {
    attempts_done: AtomicUsize,
    connected: AtomicUsize,
    alive: AtomicUsize,
    /// WebSocket pings from the server seen by the clients (answered by tungstenite).
    pings: AtomicU64,
    failures: Mutex<Tally>,
    drops: Mutex<Tally>,
}

fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn run(common: &Common, options: &CapacityOpts) -> anyhow::Result<()> {
    let peers = common.peers;
    common::ensure_fds(peers)?;
    let pid = common.server_pid.map(|pid| pid.to_string());
    common::warn_about_limits(peers, pid.as_deref());
    if pid.is_none() {
        eprintln!("no --server-pid: the server's RSS will not be measured");
    }
    let rss = |what: &str| -> Option<u64> {
        let pid = pid.as_deref()?;
        match common::rss_kib(pid) {
            Ok(kib) => {
                eprintln!("server RSS {what}: {kib} KiB");
                Some(kib)
            }
            Err(err) => {
                eprintln!("warning: server RSS {what}: {err:#}");
                None
            }
        }
    };

    let tokens = Arc::new(common::prepare_users(common).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = rss("before connecting (users registered and logged in)");
    let fds_before = pid.as_deref().and_then(common::fd_count);

    let tag = common::run_tag();
    let shared = Arc::new(Shared::default());
    let gate = Arc::new(Semaphore::new(common.connect_concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(peers);
    for i in 0..peers {
        let shared = shared.clone();
        let gate = gate.clone();
        let tokens = tokens.clone();
        let authority = common.authority.clone();
        let room = common::room_name(&tag, i, common.room_size);
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let result = common::connect(&authority, &room, &tokens[i % tokens.len()]).await;
            drop(permit);
            let mut conn = match result {
                Ok(conn) => conn,
                Err(label) => {
                    lock(&shared.failures).add(label);
                    shared.attempts_done.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            shared.connected.fetch_add(1, Ordering::Relaxed);
            shared.alive.fetch_add(1, Ordering::Relaxed);
            shared.attempts_done.fetch_add(1, Ordering::Relaxed);
            // Hold: keep reading (tungstenite answers pings while it is polled).
            let dropped = loop {
                tokio::select! {
                    message = conn.ws.next() => match message {
                        Some(Ok(Message::Ping(_))) => {
                            shared.pings.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(Message::Close(frame))) => break close_label(frame.as_ref()),
                        Some(Ok(_)) => {}
                        Some(Err(err)) => break format!("read error: {err}"),
                        None => break "EOF".to_owned(),
                    },
                    _ = stop.changed() => {
                        common::close_normally(&mut conn.ws).await;
                        return;
                    }
                }
            };
            shared.alive.fetch_sub(1, Ordering::Relaxed);
            lock(&shared.drops).add(dropped);
        }));
    }

    // Wait for every attempt, with progress.
    let mut last_print = Instant::now();
    while shared.attempts_done.load(Ordering::Relaxed) < peers {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!(
                "connecting: {} / {peers} connected, {} failed ({:.0} s)",
                shared.connected.load(Ordering::Relaxed),
                lock(&shared.failures).total(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    eprintln!(
        "connected {connected} / {peers} in {connect_secs:.1} s; settling {:.0} s",
        options.settle.as_secs_f64()
    );

    tokio::time::sleep(options.settle).await;
    let alive_settled = shared.alive.load(Ordering::Relaxed);
    let rss_settled = rss("all connected and settled");
    let fds_settled = pid.as_deref().and_then(common::fd_count);
    let client_rss = common::rss_kib("self").ok();

    eprintln!(
        "holding {:.0} s (the server pings every 15 s)",
        options.hold.as_secs_f64()
    );
    tokio::time::sleep(options.hold).await;
    let alive_held = shared.alive.load(Ordering::Relaxed);
    let rss_held = rss("after holding");
    let pings = shared.pings.load(Ordering::Relaxed);

    eprintln!("closing {alive_held} connections");
    let _ = stop_tx.send(true);
    let closing = futures_util::future::join_all(tasks);
    if tokio::time::timeout(Duration::from_secs(60), closing)
        .await
        .is_err()
    {
        eprintln!("warning: some connections did not close within 60 s");
    }

    let failures = lock(&shared.failures).clone();
    let drops = lock(&shared.drops).clone();
    let delta = rss_before
        .zip(rss_settled)
        .map(|(b, a)| a as i64 - b as i64);
    let per_conn = delta
        .filter(|_| alive_settled > 0)
        .map(|d| d as f64 / alive_settled as f64);
    let delta_held = rss_before.zip(rss_held).map(|(b, a)| a as i64 - b as i64);
    let per_conn_held = delta_held
        .filter(|_| alive_held > 0)
        .map(|d| d as f64 / alive_held as f64);
    let kib = |v: Option<u64>| v.map_or("n/a".to_owned(), |v| format!("{v} KiB"));
    let per = |v: Option<f64>| v.map_or("n/a".to_owned(), |v| format!("{v:.1} KiB"));

    println!(
        "== capacity: {peers} peers in rooms of {}",
        common.room_size
    );
    println!(
        "connections: {connected} opened, {} failed ({failures}); {:.1} s to open ({:.0}/s, {} handshakes at a time)",
        failures.total(),
        connect_secs,
        connected as f64 / connect_secs,
        common.connect_concurrency
    );
    println!(
        "held: {alive_settled} after settling, {alive_held} after {:.0} s more; dropped by the server: {} ({drops}); server pings seen: {pings}",
        options.hold.as_secs_f64(),
        drops.total()
    );
    println!(
        "server RSS: before {}, settled {}, after hold {}",
        kib(rss_before),
        kib(rss_settled),
        kib(rss_held)
    );
    println!(
        "RSS delta: {} settled = {} per connection; {} after hold = {} per connection (goal <= 30 KiB)",
        delta.map_or("n/a".to_owned(), |d| format!("{d} KiB")),
        per(per_conn),
        delta_held.map_or("n/a".to_owned(), |d| format!("{d} KiB")),
        per(per_conn_held),
    );
    println!(
        "server fds: before {}, settled {}; this tool's own RSS: {}",
        fds_before.map_or("n/a".to_owned(), |n| n.to_string()),
        fds_settled.map_or("n/a".to_owned(), |n| n.to_string()),
        kib(client_rss)
    );
    let round = |v: f64| (v * 10.0).round() / 10.0;
    println!(
        "{}",
        json!({
            "scenario": "capacity",
            "peers": peers,
            "room_size": common.room_size,
            "users": tokens.len(),
            "connected": connected,
            "failed": failures.total(),
            "failures": failures.json(),
            "connect_secs": round(connect_secs),
            "alive_after_settle": alive_settled,
            "alive_after_hold": alive_held,
            "hold_secs": options.hold.as_secs_f64(),
            "dropped": drops.json(),
            "server_pings_seen": pings,
            "rss_before_kib": rss_before,
            "rss_settled_kib": rss_settled,
            "rss_after_hold_kib": rss_held,
            "rss_delta_kib": delta,
            "kib_per_connection": per_conn.map(round),
            "kib_per_connection_after_hold": per_conn_held.map(round),
            "server_fds_before": fds_before,
            "server_fds_settled": fds_settled,
            "client_rss_kib": client_rss,
        })
    );
    Ok(())
}
