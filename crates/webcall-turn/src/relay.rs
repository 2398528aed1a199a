use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use stun::agent::TransactionId;
use stun::message::{Message, BINDING_REQUEST, BINDING_SUCCESS};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use turn::allocation::AllocationInfo;
use turn::auth::AuthHandler;
use turn::relay::RelayAddressGenerator;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;
use webcall_domain::ports::HealthCheck;
use webcall_domain::DomainError;

use crate::batch::Coalesce;
use crate::credentials::{parse_rest_username, RestCredentials};
use crate::dataplane::{ClientPath, DataPlane};
use crate::gate::{Gate, GateConfig};
use crate::listener::GatedConn;
use crate::nonces::NonceCache;
use crate::policy::PeerPolicy;
use crate::relay_sockets::{RelayFamily, RelayPorts};
use crate::tcp::{TcpTransport, Unfinished};
use crate::tuple::{FiveTuple, Transport};
use crate::wire::is_relayed_data;

/// Everything the relay needs to start.
#[derive(Clone)]
pub struct TurnConfig {
    /// Where to listen for UDP and TCP (`TURN_LISTEN`), e.g. `0.0.0.0:3478` and
    /// `[::]:3478`. Port 0 picks a free port, the same for both transports and
    /// every address after the first.
    pub listen: Vec<SocketAddr>,
    /// The address advertised in XOR-RELAYED-ADDRESS (`TURN_PUBLIC_IP`); its
    /// family is the one relayed addresses get when a client asks for none.
    pub public_ip: IpAddr,
    /// The IPv6 address advertised for IPv6 relayed addresses (`TURN_PUBLIC_IP6`),
    /// when `public_ip` is IPv4 and the host has one.
    pub public_ip6: Option<Ipv6Addr>,
    /// Relay ports, inclusive (`TURN_RELAY_PORT_MIN`..`TURN_RELAY_PORT_MAX`).
    pub relay_ports: (u16, u16),
    pub realm: String,
    pub credentials: RestCredentials,
    pub policy: PeerPolicy,
    pub user_quota: usize,
    pub total_quota: usize,
    pub max_tcp_connections: usize,
    /// UDP sockets on the TURN port (`SO_REUSEPORT`), each with its own read loop;
    /// one per core spreads relaying over the cores.
    pub udp_listeners: usize,
    /// How long a UDP relay thread that is woken again and again for a datagram
    /// or two sleeps before it parks, so that its next wake-up finds a batch
    /// (`TURN_UDP_COALESCE_US`); zero: never. See [`crate::batch`].
    pub udp_coalesce: Duration,
}

/// The running relay: a crate server per UDP listener and one for TCP, each on
/// a thread of its own; all behind the gate, relaying through one data plane.
pub struct TurnRelay {
    workers: Vec<Worker>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addr: SocketAddr,
    public_ip: IpAddr,
    public_ip6: Option<Ipv6Addr>,
    gate: Arc<Gate>,
    tcp_transport: Arc<TcpTransport>,
    tls_transport: Arc<TcpTransport>,
    shutdown: CancellationToken,
}

/// Hands the crate the long-term key of a REST username. The gate has already
/// checked the signature and (at Allocate) the expiry of every request that
/// carries credentials; this only derives the key the crate signs responses with.
struct RestKeys {
    credentials: RestCredentials,
}

impl AuthHandler for RestKeys {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        parse_rest_username(username).ok_or(turn::Error::ErrNoSuchUser)?;
        Ok(self.credentials.long_term_key(username, realm))
    }
}

/// UDP socket buffers: the kernel's defaults (about 200 KiB) overflow under bursts.
const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

impl TurnRelay {
    /// Binds UDP and TCP at each `config.listen` address and starts relaying.
    pub async fn start(config: TurnConfig) -> anyhow::Result<Self> {
        let (udp, tcp) = bind_all(&config.listen, config.udp_listeners.max(1))?;
        let udp_addrs = udp
            .iter()
            .map(std::net::UdpSocket::local_addr)
            .collect::<Result<Vec<_>, _>>()?;
        let tcp_addr = tcp[0].local_addr()?;
        let families = relay_families(&config);
        let (min_port, max_port) = config.relay_ports;
        let policy = config.policy.clone().with_relay_ports(min_port..=max_port);
        let gate = Arc::new(Gate::new(GateConfig {
            realm: config.realm.clone(),
            credentials: config.credentials.clone(),
            policy: policy.clone(),
            user_quota: config.user_quota,
            total_quota: config.total_quota,
            relay_ipv4: families.0.is_some(),
            relay_ipv6: families.1.is_some(),
        }));
        let plane = Arc::new(DataPlane::new(
            [families.0, families.1]
                .into_iter()
                .flatten()
                .map(|f| f.public)
                .collect(),
            policy,
        ));
        let shutdown = CancellationToken::new();

        let udp_listeners = udp.len();
        let mut workers = Vec::with_capacity(udp_listeners + 2);
        for (index, socket) in udp.into_iter().enumerate() {
            let (config, gate, plane) = (config.clone(), gate.clone(), plane.clone());
            let coalesce = Coalesce::new(config.udp_coalesce);
            let started =
                Worker::spawn(format!("turn-udp-{index}"), coalesce, move || async move {
                    let socket = Arc::new(UdpSocket::from_std(socket)?);
                    // Nonces are per crate server: a client's datagrams always reach
                    // the same listener.
                    let conn = GatedConn::new(
                        ClientPath::Udp(socket),
                        gate.clone(),
                        Arc::new(NonceCache::default()),
                        plane.clone(),
                    )?;
                    let (server, released) =
                        start_server(&config, vec![Arc::new(conn)], &gate, &plane, Transport::Udp)
                            .await?;
                    Ok((server, released, ()))
                })
                .await;
            keep(started, &mut workers)?;
        }
        let tcp = spawn_stream_worker(
            Transport::Tcp,
            tcp_addr,
            tcp,
            &config,
            &gate,
            &plane,
            &shutdown,
        );
        let tcp_transport = keep(tcp.await, &mut workers)?;
        let tls = spawn_stream_worker(
            Transport::Tls,
            tcp_addr,
            Vec::new(),
            &config,
            &gate,
            &plane,
            &shutdown,
        );
        let tls_transport = keep(tls.await, &mut workers)?;

        let mut listening = udp_addrs;
        listening.dedup();
        tracing::info!(
            listen = ?listening,
            public_ip = %config.public_ip,
            public_ip6 = ?config.public_ip6,
            relay_ports = format!("{}-{}", config.relay_ports.0, config.relay_ports.1),
            udp_sockets = udp_listeners,
            "TURN/STUN relay listening"
        );
        Ok(Self {
            workers,
            udp_addrs: listening,
            tcp_addr,
            public_ip: config.public_ip,
            public_ip6: config.public_ip6,
            gate,
            tcp_transport,
            tls_transport,
            shutdown,
        })
    }

    /// The first listening address (UDP; TCP listens on the same).
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addrs[0]
    }

    /// Every listening address, one per `TURN_LISTEN` entry (UDP and TCP).
    pub fn listen_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The address advertised to clients.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// The IPv6 address advertised for IPv6 relayed addresses, if any.
    pub fn public_ip6(&self) -> Option<Ipv6Addr> {
        self.public_ip6
    }

    /// Allocations alive now, both transports.
    pub fn allocation_count(&self) -> usize {
        self.gate.allocation_count()
    }

    /// TCP and TLS client connections open now.
    pub fn tcp_connection_count(&self) -> usize {
        self.tcp_transport.connection_count() + self.tls_transport.connection_count()
    }

    /// TLS client connections open now.
    pub fn tls_connection_count(&self) -> usize {
        self.tls_transport.connection_count()
    }

    /// Where TURN-over-TLS connections, decrypted by the caller, are handed in
    /// ([`TcpTransport::adopt`]): same gate, quotas and peer filter as UDP and TCP.
    pub fn tls_intake(&self) -> Arc<TcpTransport> {
        self.tls_transport.clone()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Closes every allocation and stops listening.
    pub async fn close(&self) {
        for worker in &self.workers {
            worker.stop.cancel();
        }
        for worker in &self.workers {
            if let Some(done) = worker.done.lock().await.take() {
                let _ = done.await;
            }
        }
        self.shutdown.cancel();
        tracing::info!("TURN relay stopped");
    }
}

/// A listener's thread: a single-threaded runtime running the crate's server
/// for that listener (a UDP socket, or the TCP listener with its connections),
/// the gate in front of it, and every relay socket its allocations open — so a
/// datagram is read, relayed and sent on one thread without waking another (on a
/// multi-threaded runtime each wake-up of the relay also woke a second worker:
/// twice the CPU per packet, measured). The kernel spreads UDP clients over the
/// listeners (`SO_REUSEPORT`), so relaying grows with cores, as coturn's threads do.
struct Worker {
    stop: CancellationToken,
    done: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

/// What a worker's start-up returns: its crate server, the task that hands
/// closed allocations to the gate, and anything else to pass back.
type Started<T> = (Server, tokio::task::JoinHandle<()>, T);

impl Worker {
    /// Starts a thread named `name` that runs `start` (on its own runtime) and
    /// then its server until stopped; returns once `start` has finished. The
    /// runtime flushes the thread's outbox, and perhaps sleeps (`coalesce`),
    /// each time before it parks.
    async fn spawn<T, F, Fut>(
        name: String,
        coalesce: Option<Coalesce>,
        start: F,
    ) -> anyhow::Result<(Self, T)>
    where
        T: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Started<T>>>,
    {
        let stop = CancellationToken::new();
        let (ready_tx, ready_rx) = oneshot::channel::<anyhow::Result<T>>();
        let (done_tx, done_rx) = oneshot::channel();
        let token = stop.clone();
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                crate::batch::enable_on_this_thread(coalesce);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(crate::batch::before_park)
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let (server, released) = match start().await {
                        Ok((server, released, value)) => {
                            let _ = ready_tx.send(Ok(value));
                            (server, released)
                        }
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return;
                        }
                    };
                    token.cancelled().await;
                    if let Err(err) = server.close().await {
                        tracing::warn!(error = %err, "closing a TURN server");
                    }
                    drop(server);
                    // Let the closed allocations reach the gate and data plane.
                    let _ = tokio::time::timeout(Duration::from_secs(2), released).await;
                });
                drop(runtime);
                let _ = done_tx.send(());
            })
            .context("starting a TURN thread")?;
        let value = ready_rx
            .await
            .context("the TURN thread stopped while starting")??;
        Ok((
            Self {
                stop,
                done: tokio::sync::Mutex::new(Some(done_rx)),
            },
            value,
        ))
    }
}

/// Adds a worker that started to `workers`; when it did not, stops the ones
/// already running and returns the error.
fn keep<T>(started: anyhow::Result<(Worker, T)>, workers: &mut Vec<Worker>) -> anyhow::Result<T> {
    match started {
        Ok((worker, value)) => {
            workers.push(worker);
            Ok(value)
        }
        Err(err) => {
            workers.iter().for_each(|w| w.stop.cancel());
            Err(err)
        }
    }
}

/// Starts the thread for stream connections of `kind` (seen by the crate at
/// `local`): TCP accepts on the relay's `listeners`; TLS has none, its
/// connections are adopted from whoever decrypted them.
async fn spawn_stream_worker(
    kind: Transport,
    local: SocketAddr,
    listeners: Vec<std::net::TcpListener>,
    config: &TurnConfig,
    gate: &Arc<Gate>,
    plane: &Arc<DataPlane>,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Worker, Arc<TcpTransport>)> {
    let (config, gate, plane, shutdown) = (
        config.clone(),
        gate.clone(),
        plane.clone(),
        shutdown.clone(),
    );
    let name = match kind {
        Transport::Tls => "turn-tls",
        _ => "turn-tcp",
    };
    // Stream connections are not coalesced: measured, it saved no CPU there
    // (each connection still costs a read and a write per frame).
    Worker::spawn(name.into(), None, move || async move {
        let listeners = listeners
            .into_iter()
            .map(TcpListener::from_std)
            .collect::<Result<Vec<_>, _>>()?;
        let tuple = move |client: SocketAddr| FiveTuple {
            transport: kind,
            client,
            server: local,
        };
        let nonces = Arc::new(NonceCache::default());
        let on_close = {
            let gate = gate.clone();
            let nonces = nonces.clone();
            Arc::new(move |client: SocketAddr| gate.closing_refresh(&tuple(client), &nonces))
        };
        // Each connection relays its own data frames.
        let on_data = {
            let plane = plane.clone();
            Arc::new(move |client: SocketAddr, frame: &[u8]| {
                is_relayed_data(frame).then(|| {
                    plane
                        .relay_client_frame(&tuple(client), frame)
                        .map(|blocked| Box::pin(blocked.finish()) as Unfinished)
                })
            })
        };
        let transport = TcpTransport::start(
            kind,
            local,
            listeners,
            config.max_tcp_connections,
            on_data,
            on_close,
            shutdown,
        );
        let conn = GatedConn::new(
            ClientPath::Tcp(transport.clone()),
            gate.clone(),
            nonces,
            plane.clone(),
        )?;
        let (server, released) =
            start_server(&config, vec![Arc::new(conn)], &gate, &plane, kind).await?;
        Ok((server, released, transport))
    })
    .await
}

/// Starts a crate server on `conns`; also returns the task that hands its closed
/// allocations to the gate and the data plane (it ends with the server).
async fn start_server(
    config: &TurnConfig,
    conns: Vec<Arc<GatedConn>>,
    gate: &Arc<Gate>,
    plane: &Arc<DataPlane>,
    transport: Transport,
) -> anyhow::Result<(Server, tokio::task::JoinHandle<()>)> {
    let (closed_tx, mut closed_rx) = mpsc::channel::<AllocationInfo>(1024);
    let families = relay_families(config);
    let conn_configs = conns
        .into_iter()
        .map(|conn| ConnConfig {
            conn,
            relay_addr_generator: Box::new(RelayPorts {
                plane: plane.clone(),
                ipv4: families.0,
                ipv6: families.1,
                min_port: config.relay_ports.0,
                max_port: config.relay_ports.1,
            }) as Box<dyn RelayAddressGenerator + Send + Sync>,
        })
        .collect();
    let server = Server::new(ServerConfig {
        conn_configs,
        realm: config.realm.clone(),
        auth_handler: Arc::new(RestKeys {
            credentials: config.credentials.clone(),
        }),
        channel_bind_timeout: Duration::ZERO,
        alloc_close_notify: Some(closed_tx),
    })
    .await
    .context("starting the TURN server")?;
    let gate = gate.clone();
    let plane = plane.clone();
    let released = tokio::spawn(async move {
        while let Some(info) = closed_rx.recv().await {
            let tuple = FiveTuple {
                transport,
                client: info.five_tuple.src_addr,
                server: info.five_tuple.dst_addr,
            };
            gate.release(&tuple);
            plane.release(&tuple);
        }
    });
    Ok((server, released))
}

/// Relayed-address families this relay can serve: IPv4 when `public_ip` is
/// IPv4, IPv6 when it is IPv6 or `public_ip6` is set. Relay sockets bind to the
/// first listening address of their family (or its unspecified address).
fn relay_families(config: &TurnConfig) -> (Option<RelayFamily>, Option<RelayFamily>) {
    let bind = |v6: bool| {
        config
            .listen
            .iter()
            .map(SocketAddr::ip)
            .find(|ip| ip.is_ipv6() == v6)
            .unwrap_or(if v6 {
                Ipv6Addr::UNSPECIFIED.into()
            } else {
                Ipv4Addr::UNSPECIFIED.into()
            })
    };
    let public6 = match config.public_ip {
        IpAddr::V6(v6) => Some(v6),
        IpAddr::V4(_) => config.public_ip6,
    };
    let ipv4 = config.public_ip.is_ipv4().then(|| RelayFamily {
        bind: bind(false),
        public: config.public_ip,
    });
    let ipv6 = public6.map(|public| RelayFamily {
        bind: bind(true),
        public: public.into(),
    });
    (ipv4, ipv6)
}

/// Binds UDP (`udp_listeners` sockets each) and TCP on every address, all on one
/// port; with port 0 first, retries until the port the first UDP socket got is
/// free for everything else too.
fn bind_all(
    listen: &[SocketAddr],
    udp_listeners: usize,
) -> anyhow::Result<(Vec<StdUdpSocket>, Vec<std::net::TcpListener>)> {
    let Some(first) = listen.first() else {
        anyhow::bail!("TURN_LISTEN names no address");
    };
    for _ in 0..16 {
        let primary = bind_udp(*first, udp_listeners > 1)
            .with_context(|| format!("cannot bind TURN UDP {first} (TURN_LISTEN)"))?;
        let port = primary.local_addr()?.port();
        match bind_rest(listen, port, primary, udp_listeners) {
            Ok(bound) => return Ok(bound),
            Err(err) if first.port() == 0 && err.kind() == std::io::ErrorKind::AddrInUse => {
                continue
            }
            Err(err) => return Err(err).context("cannot bind TURN_LISTEN"),
        }
    }
    anyhow::bail!("no port free for TURN UDP and TCP on {listen:?}")
}

/// With the first UDP socket bound on `port`: the rest of its UDP sockets and
/// TCP, then both on every other address (those with port 0 take `port` too).
fn bind_rest(
    listen: &[SocketAddr],
    port: u16,
    primary: StdUdpSocket,
    udp_listeners: usize,
) -> std::io::Result<(Vec<StdUdpSocket>, Vec<std::net::TcpListener>)> {
    let reuse = udp_listeners > 1;
    let mut udp = vec![primary];
    let mut tcp = Vec::with_capacity(listen.len());
    for (index, addr) in listen.iter().enumerate() {
        let addr = match addr.port() {
            0 => SocketAddr::new(addr.ip(), port),
            _ => *addr,
        };
        tcp.push(bind_tcp(addr)?);
        // The same port again with SO_REUSEPORT: the kernel spreads clients over
        // the sockets by their address (a client always lands on the same one),
        // and each socket has a read loop of its own.
        let more = if index == 0 { 1 } else { 0 };
        for _ in more..udp_listeners {
            udp.push(bind_udp(addr, reuse)?);
        }
    }
    Ok((udp, tcp))
}

fn bind_tcp(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<StdUdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The host's primary non-loopback address: the source address the kernel
/// would use for an outside destination (a UDP `connect` sends nothing).
pub fn detect_public_ip() -> Option<IpAddr> {
    let socket = StdUdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// The host's global IPv6 address, if it has one: the source address the kernel
/// would use for an outside IPv6 destination (nothing is sent). Unique-local,
/// link-local and documentation addresses do not count.
pub fn detect_public_ip6() -> Option<Ipv6Addr> {
    let socket = StdUdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)).ok()?;
    socket
        .connect((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 9))
        .ok()?;
    match socket.local_addr().ok()?.ip() {
        // Global unicast is 2000::/3; 2001:db8::/32 is documentation.
        IpAddr::V6(ip)
            if (ip.segments()[0] & 0xe000) == 0x2000
                && !(ip.segments()[0] == 0x2001 && ip.segments()[1] == 0xdb8) =>
        {
            Some(ip)
        }
        _ => None,
    }
}

/// Where to send a health-check Binding request: the listener itself, or
/// loopback when it listens on every interface.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// `/readyz` for the relay: it answers a STUN Binding request on UDP.
#[async_trait]
impl HealthCheck for TurnRelay {
    fn name(&self) -> &'static str {
        "turn"
    }

    async fn check(&self) -> Result<(), DomainError> {
        let target = probe_target(self.udp_addr());
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(DomainError::infrastructure)?;
        let mut request = Message::new();
        request
            .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
            .map_err(|e| DomainError::infrastructure(e.to_string()))?;
        let mut buf = [0u8; 1500];
        for _ in 0..3 {
            socket
                .send_to(&request.raw, target)
                .await
                .map_err(DomainError::infrastructure)?;
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
            {
                let mut response = Message::new();
                if response.unmarshal_binary(&buf[..n]).is_ok()
                    && response.typ == BINDING_SUCCESS
                    && response.transaction_id == request.transaction_id
                {
                    return Ok(());
                }
            }
        }
        Err(DomainError::infrastructure(
            "the TURN relay does not answer STUN Binding requests",
        ))
    }
}
