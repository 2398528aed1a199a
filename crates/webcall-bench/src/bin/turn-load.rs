//! `turn-load`: a TURN relay load generator, for when coturn's `turnutils_uclient`
//! is the bottleneck (it delivers about 17k messages/s per process here).
//!
//! Sets up `--pairs` pairs of clients against a TURN server with TURN REST
//! credentials (`--secret`): each client allocates a relay, permits and binds
//! channel 0x4000 to its partner's relayed address, so every message goes
//! client → server → relay → partner's relay → server → partner. Then
//! `--threads` sender threads send ChannelData of `--size` bytes at `--rate`
//! messages/s in all (evenly paced) for `--duration` s; one thread per client
//! receives. Each payload carries its sender and sequence number, so loss,
//! duplicates and corruption are counted exactly.
//!
//! A little over 500 lines: a standalone load generator (its own STUN/TURN
//! client, pacing and counting) kept in one file so it can be read and copied
//! as one program.
//!
//! With `--echo`, each client binds its channel to a UDP socket of this tool
//! instead, which sends every datagram back (client → server → relay → echo →
//! relay → server → client): no message passes from one relay of the server to
//! another.
//!
//! Prints one JSON line: sent, received, lost, corrupt, the achieved send rate,
//! the one-way latency (send to receive, both here: p50, p99, max) and, with
//! `--server-pid`, the server's CPU per delivered message.
//!
//! ```text
//! target/release/turn-load --server 127.0.0.1:3478 --secret S --pairs 50 --rate 40000 --duration 10
//! target/release/turn-load ... --tcp            # client-to-server over TCP
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};
use stun::textattrs::{Nonce, Realm, TextAttribute, Username};
use turn::proto::channum::ChannelNumber;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;
use turn::proto::PROTO_UDP;

const CHANNEL: u16 = 0x4000;
/// Sender id (4 bytes), sequence number (8 bytes), send time (8 bytes, ns
/// since the run's start), then filler.
const HEADER: usize = 20;
/// Latency histogram: 10 µs buckets up to 100 ms (the last counts the rest).
const LATENCY_BUCKET_US: u64 = 10;
const LATENCY_BUCKETS: usize = 10_000;

struct Opts {
    server: SocketAddr,
    secret: String,
    pairs: usize,
    rate: u64,
    duration: Duration,
    size: usize,
    threads: usize,
    tcp: bool,
    echo: bool,
    server_pid: Option<u32>,
}

fn parse_opts() -> anyhow::Result<Opts> {
    let mut opts = Opts {
        server: "127.0.0.1:3478".parse()?,
        secret: String::new(),
        pairs: 50,
        rate: 20_000,
        duration: Duration::from_secs(10),
        size: 120,
        threads: 2,
        tcp: false,
        echo: false,
        server_pid: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--tcp" {
            opts.tcp = true;
            continue;
        }
        if flag == "--echo" {
            opts.echo = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            println!(
                "usage: turn-load --secret S [--server HOST:PORT] [--pairs N] [--rate MSGS_PER_S] \
                 [--duration S] [--size BYTES] [--threads N] [--tcp] [--echo] [--server-pid PID]"
            );
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--server" => opts.server = value.parse()?,
            "--secret" => opts.secret = value,
            "--pairs" => opts.pairs = value.parse()?,
            "--rate" => opts.rate = value.parse()?,
            "--duration" => opts.duration = Duration::from_secs_f64(value.parse()?),
            "--size" => opts.size = value.parse()?,
            "--threads" => opts.threads = value.parse()?,
            "--server-pid" => opts.server_pid = Some(value.parse()?),
            _ => bail!("unknown option {flag}"),
        }
    }
    if opts.secret.is_empty() {
        bail!("--secret is required (the server's TURN REST secret)");
    }
    if opts.size < HEADER || opts.pairs == 0 || opts.threads == 0 || opts.rate == 0 {
        bail!("--size must be at least {HEADER}; --pairs, --threads and --rate above 0");
    }
    Ok(opts)
}

/// The client's side of the wire: a connected UDP socket or a TCP stream.
enum Wire {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

impl Wire {
    fn connect(server: SocketAddr, tcp: bool) -> anyhow::Result<Self> {
        Ok(if tcp {
            let stream = TcpStream::connect(server)?;
            stream.set_nodelay(true)?;
            Wire::Tcp(stream)
        } else {
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            socket.connect(server)?;
            Wire::Udp(socket)
        })
    }

    fn try_clone(&self) -> std::io::Result<Self> {
        Ok(match self {
            Wire::Udp(socket) => Wire::Udp(socket.try_clone()?),
            Wire::Tcp(stream) => Wire::Tcp(stream.try_clone()?),
        })
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        match self {
            Wire::Udp(socket) => socket.set_read_timeout(timeout),
            Wire::Tcp(stream) => stream.set_read_timeout(timeout),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Wire::Udp(socket) => socket.send(bytes).map(|_| ()),
            Wire::Tcp(stream) => stream.write_all(bytes),
        }
    }

    /// The next datagram or TCP frame (STUN or ChannelData) into `buf`.
    fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Udp(socket) => socket.recv(buf),
            Wire::Tcp(stream) => {
                stream.read_exact(&mut buf[..4])?;
                let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                let total = if buf[0] & 0xC0 == 0x40 {
                    4 + ((len + 3) & !3)
                } else {
                    20 + len
                };
                stream.read_exact(&mut buf[4..total])?;
                Ok(total)
            }
        }
    }
}

struct Client {
    wire: Wire,
    username: String,
    password: String,
    realm: String,
    nonce: String,
    relayed: SocketAddr,
}

impl Client {
    fn request(&mut self, setters: Vec<Box<dyn Setter>>) -> anyhow::Result<Message> {
        let mut msg = Message::new();
        msg.build(&setters)?;
        self.wire.send(&msg.raw)?;
        let mut buf = vec![0u8; 2048];
        loop {
            let n = self.wire.recv(&mut buf)?;
            let mut response = Message::new();
            if response.unmarshal_binary(&buf[..n]).is_ok()
                && response.transaction_id == msg.transaction_id
            {
                return Ok(response);
            }
        }
    }

    fn signed(
        &mut self,
        method: stun::message::Method,
        attrs: Vec<Box<dyn Setter>>,
    ) -> anyhow::Result<Message> {
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
        ];
        setters.extend(attrs);
        setters.push(Box::new(Username::new(
            ATTR_USERNAME,
            self.username.clone(),
        )));
        setters.push(Box::new(Realm::new(ATTR_REALM, self.realm.clone())));
        setters.push(Box::new(Nonce::new(ATTR_NONCE, self.nonce.clone())));
        setters.push(Box::new(MessageIntegrity::new_long_term_integrity(
            self.username.clone(),
            self.realm.clone(),
            self.password.clone(),
        )));
        let response = self.request(setters)?;
        if response.typ.class != CLASS_SUCCESS_RESPONSE {
            let mut code = ErrorCodeAttribute::default();
            let _ = code.get_from(&response);
            bail!(
                "{method} refused: {} {}",
                code.code.0,
                String::from_utf8_lossy(&code.reason)
            );
        }
        Ok(response)
    }

    fn allocate(server: SocketAddr, tcp: bool, secret: &str, id: usize) -> anyhow::Result<Self> {
        use hmac::Mac as _;
        let expires = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3600;
        let username = format!("{expires}:load{id}");
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())?;
        mac.update(username.as_bytes());
        let password =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut client = Client {
            wire: Wire::connect(server, tcp)?,
            username,
            password,
            realm: String::new(),
            nonce: String::new(),
            relayed: server,
        };
        let challenge = client.request(vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
        ])?;
        client.realm = TextAttribute::get_from_as(&challenge, ATTR_REALM)?.text;
        client.nonce = TextAttribute::get_from_as(&challenge, ATTR_NONCE)?.text;
        let allocated = client.signed(
            METHOD_ALLOCATE,
            vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })],
        )?;
        let mut relayed = RelayedAddress::default();
        relayed.get_from(&allocated)?;
        client.relayed = SocketAddr::new(relayed.ip, relayed.port);
        Ok(client)
    }

    fn bind_to(&mut self, peer: SocketAddr) -> anyhow::Result<()> {
        let peer_attr = || {
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            })
        };
        self.signed(METHOD_CREATE_PERMISSION, vec![peer_attr()])?;
        self.signed(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(CHANNEL)), peer_attr()],
        )?;
        Ok(())
    }
}

/// Per receiving client: what arrived from its partner.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    corrupt: AtomicU64,
    out_of_order: AtomicU64,
}

fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

fn main() -> anyhow::Result<()> {
    let opts = parse_opts()?;
    let clients = opts.pairs * 2;
    eprintln!("allocating {clients} relays on {}", opts.server);
    let mut all = (0..clients)
        .map(|id| Client::allocate(opts.server, opts.tcp, &opts.secret, id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut echoes = Vec::new();
    if opts.echo {
        for client in &mut all {
            let peer = UdpSocket::bind("127.0.0.1:0")?;
            peer.set_read_timeout(Some(Duration::from_millis(200)))?;
            client.bind_to(peer.local_addr()?)?;
            let stop = stop.clone();
            echoes.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 70_000];
                loop {
                    match peer.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            let _ = peer.send_to(&buf[..n], from);
                        }
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(_) => {}
                    }
                }
            }));
        }
    } else {
        for pair in 0..opts.pairs {
            let (a, b) = (all[2 * pair].relayed, all[2 * pair + 1].relayed);
            all[2 * pair].bind_to(b)?;
            all[2 * pair + 1].bind_to(a)?;
        }
    }

    let tallies: Arc<Vec<Tally>> = Arc::new((0..clients).map(|_| Tally::default()).collect());
    let epoch = Instant::now();
    let mut receivers = Vec::new();
    let mut senders: Vec<Vec<(u32, Wire)>> = (0..opts.threads).map(|_| Vec::new()).collect();
    for (id, client) in all.iter().enumerate() {
        let mut wire = client.wire.try_clone()?;
        let sender = wire.try_clone()?;
        senders[id % opts.threads].push((id as u32, sender));
        wire.set_read_timeout(Some(Duration::from_millis(200)))?;
        let (stop, tallies) = (stop.clone(), tallies.clone());
        let partner = if opts.echo { id } else { id ^ 1 } as u32;
        let size = opts.size;
        receivers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            let mut latency = vec![0u32; LATENCY_BUCKETS];
            let mut next = 0u64;
            let tally = &tallies[id];
            loop {
                match wire.recv(&mut buf) {
                    Ok(n) => {
                        let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                        let data = &buf[4..n.min(4 + len)];
                        if buf[0] & 0xC0 != 0x40 || data.len() != size {
                            continue;
                        }
                        let from = u32::from_be_bytes(data[..4].try_into().unwrap());
                        let seq = u64::from_be_bytes(data[4..12].try_into().unwrap());
                        let sent_ns = u64::from_be_bytes(data[12..20].try_into().unwrap());
                        let filler_ok = data[HEADER..]
                            .iter()
                            .enumerate()
                            .all(|(i, b)| *b == (i as u8).wrapping_add(seq as u8));
                        if from != partner || !filler_ok {
                            tally.corrupt.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        if seq < next {
                            tally.out_of_order.fetch_add(1, Ordering::Relaxed);
                        }
                        next = next.max(seq + 1);
                        tally.received.fetch_add(1, Ordering::Relaxed);
                        let us = (epoch.elapsed().as_nanos() as u64).saturating_sub(sent_ns) / 1000;
                        let bucket = ((us / LATENCY_BUCKET_US) as usize).min(LATENCY_BUCKETS - 1);
                        latency[bucket] += 1;
                    }
                    Err(_) if stop.load(Ordering::Relaxed) => break,
                    Err(err)
                        if matches!(
                            err.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            latency
        }));
    }

    eprintln!(
        "sending {} msgs/s of {} B for {:?}",
        opts.rate, opts.size, opts.duration
    );
    let cpu_before = opts.server_pid.and_then(cpu_secs);
    let started = Instant::now();
    let per_thread_rate = opts.rate as f64 / opts.threads as f64;
    let sender_threads: Vec<_> = senders
        .into_iter()
        .map(|mut wires| {
            let (duration, size) = (opts.duration, opts.size);
            std::thread::spawn(move || {
                let interval = Duration::from_secs_f64(1.0 / per_thread_rate);
                let total = (per_thread_rate * duration.as_secs_f64()) as u64;
                let mut frame = vec![0u8; 4 + ((size + 3) & !3)];
                frame[..2].copy_from_slice(&CHANNEL.to_be_bytes());
                frame[2..4].copy_from_slice(&(size as u16).to_be_bytes());
                let mut seqs = vec![0u64; wires.len()];
                let begin = Instant::now();
                let mut sent = 0u64;
                for n in 0..total {
                    // Paced: message n leaves at begin + n * interval.
                    let due = begin + interval.mul_f64(n as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let slot = (n as usize) % wires.len();
                    let (id, wire) = &mut wires[slot];
                    let seq = seqs[slot];
                    seqs[slot] += 1;
                    let data = &mut frame[4..4 + size];
                    data[..4].copy_from_slice(&id.to_be_bytes());
                    data[4..12].copy_from_slice(&seq.to_be_bytes());
                    data[12..20]
                        .copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_be_bytes());
                    for (i, b) in data[HEADER..].iter_mut().enumerate() {
                        *b = (i as u8).wrapping_add(seq as u8);
                    }
                    if wire.send(&frame).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let sent: u64 = sender_threads
        .into_iter()
        .map(|t| t.join().unwrap_or(0))
        .sum();
    let send_secs = started.elapsed().as_secs_f64();
    // Let the last messages arrive.
    std::thread::sleep(Duration::from_millis(1000));
    let cpu_after = opts.server_pid.and_then(cpu_secs);
    stop.store(true, Ordering::Relaxed);
    let mut latency = vec![0u64; LATENCY_BUCKETS];
    for thread in receivers {
        if let Ok(histogram) = thread.join() {
            for (total, n) in latency.iter_mut().zip(histogram) {
                *total += u64::from(n);
            }
        }
    }
    for thread in echoes {
        let _ = thread.join();
    }
    let percentile = |p: f64| -> Option<u64> {
        let total: u64 = latency.iter().sum();
        let rank = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        latency
            .iter()
            .position(|n| {
                seen += n;
                total > 0 && seen >= rank
            })
            .map(|bucket| (bucket as u64 + 1) * LATENCY_BUCKET_US)
    };
    // Free the allocations: a later run's socket may get the same port, and a
    // 5-tuple still allocated would refuse its Allocate (437).
    for client in &mut all {
        let _ = client.wire.set_read_timeout(Some(Duration::from_secs(1)));
        let _ = client.signed(METHOD_REFRESH, vec![Box::new(Lifetime(Duration::ZERO))]);
    }
    let received: u64 = tallies
        .iter()
        .map(|t| t.received.load(Ordering::Relaxed))
        .sum();
    let corrupt: u64 = tallies
        .iter()
        .map(|t| t.corrupt.load(Ordering::Relaxed))
        .sum();
    let out_of_order: u64 = tallies
        .iter()
        .map(|t| t.out_of_order.load(Ordering::Relaxed))
        .sum();
    let server_cpu = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    let result = serde_json::json!({
        "transport": if opts.tcp { "tcp" } else { "udp" },
        "peers": if opts.echo { "echo" } else { "relay-to-relay" },
        "pairs": opts.pairs,
        "size": opts.size,
        "target_rate": opts.rate,
        "sent": sent,
        "received": received,
        "lost": sent.saturating_sub(received),
        "loss_pct": if sent > 0 { 100.0 * (sent.saturating_sub(received)) as f64 / sent as f64 } else { 100.0 },
        "corrupt": corrupt,
        "out_of_order": out_of_order,
        "send_secs": (send_secs * 100.0).round() / 100.0,
        "achieved_rate": (sent as f64 / send_secs).round(),
        "latency_p50_us": percentile(0.5),
        "latency_p99_us": percentile(0.99),
        "latency_max_us": percentile(1.0),
        "server_cpu_s": server_cpu.map(|c| (c * 100.0).round() / 100.0),
        "server_cores_busy": server_cpu.map(|c| (c / send_secs * 100.0).round() / 100.0),
        "server_cpu_us_per_msg": server_cpu.filter(|_| received > 0).map(|c| (c * 1e6 / received as f64 * 100.0).round() / 100.0),
    });
    println!("{result}");
    Ok(())
}
