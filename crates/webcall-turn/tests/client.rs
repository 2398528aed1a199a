//! The `turn` crate's own client against the embedded relay: allocate, create a
//! permission, bind a channel and round-trip data through a peer, over UDP and
//! over TCP.

mod support;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// The client side of TURN over TCP for the crate's packet-only client: frames
/// go out on the stream, frames read back are returned as datagrams from the server.
struct TcpClientConn {
    reader: Mutex<OwnedReadHalf>,
    writer: Mutex<OwnedWriteHalf>,
    local: SocketAddr,
    server: SocketAddr,
}

impl TcpClientConn {
    async fn connect(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).await.unwrap();
        let local = stream.local_addr().unwrap();
        let (reader, writer) = stream.into_split();
        Self {
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
            local,
            server,
        }
    }
}

#[async_trait]
impl Conn for TcpClientConn {
    async fn connect(&self, _: SocketAddr) -> webrtc_util::Result<()> {
        Ok(())
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut reader = self.reader.lock().await;
        let mut head = [0u8; 4];
        reader.read_exact(&mut head).await?;
        let len = u16::from_be_bytes([head[2], head[3]]) as usize;
        let total = if head[0] >> 6 == 0 {
            20 + len
        } else {
            4 + ((len + 3) & !3)
        };
        let mut frame = vec![0u8; total];
        frame[..4].copy_from_slice(&head);
        reader.read_exact(&mut frame[4..]).await?;
        let n = total.min(buf.len());
        buf[..n].copy_from_slice(&frame[..n]);
        Ok((n, self.server))
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.server).await
    }
    async fn send_to(&self, buf: &[u8], _: SocketAddr) -> webrtc_util::Result<usize> {
        self.writer.lock().await.write_all(buf).await?;
        Ok(buf.len())
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.server)
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        self.writer
            .lock()
            .await
            .shutdown()
            .await
            .map_err(|e: io::Error| e.into())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// A peer that echoes every datagram back to where it came from.
async fn echo_peer() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

async fn round_trip(conn: Arc<dyn Conn + Send + Sync>, server: SocketAddr) {
    let (username, password) = rest_pair("alice", 600, SECRET);
    let client = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username,
        password,
        realm: REALM.into(),
        software: String::new(),
        rto_in_ms: 0,
        conn,
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    let relayed = client.allocate().await.unwrap();
    let relayed_addr = relayed.local_addr().unwrap();
    assert_eq!(
        relayed_addr.ip().to_string(),
        "127.0.0.1",
        "the public IP is advertised"
    );
    assert!(
        (40000..=49999).contains(&relayed_addr.port()),
        "{relayed_addr}"
    );

    let peer = echo_peer().await;
    let mut buf = vec![0u8; 1500];
    // The first send creates the permission and starts the channel bind (it goes
    // as a Send indication); later ones go as ChannelData.
    for i in 0..20 {
        let message = format!("hello #{i} {}", "x".repeat(i * 50));
        relayed.send_to(message.as_bytes(), peer).await.unwrap();
        let (n, from) = tokio::time::timeout(Duration::from_secs(3), relayed.recv_from(&mut buf))
            .await
            .expect("the echo comes back through the relay")
            .unwrap();
        assert_eq!(from, peer);
        assert_eq!(&buf[..n], message.as_bytes());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relayed.close().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn the_turn_client_relays_data_over_udp() {
    let relay = start_relay(|_| {}).await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    round_trip(Arc::new(socket), relay.udp_addr()).await;
    assert!(
        eventually(|| relay.allocation_count() == 0).await,
        "Refresh(0) on close frees it"
    );
    relay.close().await;
}

#[tokio::test]
async fn the_turn_client_relays_data_over_tcp() {
    let relay = start_relay(|_| {}).await;
    let conn = TcpClientConn::connect(relay.tcp_addr()).await;
    round_trip(Arc::new(conn), relay.tcp_addr()).await;
    assert!(eventually(|| relay.allocation_count() == 0).await);
    relay.close().await;
}
