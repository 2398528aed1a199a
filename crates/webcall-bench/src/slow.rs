//! `slow`: peers that never read while their room sends them 60 KiB signals;
//! the server's RSS before, at its peak, and after they are gone.
//!
//! `--peers` trios, each in a room of its own: a peer that reads nothing after
//! its welcome, a peer that reads everything, and a sender that sends signals of
//! 60 KiB to both, alternately, at 45 frames a second (under the server's limit of
//! 50) for `--duration` seconds. Then the slow peers are read (to see how the
//! server closed them) and dropped, and after `--settle` seconds (past the resume
//! grace) the RSS is read again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, close_label, Tally};
use crate::opts::{Common, SlowOpts};

const SIGNAL_BYTES: usize = 60 * 1024;
const FRAMES_PER_SEC: u64 = 45;

pub async fn run(common: &Common, options: &SlowOpts) -> anyhow::Result<()> {
    let pid = common
        .server_pid
        .map(|pid| pid.to_string())
        .ok_or_else(|| anyhow::anyhow!("slow needs --server-pid (it measures the server's RSS)"))?;
    let tokens = common::prepare_users(common).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = common::rss_kib(&pid)?;
    let tag = common::run_tag();
    let mut trios = Vec::new();
    for i in 0..common.peers {
        let room = format!("slow-{tag}-{i}");
        let token = |n: usize| &tokens[(3 * i + n) % tokens.len()];
        let connect = |n| {
            let room = room.clone();
            let token = token(n).clone();
            let authority = common.authority.clone();
            async move {
                common::connect(&authority, &room, &token)
                    .await
                    .map_err(|e| anyhow::anyhow!("connect: {e}"))
            }
        };
        let slow = connect(0).await?;
        let fast = connect(1).await?;
        let sender = connect(2).await?;
        trios.push((slow, fast, sender));
    }
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + options.duration;
    let mut slow_peers = Vec::new();
    let mut tasks = Vec::new();
    for (slow, mut fast, mut sender) in trios {
        let slow_id = slow.peer_id.clone();
        let fast_id = fast.peer_id.clone();
        slow_peers.push(slow.ws);
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(message)) = fast.ws.next().await {
                if matches!(&message, Message::Text(t) if t.as_str().starts_with("{\"type\":\"signal\"")) {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let pad = "x".repeat(SIGNAL_BYTES);
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / FRAMES_PER_SEC));
            let mut n = 0u64;
            while Instant::now() < stop {
                tick.tick().await;
                let to = if n.is_multiple_of(2) {
                    &slow_id
                } else {
                    &fast_id
                };
                let frame = json!({"type": "signal", "to": to, "data": {"n": n, "pad": pad}});
                if sender
                    .ws
                    .send(Message::text(frame.to_string()))
                    .await
                    .is_err()
                {
                    break;
                }
                if !n.is_multiple_of(2) {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            common::close_normally(&mut sender.ws).await;
        }));
    }
    let mut peak = before;
    let started = Instant::now();
    while Instant::now() < stop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        peak = peak.max(common::rss_kib(&pid)?);
        if started.elapsed().as_millis() % 5000 < 200 {
            eprintln!(
                "{:.0} s: server RSS {} KiB (peak {peak})",
                started.elapsed().as_secs_f64(),
                common::rss_kib(&pid)?
            );
        }
    }
    let end_of_sending = common::rss_kib(&pid)?;
    // How the server closed the slow peers, as they see it once they read.
    let mut closes = Tally::default();
    for mut ws in slow_peers {
        let label = loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Err(_) => break "still open".to_owned(),
                Ok(Some(Ok(Message::Close(frame)))) => break close_label(frame.as_ref()),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(err))) => break format!("error: {err}"),
                Ok(None) => break "EOF".to_owned(),
            }
        };
        closes.add(label);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for task in &tasks {
        task.abort();
    }
    eprintln!("slow peers gone; settling {} s", options.settle.as_secs());
    tokio::time::sleep(options.settle).await;
    let after = common::rss_kib(&pid)?;
    let (delivered, expected) = (
        received.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed),
    );
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "slow: {} non-reading peers, 60 KiB signals at {FRAMES_PER_SEC}/s per sender for {} s",
        common.peers,
        options.duration.as_secs()
    );
    println!(
        "server RSS: before {:.1} MiB, peak {:.1} MiB (+{:.1}), end of sending {:.1} MiB, after {:.1} MiB (+{:.1})",
        mib(before),
        mib(peak),
        mib(peak - before),
        mib(end_of_sending),
        mib(after),
        mib(after.saturating_sub(before))
    );
    println!("fast peers received {delivered} of {expected} signals sent to them");
    println!("slow peers closed: {closes}");
    println!(
        "{}",
        json!({
            "scenario": "slow",
            "slow_peers": common.peers,
            "seconds": options.duration.as_secs(),
            "rss_kib": {"before": before, "peak": peak, "end_of_sending": end_of_sending, "after": after},
            "fast_delivered": delivered,
            "fast_expected": expected,
            "slow_closes": closes.json(),
        })
    );
    Ok(())
}
