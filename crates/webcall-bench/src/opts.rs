//! Command-line options: `webcall-bench <scenario> [--option value]...`.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context as _};

pub const USAGE: &str = "\
usage: webcall-bench <capacity|fanout|joins|slow|upload|sfu> [options]

scenarios:
  capacity   hold --peers idle connections; server RSS before/after, KiB per connection
  fanout     every peer sends --rate chats/s for --duration s; delivery latency
  joins      --peers connections started at once; upgrade-to-welcome latency
  slow       --peers peers that never read while 60 KiB signals come; server RSS
             before/peak/after (needs --server-pid)
  upload     --peers clients (one account each) upload --size bytes at once into one
             room's chat, then download them back; throughput each way, SHA-256 checked,
             server RSS sampled every 20 ms (with --server-pid)
  sfu        in-process SFU (no server): --publishers participants x 3 simulcast layers,
             each receiving the others at --layer; forwarded packets/s and Mbit/s, the SFU
             thread's CPU per Mbit/s, time through the server

common options:
  --server URL               the server (http:// only)        [http://127.0.0.1:18000]
  --secret S                 the server's REGISTRATION_SECRET  [bench]
  --users N                  size of the user pool (peer i is user i mod N)
                             [capacity/fanout: min(peers, 100); joins: min(peers, 200)]
  --user-prefix P            bench users are P_00000, P_00001, ... [bench]
  --password P               their password                    [bench-password-1]
  --token-file PATH          reuse the access tokens saved in PATH if it holds enough
                             valid ones (no logins: the server does no password hashing
                             before the measurement), else log in and save them there
  --threads N                client runtime worker threads     [cores]
  --connect-concurrency N    handshakes in flight while connecting [64]
  --room-size N              peers per room                    [16]
  --peers N                  connections                       [capacity 10000, fanout 1000, joins 200,
                             slow 4 (each with a reader and a sender of its own), upload 1]
  --server-pid PID           the server's process: capacity reads its RSS (VmRSS of
                             /proc/PID/status; without it, no RSS), fanout and joins
                             its CPU time during the run (optional)

capacity:
  --settle S                 seconds to wait after the last connection before measuring [5]
  --hold S                   seconds to keep holding afterwards (> the 15 s ping interval) [20]

fanout:
  --duration S               seconds of sending                [20]
  --rate R                   chat messages per second per peer [1]
  --drain S                  at most this long after sending for the last deliveries [5]
  --ping-probe S             also send a {\"type\":\"ping\"} every S seconds per peer and
                             report its round trip (a path without the database) [0 = off]

joins:
  --baseline N               then N sequential joins, one at a time, as a baseline [20]

slow:
  --duration S               seconds of sending                [40]
  --settle S                 seconds after the slow peers are gone before the last RSS [30]

upload:
  --size BYTES               bytes per file; a suffix KiB, MiB, GiB (or KB, MB, GB) is allowed [1GiB]
  --chunk BYTES              bytes per write (a multiple of 8)   [256KiB]
  --room NAME                the room (created if missing)      [upload-<random>]
  --settle S                 seconds of quiet before each RSS reading [1]

sfu:
  --publishers N             participants, each sending and receiving [10]
  --layer q|h|f              the layer every receiver asks for     [h]
  --duration S               seconds measured                      [10]
  --warmup S                 seconds before measuring (joins, bandwidth estimates) [5]

Each scenario prints a summary, then one JSON line with the numbers.";

pub struct Opts {
    pub common: Common,
    pub command: Command,
}

pub struct Common {
    /// `host:port` of the server.
    pub authority: String,
    /// `http://host:port`.
    pub http_base: String,
    pub secret: String,
    pub users: usize,
    pub user_prefix: String,
    pub password: String,
    pub token_file: Option<String>,
    pub threads: usize,
    pub connect_concurrency: usize,
    pub peers: usize,
    pub room_size: usize,
    pub server_pid: Option<u32>,
}

pub enum Command {
    Capacity(CapacityOpts),
    Fanout(FanoutOpts),
    Joins(JoinsOpts),
    Slow(SlowOpts),
    Upload(UploadOpts),
    Sfu(SfuOpts),
}

pub struct SfuOpts {
    pub publishers: usize,
    /// 0 = q, 1 = h, 2 = f.
    pub layer: u8,
    pub duration: Duration,
    pub warmup: Duration,
}

pub struct UploadOpts {
    pub size: u64,
    pub chunk: usize,
    pub room: Option<String>,
    pub settle: Duration,
}

pub struct SlowOpts {
    pub duration: Duration,
    pub settle: Duration,
}

pub struct CapacityOpts {
    pub settle: Duration,
    pub hold: Duration,
}

pub struct FanoutOpts {
    pub duration: Duration,
    pub rate: f64,
    pub drain: Duration,
    pub ping_probe: Option<Duration>,
}

pub struct JoinsOpts {
    pub baseline: usize,
}

/// `Ok(None)` for `--help`.
pub fn parse(args: &[String]) -> anyhow::Result<Option<Opts>> {
    let Some((scenario, rest)) = args.split_first() else {
        bail!("name a scenario");
    };
    if matches!(scenario.as_str(), "-h" | "--help" | "help") {
        return Ok(None);
    }
    let mut values = BTreeMap::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if matches!(arg.as_str(), "-h" | "--help") {
            return Ok(None);
        }
        let Some(name) = arg.strip_prefix("--") else {
            bail!("unexpected argument {arg:?}");
        };
        let (name, value) = match name.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (
                name.to_owned(),
                iter.next()
                    .with_context(|| format!("--{name} needs a value"))?
                    .clone(),
            ),
        };
        values.insert(name, value);
    }
    let mut args = Args(values);

    let default_peers = match scenario.as_str() {
        "capacity" => 10_000,
        "fanout" => 1000,
        "joins" => 200,
        "slow" => 4,
        "upload" => 1,
        "sfu" => 10,
        other => bail!("unknown scenario {other:?}"),
    };
    let peers: usize = args.take("peers", default_peers)?;
    let room_size: usize = args.take("room-size", 16)?;
    if peers == 0 || room_size == 0 {
        bail!("--peers and --room-size must be at least 1");
    }
    let default_users = if scenario == "joins" { 200 } else { 100 };
    let users = args.take("users", default_users.min(peers))?.max(1);
    let server: String = args.take("server", "http://127.0.0.1:18000".to_owned())?;
    let authority = server
        .strip_prefix("http://")
        .context("--server must be an http:// URL (the tool speaks plain ws://)")?
        .trim_end_matches('/')
        .to_owned();
    if authority.is_empty() || authority.contains('/') {
        bail!("--server must be like http://127.0.0.1:18000 (no path)");
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let common = Common {
        http_base: format!("http://{authority}"),
        authority,
        secret: args.take("secret", "bench".to_owned())?,
        users,
        user_prefix: args.take("user-prefix", "bench".to_owned())?,
        password: args.take("password", "bench-password-1".to_owned())?,
        token_file: args.take_opt("token-file")?,
        threads: args.take("threads", cores)?.max(1),
        connect_concurrency: args.take("connect-concurrency", 64)?.max(1),
        peers,
        room_size,
        server_pid: args.take_opt("server-pid")?,
    };
    let command = match scenario.as_str() {
        "capacity" => Command::Capacity(CapacityOpts {
            settle: secs(args.take("settle", 5.0)?)?,
            hold: secs(args.take("hold", 20.0)?)?,
        }),
        "fanout" => {
            let rate: f64 = args.take("rate", 1.0)?;
            if !(rate > 0.0 && rate <= 50.0) {
                bail!("--rate must be above 0 and at most 50 (the server's per-connection limit)");
            }
            let probe: f64 = args.take("ping-probe", 0.0)?;
            Command::Fanout(FanoutOpts {
                duration: secs(args.take("duration", 20.0)?)?,
                rate,
                drain: secs(args.take("drain", 5.0)?)?,
                ping_probe: (probe > 0.0).then(|| secs(probe)).transpose()?,
            })
        }
        "slow" => Command::Slow(SlowOpts {
            duration: secs(args.take("duration", 40.0)?)?,
            settle: secs(args.take("settle", 30.0)?)?,
        }),
        "upload" => {
            let size = bytes(&args.take("size", "1GiB".to_owned())?)?;
            let chunk = bytes(&args.take("chunk", "256KiB".to_owned())?)?;
            if size == 0 || chunk == 0 || chunk % 8 != 0 || chunk > 64 << 20 {
                bail!("--size must be above 0 and --chunk a multiple of 8 up to 64 MiB");
            }
            Command::Upload(UploadOpts {
                size,
                chunk: chunk as usize,
                room: args.take_opt("room")?,
                settle: secs(args.take("settle", 1.0)?)?,
            })
        }
        "sfu" => {
            let publishers: usize = args.take("publishers", 10)?;
            if !(2..=200).contains(&publishers) {
                bail!("--publishers must be 2 to 200");
            }
            let layer = match args.take("layer", "h".to_owned())?.as_str() {
                "q" => 0,
                "h" => 1,
                "f" => 2,
                other => bail!("--layer {other:?}: q, h or f"),
            };
            Command::Sfu(SfuOpts {
                publishers,
                layer,
                duration: secs(args.take("duration", 10.0)?)?,
                warmup: secs(args.take("warmup", 5.0)?)?,
            })
        }
        _ => Command::Joins(JoinsOpts {
            baseline: args.take("baseline", 20)?,
        }),
    };
    if let Some(name) = args.0.keys().next() {
        bail!("unknown option --{name} for {scenario}");
    }
    Ok(Some(Opts { common, command }))
}

/// `1073741824`, `1GiB`, `5MiB`, `25MB` (decimal) …
fn bytes(raw: &str) -> anyhow::Result<u64> {
    let digits = raw.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &raw[digits.len()..] {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => bail!("{raw:?}: unknown unit {other:?}"),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .with_context(|| format!("{raw:?} is not a size in bytes"))
}

fn secs(value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{value} is not a duration"))
}

struct Args(BTreeMap<String, String>);

impl Args {
    fn take<T: FromStr>(&mut self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.take_opt(name)?.unwrap_or(default))
    }

    fn take_opt<T: FromStr>(&mut self, name: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.0
            .remove(name)
            .map(|raw| {
                raw.parse::<T>()
                    .map_err(|e| anyhow::anyhow!("--{name} {raw:?}: {e}"))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_follow_the_scenario() {
        let opts = parse(&args("fanout")).unwrap().unwrap();
        assert_eq!(opts.common.peers, 1000);
        assert_eq!(opts.common.room_size, 16);
        assert_eq!(opts.common.authority, "127.0.0.1:18000");
        let Command::Fanout(fanout) = opts.command else {
            panic!("not fanout")
        };
        assert_eq!(fanout.duration, Duration::from_secs(20));
        assert!(fanout.ping_probe.is_none());
    }

    #[test]
    fn options_are_read_and_unknown_ones_refused() {
        let opts = parse(&args(
            "capacity --peers 50 --server-pid=42 --server http://h:1/",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(opts.common.peers, 50);
        assert_eq!(opts.common.users, 50);
        assert_eq!(opts.common.http_base, "http://h:1");
        assert_eq!(opts.common.server_pid, Some(42));
        assert!(matches!(opts.command, Command::Capacity(_)));
        assert!(parse(&args("joins --duration 3")).is_err());
        assert!(parse(&args("joins --peers")).is_err());
        assert!(parse(&args("fanout --rate 80")).is_err());
        assert!(parse(&args("nope")).is_err());
        assert!(parse(&args("joins --help")).unwrap().is_none());
    }

    #[test]
    fn upload_sizes_take_binary_and_decimal_units() {
        let opts = parse(&args("upload --size 5MiB --peers 20"))
            .unwrap()
            .unwrap();
        assert_eq!(opts.common.users, 20);
        let Command::Upload(upload) = opts.command else {
            panic!("not upload")
        };
        assert_eq!(upload.size, 5 << 20);
        assert_eq!(upload.chunk, 256 << 10);
        assert_eq!(bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(bytes("25MB").unwrap(), 25_000_000);
        assert_eq!(bytes("123").unwrap(), 123);
        assert!(bytes("1PiB").is_err());
        assert!(bytes("GiB").is_err());
        assert!(parse(&args("upload --chunk 1001")).is_err());
    }
}
