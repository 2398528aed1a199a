//! TURN over TLS on the HTTPS port, one port for everything: the server routes
//! each TLS connection by ALPN or, as browsers send none on `turns:`, by its
//! first bytes; `turns:` is handed out by the certificate's name; TLS clients
//! meet the same credentials, peer filter and quotas; floods and garbage are
//! bounded to the connection that sends them. `TURN_TLS_LISTEN` is a listener of
//! its own for hosts where a reverse proxy owns 443.

mod support;
#[path = "../../webcall-turn/tests/support/mod.rs"]
mod turn_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use stun::message::CLASS_SUCCESS_RESPONSE;
use support::{spawn_app, write_cert, TestApp, PASSWORD, REGISTRATION_SECRET, TURN_SECRET};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::client::TlsStream;
use turn_support::{error_code, relayed, rest_pair, round_trip, Probe};

const NAME: &str = "webcall.test";

/// A server with HTTPS on its HTTP port, a certificate for [`NAME`].
struct Site {
    app: TestApp,
    root: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

async fn spawn_site(extra: &[(&str, &str)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, root) = write_cert(dir.path(), NAME);
    let mut vars = vec![
        ("TLS_CERT_FILE", cert.as_str()),
        ("TLS_KEY_FILE", key.as_str()),
        ("HTTP_REDIRECT_PORT", "off"),
        ("TURN_ALLOW_LOOPBACK_PEERS", "true"),
    ];
    vars.extend_from_slice(extra);
    Site {
        app: spawn_app(&vars).await,
        root,
        _dir: dir,
    }
}

impl Site {
    /// A TLS connection to `addr` (default: the HTTPS port) offering `alpn`.
    async fn connect(&self, alpn: &[&[u8]]) -> TlsStream<TcpStream> {
        connect_tls(self.app.addr, &self.root, alpn).await
    }

    /// One HTTP/1.1 request over TLS (no ALPN, as a plain client might): the
    /// status and the body as JSON (null when it is not JSON).
    async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, body) = self.request_text(method, path, token, body).await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn request_text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut tls = self.connect(&[]).await;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response[9..12].parse().unwrap();
        let (_, body) = response.split_once("\r\n\r\n").unwrap();
        (status, body.to_owned())
    }

    async fn token(&self, name: &str) -> String {
        let (status, _) = self
            .request(
                "POST",
                "/api/v1/auth/register",
                None,
                Some(json!({"email": format!("{name}@example.org"), "username": name, "password": PASSWORD, "secret": REGISTRATION_SECRET})),
            )
            .await;
        assert_eq!(status, 201);
        let (status, body) = self
            .request(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

async fn connect_tls(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    try_connect_tls(addr, root, alpn)
        .await
        .expect("TLS handshake")
}

async fn try_connect_tls(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    tls_over(TcpStream::connect(addr).await?, root, alpn).await
}

/// A TLS client on `tcp` that trusts only `root`, offering `alpn`.
async fn tls_over(
    tcp: TcpStream,
    root: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(NAME).unwrap(), tcp)
        .await
}

/// Allocates over `probe`, lets `peer` in, and sends data both ways through
/// the relay: a Send indication out, a Data indication back.
async fn relay_round_trip(probe: &mut Probe, user: &str, pass: &str, peer: &UdpSocket) {
    let allocated = probe.allocate(user, pass).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");
    round_trip(probe, user, pass, relayed(&allocated), peer).await;
}

#[tokio::test]
async fn turn_over_tls_shares_the_https_port_with_the_web_app() {
    let site = spawn_site(&[]).await;
    let port = site.app.addr.port();

    // The web app on that port: without ALPN (routed by its first bytes) and with.
    let (status, _) = site.request("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let mut h1 = site.connect(&[b"http/1.1"]).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    h1.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    h1.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // turns: is offered by the certificate's DNS name, next to UDP and TCP.
    let token = site.token("ada").await;
    let (status, ice) = site
        .request("GET", "/api/v1/webrtc/ice-servers", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    let turn = &ice["iceServers"][1];
    let turn_port = site.app.turn_port();
    assert_eq!(
        turn["urls"],
        json!([
            format!("turn:127.0.0.1:{turn_port}?transport=udp"),
            format!("turn:127.0.0.1:{turn_port}?transport=tcp"),
            format!("turns:{NAME}:{port}?transport=tcp"),
        ]),
        "{ice}"
    );
    let (user, pass) = (
        turn["username"].as_str().unwrap().to_owned(),
        turn["credential"].as_str().unwrap().to_owned(),
    );

    // TURN on the same port, as a browser does it (no ALPN), and with RFC 7443's.
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut browser_like = Probe::stream(site.connect(&[]).await);
    let challenge = browser_like.challenge().await;
    assert_eq!(
        error_code(&challenge),
        Some(401),
        "credentials are asked for"
    );
    relay_round_trip(&mut browser_like, &user, &pass, &peer).await;
    let with_alpn = site.connect(&[b"stun.turn"]).await;
    assert_eq!(
        with_alpn.get_ref().1.alpn_protocol(),
        Some(&b"stun.turn"[..])
    );
    let mut with_alpn = Probe::stream(with_alpn);
    relay_round_trip(&mut with_alpn, &user, &pass, &peer).await;
    assert_eq!(site.app.relay_allocations(), 2);

    // The HTTP side still answers while both TURN connections are open.
    let (status, _) = site.request("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);

    // Closing a TURN/TLS connection frees its allocation.
    drop(with_alpn);
    assert!(
        turn_support::eventually(|| site.app.relay_allocations() == 1).await,
        "the closed connection's allocation is freed"
    );
    site.app.stop().await;
}

#[tokio::test]
async fn turn_over_tls_meets_the_same_credentials_peer_filter_and_quotas() {
    let site = spawn_site(&[("TURN_USER_QUOTA", "1")]).await;
    let (user, pass) = rest_pair("mallory", 600, TURN_SECRET);

    let mut wrong = Probe::stream(site.connect(&[]).await);
    let refused = wrong.allocate(&user, "not-the-password").await;
    assert_eq!(error_code(&refused), Some(401));

    let mut first = Probe::stream(site.connect(&[]).await);
    let allocated = first.allocate(&user, &pass).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE);
    first
        .assert_refused(
            &user,
            &pass,
            &[
                "10.0.0.1:9",
                "[fd00::1]:9",
                "[::ffff:192.168.1.1]:9",
                "169.254.169.254:80",
            ],
        )
        .await;
    // The per-user quota counts TLS allocations like any other.
    let mut second = Probe::stream(site.connect(&[]).await);
    let over = second.allocate(&user, &pass).await;
    assert_eq!(error_code(&over), Some(486));
    let mut udp = Probe::udp(SocketAddr::new([127, 0, 0, 1].into(), site.app.turn_port())).await;
    assert_eq!(error_code(&udp.allocate(&user, &pass).await), Some(486));
    site.app.stop().await;
}

#[tokio::test]
async fn garbage_and_silence_close_only_the_connection_that_sends_them() {
    let site = spawn_site(&[]).await;
    let (user, pass) = rest_pair("ada", 600, TURN_SECRET);
    let mut call = Probe::stream(site.connect(&[]).await);
    let allocated = call.allocate(&user, &pass).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE);

    // A STUN Binding request (answered), then bytes that are neither STUN nor
    // ChannelData: the connection ends.
    let mut garbage = site.connect(&[]).await;
    garbage
        .write_all(&[
            0, 1, 0, 0, 0x21, 0x12, 0xA4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ])
        .await
        .unwrap();
    garbage.write_all(&[0xFF; 64]).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the garbage connection is closed");
    let mut buf = [0u8; 64];

    // Bytes that are not STUN go to the web app, which answers 400 and closes.
    let mut not_http = site.connect(&[]).await;
    not_http.write_all(b"hello?\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    let _ = not_http.read_to_string(&mut answer).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // A client that completes the handshake and then says nothing is closed.
    let mut silent = site.connect(&[]).await;
    let closed = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the silent connection is closed: {closed:?}"
    );

    // The call's own connection went on through all of it.
    let refreshed = call.refresh(&user, &pass).await;
    assert_eq!(refreshed.typ.class, CLASS_SUCCESS_RESPONSE);
    site.app.stop().await;
}

#[tokio::test]
async fn a_handshake_flood_from_one_address_is_cut_off_and_calls_go_on() {
    let site = spawn_site(&[]).await;
    let (user, pass) = rest_pair("ada", 600, TURN_SECRET);
    let mut call = Probe::stream(site.connect(&[]).await);
    assert_eq!(
        call.allocate(&user, &pass).await.typ.class,
        CLASS_SUCCESS_RESPONSE
    );

    // Connections that never start their handshake hold every place one
    // address may have; the next one from there is closed at once.
    let mut idle = Vec::new();
    for _ in 0..webcall::tls::MAX_HANDSHAKES_PER_IP {
        idle.push(TcpStream::connect(site.app.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = try_connect_tls(site.app.addr, &site.root, &[]).await;
    assert!(refused.is_err(), "over the per-address bound");
    let refused_count = |metrics: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with("webcall_tls_refused_total{reason=\"per_ip\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no per_ip refusals counted:\n{metrics}"))
    };

    // Another address still gets in, and the call's connection still works.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = other.connect(site.app.addr).await.unwrap();
    tls_over(tcp, &site.root, &[])
        .await
        .expect("another address completes its handshake");
    let refreshed = call.refresh(&user, &pass).await;
    assert_eq!(refreshed.typ.class, CLASS_SUCCESS_RESPONSE);

    // Once the idle ones go, the address may connect again.
    drop(idle);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(tls) = try_connect_tls(site.app.addr, &site.root, &[]).await {
            again = Some(tls);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the address is let in again");
    drop(again);
    let metrics = site.app.metrics().await;
    assert!(refused_count(&metrics) >= 1.0, "the refusal is counted");
    site.app.stop().await;
}

#[tokio::test]
async fn a_turn_tls_listener_of_its_own_when_a_proxy_owns_443() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let site = spawn_site(&[
        ("HTTPS", "false"),
        ("TURN_TLS_LISTEN", &listen),
        ("TURN_TLS_PUBLIC_PORT", "443"),
        ("PUBLIC_HOST", "turn.webcall.test"),
    ])
    .await;
    // The HTTP port is plain HTTP (the proxy terminates HTTPS for the web app).
    let health = site
        .app
        .http
        .get(site.app.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let token = site.app.user_token("ada").await;
    let ice: Value = site
        .app
        .get_authed("/api/v1/webrtc/ice-servers", &token)
        .await
        .json()
        .await
        .unwrap();
    let turn = &ice["iceServers"][1];
    let urls = turn["urls"].as_array().unwrap();
    assert_eq!(
        urls.last().unwrap(),
        "turns:turn.webcall.test:443?transport=tcp",
        "{ice}"
    );

    // TURN over TLS on the listener, with the same certificate.
    let addr: SocketAddr = listen.parse().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut probe = Probe::stream(connect_tls(addr, &site.root, &[]).await);
    relay_round_trip(
        &mut probe,
        turn["username"].as_str().unwrap(),
        turn["credential"].as_str().unwrap(),
        &peer,
    )
    .await;
    // It serves TURN only: an HTTP request there is closed unanswered.
    let mut http = connect_tls(addr, &site.root, &[]).await;
    http.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {NAME}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = http.read_to_end(&mut answer).await;
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    site.app.stop().await;
}

/// A certificate for no DNS name (an IP address only) and no `PUBLIC_HOST`:
/// browsers could not check a `turns:` server's certificate, so none is offered;
/// TURN over TLS still runs for clients that know what to trust.
#[tokio::test]
async fn without_a_dns_name_no_turns_url_is_offered() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_cert(dir.path(), "127.0.0.1");
    let app = spawn_app(&[
        ("TLS_CERT_FILE", &cert),
        ("TLS_KEY_FILE", &key),
        ("HTTP_REDIRECT_PORT", "off"),
        ("HTTPS", "false"),
        ("TURN_TLS_LISTEN", "127.0.0.1:0"),
    ])
    .await;
    let token = app.user_token("ada").await;
    let ice: Value = app
        .get_authed("/api/v1/webrtc/ice-servers", &token)
        .await
        .json()
        .await
        .unwrap();
    let urls = ice["iceServers"][1]["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 2, "UDP and TCP only: {ice}");
    assert!(urls
        .iter()
        .all(|u| u.as_str().unwrap().starts_with("turn:")));
    app.stop().await;
}
