//! Relayed data, end to end over raw STUN/ChannelData, on UDP, TCP and adopted
//! (TLS) streams: the data
//! plane relays only what RFC 8656 allows (a permission in both directions, a
//! bound channel for ChannelData), frames peer data as a Data indication or as
//! ChannelData, carries datagrams larger than the crate's 1500-byte buffers
//! intact, and gives a relay port back when its allocation ends.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use stun::message::{
    Getter, Message, MessageType, CLASS_INDICATION, CLASS_SUCCESS_RESPONSE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};
use support::*;
use tokio::net::UdpSocket;
use turn::proto::channum::ChannelNumber;
use turn::proto::data::Data;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;

/// Long enough to be sure nothing is coming on loopback.
const QUIET: Duration = Duration::from_millis(300);
const CHANNEL: u16 = 0x4001;

fn channel_data(number: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = number.to_be_bytes().to_vec();
    frame.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    frame.extend_from_slice(payload);
    frame.resize((frame.len() + 3) & !3, 0);
    frame
}

/// Distinct bytes, so a cut or a shifted copy shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn peer_recv(peer: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = tokio::time::timeout(wait, peer.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    buf.truncate(n);
    Some((buf, from))
}

async fn permit(probe: &mut Probe, user: &str, pass: &str, peer: SocketAddr) -> Message {
    probe
        .signed(METHOD_CREATE_PERMISSION, vec![peer_attr(peer)], user, pass)
        .await
}

async fn relays_by_the_rules(mut client: Probe) {
    let (username, password) = rest_pair("alice", 600, SECRET);
    let allocate = client.allocate(&username, &password).await;
    assert_eq!(allocate.typ.class, CLASS_SUCCESS_RESPONSE);
    let relay_addr = relayed(&allocate);
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    // No permission: nothing passes either way.
    peer.send_to(b"unasked", relay_addr).await.unwrap();
    assert_eq!(
        client.recv_raw(QUIET).await,
        None,
        "peer data without a permission"
    );
    client.send_raw(&send_indication(peer_addr, b"early")).await;
    assert_eq!(
        peer_recv(&peer, QUIET).await,
        None,
        "Send without a permission"
    );

    // A permission: Send indications out, Data indications in.
    let permitted = permit(&mut client, &username, &password, peer_addr).await;
    assert_eq!(permitted.typ.class, CLASS_SUCCESS_RESPONSE);
    client
        .send_raw(&send_indication(peer_addr, b"hello peer"))
        .await;
    let (got, from) = peer_recv(&peer, Duration::from_secs(2))
        .await
        .expect("relayed");
    assert_eq!((got.as_slice(), from), (&b"hello peer"[..], relay_addr));
    peer.send_to(b"hello client", relay_addr).await.unwrap();
    let raw = client
        .recv_raw(Duration::from_secs(2))
        .await
        .expect("a Data indication");
    let mut indication = Message::new();
    indication.unmarshal_binary(&raw).unwrap();
    assert_eq!(
        indication.typ,
        MessageType::new(stun::message::METHOD_DATA, CLASS_INDICATION)
    );
    let mut from = PeerAddress::default();
    from.get_from(&indication).unwrap();
    assert_eq!(SocketAddr::new(from.ip, from.port), peer_addr);
    let mut data = Data::default();
    data.get_from(&indication).unwrap();
    assert_eq!(data.0, b"hello client");

    // ChannelData on a channel nobody bound goes nowhere.
    client.send_raw(&channel_data(CHANNEL, b"unbound")).await;
    assert_eq!(
        peer_recv(&peer, QUIET).await,
        None,
        "ChannelData on an unbound channel"
    );

    // A channel: ChannelData both ways, larger than 1500 bytes and intact.
    let bound = client
        .signed(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(CHANNEL)), peer_attr(peer_addr)],
            &username,
            &password,
        )
        .await;
    assert_eq!(bound.typ.class, CLASS_SUCCESS_RESPONSE);
    for len in [1, 120, 1199, 4000, 9001] {
        let out = payload(len);
        client.send_raw(&channel_data(CHANNEL, &out)).await;
        let (got, from) = peer_recv(&peer, Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("{len} bytes relayed to the peer"));
        assert_eq!(from, relay_addr);
        assert!(got == out, "{len} bytes to the peer arrive intact");

        peer.send_to(&out, relay_addr).await.unwrap();
        let frame = client
            .recv_raw(Duration::from_secs(2))
            .await
            .unwrap_or_else(|| panic!("{len} bytes relayed to the client"));
        assert_eq!(u16::from_be_bytes([frame[0], frame[1]]), CHANNEL);
        assert_eq!(usize::from(u16::from_be_bytes([frame[2], frame[3]])), len);
        assert!(
            frame[4..4 + len] == out[..],
            "{len} bytes to the client arrive intact"
        );
    }

    // Deleting the allocation gives its relay port back.
    let refresh = client
        .signed(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::ZERO))],
            &username,
            &password,
        )
        .await;
    assert_eq!(refresh.typ.class, CLASS_SUCCESS_RESPONSE);
    let mut freed = false;
    for _ in 0..100 {
        if std::net::UdpSocket::bind(relay_addr).is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "relay port {relay_addr} is free again");
    peer.send_to(b"after the end", relay_addr).await.unwrap();
    assert_eq!(client.recv_raw(QUIET).await, None);
}

#[tokio::test]
async fn udp_relaying_follows_permissions_and_channels() {
    let relay = start_relay(|_| {}).await;
    relays_by_the_rules(Probe::udp(relay.udp_addr()).await).await;
    relay.close().await;
}

#[tokio::test]
async fn tcp_relaying_follows_permissions_and_channels() {
    let relay = start_relay(|_| {}).await;
    relays_by_the_rules(Probe::tcp(relay.tcp_addr()).await).await;
    relay.close().await;
}

/// A stream decrypted elsewhere (TURN over TLS arrives so) and handed in: the
/// same rules as TCP. An in-memory pipe stands in for the decrypted TLS stream.
#[tokio::test]
async fn adopted_stream_relaying_follows_permissions_and_channels() {
    let relay = start_relay(|_| {}).await;
    let (client, server) = tokio::io::duplex(256 * 1024);
    relay
        .tls_intake()
        .adopt(server, "127.0.0.1:50001".parse().unwrap());
    relays_by_the_rules(Probe::stream(client)).await;
    relay.close().await;
}

/// Both ends relayed by this server (the common case when both browsers need
/// TURN): data crosses from one allocation to the other inside the relay, under
/// the same rules — the receiving allocation needs a permission for the sending
/// relay's address, and the sender's address is what its client sees.
#[tokio::test]
async fn relay_to_relay_keeps_the_rules() {
    let relay = start_relay(|_| {}).await;
    let (alice_user, alice_pass) = rest_pair("alice", 600, SECRET);
    let (bob_user, bob_pass) = rest_pair("bob", 600, SECRET);
    let mut alice = Probe::udp(relay.udp_addr()).await;
    let mut bob = Probe::tcp(relay.tcp_addr()).await;
    let alice_relay = relayed(&alice.allocate(&alice_user, &alice_pass).await);
    let bob_relay = relayed(&bob.allocate(&bob_user, &bob_pass).await);
    let ok = permit(&mut alice, &alice_user, &alice_pass, bob_relay).await;
    assert_eq!(ok.typ.class, CLASS_SUCCESS_RESPONSE);

    // Bob has no permission for Alice's relay yet: nothing reaches him.
    alice
        .send_raw(&send_indication(bob_relay, b"too early"))
        .await;
    assert_eq!(bob.recv_raw(QUIET).await, None);

    // A permission on TCP: a Data indication from Alice's relayed address.
    let ok = permit(&mut bob, &bob_user, &bob_pass, alice_relay).await;
    assert_eq!(ok.typ.class, CLASS_SUCCESS_RESPONSE);
    alice.send_raw(&send_indication(bob_relay, b"hi bob")).await;
    let raw = bob.recv_raw(Duration::from_secs(2)).await.expect("relayed");
    let mut indication = Message::new();
    indication.unmarshal_binary(&raw).unwrap();
    let mut from = PeerAddress::default();
    from.get_from(&indication).unwrap();
    assert_eq!(SocketAddr::new(from.ip, from.port), alice_relay);
    let mut data = Data::default();
    data.get_from(&indication).unwrap();
    assert_eq!(data.0, b"hi bob");

    // Channels both ways: ChannelData in, ChannelData out, 4000 bytes intact.
    for (probe, user, pass, peer) in [
        (&mut alice, &alice_user, &alice_pass, bob_relay),
        (&mut bob, &bob_user, &bob_pass, alice_relay),
    ] {
        let bound = probe
            .signed(
                METHOD_CHANNEL_BIND,
                vec![Box::new(ChannelNumber(CHANNEL)), peer_attr(peer)],
                user,
                pass,
            )
            .await;
        assert_eq!(bound.typ.class, CLASS_SUCCESS_RESPONSE);
    }
    let out = payload(4000);
    bob.send_raw(&channel_data(CHANNEL, &out)).await;
    let frame = alice
        .recv_raw(Duration::from_secs(2))
        .await
        .expect("relayed");
    assert_eq!(u16::from_be_bytes([frame[0], frame[1]]), CHANNEL);
    assert!(frame[4..4 + out.len()] == out[..]);
    relay.close().await;
}

/// The relay's own address is a peer only on the relay ports: a permission for
/// it is granted (relay-to-relay calls need it), but a datagram to another
/// service on the host (here a plain UDP socket on the relay's address) is
/// dropped and a channel to it refused with 403.
#[tokio::test]
async fn the_relays_own_address_is_reachable_on_relay_ports_only() {
    // Loopback is the relay's own address here and not otherwise allowed.
    // Relay ports above the kernel's ephemeral range, so the service's port is
    // outside them.
    let relay = start_relay(|c| {
        c.policy = webcall_turn::PeerPolicy::new(
            vec!["127.0.0.1".parse().unwrap()],
            false,
            vec![],
            vec![],
        );
        c.relay_ports = (61000, 61999);
    })
    .await;
    let service = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let service_addr = service.local_addr().unwrap();
    assert!(!(61000..=61999).contains(&service_addr.port()));

    let (alice_user, alice_pass) = rest_pair("alice", 600, SECRET);
    let (bob_user, bob_pass) = rest_pair("bob", 600, SECRET);
    let mut alice = Probe::udp(relay.udp_addr()).await;
    let mut bob = Probe::udp(relay.udp_addr()).await;
    let alice_relay = relayed(&alice.allocate(&alice_user, &alice_pass).await);
    let bob_relay = relayed(&bob.allocate(&bob_user, &bob_pass).await);

    let ok = permit(&mut alice, &alice_user, &alice_pass, service_addr).await;
    assert_eq!(ok.typ.class, CLASS_SUCCESS_RESPONSE);
    alice
        .send_raw(&send_indication(service_addr, b"to a host service"))
        .await;
    assert_eq!(peer_recv(&service, QUIET).await, None, "reached the host");
    let bind = alice
        .signed(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(CHANNEL)), peer_attr(service_addr)],
            &alice_user,
            &alice_pass,
        )
        .await;
    assert_eq!(error_code(&bind), Some(403));

    // Relay to relay on the same address still works.
    for (probe, user, pass, peer) in [
        (&mut alice, &alice_user, &alice_pass, bob_relay),
        (&mut bob, &bob_user, &bob_pass, alice_relay),
    ] {
        let ok = permit(probe, user, pass, peer).await;
        assert_eq!(ok.typ.class, CLASS_SUCCESS_RESPONSE);
    }
    alice.send_raw(&send_indication(bob_relay, b"hi bob")).await;
    let raw = bob.recv_raw(Duration::from_secs(2)).await.expect("relayed");
    let mut indication = Message::new();
    indication.unmarshal_binary(&raw).unwrap();
    let mut data = Data::default();
    data.get_from(&indication).unwrap();
    assert_eq!(data.0, b"hi bob");
    relay.close().await;
}
