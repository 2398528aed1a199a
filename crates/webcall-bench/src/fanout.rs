//! `fanout`: every peer chats at a steady rate; latency from the sender's send to
//! each receiver's receipt (the sender's own echo included).
//!
//! A chat text is `bench:<run>:<sender>:<seq>:<nanos>`, `nanos` being the send
//! time since an `Instant` that every client shares (they are all in this process).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, close_label, Connected, CpuMeter, Dist, Tally};
use crate::opts::{Common, FanoutOpts};

#[derive(Clone, Copy)]
enum Phase {
    Wait,
    Run {
        start: tokio::time::Instant,
        end: tokio::time::Instant,
    },
    Stop,
}

struct Ctx {
    /// The shared clock of send stamps.
    base: Instant,
    tag: String,
    peers: usize,
    room_size: usize,
    period: Duration,
    ping_every: Option<Duration>,
    /// Connected peers per room (what a message should reach).
    room_members: Vec<AtomicUsize>,
    attempts_done: AtomicUsize,
    connected: AtomicUsize,
    sent: AtomicU64,
    expected: AtomicU64,
    delivered: AtomicU64,
    failures: Mutex<Tally>,
}

#[derive(Default)]
struct PeerStats {
    /// (send time since `base`, latency), nanoseconds.
    latencies: Vec<(u64, u64)>,
    ping_rtts: Vec<u64>,
    /// `error` frames from the server, by code.
    errors: Tally,
    /// Chat frames not from this run.
    foreign: u64,
    dropped: Option<String>,
}

#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
}

pub async fn run(common: &Common, options: &FanoutOpts) -> anyhow::Result<()> {
    let peers = common.peers;
    common::ensure_fds(peers)?;
    common::warn_about_limits(peers, None);
    let tokens = Arc::new(common::prepare_users(common).await?);
    let rooms = peers.div_ceil(common.room_size);
    let ctx = Arc::new(Ctx {
        base: Instant::now(),
        tag: common::run_tag(),
        peers,
        room_size: common.room_size,
        period: Duration::from_secs_f64(1.0 / options.rate),
        ping_every: options.ping_probe,
        room_members: (0..rooms).map(|_| AtomicUsize::new(0)).collect(),
        attempts_done: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        failures: Mutex::new(Tally::default()),
    });
    let gate = Arc::new(Semaphore::new(common.connect_concurrency));
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let mut tasks = Vec::with_capacity(peers);
    for i in 0..peers {
        let ctx = ctx.clone();
        let gate = gate.clone();
        let tokens = tokens.clone();
        let authority = common.authority.clone();
        let phase = phase_rx.clone();
        tasks.push(tokio::spawn(async move {
            let room = common::room_name(&ctx.tag, i, ctx.room_size);
            let permit = gate.acquire_owned().await;
            let result = common::connect(&authority, &room, &tokens[i % tokens.len()]).await;
            drop(permit);
            let conn = match result {
                Ok(conn) => conn,
                Err(label) => {
                    ctx.failures
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .add(label);
                    ctx.attempts_done.fetch_add(1, Ordering::Relaxed);
                    return PeerStats::default();
                }
            };
            ctx.room_members[i / ctx.room_size].fetch_add(1, Ordering::Relaxed);
            ctx.connected.fetch_add(1, Ordering::Relaxed);
            ctx.attempts_done.fetch_add(1, Ordering::Relaxed);
            peer(conn, i, &ctx, phase).await
        }));
    }

    let started = Instant::now();
    let mut last_print = Instant::now();
    while ctx.attempts_done.load(Ordering::Relaxed) < peers {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!(
                "connecting: {} / {peers}",
                ctx.connected.load(Ordering::Relaxed)
            );
        }
    }
    let connected = ctx.connected.load(Ordering::Relaxed);
    let failures = ctx
        .failures
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    eprintln!(
        "connected {connected} / {peers} in {:.1} s (failed: {failures}); sending for {:.0} s",
        started.elapsed().as_secs_f64(),
        options.duration.as_secs_f64()
    );
    // Let the join announcements die down.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let start = tokio::time::Instant::now() + Duration::from_millis(500);
    let end = start + options.duration;
    let _ = phase_tx.send(Phase::Run { start, end });
    tokio::time::sleep_until(start).await;
    let cpu = CpuMeter::start(common.server_pid);
    tokio::time::sleep_until(end).await;
    let (server_cores, own_cores) = cpu.cores();
    let drain_until = tokio::time::Instant::now() + options.drain;
    while ctx.delivered.load(Ordering::Relaxed) < ctx.expected.load(Ordering::Relaxed)
        && tokio::time::Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = phase_tx.send(Phase::Stop);
    let mut all = PeerStats::default();
    let mut dropped = Tally::default();
    for task in tasks {
        let Ok(stats) = task.await else { continue };
        all.latencies.extend(stats.latencies);
        all.ping_rtts.extend(stats.ping_rtts);
        all.errors.merge(&stats.errors);
        all.foreign += stats.foreign;
        if let Some(label) = stats.dropped {
            dropped.add(label);
        }
    }

    let sent = ctx.sent.load(Ordering::Relaxed);
    let expected = ctx.expected.load(Ordering::Relaxed);
    let delivered = all.latencies.len() as u64;
    let start_ns = (start.into_std() - ctx.base).as_nanos() as u64;
    let secs = options.duration.as_secs().max(1) as usize;
    let mut buckets: Vec<Vec<u64>> = vec![Vec::new(); secs + 1];
    for &(sent_at, latency) in &all.latencies {
        let second = (sent_at.saturating_sub(start_ns) / 1_000_000_000) as usize;
        buckets[second.min(secs)].push(latency);
    }
    let timeline: Vec<Dist> = buckets
        .iter_mut()
        .filter(|b| !b.is_empty())
        .map(|b| Dist::of_nanos(b))
        .collect();
    let mut latencies: Vec<u64> = all.latencies.iter().map(|&(_, l)| l).collect();
    let latency = Dist::of_nanos(&mut latencies);
    let ping = Dist::of_nanos(&mut all.ping_rtts);

    println!(
        "== fanout: {peers} peers in rooms of {}, {} chat/s each for {:.0} s",
        common.room_size,
        options.rate,
        options.duration.as_secs_f64()
    );
    println!(
        "connections: {connected} opened, {} failed ({failures}); dropped during the run: {} ({dropped})",
        failures.total(),
        dropped.total()
    );
    println!(
        "chat sent: {sent} ({:.0}/s); deliveries: {delivered} of {expected} expected ({} missing){}",
        sent as f64 / options.duration.as_secs_f64(),
        expected as i64 - delivered as i64,
        if all.foreign > 0 {
            format!("; {} chat frames of other runs", all.foreign)
        } else {
            String::new()
        }
    );
    println!("error frames from the server: {}", all.errors);
    println!("delivery latency (send -> each receipt): {latency}");
    if options.ping_probe.is_some() {
        println!("ping -> pong round trip (no database): {ping}");
    }
    println!(
        "CPU while sending: server {}, this tool {}",
        common::cores_text(server_cores),
        common::cores_text(own_cores)
    );
    println!("per second of sending (by send time):");
    for (second, dist) in timeline.iter().enumerate() {
        println!(
            "  {second:>3}s  n={:<6} p50 {:>7.2}  p99 {:>7.2}  max {:>7.2} ms",
            dist.count, dist.p50, dist.p99, dist.max
        );
    }
    println!(
        "{}",
        json!({
            "scenario": "fanout",
            "peers": peers,
            "room_size": common.room_size,
            "users": tokens.len(),
            "rate_per_peer": options.rate,
            "duration_secs": options.duration.as_secs_f64(),
            "connected": connected,
            "failed": failures.total(),
            "failures": failures.json(),
            "dropped": dropped.json(),
            "sent": sent,
            "expected": expected,
            "delivered": delivered,
            "missing": expected as i64 - delivered as i64,
            "error_frames": all.errors.json(),
            "latency": latency.json(),
            "ping_rtt": options.ping_probe.map(|_| ping.json()),
            "p99_by_second_ms": timeline.iter().map(|d| (d.p99 * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "server_cpu_cores": server_cores,
            "client_cpu_cores": own_cores,
        })
    );
    Ok(())
}

/// One peer: reads everything, sends its chats on schedule, until `Stop`.
async fn peer(
    mut conn: Connected,
    index: usize,
    ctx: &Ctx,
    mut phase: watch::Receiver<Phase>,
) -> PeerStats {
    let mut stats = PeerStats::default();
    let members = &ctx.room_members[index / ctx.room_size];
    // Spread evenly: peer i starts i/peers of the way into the first period.
    let share = index as f64 / ctx.peers as f64;
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 86_400);
    let mut next_send = far;
    let mut next_ping = far;
    let mut end = far;
    let mut seq: u64 = 0;
    let mut pings_out: VecDeque<u64> = VecDeque::new();
    let tag_prefix = format!("bench:{}:", ctx.tag);
    loop {
        let send_at = if next_send < end { next_send } else { far };
        let ping_at = if next_ping < end { next_ping } else { far };
        tokio::select! {
            biased;
            message = conn.ws.next() => {
                let received = ctx.base.elapsed().as_nanos() as u64;
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        stats.dropped = Some(close_label(frame.as_ref()));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        stats.dropped = Some(format!("read error: {err}"));
                        break;
                    }
                    None => {
                        stats.dropped = Some("EOF".to_owned());
                        break;
                    }
                };
                let Ok(frame) = serde_json::from_str::<Incoming<'_>>(text.as_str()) else {
                    stats.errors.add("unparsable frame");
                    continue;
                };
                match frame.kind.as_ref() {
                    "chat" => {
                        let text = frame.text.unwrap_or_default();
                        match text.strip_prefix(&tag_prefix).and_then(sent_at) {
                            Some(sent) => {
                                stats.latencies.push((sent, received.saturating_sub(sent)));
                                ctx.delivered.fetch_add(1, Ordering::Relaxed);
                            }
                            None => stats.foreign += 1,
                        }
                    }
                    "pong" => {
                        if let Some(sent) = pings_out.pop_front() {
                            stats.ping_rtts.push(received.saturating_sub(sent));
                        }
                    }
                    "error" => stats.errors.add(frame.code.unwrap_or_default()),
                    _ => {}
                }
            }
            changed = phase.changed() => {
                let now = *phase.borrow_and_update();
                match (changed, now) {
                    (Ok(()), Phase::Run { start, end: until }) => {
                        next_send = start + ctx.period.mul_f64(share);
                        if let Some(every) = ctx.ping_every {
                            next_ping = start + every.mul_f64(share);
                        }
                        end = until;
                    }
                    (Ok(()), Phase::Wait) => {}
                    (Err(_), _) | (_, Phase::Stop) => {
                        common::close_normally(&mut conn.ws).await;
                        break;
                    }
                }
            }
            () = tokio::time::sleep_until(send_at) => {
                next_send += ctx.period;
                let nanos = ctx.base.elapsed().as_nanos() as u64;
                let frame = format!(
                    "{{\"type\":\"chat\",\"text\":\"{}{index}:{seq}:{nanos}\"}}",
                    tag_prefix
                );
                seq += 1;
                ctx.sent.fetch_add(1, Ordering::Relaxed);
                ctx.expected
                    .fetch_add(members.load(Ordering::Relaxed) as u64, Ordering::Relaxed);
                if let Err(err) = conn.ws.send(Message::text(frame)).await {
                    stats.dropped = Some(format!("send error: {err}"));
                    break;
                }
            }
            () = tokio::time::sleep_until(ping_at) => {
                if let Some(every) = ctx.ping_every {
                    next_ping += every;
                }
                pings_out.push_back(ctx.base.elapsed().as_nanos() as u64);
                if let Err(err) = conn.ws.send(Message::text("{\"type\":\"ping\"}")).await {
                    stats.dropped = Some(format!("send error: {err}"));
                    break;
                }
            }
        }
    }
    stats
}

/// The send stamp of `<sender>:<seq>:<nanos>`.
fn sent_at(rest: &str) -> Option<u64> {
    rest.rsplit(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_stamp_is_the_last_field() {
        assert_eq!(sent_at("12:3:456789"), Some(456_789));
        assert_eq!(sent_at("12:3:x"), None);
        let frame: Incoming<'_> =
            serde_json::from_str(r#"{"type":"chat","id":1,"text":"bench:t:1:2:3","ts":"x"}"#)
                .unwrap();
        assert_eq!(frame.kind, "chat");
        assert_eq!(
            frame
                .text
                .as_deref()
                .and_then(|t| t.strip_prefix("bench:t:")),
            Some("1:2:3")
        );
    }
}
