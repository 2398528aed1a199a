//! What an operator sees and does while the relay runs, through real TURN
//! clients: the allocation list (user, transport, addresses, packets and bytes
//! each way, rate), ending one allocation or all of a user's, changing the
//! quotas, and rotating the REST key (credentials of the previous generation
//! keep working for one credential lifetime, then get 401).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use stun::message::{Getter, Message, METHOD_REFRESH};
use support::*;
use tokio::net::UdpSocket;
use turn::proto::data::Data;
use turn::proto::lifetime::Lifetime;
use webcall_domain::model::UserId;
use webcall_domain::operations::{KeyGeneration, RelayQuotas, RelayTransport};
use webcall_domain::ports::{RelayControl, RotatingKey, TurnCredentialMinter};
use webcall_turn::TurnRelay;

const PAYLOAD: &[u8] = &[7u8; 100];

/// A client of `user` with an allocation on `relay`, and its relayed address.
async fn allocated(probe: &mut Probe, user: &str) -> (String, String, SocketAddr) {
    let (username, password) = rest_pair(user, 600, SECRET);
    let allocation = probe.allocate(&username, &password).await;
    assert_eq!(error_code(&allocation), None, "{allocation}");
    (username, password, relayed(&allocation))
}

/// Sends `count` datagrams each way between the probe and `peer`, checking each arrives.
async fn relay_both_ways(
    probe: &mut Probe,
    (username, password): (&str, &str),
    relayed: SocketAddr,
    peer: &UdpSocket,
    count: usize,
) {
    let peer_addr = peer.local_addr().unwrap();
    assert_eq!(
        error_code(&probe.permit(username, password, peer_addr).await),
        None
    );
    let mut buf = [0u8; 1500];
    for _ in 0..count {
        probe.send_raw(&send_indication(peer_addr, PAYLOAD)).await;
        let (n, _) = tokio::time::timeout(Duration::from_secs(2), peer.recv_from(&mut buf))
            .await
            .expect("relayed to the peer")
            .unwrap();
        assert_eq!(&buf[..n], PAYLOAD);
    }
    for _ in 0..count {
        peer.send_to(&PAYLOAD[..40], relayed).await.unwrap();
        let raw = probe
            .recv_raw(Duration::from_secs(2))
            .await
            .expect("relayed to the client");
        let mut indication = Message::new();
        indication.unmarshal_binary(&raw).unwrap();
        let mut data = Data::default();
        data.get_from(&indication).unwrap();
        assert_eq!(data.0, &PAYLOAD[..40]);
    }
}

fn listed(relay: &TurnRelay) -> Vec<webcall_domain::operations::RelayAllocation> {
    RelayControl::allocations(relay)
}

#[tokio::test]
async fn the_list_shows_each_allocation_with_its_user_transport_and_traffic() {
    let relay = start_relay(|_| {}).await;
    let ada = UserId::new_random();
    let mut udp = Probe::udp(relay.udp_addr()).await;
    let (username, password, udp_relayed) = allocated(&mut udp, &ada.to_string()).await;
    let mut tcp = Probe::tcp(relay.tcp_addr()).await;
    let (_, _, tcp_relayed) = allocated(&mut tcp, "not-an-account").await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay_both_ways(&mut udp, (&username, &password), udp_relayed, &peer, 5).await;

    let list = listed(&relay);
    assert_eq!(list.len(), 2);
    let first = list.iter().find(|a| a.relayed == udp_relayed).unwrap();
    assert_eq!(first.user, ada.to_string());
    assert_eq!(first.user_id, Some(ada));
    assert_eq!(first.transport, RelayTransport::Udp);
    let Wire::Udp(socket, _) = &udp.wire else {
        unreachable!()
    };
    assert_eq!(first.client, socket.local_addr().unwrap());
    assert_eq!(
        (first.traffic.packets_in, first.traffic.bytes_in),
        (5, 5 * PAYLOAD.len() as u64)
    );
    assert_eq!(
        (first.traffic.packets_out, first.traffic.bytes_out),
        (5, 5 * 40)
    );
    assert!(first.rate_in_bps > 0 && first.rate_out_bps > 0, "{first:?}");
    let second = list.iter().find(|a| a.relayed == tcp_relayed).unwrap();
    assert_eq!(
        (second.transport, second.user.as_str(), second.user_id),
        (RelayTransport::Tcp, "not-an-account", None)
    );
    assert_eq!(second.traffic, Default::default());
    assert_ne!(first.id, second.id);
    relay.close().await;
}

#[tokio::test]
async fn an_ended_allocation_relays_nothing_and_its_client_gets_437() {
    let relay = start_relay(|c| c.user_quota = 1).await;
    let user = UserId::new_random().to_string();
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let (username, password, relayed) = allocated(&mut probe, &user).await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    relay_both_ways(&mut probe, (&username, &password), relayed, &peer, 1).await;

    let id = listed(&relay)[0].id.clone();
    assert!(relay.end_allocation(&id));
    assert!(!relay.end_allocation(&id), "ended once");
    assert!(listed(&relay).is_empty());
    probe
        .send_raw(&send_indication(peer.local_addr().unwrap(), PAYLOAD))
        .await;
    let mut buf = [0u8; 1500];
    let nothing = tokio::time::timeout(Duration::from_millis(500), peer.recv_from(&mut buf)).await;
    assert!(nothing.is_err(), "nothing relayed after the end");
    assert_eq!(
        error_code(&probe.refresh(&username, &password).await),
        Some(437)
    );
    // Its relay socket is closed: the port can be bound again.
    let mut freed = false;
    for _ in 0..100 {
        if std::net::UdpSocket::bind(relayed).is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the relay socket {relayed} closed");
    // Its quota slot is free: the same client allocates again.
    assert_eq!(
        error_code(&probe.allocate(&username, &password).await),
        None
    );
    relay.close().await;
}

#[tokio::test]
async fn ending_a_user_ends_every_allocation_of_theirs_only() {
    let relay = start_relay(|_| {}).await;
    let (banned, other) = (UserId::new_random(), UserId::new_random());
    let mut probes = Vec::new();
    for user in [banned, banned, other] {
        let mut probe = Probe::udp(relay.udp_addr()).await;
        allocated(&mut probe, &user.to_string()).await;
        probes.push(probe);
    }
    let mut tcp = Probe::tcp(relay.tcp_addr()).await;
    allocated(&mut tcp, &banned.to_string()).await;
    assert_eq!(relay.end_user(banned), 3);
    let left = listed(&relay);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user_id, Some(other));
    assert_eq!(relay.end_user(banned), 0);
    relay.close().await;
}

#[tokio::test]
async fn a_quota_change_applies_to_the_next_allocation() {
    let relay = start_relay(|c| c.user_quota = 1).await;
    assert_eq!(
        relay.quotas(),
        RelayQuotas {
            per_user: 1,
            total: 1000
        }
    );
    let (username, password) = rest_pair("ada", 600, SECRET);
    let mut first = Probe::udp(relay.udp_addr()).await;
    let mut second = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&first.allocate(&username, &password).await),
        None
    );
    assert_eq!(
        error_code(&second.allocate(&username, &password).await),
        Some(486)
    );
    relay.set_quotas(RelayQuotas::new(2, 2).unwrap());
    assert_eq!(
        error_code(&second.allocate(&username, &password).await),
        None
    );
    // The total is full now, for everyone.
    let (bob, bob_password) = rest_pair("bob", 600, SECRET);
    let mut third = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&third.allocate(&bob, &bob_password).await),
        Some(486)
    );
    relay.close().await;
}

#[tokio::test]
async fn after_a_rotation_old_and_new_credentials_allocate() {
    let relay = start_relay(|_| {}).await;
    let credentials = relay.credentials();
    let user = UserId::new_random();
    let before = credentials.mint(user, Utc::now());
    assert!(credentials.adopt(KeyGeneration::INITIAL.next(Utc::now())));
    let after = credentials.mint(user, Utc::now());
    assert!(after.username.contains(":k1:"), "{}", after.username);
    for minted in [&before, &after] {
        let mut probe = Probe::udp(relay.udp_addr()).await;
        let allocation = probe.allocate(&minted.username, &minted.credential).await;
        assert_eq!(error_code(&allocation), None, "{}", minted.username);
        assert_eq!(
            error_code(&probe.refresh(&minted.username, &minted.credential).await),
            None
        );
    }
    // A password made with the environment's secret does not pass for generation 1.
    let forged = format!("{}:k1:{user}", unix_now() + 600);
    let (_, wrong) = rest_pair("x", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&probe.allocate(&forged, &wrong).await),
        Some(401)
    );
    relay.close().await;
}

#[tokio::test]
async fn one_credential_lifetime_after_a_rotation_the_old_generation_gets_401() {
    let relay = start_relay(|_| {}).await;
    let credentials = relay.credentials();
    let user = UserId::new_random();
    let old = credentials.mint(user, Utc::now());
    let mut live = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&live.allocate(&old.username, &old.credential).await),
        None
    );
    // Rotated one lifetime (3600 s in these tests) and a second ago.
    let rotated_at = Utc::now() - chrono::Duration::seconds(3601);
    credentials.adopt(KeyGeneration::INITIAL.next(rotated_at));
    let mut probe = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&probe.allocate(&old.username, &old.credential).await),
        Some(401),
        "a new allocation with the retired generation"
    );
    assert_eq!(
        error_code(&live.refresh(&old.username, &old.credential).await),
        Some(401),
        "a live allocation cannot be kept with it either"
    );
    let release = live
        .signed(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::ZERO))],
            &old.username,
            &old.credential,
        )
        .await;
    assert_eq!(error_code(&release), None, "but it may be let go");
    let new = credentials.mint(user, Utc::now());
    assert_eq!(
        error_code(&probe.allocate(&new.username, &new.credential).await),
        None
    );
    relay.close().await;
}
