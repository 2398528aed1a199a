//! The relay checks: a STUN Binding, a TURN round trip over UDP (two
//! allocations, a packet from one relayed address to the other), and an
//! Allocate over TCP and over TLS (the control connection browsers use with
//! `turn:…?transport=tcp` and `turns:`), signed with the key generation a
//! running server uses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use stun::message::{Getter, Message, Setter};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webcall_domain::model::UserId;
use webcall_domain::operations::KeyKind;
use webcall_domain::ports::{OperatorSettings, RotatingKey, TurnCredentialMinter};
use webcall_turn::RestCredentials;
use webrtc_util::Conn;

/// Signs as a running server does after an admin rotated the TURN key (the
/// generation the database at `url` holds; generation 0 when there is none).
pub(super) async fn adopt_stored_key(url: &str, credentials: &RestCredentials) {
    let Ok(store) = webcall_db::SqlStore::connect(url).await else {
        return;
    };
    if let Ok(generation) = store.key_generation(KeyKind::Turn).await {
        credentials.adopt(generation);
    }
    store.close().await;
}

/// Why a relay check did not pass.
pub(super) enum Refusal {
    /// The relay answered 401: it signs credentials with another `TURN_SECRET`.
    Unauthorized,
    /// Anything else: what happened and what to do.
    Failed { text: String, fix: String },
}

fn failed(text: impl std::fmt::Display, fix: impl std::fmt::Display) -> Refusal {
    Refusal::Failed {
        text: text.to_string(),
        fix: fix.to_string(),
    }
}

/// A client TLS configuration trusting what the system trusts (`SSL_CERT_FILE` too).
pub(super) fn tls_client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

pub(super) async fn stun_binding(target: SocketAddr) -> Result<String, Refusal> {
    let socket = UdpSocket::bind("0.0.0.0:0")
        .await
        .map_err(|e| failed(e, "this host cannot open a UDP socket"))?;
    let client = turn_client(socket, target, String::new(), String::new()).await?;
    let mapped = tokio::time::timeout(
        Duration::from_secs(5),
        client.send_binding_request_to(&target.to_string()),
    )
    .await
    .map_err(|_| {
        failed(
            format!("no Binding answer from {target} in 5 s"),
            "is UDP to the TURN port blocked by a firewall, or does something else hold the port?",
        )
    })?
    .map_err(|e| failed(e, "is it a STUN server on that port?"))?;
    let _ = client.close().await;
    Ok(format!("Binding answered by {target}: you are {mapped}"))
}

async fn turn_client(
    socket: UdpSocket,
    target: SocketAddr,
    username: String,
    password: String,
) -> Result<Client, Refusal> {
    let client = Client::new(ClientConfig {
        stun_serv_addr: target.to_string(),
        turn_serv_addr: target.to_string(),
        username,
        password,
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(socket),
        vnet: None,
    })
    .await
    .map_err(|e| failed(e, "a TURN client could not start here"))?;
    client
        .listen()
        .await
        .map_err(|e| failed(e, "a TURN client could not start here"))?;
    Ok(client)
}

/// Two allocations over UDP; one sends to the other's relayed address (the
/// relay's own public address, always allowed) and the other must receive it.
pub(super) async fn udp_round_trip(
    target: SocketAddr,
    credentials: &RestCredentials,
) -> Result<String, Refusal> {
    let minted = credentials.mint(UserId::new_random(), chrono::Utc::now());
    let mut relays = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let socket = UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(|e| failed(e, "this host cannot open a UDP socket"))?;
        let client = turn_client(
            socket,
            target,
            minted.username.clone(),
            minted.credential.clone(),
        )
        .await?;
        let relay = tokio::time::timeout(Duration::from_secs(10), client.allocate())
            .await
            .map_err(|_| {
                failed(
                    "Allocate over UDP timed out",
                    "is UDP to the TURN port blocked?",
                )
            })?
            .map_err(|e| {
                if e.to_string().contains("401") {
                    Refusal::Unauthorized
                } else {
                    failed(
                        format!("Allocate over UDP refused: {e}"),
                        "see the server's log for why",
                    )
                }
            })?;
        relays.push(relay);
        clients.push(client);
    }
    let local = |i: usize| {
        relays[i]
            .local_addr()
            .map_err(|e| failed(e, "the relay gave no relayed address"))
    };
    let (from, to) = (local(0)?, local(1)?);
    let io = |e: webrtc_util::Error| failed(e, "sending through the relay failed");
    let mut buf = [0u8; 64];
    let mut outcome = Err(failed(
        format!("nothing arrived at {to}"),
        "relay-to-relay needs packets to the public address to reach this host (hairpin NAT); check TURN_PUBLIC_IP and that the firewall lets in the relay port range",
    ));
    // Each side needs a permission for the other's address before data flows.
    relays[1].send_to(b"hello", from).await.map_err(io)?;
    for _ in 0..5 {
        relays[0].send_to(b"webcall doctor", to).await.map_err(io)?;
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(1), relays[1].recv_from(&mut buf)).await
        {
            if &buf[..n] == b"webcall doctor" {
                outcome = Ok(format!(
                    "allocate, permission and a round trip relay {from} -> relay {to}"
                ));
                break;
            }
        }
    }
    for relay in &relays {
        let _ = relay.close().await;
    }
    for client in &clients {
        let _ = client.close().await;
    }
    outcome
}

/// A real Allocate on a stream (TCP, or TLS on top of it) as a browser makes
/// one: the challenge, then the request signed with REST credentials. Returns
/// the relayed address.
pub(super) async fn allocate_on_stream(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    credentials: &RestCredentials,
    realm: &str,
) -> Result<String, Refusal> {
    use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
    use stun::message::{MessageType, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE};
    use stun::textattrs::{Nonce, Realm, TextAttribute, Username};

    let udp = || {
        Box::new(turn::proto::reqtrans::RequestedTransport {
            protocol: turn::proto::PROTO_UDP,
        })
    };
    let challenge = exchange(
        stream,
        &[
            Box::new(stun::agent::TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            udp(),
        ],
    )
    .await?;
    let nonce = TextAttribute::get_from_as(&challenge, ATTR_NONCE).map_err(|_| {
        failed(
            "the answer has no nonce: not a TURN server",
            "does TURN_LISTEN name the relay's port?",
        )
    })?;
    // The relay's own realm (another TURN_REALM on a running server).
    let realm = TextAttribute::get_from_as(&challenge, ATTR_REALM)
        .map(|r| r.text)
        .unwrap_or_else(|_| realm.to_owned());
    let minted = credentials.mint(UserId::new_random(), chrono::Utc::now());
    let allocated = exchange(
        stream,
        &[
            Box::new(stun::agent::TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            udp(),
            Box::new(Username::new(ATTR_USERNAME, minted.username.clone())),
            Box::new(Realm::new(ATTR_REALM, realm.clone())),
            Box::new(Nonce::new(ATTR_NONCE, nonce.text)),
            Box::new(stun::integrity::MessageIntegrity::new_long_term_integrity(
                minted.username,
                realm,
                minted.credential,
            )),
        ],
    )
    .await?;
    if allocated.typ.class != CLASS_SUCCESS_RESPONSE {
        let mut code = stun::error_code::ErrorCodeAttribute::default();
        let _ = code.get_from(&allocated);
        if code.code.0 == 401 {
            return Err(Refusal::Unauthorized);
        }
        return Err(failed(
            format!("Allocate refused ({})", code.code.0),
            "see the server's log for why",
        ));
    }
    let mut relayed = turn::proto::relayaddr::RelayedAddress::default();
    relayed
        .get_from(&allocated)
        .map_err(|e| failed(e, "the relay's answer has no relayed address"))?;
    Ok(format!("{}:{}", relayed.ip, relayed.port))
}

/// One STUN request and its answer, framed as on TCP (a STUN message carries its length).
async fn exchange(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    setters: &[Box<dyn Setter>],
) -> Result<Message, Refusal> {
    let broken = |e: &dyn std::fmt::Display| failed(e, "is it the relay on that port?");
    let mut request = Message::new();
    request.build(setters).map_err(|e| broken(&e))?;
    stream
        .write_all(&request.raw)
        .await
        .map_err(|e| broken(&e))?;
    let read = async {
        let mut head = [0u8; 20];
        stream.read_exact(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let mut raw = head.to_vec();
        raw.resize(20 + len, 0);
        stream.read_exact(&mut raw[20..]).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .map_err(|_| {
            failed(
                "no TURN answer in 5 s",
                "is it the relay on that port, and is the port open?",
            )
        })?
        .map_err(|e| broken(&e))?;
    let mut response = Message::new();
    response.unmarshal_binary(&raw).map_err(|e| broken(&e))?;
    Ok(response)
}
