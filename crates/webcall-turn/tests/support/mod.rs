//! Helpers: start a relay on loopback, mint credentials, speak raw STUN.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::ErrorCodeAttribute;
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_ERROR_RESPONSE, CLASS_INDICATION, CLASS_REQUEST,
    CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_CREATE_PERMISSION, METHOD_REFRESH, METHOD_SEND,
};
use stun::textattrs::{Nonce, Realm, TextAttribute, Username};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use turn::proto::data::Data;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;
use turn::proto::PROTO_UDP;
use webcall_turn::{PeerPolicy, RestCredentials, TurnConfig, TurnRelay};

pub const SECRET: &str = "relay-test-secret";
pub const REALM: &str = "webcall";

pub fn credentials() -> RestCredentials {
    RestCredentials::new(SecretString::from(SECRET), Duration::from_secs(3600))
}

/// A relay on loopback; `tweak` adjusts the config.
pub async fn start_relay(tweak: impl FnOnce(&mut TurnConfig)) -> TurnRelay {
    let public_ip: IpAddr = "127.0.0.1".parse().unwrap();
    let mut config = TurnConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        public_ip,
        public_ip6: None,
        relay_ports: (40000, 49999),
        realm: REALM.into(),
        credentials: credentials(),
        policy: PeerPolicy::new(vec![public_ip], true, vec![], vec![]),
        user_quota: 10,
        total_quota: 1000,
        max_tcp_connections: 64,
        udp_listeners: 2,
        udp_coalesce: Duration::from_micros(500),
    };
    tweak(&mut config);
    TurnRelay::start(config).await.unwrap()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `<now + valid_for>:<user>` and its password under `secret`.
pub fn rest_pair(user: &str, valid_for: i64, secret: &str) -> (String, String) {
    let username = format!("{}:{user}", unix_now() as i64 + valid_for);
    let password = RestCredentials::new(SecretString::from(secret), Duration::from_secs(1))
        .password_for(&username);
    (username, password)
}

/// A byte stream a TURN client can speak over: TCP, or TLS on top of it.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// A TURN client speaking raw STUN over UDP or a stream (TCP, TLS), so error
/// codes are visible.
pub enum Wire {
    Udp(UdpSocket, SocketAddr),
    Stream(Box<dyn Duplex>),
}

pub struct Probe {
    pub wire: Wire,
    pub nonce: Option<String>,
}

impl Probe {
    pub async fn udp(server: SocketAddr) -> Self {
        let local = if server.is_ipv6() {
            "[::1]:0"
        } else {
            "127.0.0.1:0"
        };
        let socket = UdpSocket::bind(local).await.unwrap();
        Self {
            wire: Wire::Udp(socket, server),
            nonce: None,
        }
    }

    pub async fn tcp(server: SocketAddr) -> Self {
        Self::stream(TcpStream::connect(server).await.unwrap())
    }

    /// Over an established stream (RFC 8656 framing), e.g. a TLS one.
    pub fn stream(stream: impl Duplex + 'static) -> Self {
        Self {
            wire: Wire::Stream(Box::new(stream)),
            nonce: None,
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        match &mut self.wire {
            Wire::Udp(socket, server) => {
                socket.send_to(bytes, *server).await.unwrap();
            }
            Wire::Stream(stream) => stream.write_all(bytes).await.unwrap(),
        }
    }

    /// The next datagram or TCP frame from the server, whatever it is (STUN or
    /// ChannelData, padding included), within `wait`.
    pub async fn recv_raw(&mut self, wait: Duration) -> Option<Vec<u8>> {
        tokio::time::timeout(wait, async {
            match &mut self.wire {
                Wire::Udp(socket, _) => {
                    let mut buf = vec![0u8; 70_000];
                    let (n, _) = socket.recv_from(&mut buf).await.ok()?;
                    buf.truncate(n);
                    Some(buf)
                }
                Wire::Stream(stream) => {
                    let mut head = [0u8; 4];
                    stream.read_exact(&mut head).await.ok()?;
                    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
                    let total = if head[0] & 0xC0 == 0x40 {
                        4 + ((len + 3) & !3)
                    } else {
                        20 + len
                    };
                    let mut buf = head.to_vec();
                    buf.resize(total, 0);
                    stream.read_exact(&mut buf[4..]).await.ok()?;
                    Some(buf)
                }
            }
        })
        .await
        .ok()?
    }

    /// The next STUN message from the server (2 s at most).
    pub async fn recv(&mut self) -> Option<Message> {
        let bytes = self.recv_raw(Duration::from_secs(2)).await?;
        let mut msg = Message::new();
        msg.unmarshal_binary(&bytes).ok()?;
        Some(msg)
    }

    pub async fn request(&mut self, setters: Vec<Box<dyn Setter>>) -> Message {
        let mut msg = Message::new();
        msg.build(&setters).unwrap();
        self.send_raw(&msg.raw).await;
        let response = self.recv().await.expect("the server answers");
        assert_eq!(response.transaction_id, msg.transaction_id);
        response
    }

    /// An unauthenticated Allocate, remembering the nonce of the 401.
    pub async fn challenge(&mut self) -> Message {
        let response = self
            .request(vec![
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
                Box::new(RequestedTransport {
                    protocol: PROTO_UDP,
                }),
                Box::new(FINGERPRINT),
            ])
            .await;
        self.nonce = TextAttribute::get_from_as(&response, ATTR_NONCE)
            .ok()
            .map(|n| n.text);
        response
    }

    /// `method` signed with (username, password), with `attrs` before the integrity.
    pub async fn signed(
        &mut self,
        method: stun::message::Method,
        attrs: Vec<Box<dyn Setter>>,
        username: &str,
        password: &str,
    ) -> Message {
        if self.nonce.is_none() {
            self.challenge().await;
        }
        let mut setters: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
        ];
        setters.extend(attrs);
        setters.push(Box::new(Username::new(ATTR_USERNAME, username.into())));
        setters.push(Box::new(Realm::new(ATTR_REALM, REALM.into())));
        setters.push(Box::new(Nonce::new(
            ATTR_NONCE,
            self.nonce.clone().unwrap(),
        )));
        setters.push(Box::new(MessageIntegrity::new_long_term_integrity(
            username.into(),
            REALM.into(),
            password.into(),
        )));
        setters.push(Box::new(FINGERPRINT));
        self.request(setters).await
    }

    /// A CreatePermission for `peer`.
    pub async fn permit(&mut self, username: &str, password: &str, peer: SocketAddr) -> Message {
        self.signed(
            METHOD_CREATE_PERMISSION,
            vec![peer_attr(peer)],
            username,
            password,
        )
        .await
    }

    /// A Refresh keeping the allocation for 10 minutes.
    pub async fn refresh(&mut self, username: &str, password: &str) -> Message {
        self.signed(
            METHOD_REFRESH,
            vec![Box::new(turn::proto::lifetime::Lifetime(
                Duration::from_secs(600),
            ))],
            username,
            password,
        )
        .await
    }

    /// Asserts every peer in `denied` (`addr:port` strings) gets 403 on CreatePermission.
    pub async fn assert_refused(&mut self, username: &str, password: &str, denied: &[&str]) {
        for denied in denied {
            let answer = self
                .permit(username, password, denied.parse().unwrap())
                .await;
            assert_eq!(error_code(&answer), Some(403), "{denied}");
        }
    }

    pub async fn allocate(&mut self, username: &str, password: &str) -> Message {
        self.signed(
            METHOD_ALLOCATE,
            vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })],
            username,
            password,
        )
        .await
    }
}

/// The ERROR-CODE of an error response, or `None` for a success.
pub fn error_code(msg: &Message) -> Option<u16> {
    if msg.typ.class != CLASS_ERROR_RESPONSE {
        return None;
    }
    let mut code = ErrorCodeAttribute::default();
    code.get_from(msg)
        .expect("error responses carry ERROR-CODE");
    Some(code.code.0)
}

/// Polls `condition` for up to 5 s.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// XOR-PEER-ADDRESS for `addr`.
pub fn peer_attr(addr: SocketAddr) -> Box<PeerAddress> {
    Box::new(PeerAddress {
        ip: addr.ip(),
        port: addr.port(),
    })
}

/// The XOR-RELAYED-ADDRESS of a successful Allocate.
pub fn relayed(allocate: &Message) -> SocketAddr {
    let mut relayed = RelayedAddress::default();
    relayed.get_from(allocate).expect("XOR-RELAYED-ADDRESS");
    SocketAddr::new(relayed.ip, relayed.port)
}

/// A Send indication of `payload` to `peer`.
pub fn send_indication(peer: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut msg = Message::new();
    msg.build(&[
        Box::new(stun::agent::TransactionId::new()),
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        peer_attr(peer),
        Box::new(Data(payload.to_vec())),
    ])
    .unwrap();
    msg.raw
}

/// Lets `peer` in on the allocation at `relay_addr` and sends one datagram each
/// way: a Send indication out (arriving from `relay_addr`), a Data indication back.
pub async fn round_trip(
    probe: &mut Probe,
    user: &str,
    pass: &str,
    relay_addr: SocketAddr,
    peer: &UdpSocket,
) {
    let peer_addr = peer.local_addr().unwrap();
    let permitted = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer_attr(peer_addr)],
            user,
            pass,
        )
        .await;
    assert_eq!(permitted.typ.class, CLASS_SUCCESS_RESPONSE, "{permitted}");
    probe
        .send_raw(&send_indication(peer_addr, b"to the peer"))
        .await;
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
        .await
        .expect("relayed to the peer")
        .unwrap();
    assert_eq!((&buf[..n], from), (&b"to the peer"[..], relay_addr));
    peer.send_to(b"to the client", relay_addr).await.unwrap();
    let raw = probe
        .recv_raw(Duration::from_secs(2))
        .await
        .expect("a Data indication");
    let mut indication = Message::new();
    indication.unmarshal_binary(&raw).unwrap();
    let mut data = Data::default();
    data.get_from(&indication).unwrap();
    assert_eq!(data.0, b"to the client");
}
