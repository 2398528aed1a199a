//! `webcall-bench`: a signaling load tool for the WebCall server.
//!
//! It registers (or reuses) a pool of bench users through the REST API, logs
//! them in once each, then opens many authenticated WebSocket connections to
//! `/ws/rooms/{room}?token=JWT` from this one process (one user may hold many
//! connections; each connection is a separate peer) and runs one scenario:
//!
//! - `capacity`: `--peers` idle connections in rooms of `--room-size`, kept
//!   polled so the server's pings are answered. Reports connections held and the
//!   server's RSS (`VmRSS` of `/proc/<--server-pid>/status`) before (users already
//!   logged in) and after (all connected and settled): delta and KiB per connection.
//! - `fanout`: every peer sends `--rate` chat messages a second for `--duration`
//!   seconds, spread evenly over the period. Each text carries the run, sender,
//!   sequence number and the send time (nanoseconds since an `Instant` shared by
//!   every client, all of them being in this process); latency is the time from
//!   the sender's send to each receiver's receipt, the sender's own echo included.
//!   Reports p50/p90/p99/max and delivered vs expected (every message should reach
//!   every peer of its room).
//! - `joins`: `--peers` connections started together behind a barrier; latency
//!   from the start of the connection (TCP connect + upgrade) to the `welcome`
//!   frame, split into TCP connect, HTTP 101 and welcome. A few sequential joins
//!   on a quiet server follow as a baseline.
//! - `slow`: peers that never read while 60 KiB signals are sent to them (and to
//!   a reader beside each): the server's RSS before, at its peak and after.
//! - `upload`: `--peers` clients upload a file of `--size` bytes each into a
//!   room's chat at once (a body generated as it is sent), then download it
//!   back: throughput each way, SHA-256 checked, the server's RSS sampled every
//!   20 ms (`bench/attachments.sh` runs it against a fresh release server).
//! - `sfu`: no server needed: `--publishers` synthetic participants (str0m
//!   peers sending Opus and three VP8 simulcast layers) in one room of an
//!   in-process SFU, each receiving the others at `--layer`: forwarded packet
//!   and bit rates, the SFU thread's CPU per forwarded Mbit/s, and the time
//!   through the server (p50/p99).
//!
//! Each prints a human summary and, as its last stdout line, one JSON object with
//! the numbers. Progress goes to stderr.
//!
//! Run a release server (see `RESULTS.md` in this crate for the exact environment
//! used), then for example:
//!
//! ```text
//! cargo build --release -p webcall-bench
//! target/release/webcall-bench capacity --peers 10000 --room-size 16 --server-pid <PID>
//! target/release/webcall-bench fanout --peers 1000 --room-size 16 --duration 20 --rate 1
//! target/release/webcall-bench joins --peers 200 --room-size 16
//! ```
//!
//! Common options: `--server http://127.0.0.1:18000`, `--secret bench` (the
//! server's `REGISTRATION_SECRET`), `--users N` (size of the user pool), `--threads
//! N` (client runtime threads). `webcall-bench --help` lists them all.
//!
//! The tool raises its own open-file limit (`RLIMIT_NOFILE`) to the hard limit; if
//! that is still too low for `--peers`, it says so (raise it with `ulimit -n`).

mod capacity;
mod common;
mod fanout;
mod joins;
mod opts;
mod sfu;
mod sfu_peer;
mod slow;
mod upload;

use std::process::ExitCode;

use opts::{Command, Opts};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match opts::parse(&args) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            println!("{}", opts::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("webcall-bench: {err:#}\n\n{}", opts::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.common.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("webcall-bench: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("webcall-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: Opts) -> anyhow::Result<()> {
    let Opts { common, command } = opts;
    match command {
        Command::Capacity(options) => capacity::run(&common, &options).await,
        Command::Fanout(options) => fanout::run(&common, &options).await,
        Command::Joins(options) => joins::run(&common, &options).await,
        Command::Slow(options) => slow::run(&common, &options).await,
        Command::Upload(options) => upload::run(&common, &options).await,
        Command::Sfu(options) => sfu::run(&common, &options).await,
    }
}
