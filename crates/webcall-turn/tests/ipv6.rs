//! IPv6 (RFC 6156 / RFC 8656 address families): the relay listens on IPv4 and
//! IPv6 at once; a client gets an IPv4 relayed address unless it asks for IPv6
//! (REQUESTED-ADDRESS-FAMILY), over either transport family; IPv6 relayed
//! addresses need a public IPv6 address (else 440); IPv6 peers meet the same
//! filter as their IPv4 twins.

mod support;

use std::net::{IpAddr, SocketAddr};

use stun::message::{Message, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE};
use support::*;
use tokio::net::UdpSocket;
use turn::proto::reqfamily::{REQUESTED_FAMILY_IPV4, REQUESTED_FAMILY_IPV6};
use turn::proto::reqtrans::RequestedTransport;
use turn::proto::PROTO_UDP;

async fn dual_stack_relay() -> webcall_turn::TurnRelay {
    start_relay(|config| {
        config.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
        config.public_ip6 = Some("::1".parse().unwrap());
        config.policy = webcall_turn::PeerPolicy::new(
            vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
            true,
            vec![],
            vec![],
        );
    })
    .await
}

fn v6_listener(relay: &webcall_turn::TurnRelay) -> SocketAddr {
    *relay
        .listen_addrs()
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener")
}

async fn allocate_family(
    probe: &mut Probe,
    user: &str,
    pass: &str,
    family: turn::proto::reqfamily::RequestedAddressFamily,
) -> Message {
    probe
        .signed(
            METHOD_ALLOCATE,
            vec![
                Box::new(RequestedTransport {
                    protocol: PROTO_UDP,
                }),
                Box::new(family),
            ],
            user,
            pass,
        )
        .await
}

#[tokio::test]
async fn ipv6_clients_get_ipv4_relays_unless_they_ask_for_ipv6() {
    let relay = dual_stack_relay().await;
    let v6 = v6_listener(&relay);
    assert_eq!(
        v6.port(),
        relay.udp_addr().port(),
        "one port for both families"
    );
    let (user, pass) = rest_pair("ada", 600, SECRET);
    let peer4 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer6 = UdpSocket::bind("[::1]:0").await.unwrap();

    // Over IPv6, no family asked: an IPv4 relayed address (RFC 8656 §7.2), so an
    // IPv6-only client can call an IPv4-only one.
    let mut plain = Probe::udp(v6).await;
    let allocated = plain.allocate(&user, &pass).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");
    let relay_addr = relayed(&allocated);
    assert_eq!(relay_addr.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    round_trip(&mut plain, &user, &pass, relay_addr, &peer4).await;

    // Asking for IPv6, over IPv6 UDP, IPv6 TCP and IPv4 UDP: an IPv6 relayed address.
    for mut probe in [
        Probe::udp(v6).await,
        Probe::tcp(v6).await,
        Probe::udp(relay.udp_addr()).await,
    ] {
        let allocated = allocate_family(&mut probe, &user, &pass, REQUESTED_FAMILY_IPV6).await;
        assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE, "{allocated}");
        let relay_addr = relayed(&allocated);
        assert_eq!(relay_addr.ip(), "::1".parse::<IpAddr>().unwrap());
        round_trip(&mut probe, &user, &pass, relay_addr, &peer6).await;
    }

    // Asking for IPv4 explicitly works too.
    let mut v4 = Probe::tcp(v6).await;
    let allocated = allocate_family(&mut v4, &user, &pass, REQUESTED_FAMILY_IPV4).await;
    assert!(relayed(&allocated).is_ipv4());
    relay.close().await;
}

#[tokio::test]
async fn an_ipv6_relayed_address_without_a_public_ipv6_address_is_440() {
    let relay = start_relay(|_| {}).await;
    let (user, pass) = rest_pair("ada", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let refused = allocate_family(&mut probe, &user, &pass, REQUESTED_FAMILY_IPV6).await;
    assert_eq!(error_code(&refused), Some(440));
    // The same client then gets an IPv4 one.
    let allocated = probe.allocate(&user, &pass).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE);
    relay.close().await;
}

#[tokio::test]
async fn ipv6_peers_are_refused_like_their_ipv4_twins() {
    let relay = dual_stack_relay().await;
    let (user, pass) = rest_pair("ada", 600, SECRET);
    let mut probe = Probe::udp(v6_listener(&relay)).await;
    let allocated = allocate_family(&mut probe, &user, &pass, REQUESTED_FAMILY_IPV6).await;
    assert_eq!(allocated.typ.class, CLASS_SUCCESS_RESPONSE);
    probe
        .assert_refused(
            &user,
            &pass,
            &[
                "[fe80::1]:9",
                "[fd00::1]:9",
                "[ff02::1]:9",
                "[2001:db8::1]:9",
                "[::ffff:10.0.0.1]:9",
                "[64:ff9b::10.0.0.1]:9",
                "[2002:a00:1::1]:9",
                "[64:ff9b::169.254.169.254]:80",
            ],
        )
        .await;
    relay.close().await;
}
