//! The relay's answers, read off raw STUN messages (the `turn` client hides
//! error codes): 401 for every credential problem, 403 for denied peers, 437
//! without an allocation, 441 for another user's credentials, 486 over quota,
//! 420 for unknown comprehension-required attributes; and the gate's own
//! nonces and small unauthenticated answers.
//!
//! One file over 500 lines, on purpose: every test here is one refusal of the
//! gate's, probed the same way (raw STUN through `support::Probe`).

mod support;

use std::net::IpAddr;
use std::time::Duration;

use stun::attributes::{ATTR_NONCE, ATTR_REALM};
use stun::message::{
    Getter, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_REFRESH,
};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use support::*;
use turn::proto::channum::ChannelNumber;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;
use webcall_turn::PeerPolicy;

fn peer(ip: &str) -> Box<PeerAddress> {
    Box::new(PeerAddress {
        ip: ip.parse().unwrap(),
        port: 5000,
    })
}

#[tokio::test]
async fn missing_credentials_get_401_with_realm_and_nonce() {
    let relay = start_relay(|_| {}).await;
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let response = probe.challenge().await;
    assert_eq!(error_code(&response), Some(401));
    assert_eq!(
        TextAttribute::get_from_as(&response, ATTR_REALM)
            .unwrap()
            .text,
        REALM
    );
    assert!(!TextAttribute::get_from_as(&response, ATTR_NONCE)
        .unwrap()
        .text
        .is_empty());
    relay.close().await;
}

#[tokio::test]
async fn bad_credentials_get_401_not_400() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let (foreign_user, foreign_password) = rest_pair("alice", 600, "someone-elses-secret");
    let (expired_user, expired_password) = rest_pair("alice", -10, SECRET);
    let bare_expiry = format!("{}", unix_now() + 600);
    let bare_password = credentials().password_for(&bare_expiry);
    let cases = [
        (
            "wrong password",
            username.clone(),
            "not-the-password".to_owned(),
        ),
        ("foreign secret", foreign_user, foreign_password),
        ("expired", expired_user, expired_password),
        (
            "not <expiry>:<user>",
            "alice".to_owned(),
            "whatever".to_owned(),
        ),
        ("bare expiry", bare_expiry, bare_password),
    ];
    for (what, user, pass) in cases {
        let mut probe = Probe::udp(relay.udp_addr()).await;
        let response = probe.allocate(&user, &pass).await;
        assert_eq!(error_code(&response), Some(401), "{what}");
        assert!(
            response.contains(ATTR_NONCE),
            "{what}: a 401 carries a nonce to retry with"
        );
    }
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let ok = probe.allocate(&username, &password).await;
    assert_eq!(
        ok.typ.class, CLASS_SUCCESS_RESPONSE,
        "and the right ones still work"
    );
    assert_eq!(
        relay
            .gate()
            .stats
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        5
    );
    relay.close().await;
}

#[tokio::test]
async fn requests_without_an_allocation_get_437() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let refresh = probe
        .signed(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::from_secs(600)))],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&refresh), Some(437));
    let permission = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("8.8.8.8")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&permission), Some(437));
    let bind = probe
        .signed(
            METHOD_CHANNEL_BIND,
            vec![Box::new(ChannelNumber(0x4001)), peer("8.8.8.8")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&bind), Some(437));
    relay.close().await;
}

const DENIED: &[&str] = &[
    "0.0.0.1",
    "127.0.0.2",
    "10.0.0.1",
    "100.64.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "192.0.0.1",
    "192.0.2.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "240.0.0.1",
    "::",
    "::1",
    "fc00::1",
    "fe80::1",
    "64:ff9b::1",
    "2002::1",
    "ff02::1",
    "::ffff:127.0.0.2",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
];

#[tokio::test]
async fn every_denied_range_gets_403_on_create_permission_and_channel_bind() {
    // Loopback peers not allowed here; the relay's own address 127.0.0.1 is.
    let relay = start_relay(|c| {
        c.policy = PeerPolicy::new(vec!["127.0.0.1".parse().unwrap()], false, vec![], vec![])
    })
    .await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        probe.allocate(&username, &password).await.typ.class,
        CLASS_SUCCESS_RESPONSE
    );
    for (i, ip) in DENIED.iter().enumerate() {
        let permission = probe
            .signed(
                METHOD_CREATE_PERMISSION,
                vec![peer(ip)],
                &username,
                &password,
            )
            .await;
        assert_eq!(error_code(&permission), Some(403), "CreatePermission {ip}");
        let channel = ChannelNumber(0x4000 + i as u16);
        let bind = probe
            .signed(
                METHOD_CHANNEL_BIND,
                vec![Box::new(channel), peer(ip)],
                &username,
                &password,
            )
            .await;
        assert_eq!(error_code(&bind), Some(403), "ChannelBind {ip}");
    }
    // Several peers in one CreatePermission: one denied refuses the request.
    let mixed = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("8.8.8.8"), peer("10.0.0.1")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&mixed), Some(403));
    for ip in ["8.8.8.8", "2001:4860::8888", "127.0.0.1"] {
        let family_ok = ip.parse::<IpAddr>().unwrap().is_ipv4();
        let permission = probe
            .signed(
                METHOD_CREATE_PERMISSION,
                vec![peer(ip)],
                &username,
                &password,
            )
            .await;
        if family_ok {
            assert_eq!(error_code(&permission), None, "{ip} is allowed");
        } else {
            // An IPv6 peer on an IPv4 allocation is a family mismatch, not a denial.
            assert_eq!(error_code(&permission), Some(443), "{ip}");
        }
    }
    relay.close().await;
}

#[tokio::test]
async fn operator_can_allow_a_private_range() {
    let relay = start_relay(|c| {
        c.policy = PeerPolicy::new(
            vec!["127.0.0.1".parse().unwrap()],
            false,
            vec!["10.1.0.0/16".parse().unwrap()],
            vec![],
        )
    })
    .await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    probe.allocate(&username, &password).await;
    let allowed = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("10.1.2.3")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&allowed), None);
    let denied = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("10.2.0.1")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&denied), Some(403));
    relay.close().await;
}

#[tokio::test]
async fn allocations_over_the_user_quota_get_486_and_free_up_on_release() {
    let relay = start_relay(|c| c.user_quota = 2).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut first = Probe::udp(relay.udp_addr()).await;
    let mut second = Probe::udp(relay.udp_addr()).await;
    let mut third = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&first.allocate(&username, &password).await),
        None
    );
    assert_eq!(
        error_code(&second.allocate(&username, &password).await),
        None
    );
    assert_eq!(
        error_code(&third.allocate(&username, &password).await),
        Some(486)
    );
    // Another user is not affected.
    let (bob, bob_password) = rest_pair("bob", 600, SECRET);
    let mut bobs = Probe::udp(relay.udp_addr()).await;
    assert_eq!(error_code(&bobs.allocate(&bob, &bob_password).await), None);
    // Releasing one (Refresh with lifetime 0) makes room again.
    let release = first
        .signed(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::ZERO))],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&release), None);
    assert!(eventually(|| relay.allocation_count() == 2).await);
    assert_eq!(
        error_code(&third.allocate(&username, &password).await),
        None
    );
    relay.close().await;
}

#[tokio::test]
async fn the_total_quota_caps_the_server() {
    let relay = start_relay(|c| c.total_quota = 2).await;
    for (i, expected) in [None, None, Some(486)].into_iter().enumerate() {
        let (username, password) = rest_pair(&format!("user{i}"), 600, SECRET);
        let mut probe = Probe::udp(relay.udp_addr()).await;
        assert_eq!(
            error_code(&probe.allocate(&username, &password).await),
            expected,
            "allocation {i}"
        );
    }
    relay.close().await;
}

#[tokio::test]
async fn another_users_credentials_on_an_allocation_get_441() {
    let relay = start_relay(|_| {}).await;
    let (alice, alice_password) = rest_pair("alice", 600, SECRET);
    let (mallory, mallory_password) = rest_pair("mallory", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    probe.allocate(&alice, &alice_password).await;
    let stolen = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("8.8.8.8")],
            &mallory,
            &mallory_password,
        )
        .await;
    assert_eq!(error_code(&stolen), Some(441));
    let own = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("8.8.8.8")],
            &alice,
            &alice_password,
        )
        .await;
    assert_eq!(error_code(&own), None);
    relay.close().await;
}

#[tokio::test]
async fn an_expired_credential_keeps_its_live_allocation_but_cannot_make_a_new_one() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 2, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&probe.allocate(&username, &password).await),
        None
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refresh = probe
        .signed(
            METHOD_REFRESH,
            vec![Box::new(Lifetime(Duration::from_secs(600)))],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&refresh), None, "a call outlives its credential");
    let permission = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("8.8.8.8")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&permission), None);
    let mut fresh = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&fresh.allocate(&username, &password).await),
        Some(401)
    );
    relay.close().await;
}

#[tokio::test]
async fn a_flood_of_unauthenticated_allocates_is_answered_with_one_nonce() {
    let relay = start_relay(|_| {}).await;
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..20 {
        let mut probe = Probe::udp(relay.udp_addr()).await;
        for _ in 0..50 {
            let response = probe.challenge().await;
            assert_eq!(error_code(&response), Some(401));
            nonces.insert(probe.nonce.clone().unwrap());
        }
    }
    // The crate mints (and stores forever) a nonce per request it answers; the
    // gate answers with its own, and hands the crate one request per half hour
    // for a nonce of the crate's. Each UDP listener has a gate nonce and a crate
    // server of its own (two here, and the 20 client sockets are spread over
    // them): one nonce each for all 1000 requests.
    assert!(
        (1..=2).contains(&nonces.len()),
        "{} nonces for 1000 requests",
        nonces.len()
    );
    relay.close().await;
}

#[tokio::test]
async fn stun_binding_is_answered_on_udp_and_tcp() {
    let relay = start_relay(|_| {}).await;
    assert_eq!(
        relay.udp_addr().port(),
        relay.tcp_addr().port(),
        "one port for both transports"
    );
    for mut probe in [
        Probe::udp(relay.udp_addr()).await,
        Probe::tcp(relay.tcp_addr()).await,
    ] {
        let response = probe
            .request(vec![
                Box::new(stun::agent::TransactionId::new()),
                Box::new(stun::message::MessageType::new(
                    METHOD_BINDING,
                    stun::message::CLASS_REQUEST,
                )),
            ])
            .await;
        assert_eq!(response.typ.class, CLASS_SUCCESS_RESPONSE);
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&response).unwrap();
        assert_eq!(mapped.ip.to_string(), "127.0.0.1");
    }
    relay.close().await;
}

#[tokio::test]
async fn the_gate_answers_over_tcp_too_and_a_closed_connection_frees_its_allocation() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut probe = Probe::tcp(relay.tcp_addr()).await;
    assert_eq!(error_code(&probe.challenge().await), Some(401));
    assert_eq!(
        error_code(&probe.allocate(&username, "wrong").await),
        Some(401)
    );
    let response = probe.allocate(&username, &password).await;
    assert_eq!(response.typ.class, CLASS_SUCCESS_RESPONSE);
    assert_eq!(relay.allocation_count(), 1);
    let denied = probe
        .signed(
            METHOD_CREATE_PERMISSION,
            vec![peer("10.0.0.1")],
            &username,
            &password,
        )
        .await;
    assert_eq!(error_code(&denied), Some(403));
    drop(probe);
    assert!(
        eventually(|| relay.allocation_count() == 0).await,
        "allocation freed with its connection"
    );
    assert!(eventually(|| relay.tcp_connection_count() == 0).await);
    relay.close().await;
}

#[tokio::test]
async fn garbage_does_not_hurt_the_relay() {
    let relay = start_relay(|_| {}).await;
    let mut udp = Probe::udp(relay.udp_addr()).await;
    for junk in [
        vec![],
        vec![0u8; 3],
        vec![0xff; 1400],
        // A STUN header that claims more than it carries.
        vec![
            0x00, 0x03, 0x00, 0x40, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
        // ChannelData on a channel nobody bound.
        vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
    ] {
        udp.send_raw(&junk).await;
    }
    // A TCP client that sends neither STUN nor ChannelData is disconnected.
    let mut bad_tcp = Probe::tcp(relay.tcp_addr()).await;
    bad_tcp.send_raw(b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(bad_tcp.recv().await.is_none());
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut probe = Probe::udp(relay.udp_addr()).await;
    assert_eq!(
        error_code(&probe.allocate(&username, &password).await),
        None
    );
    let mut tcp = Probe::tcp(relay.tcp_addr()).await;
    assert_eq!(error_code(&tcp.allocate(&username, &password).await), None);
    relay.close().await;
}

#[tokio::test]
async fn closing_the_relay_closes_every_allocation() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    let mut udp = Probe::udp(relay.udp_addr()).await;
    let mut tcp = Probe::tcp(relay.tcp_addr()).await;
    udp.allocate(&username, &password).await;
    tcp.allocate(&username, &password).await;
    assert_eq!(relay.allocation_count(), 2);
    relay.close().await;
    assert!(eventually(|| relay.allocation_count() == 0).await);
    let _ = METHOD_ALLOCATE;
}

/// An attribute of any type with raw value bytes.
struct RawAttribute(u16, Vec<u8>);

impl stun::message::Setter for RawAttribute {
    fn add_to(&self, m: &mut stun::message::Message) -> Result<(), stun::Error> {
        m.add(stun::attributes::AttrType(self.0), &self.1);
        Ok(())
    }
}

/// RFC 8489 §6.3.1: a request with a comprehension-required attribute the
/// server does not understand gets 420 naming it (after authentication);
/// unknown comprehension-optional ones (0x8000 and up) are ignored.
#[tokio::test]
async fn unknown_comprehension_required_attributes_get_420() {
    let relay = start_relay(|_| {}).await;
    let (user, pass) = rest_pair("ada", 600, SECRET);
    let unknown_of = |msg: &stun::message::Message| {
        let mut unknown = stun::uattrs::UnknownAttributes(Vec::new());
        unknown.get_from(msg).expect("UNKNOWN-ATTRIBUTES");
        unknown.0.iter().map(|t| t.0).collect::<Vec<_>>()
    };

    // Binding (no credentials needed), over UDP.
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let answer = probe
        .request(vec![
            Box::new(stun::agent::TransactionId::new()),
            Box::new(stun::message::BINDING_REQUEST),
            Box::new(RawAttribute(0x0031, vec![1, 2, 3, 4])),
        ])
        .await;
    assert_eq!(error_code(&answer), Some(420));
    assert_eq!(unknown_of(&answer), [0x0031]);

    // Allocate: without credentials 401 first; with them, 420 naming both.
    let extra = || -> Vec<Box<dyn stun::message::Setter>> {
        vec![
            Box::new(turn::proto::reqtrans::RequestedTransport {
                protocol: turn::proto::PROTO_UDP,
            }),
            Box::new(RawAttribute(0x0031, vec![0; 4])),
            Box::new(RawAttribute(0x7F00, vec![0; 8])),
        ]
    };
    let mut tcp = Probe::tcp(relay.tcp_addr()).await;
    assert_eq!(error_code(&tcp.challenge().await), Some(401));
    let answer = tcp.signed(METHOD_ALLOCATE, extra(), &user, &pass).await;
    assert_eq!(error_code(&answer), Some(420));
    assert_eq!(unknown_of(&answer), [0x0031, 0x7F00]);
    assert_eq!(relay.allocation_count(), 0);

    // An unknown comprehension-optional attribute is ignored.
    let answer = tcp
        .signed(
            METHOD_ALLOCATE,
            vec![
                Box::new(turn::proto::reqtrans::RequestedTransport {
                    protocol: turn::proto::PROTO_UDP,
                }),
                Box::new(RawAttribute(0xC057, vec![0; 4])),
            ],
            &user,
            &pass,
        )
        .await;
    assert_eq!(answer.typ.class, CLASS_SUCCESS_RESPONSE, "{answer}");
    relay.close().await;
}

/// A raw request: header and attributes as given, FINGERPRINT if asked.
fn raw_request(
    method: stun::message::Method,
    attrs: Vec<Box<dyn stun::message::Setter>>,
    fingerprint: bool,
) -> Vec<u8> {
    let mut setters: Vec<Box<dyn stun::message::Setter>> = vec![
        Box::new(stun::agent::TransactionId::new()),
        Box::new(stun::message::MessageType::new(
            method,
            stun::message::CLASS_REQUEST,
        )),
    ];
    setters.extend(attrs);
    if fingerprint {
        setters.push(Box::new(stun::fingerprint::FINGERPRINT));
    }
    let mut msg = stun::message::Message::new();
    msg.build(&setters).unwrap();
    msg.raw
}

fn parse(raw: &[u8]) -> stun::message::Message {
    let mut msg = stun::message::Message::new();
    msg.unmarshal_binary(raw).unwrap();
    msg
}

/// What a spoofed-source attacker gets reflected at a victim: every answer to an
/// unauthenticated request stays small (no SOFTWARE, no reason phrase, a
/// 16-character nonce, FINGERPRINT only when the request had one). The first
/// Allocate of a listener is answered by the crate and re-worded by the gate;
/// later ones by the gate: both are measured.
#[tokio::test]
async fn unauthenticated_answers_are_small() {
    use stun::attributes::ATTR_FINGERPRINT;
    use turn::proto::reqtrans::RequestedTransport;
    use turn::proto::PROTO_UDP;

    let relay = start_relay(|c| c.udp_listeners = 1).await;
    let mut probe = Probe::udp(relay.udp_addr()).await;
    let mut ask = async |request: Vec<u8>| {
        probe.send_raw(&request).await;
        let answer = probe
            .recv_raw(Duration::from_secs(2))
            .await
            .expect("an answer");
        (request.len(), answer)
    };

    for fingerprint in [false, true] {
        let (sent, answer) = ask(raw_request(METHOD_BINDING, vec![], fingerprint)).await;
        let msg = parse(&answer);
        assert_eq!(msg.typ.class, CLASS_SUCCESS_RESPONSE);
        assert_eq!(msg.contains(ATTR_FINGERPRINT), fingerprint);
        if !fingerprint {
            assert_eq!((sent, answer.len()), (20, 32), "Binding: 1.6x");
        }
    }
    for round in 0..3 {
        let transport = || -> Vec<Box<dyn stun::message::Setter>> {
            vec![Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            })]
        };
        let (sent, answer) = ask(raw_request(METHOD_ALLOCATE, transport(), false)).await;
        let msg = parse(&answer);
        assert_eq!(error_code(&msg), Some(401), "round {round}");
        assert!(!msg.contains(ATTR_FINGERPRINT));
        let nonce = TextAttribute::get_from_as(&msg, ATTR_NONCE).unwrap().text;
        assert_eq!(nonce.len(), 16, "round {round}");
        assert!(
            answer.len() * 10 <= sent * 22,
            "round {round}: 401 of {} B to {sent} B",
            answer.len()
        );
        let (_, answer) = ask(raw_request(METHOD_ALLOCATE, transport(), true)).await;
        assert!(parse(&answer).contains(ATTR_FINGERPRINT), "round {round}");
    }
    let (sent, answer) = ask(raw_request(METHOD_REFRESH, vec![], false)).await;
    assert_eq!(error_code(&parse(&answer)), Some(437));
    assert!(
        answer.len() * 10 <= sent * 16,
        "437 of {} B to {sent} B",
        answer.len()
    );
    relay.close().await;
}

/// The gate hands clients its own nonce and signs what it hands the crate again
/// with the crate's: a whole session works on the gate's nonce, on every listener.
#[tokio::test]
async fn clients_authenticate_with_the_gates_nonce() {
    let relay = start_relay(|_| {}).await;
    let (username, password) = rest_pair("alice", 600, SECRET);
    for mut probe in [
        Probe::udp(relay.udp_addr()).await,
        Probe::tcp(relay.tcp_addr()).await,
    ] {
        assert_eq!(error_code(&probe.challenge().await), Some(401));
        let nonce = probe.nonce.clone().unwrap();
        assert_eq!(nonce.len(), 16);
        let allocate = probe.allocate(&username, &password).await;
        assert_eq!(allocate.typ.class, CLASS_SUCCESS_RESPONSE);
        assert_eq!(probe.nonce.as_deref(), Some(nonce.as_str()));
        let permit = probe
            .permit(&username, &password, "8.8.8.8:53".parse().unwrap())
            .await;
        assert_eq!(permit.typ.class, CLASS_SUCCESS_RESPONSE);
        let refresh = probe.refresh(&username, &password).await;
        assert_eq!(refresh.typ.class, CLASS_SUCCESS_RESPONSE);
    }
    relay.close().await;
}
