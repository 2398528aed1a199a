//! `webcall doctor`: checks what usually goes wrong before anyone joins a call
//! (configuration, database, ports, the advertised address, STUN and a TURN
//! round trip through its own relay) and prints `ok` or what to fix, per line.

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webcall_domain::model::UserId;
use webcall_domain::ports::{HealthCheck, TurnCredentialMinter};
use webcall_turn::RestCredentials;
use webrtc_util::Conn;

use crate::config::Config;

/// Prints one check's outcome; returns whether it passed.
fn report(name: &str, outcome: Result<String, String>) -> bool {
    let (mark, text, ok) = match outcome {
        Ok(text) => ("ok  ", text, true),
        Err(text) => ("FAIL", text, false),
    };
    println!("{mark}  {name:<14} {text}");
    ok
}

fn fix(what: impl Display, hint: &str) -> String {
    format!("{what} — {hint}")
}

/// Runs every check; `Ok(true)` when all passed.
pub async fn run(config: &Config) -> anyhow::Result<bool> {
    let mut all = true;
    let generated = if config.generated.is_empty() {
        String::new()
    } else {
        format!(
            "; generated for this run: {} (set them in .env)",
            config.generated.join(", ")
        )
    };
    all &= report("config", Ok(format!("APP_ENV={:?}{generated}", config.env)));

    let database = match webcall_db::SqlStore::connect_and_migrate(
        config.storage.database_url.expose_secret(),
    )
    .await
    {
        Ok(store) => {
            let answered = store.check().await;
            store.close().await;
            answered
                .map(|()| {
                    format!(
                        "{} answers, migrations applied",
                        config.storage.database_display()
                    )
                })
                .map_err(|e| fix(e, "the database does not answer queries"))
        }
        Err(err) => Err(fix(
            format!("{err:#}"),
            "check DATABASE_URL and that the server runs",
        )),
    };
    all &= report("database", database);

    let http = SocketAddr::new(config.http.host, config.http.port);
    all &= report(
        "http port",
        std::net::TcpListener::bind(http)
            .map(|_| format!("{http} is free"))
            .map_err(|e| {
                fix(
                    format!("{http}: {e}"),
                    "another process (a running webcall?) holds it; set HOST/PORT",
                )
            }),
    );

    let Some(settings) = &config.turn else {
        report(
            "turn",
            Ok("embedded relay off (TURN_EMBEDDED=false or TURN_URLS set)".into()),
        );
        return Ok(all);
    };
    let public_ip = settings.public_ip.or_else(webcall_turn::detect_public_ip);
    all &= report(
        "public ip",
        match (settings.public_ip, public_ip) {
            (Some(ip), _) => Ok(format!("{ip} (TURN_PUBLIC_IP)")),
            (None, Some(ip)) => Ok(format!(
                "{ip} (detected; behind 1:1 NAT set TURN_PUBLIC_IP to the public address)"
            )),
            (None, None) => Err("no primary address found — set TURN_PUBLIC_IP".into()),
        },
    );
    let secret = config
        .ice
        .turn_secret
        .clone()
        .unwrap_or_else(crate::config::random_secret);
    let credentials = RestCredentials::new(secret, config.ice.turn_credential_ttl);
    let port = settings.listen[0].port();
    // An IPv6 host is bracketed in a URL, as `SocketAddr` writes it.
    let at = std::net::SocketAddr::new(public_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), port);
    println!(
        "      ice servers    stun:{at}, turn:{at}?transport=udp, turn:{at}?transport=tcp (REST credentials, ttl {} s)",
        config.ice.turn_credential_ttl.as_secs()
    );

    // A relay of its own for the self-test, unless one already runs on the port.
    let free = StdUdpSocket::bind(settings.listen[0]).is_ok()
        && std::net::TcpListener::bind(settings.listen[0]).is_ok();
    let temporary = if free {
        match crate::relay::start_on(config, settings, public_ip).await {
            Ok(relay) => Some(relay),
            Err(err) => {
                all &= report(
                    "turn ports",
                    Err(fix(format!("{err:#}"), "TURN_LISTEN / relay ports")),
                );
                return Ok(all);
            }
        }
    } else {
        println!(
            "      turn ports     {} in use: testing the relay that runs there",
            settings.listen[0]
        );
        None
    };
    if let Some(relay) = &temporary {
        all &= report(
            "turn ports",
            Ok(format!("UDP and TCP {:?} bind", relay.listen_addrs())),
        );
    }
    let listening = temporary
        .as_ref()
        .map_or(settings.listen[0], |relay| relay.udp_addr());
    let target = SocketAddr::new(
        if listening.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            listening.ip()
        },
        listening.port(),
    );
    all &= report("stun", stun_binding(target).await);
    all &= report("turn udp", turn_round_trip(target, &credentials).await);
    if let Some(tls) = &config.tls {
        // With no server running, a TLS front of its own in front of the
        // temporary relay, on the ports the server would use.
        let stop = tokio_util::sync::CancellationToken::new();
        let front = match &temporary {
            Some(relay) => {
                crate::tls::serve_turn_tls_for_doctor(config, tls, relay, stop.clone()).await
            }
            None => Ok(()),
        };
        let outcome = match front {
            Ok(()) => match turns_target(config, settings, tls) {
                Ok((host, port)) => {
                    turn_tls_allocate(&host, port, &credentials, &settings.realm).await
                }
                Err(err) => Err(err),
            },
            Err(err) => Err(fix(
                format!("{err:#}"),
                "the HTTPS port (HOST/PORT) or TURN_TLS_LISTEN",
            )),
        };
        all &= report("turn tls", outcome);
        stop.cancel();
    }
    if let Some(relay) = temporary {
        relay.close().await;
    }
    Ok(all)
}

/// Where browsers are sent for TURN over TLS: `PUBLIC_HOST` (or the certificate's
/// name) and the `turns:` port, as `/api/v1/webrtc/ice-servers` says.
fn turns_target(
    config: &Config,
    settings: &crate::config::TurnSettings,
    tls: &crate::config::TlsSettings,
) -> Result<(String, u16), String> {
    let Some(host) = crate::tls::certificate_host(config, tls) else {
        return Err(fix(
            "no DNS name for the certificate",
            "set PUBLIC_HOST: without it browsers are offered no turns: and networks that allow only 443 cannot call",
        ));
    };
    let port = crate::ice::turns_port(
        settings,
        tls.https,
        config.http.port,
        settings.tls_listen.map(|a| a.port()),
    )
    .ok_or_else(|| fix("no turns: port", "set PORT or TURN_TLS_PUBLIC_PORT"))?;
    Ok((host, port))
}

/// A real Allocate over TLS at `host:port`, checking the certificate against the
/// system's trust store (`SSL_CERT_FILE` too) as a browser would.
async fn turn_tls_allocate(
    host: &str,
    port: u16,
    credentials: &RestCredentials,
    realm: &str,
) -> Result<String, String> {
    use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
    use stun::message::{
        Getter, Message, MessageType, Setter, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
        METHOD_ALLOCATE,
    };
    use stun::textattrs::{Nonce, Realm, TextAttribute, Username};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    let tcp = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| {
        fix(
            format!("{host}:{port} does not answer in 5 s"),
            "is the port open, and does PUBLIC_HOST point at this server?",
        )
    })?
    .map_err(|e| {
        fix(
            format!("{host}:{port}: {e}"),
            "is webcall listening there, and does PUBLIC_HOST point at this server?",
        )
    })?;
    let mut tls = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("{host}:{port}: TLS handshake timed out"))?
    .map_err(|e| fix(format!("{host}:{port}: {e}"), "browsers will refuse it too: the certificate must be valid for PUBLIC_HOST and trusted"))?;

    async fn exchange(
        tls: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
        setters: &[Box<dyn Setter>],
    ) -> Result<Message, String> {
        let mut request = Message::new();
        request.build(setters).map_err(|e| e.to_string())?;
        tls.write_all(&request.raw)
            .await
            .map_err(|e| e.to_string())?;
        let read = async {
            let mut head = [0u8; 20];
            tls.read_exact(&mut head).await?;
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            let mut raw = head.to_vec();
            raw.resize(20 + len, 0);
            tls.read_exact(&mut raw[20..]).await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .map_err(|_| "no TURN answer over TLS in 5 s (is it TURN on that port?)".to_string())?
            .map_err(|e| e.to_string())?;
        let mut response = Message::new();
        response.unmarshal_binary(&raw).map_err(|e| e.to_string())?;
        Ok(response)
    }
    let udp = || {
        Box::new(turn::proto::reqtrans::RequestedTransport {
            protocol: turn::proto::PROTO_UDP,
        })
    };
    let challenge = exchange(
        &mut tls,
        &[
            Box::new(stun::agent::TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            udp(),
        ],
    )
    .await?;
    let nonce = TextAttribute::get_from_as(&challenge, ATTR_NONCE)
        .map_err(|_| format!("{host}:{port} answered without a nonce: not a TURN server"))?;
    let minted = credentials.mint(UserId::new_random(), chrono::Utc::now());
    let allocated = exchange(
        &mut tls,
        &[
            Box::new(stun::agent::TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            udp(),
            Box::new(Username::new(ATTR_USERNAME, minted.username.clone())),
            Box::new(Realm::new(ATTR_REALM, realm.to_owned())),
            Box::new(Nonce::new(ATTR_NONCE, nonce.text)),
            Box::new(stun::integrity::MessageIntegrity::new_long_term_integrity(
                minted.username,
                realm.to_owned(),
                minted.credential,
            )),
        ],
    )
    .await?;
    if allocated.typ.class != CLASS_SUCCESS_RESPONSE {
        let mut code = stun::error_code::ErrorCodeAttribute::default();
        let _ = code.get_from(&allocated);
        return Err(fix(
            format!("Allocate over TLS refused ({})", code.code.0),
            "is TURN_SECRET the one the server uses?",
        ));
    }
    let mut relayed = turn::proto::relayaddr::RelayedAddress::default();
    relayed.get_from(&allocated).map_err(|e| e.to_string())?;
    Ok(format!(
        "Allocate over TLS at {host}:{port} (certificate trusted): relayed {}:{}",
        relayed.ip, relayed.port
    ))
}

async fn stun_binding(target: SocketAddr) -> Result<String, String> {
    let socket = UdpSocket::bind("0.0.0.0:0")
        .await
        .map_err(|e| e.to_string())?;
    let client = turn_client(socket, target, String::new(), String::new()).await?;
    let mapped = tokio::time::timeout(
        Duration::from_secs(5),
        client.send_binding_request_to(&target.to_string()),
    )
    .await
    .map_err(|_| fix("no answer in 5 s", "is UDP to the TURN port blocked?"))?
    .map_err(|e| e.to_string())?;
    let _ = client.close().await;
    Ok(format!("Binding answered by {target}: you are {mapped}"))
}

async fn turn_client(
    socket: UdpSocket,
    target: SocketAddr,
    username: String,
    password: String,
) -> Result<Client, String> {
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
    .map_err(|e| e.to_string())?;
    client.listen().await.map_err(|e| e.to_string())?;
    Ok(client)
}

/// Two allocations; one sends to the other's relayed address (the relay's own
/// public address, always allowed) and the other must receive it.
async fn turn_round_trip(
    target: SocketAddr,
    credentials: &RestCredentials,
) -> Result<String, String> {
    let minted = credentials.mint(UserId::new_random(), chrono::Utc::now());
    let mut relays = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..2 {
        let socket = UdpSocket::bind("0.0.0.0:0")
            .await
            .map_err(|e| e.to_string())?;
        let client = turn_client(
            socket,
            target,
            minted.username.clone(),
            minted.credential.clone(),
        )
        .await?;
        let relay = tokio::time::timeout(Duration::from_secs(10), client.allocate())
            .await
            .map_err(|_| "Allocate timed out".to_string())?
            .map_err(|e| {
                fix(
                    e,
                    "Allocate refused: is TURN_SECRET the one the server uses?",
                )
            })?;
        relays.push(relay);
        clients.push(client);
    }
    let to = relays[1].local_addr().map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let mut outcome = Err(fix(
        format!("nothing arrived at {to}"),
        "relay-to-relay needs packets to the public address to reach this host (hairpin NAT); check TURN_PUBLIC_IP and the firewall's relay range",
    ));
    // Each side needs a permission for the other's address before data flows.
    let from = relays[0].local_addr().map_err(|e| e.to_string())?;
    relays[1]
        .send_to(b"hello", from)
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..5 {
        relays[0]
            .send_to(b"webcall doctor", to)
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_secs(1), relays[1].recv_from(&mut buf)).await
        {
            if &buf[..n] == b"webcall doctor" {
                outcome = Ok(format!(
                    "allocate, permission and a round trip relay {} -> relay {to}",
                    relays[0].local_addr().map_err(|e| e.to_string())?
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
