//! Bounds on connections, with real sockets against the real server: sockets
//! that trickle their headers or send nothing are dropped, one address cannot
//! hold more than `HTTP_MAX_CONNECTIONS_PER_IP`, one account more than
//! `WS_MAX_PER_USER` signaling sockets. The timeouts are set short here: these
//! tests show that a socket is dropped, not how fast.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{error_of, spawn_app, TestApp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Long enough for any bound under test to act; a socket still open by then was
/// not dropped.
const GIVE_UP: Duration = Duration::from_secs(15);

/// Reads (and discards) until the server closes the socket; false if it is still
/// open after [`GIVE_UP`].
async fn closed_by_server(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(GIVE_UP, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// A plain `GET /healthz` on an open socket; the status line's code.
async fn healthz(tcp: &mut TcpStream) -> Option<u16> {
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(GIVE_UP, tcp.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_dropped_after_the_header_timeout() {
    let app = spawn_app(&[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A header byte every 200 ms: never idle, never done.
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if tcp.write_all(b"x").await.is_err() {
                return true;
            }
        }
        false
    };
    let dropped = tokio::time::timeout(GIVE_UP, trickle).await;
    assert!(matches!(dropped, Ok(true)), "still open: {dropped:?}");
    // Others are served.
    let mut other = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(healthz(&mut other).await, Some(200));
    app.stop().await;
}

#[tokio::test]
async fn silent_and_idle_keep_alive_sockets_are_dropped_after_the_idle_timeout() {
    let app = spawn_app(&[
        ("HTTP_IDLE_TIMEOUT_SECS", "2"),
        ("WS_PING_SECS", "1"),
        ("WS_IDLE_TIMEOUT_SECS", "30"),
    ])
    .await;
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut kept_alive = TcpStream::connect(app.addr).await.unwrap();
    assert_eq!(healthz(&mut kept_alive).await, Some(200));
    // A signaling socket is kept busy by the server's pings: it stays.
    let token = app.user_token("ada").await;
    let (mut ws, _) = app.join("team", &token).await;

    assert!(closed_by_server(&mut silent).await, "a silent socket stays");
    assert!(
        closed_by_server(&mut kept_alive).await,
        "an idle keep-alive socket stays"
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv_type("pong").await["type"], "pong");
    app.stop().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_cap_of_connections_and_proxies_are_exempt() {
    let app = spawn_app(&[("HTTP_MAX_CONNECTIONS_PER_IP", "3")]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        assert_eq!(healthz(&mut tcp).await, Some(200));
        held.push(tcp);
    }
    let mut over = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_by_server(&mut over).await, "the 4th is served");
    // A place freed is a place again.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        if healthz(&mut tcp).await == Some(200) {
            again = Some(tcp);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.is_some(), "the freed place is not given back");
    app.stop().await;

    let app = spawn_app(&[
        ("HTTP_MAX_CONNECTIONS_PER_IP", "3"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        assert_eq!(healthz(&mut tcp).await, Some(200), "a proxy is capped");
        held.push(tcp);
    }
    app.stop().await;
}

/// The upgrade request by hand, to read the refusal's body.
async fn upgrade_refusal(app: &TestApp, token: &str) -> (u16, String, Option<String>) {
    let response = app
        .http
        .get(app.url(&format!("/ws/rooms/team?token={token}")))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    error_of(response).await
}

#[tokio::test]
async fn one_account_holds_at_most_ws_max_per_user_sockets_and_others_are_unaffected() {
    let app = spawn_app(&[("WS_MAX_PER_USER", "2")]).await;
    let ada = app.user_token("ada").await;
    let bob = app.user_token("bob").await;
    let (mut first, _) = app.join("team", &ada).await;
    let (_second, _) = app.join("other", &ada).await;
    assert_eq!(app.try_ws("third", &ada, None).await.err(), Some(429));
    let (status, code, _) = upgrade_refusal(&app, &ada).await;
    assert_eq!((status, code.as_str()), (429, "too_many_connections"));
    // Another account is not affected.
    let (mut b, _) = app.join("team", &bob).await;
    // A socket closed is a place again.
    first.send(json!({"type": "leave"})).await;
    assert!(first.close_code().await.is_some());
    let mut reopened = None;
    for _ in 0..50 {
        if let Ok(ws) = app.try_ws("third", &ada, None).await {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reopened.is_some(),
        "the closed socket's place is not given back"
    );
    b.send(json!({"type": "ping"})).await;
    assert_eq!(b.recv_type("pong").await["type"], "pong");
    app.stop().await;
}
