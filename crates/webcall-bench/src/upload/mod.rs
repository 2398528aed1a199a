//! `upload`: files in the chat under load. `--peers` clients (one account each,
//! all in one room) upload a body of `--size` bytes each at once, generated on
//! the fly (a seeded xorshift stream: never a whole file in memory, here or on
//! disk), then download it back; the server's RSS (`VmRSS`) is sampled every
//! 20 ms throughout.
//!
//! The uploads and downloads are plain HTTP/1.1 over a `TcpStream` written by
//! hand: the body goes out chunk by chunk as it is generated, and the download
//! is hashed as it arrives. The expected SHA-256 of every body is computed
//! before anything is measured, so the upload's clock and CPU hold only
//! generating and sending.
//!
//! Prints the RSS before, at its peak during the uploads, after them, at its
//! peak during the downloads and after; wall time and throughput each way;
//! whether every download's SHA-256 (and the `ETag` the server computed while
//! storing) matches what was sent; then one JSON line.

mod http;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::common::{self, CpuMeter};
use crate::opts::{Common, UploadOpts};
use http::{download, upload};

/// What a sampler saw: when, and the server's RSS in KiB.
type Samples = Arc<Mutex<Vec<(Instant, u64)>>>;

pub async fn run(common: &Common, options: &UploadOpts) -> anyhow::Result<()> {
    let pid = common.server_pid.map(|pid| pid.to_string());
    if pid.is_none() {
        eprintln!("upload: no --server-pid, so no RSS");
    }
    let tokens = common::prepare_users(common).await?;
    let room = options
        .room
        .clone()
        .unwrap_or_else(|| format!("upload-{}", common::run_tag()));
    create_room(common, &tokens[0], &room).await?;

    let clients = common.peers;
    let started = Instant::now();
    let expected: Vec<String> = (0..clients)
        .map(|i| body_sha256(seed(i), options.size, options.chunk))
        .collect();
    eprintln!(
        "upload: {clients} × {} bytes; expected SHA-256 computed in {:.1} s",
        options.size,
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(options.settle).await;

    let (stop, samples, sampler) = sample_rss(pid.clone());
    let rss = |pid: &Option<String>| pid.as_deref().and_then(|p| common::rss_kib(p).ok());
    let before = rss(&pid);

    // Uploads, all at once.
    let cpu = CpuMeter::start(common.server_pid);
    let up_start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let authority = common.authority.clone();
        let room = room.clone();
        let token = tokens[i % tokens.len()].clone();
        let (size, chunk) = (options.size, options.chunk);
        tasks.push(tokio::spawn(async move {
            upload(&authority, &room, &token, i, size, chunk).await
        }));
    }
    let mut uploaded = Vec::new();
    let mut upload_times = Vec::new();
    let mut failures = common::Tally::default();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.context("upload task")? {
            Ok((id, took)) => {
                uploaded.push((i, id));
                upload_times.push(took);
            }
            Err(err) => {
                eprintln!("upload {i}: {err:#}");
                failures.add(format!("upload: {err}"));
            }
        }
    }
    let up_wall = up_start.elapsed();
    let (up_server_cpu, up_tool_cpu) = cpu.used();
    let up_end = Instant::now();
    tokio::time::sleep(options.settle).await;
    let after_upload = rss(&pid);

    // Downloads, all at once.
    let cpu = CpuMeter::start(common.server_pid);
    let down_start = Instant::now();
    let mut tasks = Vec::new();
    for (i, id) in &uploaded {
        let authority = common.authority.clone();
        let room = room.clone();
        let token = tokens[i % tokens.len()].clone();
        let (i, id) = (*i, id.clone());
        tasks.push(tokio::spawn(async move {
            download(&authority, &room, &token, &id)
                .await
                .map(|got| (i, got))
        }));
    }
    let mut matched = 0;
    let mut download_times = Vec::new();
    for task in tasks {
        match task.await.context("download task")? {
            Ok((i, got)) => {
                let sha_ok = got.sha256 == expected[i];
                let etag_ok = got.etag.as_deref() == Some(format!("\"{}\"", expected[i]).as_str());
                if sha_ok && etag_ok && got.bytes == options.size {
                    matched += 1;
                } else {
                    failures.add(format!(
                        "download {i}: {} bytes, sha256 {}, etag {:?}",
                        got.bytes,
                        if sha_ok { "ok" } else { "DIFFERS" },
                        got.etag
                    ));
                }
                download_times.push(got.took);
            }
            Err(err) => failures.add(format!("download: {err}")),
        }
    }
    let down_wall = down_start.elapsed();
    let (down_server_cpu, down_tool_cpu) = cpu.used();
    let down_end = Instant::now();
    tokio::time::sleep(options.settle).await;
    let after = rss(&pid);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;

    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let peak = |from: Instant, to: Instant| {
        samples
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .map(|(_, kib)| *kib)
            .max()
    };
    let up_peak = peak(up_start, up_end);
    let down_peak = peak(down_start, down_end);
    let up_bytes = (uploaded.len() as u64) * options.size;
    let down_bytes = (download_times.len() as u64) * options.size;
    let mbps = |bytes: u64, wall: Duration| bytes as f64 / 1e6 / wall.as_secs_f64().max(1e-9);
    let mib =
        |kib: Option<u64>| kib.map_or("-".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let delta = |peak: Option<u64>| match (peak, before) {
        (Some(p), Some(b)) => format!("{:+.1} MiB", (p as f64 - b as f64) / 1024.0),
        _ => "-".to_owned(),
    };

    println!(
        "upload: {} of {clients} clients stored {} bytes each in {:.2} s: {:.1} MB/s in all \
         (CPU: server {}, this tool {})",
        uploaded.len(),
        options.size,
        up_wall.as_secs_f64(),
        mbps(up_bytes, up_wall),
        cpu_text(up_server_cpu),
        cpu_text(up_tool_cpu),
    );
    println!(
        "download: {} in {:.2} s: {:.1} MB/s in all; SHA-256 and ETag match: {matched} of {clients} \
         (CPU: server {}, this tool {})",
        download_times.len(),
        down_wall.as_secs_f64(),
        mbps(down_bytes, down_wall),
        cpu_text(down_server_cpu),
        cpu_text(down_tool_cpu),
    );
    println!(
        "server RSS: before {}, peak during uploads {} ({}), after {}, peak during downloads {} ({}), \
         after {}  ({} samples, every 20 ms)",
        mib(before),
        mib(up_peak),
        delta(up_peak),
        mib(after_upload),
        mib(down_peak),
        delta(down_peak),
        mib(after),
        samples.len()
    );
    if failures.total() > 0 {
        println!("failures: {failures}");
    }
    let secs = |times: &[Duration]| times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>();
    println!(
        "{}",
        json!({
            "scenario": "upload",
            "clients": clients,
            "size": options.size,
            "room": room,
            "rss_kib": {
                "before": before, "upload_peak": up_peak, "after_upload": after_upload,
                "download_peak": down_peak, "after": after, "samples": samples.len(),
            },
            "upload": {
                "stored": uploaded.len(), "wall_s": up_wall.as_secs_f64(),
                "mb_per_s": mbps(up_bytes, up_wall), "each_s": secs(&upload_times),
                "server_cpu_s": up_server_cpu, "tool_cpu_s": up_tool_cpu,
            },
            "download": {
                "done": download_times.len(), "wall_s": down_wall.as_secs_f64(),
                "mb_per_s": mbps(down_bytes, down_wall), "each_s": secs(&download_times),
                "server_cpu_s": down_server_cpu, "tool_cpu_s": down_tool_cpu,
                "sha256_match": matched,
            },
            "failures": failures.json(),
        })
    );
    if matched != clients {
        bail!(
            "{} of {clients} files did not come back whole",
            clients - matched
        );
    }
    Ok(())
}

fn cpu_text(secs: Option<f64>) -> String {
    secs.map_or("-".to_owned(), |s| format!("{s:.2} s"))
}

/// Samples the server's RSS every 20 ms on a thread of its own until told to stop.
fn sample_rss(pid: Option<String>) -> (Arc<AtomicBool>, Samples, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Samples = Arc::default();
    let handle = {
        let (stop, samples) = (stop.clone(), samples.clone());
        tokio::task::spawn_blocking(move || {
            let Some(pid) = pid else { return };
            while !stop.load(Ordering::Relaxed) {
                if let Ok(kib) = common::rss_kib(&pid) {
                    if let Ok(mut samples) = samples.lock() {
                        samples.push((Instant::now(), kib));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    (stop, samples, handle)
}

async fn create_room(common: &Common, token: &str, room: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/rooms", common.http_base))
        .bearer_auth(token)
        .json(&json!({ "name": room }))
        .send()
        .await
        .context("POST /api/v1/rooms")?;
    match response.status().as_u16() {
        201 | 409 => Ok(()),
        status => bail!(
            "creating room {room}: HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

fn seed(client: usize) -> u64 {
    0x9E37_79B9_7F4A_7C15 ^ (client as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

/// The bytes of one client's body, made as they are sent (xorshift64).
struct Body {
    state: u64,
    left: u64,
}

impl Body {
    fn new(seed: u64, size: u64) -> Self {
        Self {
            state: seed | 1,
            left: size,
        }
    }

    /// Fills the front of `buf` with the next bytes; how many (0 at the end).
    /// The same `buf` length gives the same stream.
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let n = (buf.len() as u64).min(self.left) as usize;
        for word in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes()[..word.len()]);
        }
        self.left -= n as u64;
        n
    }
}

fn body_sha256(seed: u64, size: u64, chunk: usize) -> String {
    let mut body = Body::new(seed, size);
    let mut buf = vec![0; chunk];
    let mut hasher = Sha256::new();
    loop {
        let n = body.fill(&mut buf);
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_the_same_stream_whenever_it_is_made() {
        let mut body = Body::new(seed(3), 100_003);
        let mut buf = vec![0; 4096];
        let mut sent = Vec::new();
        loop {
            let n = body.fill(&mut buf);
            if n == 0 {
                break;
            }
            sent.extend_from_slice(&buf[..n]);
        }
        assert_eq!(sent.len(), 100_003);
        // Not a run of one byte: a server that stored zeros would not match.
        assert!(sent.iter().filter(|b| **b == 0).count() < 1000);
        assert_eq!(
            body_sha256(seed(3), 100_003, 4096),
            hex(&Sha256::digest(&sent))
        );
        assert_ne!(
            body_sha256(seed(3), 100_003, 4096),
            body_sha256(seed(4), 100_003, 4096)
        );
    }
}
