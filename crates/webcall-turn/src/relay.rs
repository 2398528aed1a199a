//! The relay itself: [`TurnConfig`] in, [`TurnRelay`] out. [`TurnRelay::start`]
//! binds the listeners ([`crate::bind`]), builds the one gate and the one data
//! plane they share, and starts a thread ([`crate::worker`]) per UDP listener
//! and one each for TCP and TLS, each running a crate server on its
//! [`GatedConn`] with relay sockets from [`RelayPorts`]. Also here: the key
//! source the crate signs its responses with, the task that tells the gate
//! and the data plane when the crate closes an allocation, and the one that
//! samples every allocation's traffic once a second (for its rate).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turn::allocation::AllocationInfo;
use turn::auth::AuthHandler;
use turn::relay::RelayAddressGenerator;
use turn::server::config::{ConnConfig, ServerConfig};
use turn::server::Server;

use crate::batch::Coalesce;
use crate::bind::bind_all;
use crate::credentials::{parse_rest_username, RestCredentials};
use crate::dataplane::{ClientPath, DataPlane};
use crate::gate::{Gate, GateConfig};
use crate::listener::GatedConn;
use crate::nonces::NonceCache;
use crate::policy::PeerPolicy;
use crate::relay_sockets::{RelayFamily, RelayPorts};
use crate::tcp::{TcpTransport, Unfinished};
use crate::traffic::SAMPLE_EVERY;
use crate::tuple::{FiveTuple, Transport};
use crate::wire::is_relayed_data;
use crate::worker::{keep, Worker};

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
    /// (`TURN_UDP_COALESCE_US`); zero: never. See the crate's `batch` module.
    pub udp_coalesce: Duration,
}

/// Defaults of what `TURN_*` variables configure, owned here so that the
/// binary's configuration holds no second copy.
impl TurnConfig {
    /// The STUN/TURN port (RFC 8489), UDP and TCP, on every listening address.
    pub const DEFAULT_PORT: u16 = 3478;
    /// Relay ports, inclusive: the IANA dynamic range.
    pub const DEFAULT_RELAY_PORTS: (u16, u16) = (49152, 65535);
    pub const DEFAULT_REALM: &'static str = "webcall";
    /// Allocations one user may hold at once.
    pub const DEFAULT_USER_QUOTA: usize = 10;
    /// Allocations the relay holds at once, in all.
    pub const DEFAULT_TOTAL_QUOTA: usize = 1000;
    /// TURN client connections open over TCP and TLS, at most.
    pub const DEFAULT_MAX_TCP_CONNECTIONS: usize = 1024;
    /// How long a busy UDP relay thread sleeps before parking.
    pub const DEFAULT_UDP_COALESCE: Duration = Duration::from_micros(500);

    /// UDP listeners when none is configured: one per core, at most 16.
    pub fn default_udp_listeners() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(16)
    }
}

/// The running relay: a crate server per UDP listener, one for TCP and one for TLS,
/// each on a thread of its own; all behind the gate, relaying through one data plane.
pub struct TurnRelay {
    workers: Vec<Worker>,
    udp_addrs: Vec<SocketAddr>,
    tcp_addr: SocketAddr,
    public_ip: IpAddr,
    public_ip6: Option<Ipv6Addr>,
    gate: Arc<Gate>,
    plane: Arc<DataPlane>,
    /// The REST credentials the relay accepts, for minting (`ice_servers`).
    credentials: Arc<RestCredentials>,
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

        tokio::spawn(sample_traffic(gate.clone(), shutdown.clone()));
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
            plane,
            credentials: Arc::new(config.credentials),
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
    pub(crate) fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// The IPv6 address advertised for IPv6 relayed addresses, if any.
    pub(crate) fn public_ip6(&self) -> Option<Ipv6Addr> {
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

    /// Mints the credentials this relay accepts; rotating their key
    /// ([`webcall_domain::ports::RotatingKey`]) rotates the relay's.
    pub fn credentials(&self) -> Arc<RestCredentials> {
        self.credentials.clone()
    }

    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    pub(crate) fn plane(&self) -> &DataPlane {
        &self.plane
    }

    /// Closes every allocation and stops listening.
    pub async fn close(&self) {
        for worker in &self.workers {
            worker.stop();
        }
        for worker in &self.workers {
            worker.stopped().await;
        }
        self.shutdown.cancel();
        tracing::info!("TURN relay stopped");
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

/// Samples every allocation's traffic once a second (for its rate) until `shutdown`.
async fn sample_traffic(gate: Arc<Gate>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = shutdown.cancelled() => return,
        }
        gate.allocations().sample(std::time::Instant::now());
    }
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
