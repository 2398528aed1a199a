//! `webcall-bench sfu`: one room of `--publishers` synthetic participants, each
//! sending Opus and three VP8 simulcast layers (150/500/1500 kbit/s) through an
//! in-process SFU and receiving every other's video at one layer (`--layer`,
//! by the tile height it reports). Reports the forwarded packet and bit rates,
//! the server's CPU per forwarded Mbit/s and the time through the server.
//!
//! The SFU runs on a thread of its own (`webcall-sfu`, a current-thread
//! runtime), so its CPU time is that thread's run time (`/proc/self/task/TID/schedstat`), apart
//! from the clients' (which run on the other runtime's threads).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use tokio::sync::mpsc;
use webcall_domain::signaling::RoomName;
use webcall_sfu::{Sfu, SfuConfig};

use crate::common::Dist;
use crate::opts::{Common, SfuOpts};
use crate::sfu_peer::{self, PeerSetup, Received, SentTimes};

pub async fn run(_common: &Common, options: &SfuOpts) -> anyhow::Result<()> {
    let (sfu, server_tid) = start_server().await?;
    let room = RoomName::parse("bench-sfu").context("room name")?;
    let sent: SentTimes = Arc::default();
    let mut stops = Vec::new();
    let mut received = Vec::new();
    let tile_height = [180, 360, 720][usize::from(options.layer)];
    for index in 0..options.publishers {
        let (stop, stopped) = mpsc::channel(1);
        let got = Arc::new(Mutex::new(Received::default()));
        let setup = PeerSetup {
            router: sfu.clone(),
            room: room.clone(),
            index: index as u16,
            everyone: options.publishers,
            tile_height,
            sent: sent.clone(),
            received: got.clone(),
        };
        tokio::spawn(async move {
            if let Err(e) = sfu_peer::run(setup, stopped).await {
                eprintln!("participant {index}: {e:#}");
            }
        });
        stops.push(stop);
        received.push(got);
    }
    eprintln!(
        "{} participants joining; warming up for {:?}",
        options.publishers, options.warmup
    );
    tokio::time::sleep(options.warmup).await;

    for r in &received {
        lock(r).measuring = true;
    }
    let before = sfu.stats();
    let cpu_before = thread_cpu_secs(server_tid);
    let started = Instant::now();
    tokio::time::sleep(options.duration).await;
    let wall = started.elapsed().as_secs_f64();
    let after = sfu.stats();
    let cpu = thread_cpu_secs(server_tid)
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    for r in &received {
        lock(r).measuring = false;
    }
    for stop in &stops {
        let _ = stop.try_send(());
    }
    sfu.shutdown();

    let packets = (after.forwarded_packets - before.forwarded_packets) as f64 / wall;
    let mbits = (after.forwarded_bytes - before.forwarded_bytes) as f64 * 8.0 / 1e6 / wall;
    let cpu_share = cpu.map(|c| c / wall);
    let sent = lock(&sent);
    let mut latencies = Vec::new();
    let (mut layers, mut audio) = ([0u64; 3], 0u64);
    for r in &received {
        let r = lock(r);
        for (publisher, frame, arrived) in &r.arrivals {
            if let Some(left) = sent.get(&(*publisher, *frame)) {
                latencies.push(arrived.saturating_duration_since(*left).as_nanos() as u64);
            }
        }
        for (total, n) in layers.iter_mut().zip(r.video_frames) {
            *total += n;
        }
        audio += r.audio_frames;
    }
    let latency = Dist::of_nanos(&mut latencies);
    let layer_name = ["q", "h", "f"][usize::from(options.layer)];
    let n = options.publishers as f64;
    let expected_video = n * (n - 1.0) * 25.0 * wall;
    let got_video: u64 = layers.iter().sum();
    println!(
        "sfu: {} participants x 3 layers, receivers at {} ({} px tiles), {:.1} s",
        options.publishers, layer_name, tile_height, wall
    );
    println!("  forwarded: {packets:.0} packets/s, {mbits:.2} Mbit/s");
    println!("  video frames received by layer q/h/f: {layers:?} ({:.1}% of {expected_video:.0} expected); audio frames {audio}", got_video as f64 * 100.0 / expected_video.max(1.0));
    match cpu_share {
        Some(share) => println!("  server thread CPU: {:.1}% of a core, {:.2}% of a core per forwarded Mbit/s, {:.2} us per forwarded packet", share * 100.0, share * 100.0 / mbits.max(1e-9), share * 1e6 / packets.max(1e-9)),
        None => println!("  server thread CPU: unknown (no /proc)"),
    }
    println!("  time through the server (video frames): {latency}");
    println!(
        "{}",
        json!({
            "scenario": "sfu",
            "participants": options.publishers,
            "layer": layer_name,
            "seconds": wall,
            "forwarded_packets_per_s": packets,
            "forwarded_mbit_per_s": mbits,
            "server_cpu_cores": cpu_share,
            "server_cpu_cores_per_mbit": cpu_share.map(|s| s / mbits.max(1e-9)),
            "server_cpu_us_per_packet": cpu_share.map(|s| s * 1e6 / packets.max(1e-9)),
            "video_frames_by_layer": layers,
            "video_frames_expected": expected_video,
            "audio_frames": audio,
            "through_server": latency.json(),
        })
    );
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the SFU (it runs on a `webcall-sfu` thread of its own); its handle
/// and that thread's id.
async fn start_server() -> anyhow::Result<(Arc<Sfu>, i32)> {
    let config = SfuConfig {
        bind: ([127, 0, 0, 1], 0).into(),
        candidates: Vec::new(),
        audio_top_n: 3,
    };
    let sfu = Sfu::bind(config).await.context("starting the SFU")?;
    let tid = thread_named("webcall-sfu").context("no webcall-sfu thread in /proc/self/task")?;
    Ok((sfu, tid))
}

/// The id of this process's thread with that name.
fn thread_named(name: &str) -> Option<i32> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find_map(|task| {
            let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
            (comm.trim_end() == name).then(|| task.file_name().to_str()?.parse().ok())?
        })
}

/// Run time of one of this process's threads, seconds (schedstat, nanoseconds).
fn thread_cpu_secs(tid: i32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    Some(text.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e9)
}
