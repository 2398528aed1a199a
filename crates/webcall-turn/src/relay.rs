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

use crate::credentials::{parse_rest_username, RestCredentials};
use crate::dataplane::{ClientPath, DataPlane, RelayPorts};
use crate::gate::{FiveTuple, Gate, GateConfig, GatedConn, NonceCache, Transport};
use crate::policy::PeerPolicy;
use crate::tcp::TcpTransport;
use crate::wire::is_relayed_data;

/// Everything the relay needs to start.
#[derive(Clone)]
pub struct TurnConfig {
    /// Where to listen for UDP and TCP (`TURN_LISTEN`). Port 0 picks a free port,
    /// the same for both transports.
    pub listen: SocketAddr,
    /// The address advertised in XOR-RELAYED-ADDRESS (`TURN_PUBLIC_IP`).
    pub public_ip: IpAddr,
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
}

/// The running relay: a crate server per UDP listener and one for TCP, each on
/// a thread of its own; all behind the gate, relaying through one data plane.
pub struct TurnRelay {
    workers: Vec<Worker>,
    udp_addr: SocketAddr,
    tcp_addr: SocketAddr,
    public_ip: IpAddr,
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
    /// Binds UDP and TCP at `config.listen` and starts relaying.
    pub async fn start(config: TurnConfig) -> anyhow::Result<Self> {
        let (udp, tcp) = bind_pair(config.listen, config.udp_listeners.max(1))?;
        let udp_addr = udp[0].local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let gate = Arc::new(Gate::new(GateConfig {
            realm: config.realm.clone(),
            credentials: config.credentials.clone(),
            policy: config.policy.clone(),
            user_quota: config.user_quota,
            total_quota: config.total_quota,
        }));
        let plane = Arc::new(DataPlane::new(config.public_ip));
        let shutdown = CancellationToken::new();

        let udp_listeners = udp.len();
        let mut workers = Vec::with_capacity(udp_listeners + 1);
        let stop_all = |workers: &[Worker]| workers.iter().for_each(|w| w.stop.cancel());
        for (index, socket) in udp.into_iter().enumerate() {
            let (config, gate, plane) = (config.clone(), gate.clone(), plane.clone());
            let started = Worker::spawn(format!("turn-udp-{index}"), move || async move {
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
            match started {
                Ok((worker, ())) => workers.push(worker),
                Err(err) => {
                    stop_all(&workers);
                    return Err(err);
                }
            }
        }

        let mut streams = Vec::with_capacity(2);
        for (kind, listener) in [(Transport::Tcp, Some(tcp)), (Transport::Tls, None)] {
            match spawn_stream_worker(kind, tcp_addr, listener, &config, &gate, &plane, &shutdown)
                .await
            {
                Ok((worker, transport)) => {
                    workers.push(worker);
                    streams.push(transport);
                }
                Err(err) => {
                    stop_all(&workers);
                    return Err(err);
                }
            }
        }
        let tls_transport = streams.pop().expect("two stream transports");
        let tcp_transport = streams.pop().expect("two stream transports");

        tracing::info!(
            udp = %udp_addr,
            tcp = %tcp_addr,
            public_ip = %config.public_ip,
            relay_ports = format!("{}-{}", config.relay_ports.0, config.relay_ports.1),
            udp_listeners,
            "TURN/STUN relay listening"
        );
        Ok(Self {
            workers,
            udp_addr,
            tcp_addr,
            public_ip: config.public_ip,
            gate,
            tcp_transport,
            tls_transport,
            shutdown,
        })
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// The address advertised to clients.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
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
    /// then its server until stopped; returns once `start` has finished.
    async fn spawn<T, F, Fut>(name: String, start: F) -> anyhow::Result<(Self, T)>
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
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
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

/// Starts the thread for stream connections of `kind` (seen by the crate at
/// `local`): TCP accepts on the relay's `listener`; TLS has none, its
/// connections are adopted from whoever decrypted them.
async fn spawn_stream_worker(
    kind: Transport,
    local: SocketAddr,
    listener: Option<std::net::TcpListener>,
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
    Worker::spawn(name.into(), move || async move {
        let listener = listener.map(TcpListener::from_std).transpose()?;
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
                is_relayed_data(frame).then(|| plane.relay_client_frame(&tuple(client), frame))
            })
        };
        let transport = TcpTransport::start(
            kind,
            local,
            listener,
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
    let conn_configs = conns
        .into_iter()
        .map(|conn| ConnConfig {
            conn,
            relay_addr_generator: Box::new(RelayPorts {
                plane: plane.clone(),
                public_ip: config.public_ip,
                bind_ip: config.listen.ip(),
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

/// Binds UDP and TCP on the same address and port; with port 0, retries until
/// the port the UDP socket got is also free for TCP.
fn bind_pair(
    listen: SocketAddr,
    udp_listeners: usize,
) -> anyhow::Result<(Vec<StdUdpSocket>, std::net::TcpListener)> {
    let reuse = udp_listeners > 1;
    for _ in 0..16 {
        let first = bind_udp(listen, reuse)
            .with_context(|| format!("cannot bind TURN UDP {listen} (TURN_LISTEN)"))?;
        let addr = first.local_addr()?;
        match std::net::TcpListener::bind(addr) {
            Ok(tcp) => {
                tcp.set_nonblocking(true)?;
                let mut udp = vec![first];
                // The same port again with SO_REUSEPORT: the kernel spreads clients
                // over the sockets by their address (a client always lands on the
                // same one), and each socket has a read loop of its own.
                for _ in 1..udp_listeners {
                    let more = bind_udp(addr, true)
                        .with_context(|| format!("cannot add a TURN UDP listener on {addr}"))?;
                    udp.push(more);
                }
                return Ok((udp, tcp));
            }
            Err(_) if listen.port() == 0 => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("cannot bind TURN TCP {addr} (TURN_LISTEN)"))
            }
        }
    }
    anyhow::bail!("no port free for both TURN UDP and TCP on {}", listen.ip())
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<StdUdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
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
        let target = probe_target(self.udp_addr);
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
