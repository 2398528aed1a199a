//! What the scenarios share: the user pool, opening a signaling connection,
//! latency distributions, the server's RSS, and the open-file limit.
//!
//! Over 500 lines because it is the one toolbox every scenario shares (a tenth
//! of it is its tests); a scenario's own code stays in its file.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::opts::Common;

pub type Ws = WebSocketStream<TcpStream>;

/// How long one connection may take to reach its `welcome`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A short random tag for this run: rooms are fresh (no chat history in the
/// welcome, nobody else in them) and its chat texts are told apart from others'.
pub fn run_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// The room of peer `index`.
pub fn room_name(tag: &str, index: usize, room_size: usize) -> String {
    format!("bench-{tag}-{}", index / room_size)
}

// ---------------------------------------------------------------------------
// Users

/// Registers the pool's users (or finds them already registered) and logs each in
/// once; returns one access token per user. One user may hold many connections.
pub async fn prepare_users(common: &Common) -> anyhow::Result<Vec<String>> {
    if let Some(path) = &common.token_file {
        if let Some(tokens) = saved_tokens(path, common.users) {
            eprintln!("users: {} tokens reused from {path}", tokens.len());
            return Ok(tokens);
        }
    }
    let tokens = log_in_users(common).await?;
    if let Some(path) = &common.token_file {
        std::fs::write(path, tokens.join("\n") + "\n")
            .with_context(|| format!("saving the tokens to {path}"))?;
    }
    Ok(tokens)
}

/// The first `count` tokens of `path`, if it holds that many that are valid for at
/// least ten more minutes (the server's `JWT_EXPIRES_MIN` is 60 by default).
fn saved_tokens(path: &str, count: usize) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(path).ok()?;
    let tokens: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(count)
        .map(|l| l.trim().to_owned())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    let fresh = |token: &String| jwt_expiry(token).is_some_and(|exp| exp > now + 600);
    (tokens.len() == count && tokens.iter().all(fresh)).then_some(tokens)
}

/// The `exp` claim of a JWT (not verified: the server does that).
fn jwt_expiry(token: &str) -> Option<i64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&json).ok()?["exp"].as_i64()
}

async fn log_in_users(common: &Common) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    // The first user alone: a wrong --secret or --password fails here, once, and
    // does not spend the server's failed-login allowance (30 per address).
    let first = user_token(&client, common, 0).await?;
    // Hashing is deliberately slow (argon2): a few at a time, as many as the
    // server has cores to hash with.
    let concurrency = common.threads.clamp(2, 8);
    let mut rest: Vec<(usize, String)> = futures_util::stream::iter(1..common.users)
        .map(|i| {
            let client = &client;
            async move { user_token(client, common, i).await.map(|t| (i, t)) }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    rest.sort_by_key(|(i, _)| *i);
    let mut tokens = vec![first];
    tokens.extend(rest.into_iter().map(|(_, t)| t));
    eprintln!(
        "users: {} ready (registered or reused, logged in) in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(tokens)
}

async fn user_token(client: &reqwest::Client, common: &Common, i: usize) -> anyhow::Result<String> {
    let username = format!("{}_{i:05}", common.user_prefix);
    let base = &common.http_base;
    let response = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({
            "email": format!("{username}@bench.example.com"),
            "username": username,
            "password": common.password,
            "secret": common.secret,
        }))
        .send()
        .await
        .with_context(|| format!("POST {base}/api/v1/auth/register (is the server up?)"))?;
    match response.status().as_u16() {
        201 | 409 => {}
        403 => bail!("registration refused (403): is --secret the server's REGISTRATION_SECRET?"),
        status => bail!(
            "registering {username}: HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
    #[derive(Deserialize)]
    struct TokenBody {
        access_token: String,
    }
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": common.password}))
        .send()
        .await
        .context("POST /api/v1/auth/login")?;
    match response.status().as_u16() {
        200 => Ok(response.json::<TokenBody>().await?.access_token),
        401 => bail!(
            "login of {username} refused (401): it exists with another password; \
             use another --user-prefix or the right --password (each failure counts \
             against the server's 30-per-15-min limit per address)"
        ),
        status => bail!(
            "login of {username}: HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        ),
    }
}

// ---------------------------------------------------------------------------
// Connections

/// A connection that got its `welcome`, with the times it took from its start.
pub struct Connected {
    pub ws: Ws,
    pub peer_id: String,
    pub tcp: Duration,
    pub upgrade: Duration,
    pub welcome: Duration,
}

/// Opens `ws://{authority}/ws/rooms/{room}?token=...` and waits for `welcome`.
/// Errors are short labels, to be counted.
pub async fn connect(authority: &str, room: &str, token: &str) -> Result<Connected, String> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(authority, room, token)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no welcome within {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

async fn connect_inner(authority: &str, room: &str, token: &str) -> Result<Connected, String> {
    let start = Instant::now();
    let tcp = TcpStream::connect(authority)
        .await
        .map_err(|e| format!("tcp connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let tcp_done = start.elapsed();
    let url = format!("ws://{authority}/ws/rooms/{room}?token={token}");
    // Small buffers: this process holds thousands of connections.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _response) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Http(response) => {
                format!("upgrade refused: HTTP {}", response.status().as_u16())
            }
            other => format!("upgrade: {other}"),
        })?;
    let upgrade = start.elapsed();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let welcome = start.elapsed();
                // Only the fields looked at: the tool shares the cores with the
                // server, so it does not build a tree of the whole welcome.
                #[derive(Deserialize)]
                struct FirstFrame {
                    #[serde(rename = "type")]
                    kind: Option<String>,
                    peer_id: Option<String>,
                    code: Option<String>,
                }
                let frame: FirstFrame = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("first frame is not a JSON object: {e}"))?;
                return match (frame.kind.as_deref(), frame.peer_id) {
                    (Some("welcome"), Some(peer_id)) => Ok(Connected {
                        peer_id,
                        ws,
                        tcp: tcp_done,
                        upgrade,
                        welcome,
                    }),
                    (Some("error"), _) => Err(format!(
                        "error frame instead of welcome: {}",
                        frame.code.as_deref().unwrap_or("?")
                    )),
                    (other, _) => Err(format!("first frame is {other:?}, not welcome")),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                return Err(format!(
                    "closed before welcome: {}",
                    close_label(frame.as_ref())
                ))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("before welcome: {e}")),
            None => return Err("closed before welcome (EOF)".to_owned()),
        }
    }
}

/// A close code and reason, for counting.
pub fn close_label(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) => format!(
            "close {} {:?}",
            u16::from(frame.code),
            frame.reason.as_str()
        ),
        None => "close (no code)".to_owned(),
    }
}

/// Closes normally (1000, which the server takes as leaving) and waits a little
/// for the server's reply so neither side is left with a reset.
pub async fn close_normally(ws: &mut Ws) {
    let closing = async {
        let _ = ws
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bench done".into(),
            })))
            .await;
        while let Some(Ok(_)) = ws.next().await {}
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), closing).await;
}

/// Counts of labelled events (errors, close reasons).
#[derive(Default, Clone)]
pub struct Tally(pub BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, label: impl Into<String>) {
        *self.0.entry(label.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (label, n) in &other.0 {
            *self.0.entry(label.clone()).or_default() += n;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn json(&self) -> Value {
        json!(self.0)
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        write!(f, "{}", parts.join(", "))
    }
}

// ---------------------------------------------------------------------------
// Latency distributions

/// Percentiles of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dist {
    pub count: usize,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Dist {
    /// From samples in nanoseconds (sorted in place).
    pub fn of_nanos(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        // Nearest rank.
        let at = |p: f64| {
            let rank = (p * samples.len() as f64).ceil() as usize;
            ms(samples[rank.clamp(1, samples.len()) - 1])
        };
        let sum: f64 = samples.iter().map(|&ns| ns as f64).sum();
        Self {
            count: samples.len(),
            min: ms(samples[0]),
            mean: sum / samples.len() as f64 / 1e6,
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: ms(samples[samples.len() - 1]),
        }
    }

    pub fn of_durations(samples: &[Duration]) -> Self {
        let mut nanos: Vec<u64> = samples.iter().map(|d| d.as_nanos() as u64).collect();
        Self::of_nanos(&mut nanos)
    }

    pub fn json(&self) -> Value {
        let r = |v: f64| (v * 1000.0).round() / 1000.0;
        json!({
            "count": self.count,
            "min_ms": r(self.min),
            "mean_ms": r(self.mean),
            "p50_ms": r(self.p50),
            "p90_ms": r(self.p90),
            "p99_ms": r(self.p99),
            "p999_ms": r(self.p999),
            "max_ms": r(self.max),
        })
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return write!(f, "no samples");
        }
        write!(
            f,
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (mean {:.2}, min {:.2}, n={})",
            self.p50, self.p90, self.p99, self.p999, self.max, self.mean, self.min, self.count
        )
    }
}

// ---------------------------------------------------------------------------
// The process: memory, open files, ports

/// `VmRSS` of a process in KiB.
pub fn rss_kib(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}

/// CPU time (user + system) a process has used so far, in seconds: the sum of
/// its threads' run time in nanoseconds (`/proc/PID/task/*/schedstat`), or, where
/// that is missing, `/proc/PID/stat` in 10 ms ticks. A 200-join burst costs a few
/// tens of milliseconds, so ticks would be too coarse to compare builds by.
pub fn cpu_secs(pid: &str) -> Option<f64> {
    run_time_secs(pid).or_else(|| tick_secs(pid))
}

fn run_time_secs(pid: &str) -> Option<f64> {
    let mut nanos: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ends meanwhile takes its time with it: skip it.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        nanos += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanos as f64 / 1e9)
}

fn tick_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_sec > 0).then(|| ticks as f64 / per_sec as f64)
}

/// CPU use of the server (if its pid is known) and of this tool over a phase.
pub struct CpuMeter {
    server: Option<(String, f64)>,
    own: Option<f64>,
    started: Instant,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid
            .map(|pid| pid.to_string())
            .and_then(|pid| cpu_secs(&pid).map(|secs| (pid, secs)));
        Self {
            server,
            own: cpu_secs("self"),
            started: Instant::now(),
        }
    }

    /// `(server, this tool)` CPU time used since `start`, in seconds.
    pub fn used(&self) -> (Option<f64>, Option<f64>) {
        let server = self
            .server
            .as_ref()
            .and_then(|(pid, before)| Some(cpu_secs(pid)? - before));
        let own = self.own.and_then(|before| Some(cpu_secs("self")? - before));
        (server, own)
    }

    /// `(server, this tool)` CPU use since `start`, in cores (1.0 = one core busy);
    /// none for phases under a second.
    pub fn cores(&self) -> (Option<f64>, Option<f64>) {
        let wall = self.started.elapsed().as_secs_f64();
        if wall < 1.0 {
            return (None, None);
        }
        let server = self
            .server
            .as_ref()
            .and_then(|(pid, before)| Some((cpu_secs(pid)? - before) / wall));
        let own = self
            .own
            .and_then(|before| Some((cpu_secs("self")? - before) / wall));
        (server, own)
    }
}

/// "1.23 cores" or "n/a".
pub fn cores_text(cores: Option<f64>) -> String {
    cores.map_or("n/a".to_owned(), |c| format!("{c:.2} cores"))
}

/// Open file descriptors of a process (none if it cannot be read).
pub fn fd_count(pid: &str) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

/// A process's "Max open files" soft limit, from `/proc/PID/limits`.
pub fn process_nofile_limit(pid: &str) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit. Returns the soft
/// limit now in force and the hard limit.
pub fn raise_nofile_limit() -> (u64, u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return (0, 0);
        }
        let hard = limit.rlim_max;
        // An unlimited hard limit still cannot exceed the kernel's nr_open.
        let wanted = if hard == libc::RLIM_INFINITY {
            1 << 20
        } else {
            hard
        };
        if limit.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = wanted;
            }
        }
    }
    // `rlim_t` is not `u64` on every platform.
    #[allow(clippy::unnecessary_cast)]
    (limit.rlim_cur as u64, limit.rlim_max as u64)
}

/// Checks that this process may open `peers` sockets, raising its limit first.
pub fn ensure_fds(peers: usize) -> anyhow::Result<()> {
    let needed = peers as u64 + 64;
    let (soft, hard) = raise_nofile_limit();
    if soft < needed {
        bail!(
            "{peers} connections need about {needed} open files, but this process may have \
             only {soft} (hard limit {hard}). Raise it in the shell that starts the tool \
             (`ulimit -n {needed}`, as root or within the hard limit), or lower --peers."
        );
    }
    Ok(())
}

/// How many local ports `connect` may use towards one server address.
pub fn ephemeral_ports() -> Option<u64> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut parts = range.split_whitespace().map(|p| p.parse::<u64>().ok());
    let (low, high) = (parts.next()??, parts.next()??);
    Some(high.saturating_sub(low) + 1)
}

/// Warns (on stderr) about limits that would cap `peers` connections.
pub fn warn_about_limits(peers: usize, server_pid: Option<&str>) {
    if let Some(ports) = ephemeral_ports() {
        if peers as u64 > ports {
            eprintln!(
                "warning: {peers} connections but only {ports} ephemeral ports \
                 (net.ipv4.ip_local_port_range): connects will fail past that"
            );
        }
    }
    if let Some(limit) = server_pid.and_then(process_nofile_limit) {
        if limit < peers as u64 + 64 {
            eprintln!(
                "warning: the server may open only {limit} files; {peers} connections need \
                 more (start it from a shell with a higher `ulimit -n`)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        let dist = Dist::of_nanos(&mut samples);
        assert_eq!(dist.count, 100);
        assert_eq!(dist.p50, 50.0);
        assert_eq!(dist.p90, 90.0);
        assert_eq!(dist.p99, 99.0);
        assert_eq!(dist.max, 100.0);
        assert_eq!(dist.min, 1.0);
        assert_eq!(Dist::of_nanos(&mut []).count, 0);
    }

    #[test]
    fn rooms_hold_room_size_peers() {
        assert_eq!(room_name("t", 0, 16), "bench-t-0");
        assert_eq!(room_name("t", 15, 16), "bench-t-0");
        assert_eq!(room_name("t", 16, 16), "bench-t-1");
    }

    #[test]
    fn the_expiry_of_a_token_is_read() {
        // {"alg":"HS256"} . {"exp":1700000000} . signature
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAwMDB9.c2ln";
        assert_eq!(jwt_expiry(token), Some(1_700_000_000));
        assert_eq!(jwt_expiry("nope"), None);
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib("self").unwrap() > 0);
        assert!(fd_count("self").unwrap() > 0);
        assert!(cpu_secs("self").unwrap() >= 0.0);
    }
}
