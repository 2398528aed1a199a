//! `joins`: many connections started at the same moment; how long each takes
//! from the start of its connection to its `welcome` frame.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::{mpsc, watch, Barrier};

use crate::common::{self, Connected, CpuMeter, Dist, Tally};
use crate::opts::{Common, JoinsOpts};

/// Times of one join, from the start of its TCP connect.
#[derive(Clone, Copy)]
struct Timing {
    tcp: Duration,
    upgrade: Duration,
    welcome: Duration,
}

impl From<&Connected> for Timing {
    fn from(conn: &Connected) -> Self {
        Self {
            tcp: conn.tcp,
            upgrade: conn.upgrade,
            welcome: conn.welcome,
        }
    }
}

/// The distributions of a set of joins.
struct Breakdown {
    tcp: Dist,
    upgrade: Dist,
    /// From the upgrade request (sent once TCP is connected) to the `welcome`.
    request: Dist,
    after_upgrade: Dist,
    welcome: Dist,
}

impl Breakdown {
    fn of(timings: &[Timing]) -> Self {
        let pick = |f: fn(&Timing) -> Duration| {
            Dist::of_durations(&timings.iter().map(f).collect::<Vec<_>>())
        };
        Self {
            tcp: pick(|t| t.tcp),
            upgrade: pick(|t| t.upgrade),
            request: pick(|t| t.welcome.saturating_sub(t.tcp)),
            after_upgrade: pick(|t| t.welcome.saturating_sub(t.upgrade)),
            welcome: pick(|t| t.welcome),
        }
    }

    fn print(&self) {
        println!("  start -> welcome:        {}", self.welcome);
        println!("    start -> TCP connected: {}", self.tcp);
        println!("    start -> HTTP 101:      {}", self.upgrade);
        println!("    HTTP 101 -> welcome:    {}", self.after_upgrade);
        println!("  upgrade request -> welcome: {}", self.request);
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "welcome": self.welcome.json(),
            "tcp_connect": self.tcp.json(),
            "upgrade_101": self.upgrade.json(),
            "upgrade_to_welcome": self.after_upgrade.json(),
            "request_to_welcome": self.request.json(),
        })
    }
}

pub async fn run(common: &Common, options: &JoinsOpts) -> anyhow::Result<()> {
    let peers = common.peers;
    common::ensure_fds(peers + options.baseline)?;
    common::warn_about_limits(peers, None);
    let tokens = Arc::new(common::prepare_users(common).await?);
    let tag = common::run_tag();

    // The burst: every connection waits at the barrier, then all start at once.
    let barrier = Arc::new(Barrier::new(peers + 1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (result_tx, mut results) = mpsc::unbounded_channel::<Result<Timing, String>>();
    let mut tasks = Vec::with_capacity(peers);
    for i in 0..peers {
        let barrier = barrier.clone();
        let tokens = tokens.clone();
        let authority = common.authority.clone();
        let room = common::room_name(&tag, i, common.room_size);
        let result_tx = result_tx.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut conn = match common::connect(&authority, &room, &tokens[i % tokens.len()]).await
            {
                Ok(conn) => conn,
                Err(label) => {
                    let _ = result_tx.send(Err(label));
                    return None;
                }
            };
            let _ = result_tx.send(Ok(Timing::from(&conn)));
            // Stay in the room, reading, until every join is done.
            let dropped = loop {
                tokio::select! {
                    message = conn.ws.next() => match message {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                            break Some(common::close_label(frame.as_ref()));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(err)) => break Some(format!("read error: {err}")),
                        None => break Some("EOF".to_owned()),
                    },
                    _ = stop.changed() => {
                        common::close_normally(&mut conn.ws).await;
                        break None;
                    }
                }
            };
            dropped
        }));
    }
    drop(result_tx);
    eprintln!("{peers} connections waiting at the barrier; go");
    barrier.wait().await;
    let cpu = CpuMeter::start(common.server_pid);
    let started = Instant::now();
    let mut timings = Vec::with_capacity(peers);
    let mut failures = Tally::default();
    while let Some(result) = results.recv().await {
        match result {
            Ok(timing) => timings.push(timing),
            Err(label) => failures.add(label),
        }
        if timings.len() + failures.total() as usize == peers {
            break;
        }
    }
    let burst_wall = started.elapsed();
    // Whatever the server still does for the burst (announcing the joins).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (server_cpu, own_cpu) = cpu.used();
    let _ = stop_tx.send(true);
    let mut dropped = Tally::default();
    for task in tasks {
        if let Ok(Some(label)) = task.await {
            dropped.add(label);
        }
    }

    // The baseline: one join at a time, into fresh rooms, on a quiet server.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let base_tag = common::run_tag();
    let mut baseline = Vec::with_capacity(options.baseline);
    let mut baseline_failures = Tally::default();
    let mut open = Vec::with_capacity(options.baseline);
    for i in 0..options.baseline {
        let room = common::room_name(&base_tag, i, common.room_size);
        match common::connect(&common.authority, &room, &tokens[i % tokens.len()]).await {
            Ok(conn) => {
                baseline.push(Timing::from(&conn));
                open.push(conn);
            }
            Err(label) => baseline_failures.add(label),
        }
    }
    for conn in &mut open {
        common::close_normally(&mut conn.ws).await;
    }

    let burst = Breakdown::of(&timings);
    let quiet = Breakdown::of(&baseline);
    println!(
        "== joins: {peers} connections started together, rooms of {}",
        common.room_size
    );
    println!(
        "welcomed: {} of {peers}; failed: {} ({failures}); dropped afterwards: {} ({dropped}); all done in {:.1} ms",
        timings.len(),
        failures.total(),
        dropped.total(),
        burst_wall.as_secs_f64() * 1000.0
    );
    println!("burst (goal: start -> welcome p99 <= 50 ms):");
    burst.print();
    let ms = |secs: Option<f64>| {
        secs.map_or("n/a".to_owned(), |s| {
            format!(
                "{:.0} ms ({:.2} ms a join)",
                s * 1000.0,
                s * 1000.0 / peers as f64
            )
        })
    };
    println!(
        "  CPU time for the burst (+200 ms after): server {}, this tool {}",
        ms(server_cpu),
        ms(own_cpu)
    );
    // With every join waiting on the same cores, the last welcome cannot come
    // before the burst's CPU work is done, spread over all of them.
    // The machine's cores, not this process's share (`taskset` in `PIN=1` runs).
    // SAFETY: sysconf only reads a configuration value.
    let cores = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1);
    let floor = server_cpu
        .zip(own_cpu)
        .map(|(server, own)| (server + own) / cores as f64);
    if let Some(floor) = floor {
        println!(
            "  CPU floor (server + tool CPU / {cores} cores): {:.1} ms",
            floor * 1000.0
        );
    }
    println!(
        "baseline, {} sequential joins (failed: {baseline_failures}):",
        baseline.len()
    );
    quiet.print();
    println!(
        "{}",
        json!({
            "scenario": "joins",
            "peers": peers,
            "room_size": common.room_size,
            "users": tokens.len(),
            "welcomed": timings.len(),
            "failed": failures.total(),
            "failures": failures.json(),
            "dropped": dropped.json(),
            "burst_wall_ms": (burst_wall.as_secs_f64() * 1e6).round() / 1000.0,
            "burst": burst.json(),
            "server_cpu_ms": server_cpu.map(|s| (s * 1e4).round() / 10.0),
            "client_cpu_ms": own_cpu.map(|s| (s * 1e4).round() / 10.0),
            "cores": cores,
            "cpu_floor_ms": floor.map(|s| (s * 1e4).round() / 10.0),
            "baseline": quiet.json(),
            "baseline_failed": baseline_failures.total(),
        })
    );
    Ok(())
}
