//! Just enough of the STUN/TURN wire format to classify datagrams cheaply, to
//! parse and frame relayed data in place (ChannelData, Send and Data
//! indications) for the data plane, and to build the responses the gate sends
//! itself.
//!
//! One file over 500 lines, on purpose: about 400 lines of codec and their
//! round-trip tests, each encoder beside the parser it mirrors.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use stun::attributes::{
    AttrType, ATTR_CHANNEL_NUMBER, ATTR_DATA, ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY,
    ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE, ATTR_REQUESTED_ADDRESS_FAMILY,
    ATTR_XOR_PEER_ADDRESS, ATTR_XOR_RELAYED_ADDRESS,
};
use stun::error_code::{ErrorCode, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, MessageType, Setter, BINDING_SUCCESS, CLASS_ERROR_RESPONSE};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;

const MAGIC_COOKIE: u32 = 0x2112_A442;

// Message types (method + class) the gate cares about.
pub(crate) const BINDING_REQUEST: u16 = 0x0001;
pub(crate) const ALLOCATE_REQUEST: u16 = 0x0003;
pub(crate) const ALLOCATE_SUCCESS: u16 = 0x0103;
pub(crate) const REFRESH_REQUEST: u16 = 0x0004;
pub(crate) const CREATE_PERMISSION_REQUEST: u16 = 0x0008;
pub(crate) const CHANNEL_BIND_REQUEST: u16 = 0x0009;
pub(crate) const CREATE_PERMISSION_SUCCESS: u16 = 0x0108;
pub(crate) const CHANNEL_BIND_SUCCESS: u16 = 0x0109;
pub(crate) const SEND_INDICATION: u16 = 0x0016;
pub(crate) const DATA_INDICATION: u16 = 0x0017;

/// The STUN message type of `buf`, if it looks like a STUN message (RFC 8489:
/// top two bits zero, the magic cookie, room for the header).
pub(crate) fn stun_type(buf: &[u8]) -> Option<u16> {
    if buf.len() < 20 || buf[0] & 0xC0 != 0 {
        return None;
    }
    if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE {
        return None;
    }
    Some(u16::from_be_bytes([buf[0], buf[1]]))
}

/// ChannelData or a Send indication: data on its way to a peer.
pub(crate) fn is_relayed_data(buf: &[u8]) -> bool {
    (buf.len() >= 4 && buf[0] & 0xC0 == 0x40) || stun_type(buf) == Some(SEND_INDICATION)
}

/// Whether a message type is an error response (class bits 0b11).
pub(crate) fn is_error_response(typ: u16) -> bool {
    typ & 0x0110 == 0x0110
}

/// A text attribute (USERNAME, REALM, NONCE) of `msg`.
pub(crate) fn text(msg: &Message, attr: AttrType) -> Option<String> {
    TextAttribute::get_from_as(msg, attr).ok().map(|t| t.text)
}

/// Every XOR-PEER-ADDRESS in `msg` (RFC 8656 allows several in CreatePermission);
/// `None` for one that does not decode.
pub(crate) fn peer_addrs(msg: &Message) -> Vec<Option<SocketAddr>> {
    let txid = msg.transaction_id.0;
    msg.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .map(|a| xor_addr(&a.value, &txid))
        .collect()
}

/// XOR-RELAYED-ADDRESS of an Allocate success response.
pub(crate) fn relayed_addr(msg: &Message) -> Option<SocketAddr> {
    let txid = msg.transaction_id.0;
    let attr = msg
        .attributes
        .0
        .iter()
        .find(|a| a.typ == ATTR_XOR_RELAYED_ADDRESS)?;
    xor_addr(&attr.value, &txid)
}

/// Whether a message type is a request (class bits 0b00).
pub(crate) fn is_request(typ: u16) -> bool {
    typ & 0x0110 == 0
}

/// Comprehension-required attributes (below 0x8000) this server understands
/// in a request: STUN (RFC 8489), TURN (RFC 8656), RFC 5780's and ICE's.
const UNDERSTOOD: &[u16] = &[
    0x0001, // MAPPED-ADDRESS
    0x0003, // CHANGE-REQUEST
    0x0006, // USERNAME
    0x0008, // MESSAGE-INTEGRITY
    0x0009, // ERROR-CODE
    0x000A, // UNKNOWN-ATTRIBUTES
    0x000C, // CHANNEL-NUMBER
    0x000D, // LIFETIME
    0x0010, // BANDWIDTH (RFC 5766)
    0x0012, // XOR-PEER-ADDRESS
    0x0013, // DATA
    0x0014, // REALM
    0x0015, // NONCE
    0x0016, // XOR-RELAYED-ADDRESS
    0x0017, // REQUESTED-ADDRESS-FAMILY
    0x0018, // EVEN-PORT
    0x0019, // REQUESTED-TRANSPORT
    0x001A, // DONT-FRAGMENT
    0x001C, // MESSAGE-INTEGRITY-SHA256
    0x001D, // PASSWORD-ALGORITHM
    0x001E, // USERHASH
    0x0020, // XOR-MAPPED-ADDRESS
    0x0022, // RESERVATION-TOKEN
    0x0024, // PRIORITY
    0x0025, // USE-CANDIDATE
    0x0026, // PADDING
    0x0027, // RESPONSE-PORT
    0x002A, // CONNECTION-ID
];

/// The comprehension-required attributes of `msg` this server does not
/// understand (RFC 8489 §6.3.1: a request with any gets 420).
pub(crate) fn unknown_required(msg: &Message) -> Vec<AttrType> {
    let mut unknown: Vec<AttrType> = msg
        .attributes
        .0
        .iter()
        .map(|a| a.typ)
        .filter(|t| t.0 < 0x8000 && !UNDERSTOOD.contains(&t.0))
        .collect();
    unknown.dedup();
    unknown
}

/// REQUESTED-ADDRESS-FAMILY values (RFC 8656 §18.10).
pub(crate) const FAMILY_IPV4: u8 = 0x01;
pub(crate) const FAMILY_IPV6: u8 = 0x02;

/// The family an Allocate asks its relayed address in (REQUESTED-ADDRESS-FAMILY's
/// first byte), if it asks.
pub(crate) fn requested_family(msg: &Message) -> Option<u8> {
    msg.attributes
        .0
        .iter()
        .find(|a| a.typ == ATTR_REQUESTED_ADDRESS_FAMILY)
        .and_then(|a| a.value.first().copied())
}

/// CHANNEL-NUMBER of a ChannelBind request, if valid.
pub(crate) fn channel_number(msg: &Message) -> Option<u16> {
    let attr = msg
        .attributes
        .0
        .iter()
        .find(|a| a.typ == ATTR_CHANNEL_NUMBER)?;
    let number = u16::from_be_bytes([*attr.value.first()?, *attr.value.get(1)?]);
    is_channel_number(number).then_some(number)
}

/// Channel numbers a client may bind: 0x4000-0x7FFF as in RFC 5766, which the
/// crate and coturn's clients still use (RFC 8656 narrowed it to 0x4FFF).
pub(crate) fn is_channel_number(number: u16) -> bool {
    (0x4000..=0x7FFF).contains(&number)
}

/// Decodes an XOR-MAPPED-ADDRESS-style value (family, x-port, x-address).
fn xor_addr(value: &[u8], txid: &[u8; 12]) -> Option<SocketAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([*value.get(2)?, *value.get(3)?]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (value.get(1)?, value.len()) {
        (1, 8) => {
            let mut ip = [0u8; 4];
            for i in 0..4 {
                ip[i] = value[4 + i] ^ cookie[i];
            }
            IpAddr::V4(Ipv4Addr::from(ip))
        }
        (2, 20) => {
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&cookie);
            mask[4..].copy_from_slice(txid);
            let mut ip = [0u8; 16];
            for i in 0..16 {
                ip[i] = value[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(ip))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Writes the XOR-PEER-ADDRESS value of `addr` into `out`; returns its length
/// (8 for IPv4, 20 for IPv6).
fn put_xor_addr(out: &mut [u8], addr: SocketAddr, txid: &[u8; 12]) -> usize {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    out[0] = 0;
    out[2..4].copy_from_slice(&(addr.port() ^ (MAGIC_COOKIE >> 16) as u16).to_be_bytes());
    match addr.ip() {
        IpAddr::V4(ip) => {
            out[1] = 1;
            for (i, octet) in ip.octets().iter().enumerate() {
                out[4 + i] = octet ^ cookie[i];
            }
            8
        }
        IpAddr::V6(ip) => {
            out[1] = 2;
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&cookie);
            mask[4..].copy_from_slice(txid);
            for (i, octet) in ip.octets().iter().enumerate() {
                out[4 + i] = octet ^ mask[i];
            }
            20
        }
    }
}

/// The ChannelData header (RFC 8656 §12.4) for `len` bytes on `number`.
pub(crate) fn channel_data_header(number: u16, len: usize) -> [u8; 4] {
    let [a, b] = number.to_be_bytes();
    let [c, d] = (len as u16).to_be_bytes();
    [a, b, c, d]
}

/// A ChannelData message from a client: its channel number and payload, if the
/// length field fits the datagram (UDP may carry padding after it).
pub(crate) fn parse_channel_data(buf: &[u8]) -> Option<(u16, &[u8])> {
    if buf.len() < 4 {
        return None;
    }
    let number = u16::from_be_bytes([buf[0], buf[1]]);
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    (is_channel_number(number) && 4 + len <= buf.len()).then(|| (number, &buf[4..4 + len]))
}

/// Room a Data indication needs in front of its payload: header, XOR-PEER-ADDRESS
/// (IPv6 at most), DATA's own header.
pub(crate) const DATA_INDICATION_HEADROOM: usize = 20 + 4 + 20 + 4;

/// Writes a Data indication's header, XOR-PEER-ADDRESS and DATA header so that
/// they end at `buf[end]`, where the payload of `len` bytes starts; returns where
/// the message starts. The caller pads the payload to four bytes.
pub(crate) fn put_data_indication(
    buf: &mut [u8],
    end: usize,
    peer: SocketAddr,
    len: usize,
    txid: &[u8; 12],
) -> usize {
    let addr_len = if peer.is_ipv4() { 8 } else { 20 };
    let start = end - (20 + 4 + addr_len + 4);
    let body = 4 + addr_len + 4 + padded(len);
    buf[start..start + 2].copy_from_slice(&DATA_INDICATION.to_be_bytes());
    buf[start + 2..start + 4].copy_from_slice(&(body as u16).to_be_bytes());
    buf[start + 4..start + 8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    buf[start + 8..start + 20].copy_from_slice(txid);
    let attr = start + 20;
    buf[attr..attr + 2].copy_from_slice(&ATTR_XOR_PEER_ADDRESS.0.to_be_bytes());
    buf[attr + 2..attr + 4].copy_from_slice(&(addr_len as u16).to_be_bytes());
    put_xor_addr(&mut buf[attr + 4..], peer, txid);
    let data = attr + 4 + addr_len;
    buf[data..data + 2].copy_from_slice(&ATTR_DATA.0.to_be_bytes());
    buf[data + 2..data + 4].copy_from_slice(&(len as u16).to_be_bytes());
    start
}

/// A Send indication's XOR-PEER-ADDRESS and DATA, read straight off the wire.
pub(crate) fn parse_send_indication(buf: &[u8]) -> Option<(SocketAddr, &[u8])> {
    if stun_type(buf)? != SEND_INDICATION {
        return None;
    }
    let body = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let end = 20 + body;
    if end > buf.len() {
        return None;
    }
    let txid: [u8; 12] = buf[8..20].try_into().ok()?;
    let (mut peer, mut data) = (None, None);
    let mut at = 20;
    while at + 4 <= end {
        let typ = u16::from_be_bytes([buf[at], buf[at + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
        let value = buf.get(at + 4..at + 4 + len)?;
        if at + 4 + len > end {
            return None;
        }
        match AttrType(typ) {
            ATTR_XOR_PEER_ADDRESS if peer.is_none() => peer = xor_addr(value, &txid),
            ATTR_DATA if data.is_none() => data = Some(value),
            _ => {}
        }
        at += 4 + padded(len);
    }
    Some((peer?, data?))
}

/// `len` rounded up to a multiple of four.
pub(crate) fn padded(len: usize) -> usize {
    (len + 3) & !3
}

fn reason(code: ErrorCode) -> &'static str {
    match code.0 {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        441 => "Wrong Credentials",
        486 => "Allocation Quota Reached",
        _ => "Error",
    }
}

/// An error response to `request` with `code`, then `extra` attributes, then
/// MESSAGE-INTEGRITY when the request authenticated, then FINGERPRINT when the
/// request carried one.
///
/// An answer to an unauthenticated request is what a spoofed-source attacker
/// reflects at a victim, so it is kept as small as the protocol allows: no
/// reason phrase (RFC 8489 lets it be empty; the code says it all), no SOFTWARE.
pub(crate) fn error_response(
    request: &Message,
    code: ErrorCode,
    extra: Vec<Box<dyn Setter>>,
    integrity: Option<MessageIntegrity>,
) -> Option<Vec<u8>> {
    let reason = if integrity.is_some() {
        reason(code)
    } else {
        ""
    };
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(request.transaction_id),
        Box::new(MessageType::new(request.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason.as_bytes().to_vec(),
        }),
    ];
    setters.extend(extra);
    if let Some(integrity) = integrity {
        setters.push(Box::new(integrity));
    }
    if request.contains(ATTR_FINGERPRINT) {
        setters.push(Box::new(FINGERPRINT));
    }
    let mut response = Message::new();
    response.build(&setters).ok()?;
    Some(response.raw)
}

/// A Binding success response: XOR-MAPPED-ADDRESS, and FINGERPRINT only when
/// the request carried one (RFC 8489 §14.7 makes it optional; leaving it out
/// keeps the answer 1.6x a minimal IPv4 request).
pub(crate) fn binding_success(request: &Message, client: SocketAddr) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(request.transaction_id),
        Box::new(BINDING_SUCCESS),
        Box::new(XorMappedAddress {
            ip: client.ip(),
            port: client.port(),
        }),
    ];
    if request.contains(ATTR_FINGERPRINT) {
        setters.push(Box::new(FINGERPRINT));
    }
    let mut response = Message::new();
    response.build(&setters).ok()?;
    Some(response.raw)
}

/// `request` with its NONCE replaced by `nonce` and signed again with
/// `integrity` (FINGERPRINT again if it had one). Attributes after
/// MESSAGE-INTEGRITY other than FINGERPRINT are dropped: RFC 8489 §14.5 has
/// receivers ignore them.
pub(crate) fn with_nonce(
    request: &Message,
    nonce: &str,
    integrity: &MessageIntegrity,
) -> Option<Vec<u8>> {
    let mut out = Message::new();
    out.transaction_id = request.transaction_id;
    out.typ = request.typ;
    out.write_header();
    for attr in &request.attributes.0 {
        match attr.typ {
            ATTR_MESSAGE_INTEGRITY | ATTR_MESSAGE_INTEGRITY_SHA256 | ATTR_FINGERPRINT => break,
            ATTR_NONCE => out.add(ATTR_NONCE, nonce.as_bytes()),
            typ => out.add(typ, &attr.value),
        }
    }
    integrity.add_to(&mut out).ok()?;
    if request.contains(ATTR_FINGERPRINT) {
        FINGERPRINT.add_to(&mut out).ok()?;
    }
    Some(out.raw)
}

#[cfg(test)]
mod tests {
    use stun::agent::TransactionId;
    use stun::message::{BINDING_REQUEST, CLASS_REQUEST, METHOD_ALLOCATE};
    use turn::proto::peeraddr::PeerAddress;

    use super::*;

    #[test]
    fn classifies_stun_and_not_channel_data() {
        let mut msg = Message::new();
        msg.build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        ])
        .unwrap();
        assert_eq!(stun_type(&msg.raw), Some(ALLOCATE_REQUEST));
        let mut binding = Message::new();
        binding
            .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
            .unwrap();
        assert_eq!(stun_type(&binding.raw), Some(0x0001));
        assert_eq!(stun_type(&[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]), None);
        assert_eq!(stun_type(&[0u8; 19]), None);
        assert!(is_error_response(0x0113));
        assert!(!is_error_response(ALLOCATE_SUCCESS));
        assert!(!is_error_response(ALLOCATE_REQUEST));
    }

    #[test]
    fn decodes_every_xor_peer_address() {
        let mut msg = Message::new();
        msg.build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(PeerAddress {
                ip: "8.8.8.8".parse().unwrap(),
                port: 1000,
            }),
            Box::new(PeerAddress {
                ip: "fe80::1".parse().unwrap(),
                port: 2000,
            }),
        ])
        .unwrap();
        let mut decoded = Message::new();
        decoded.unmarshal_binary(&msg.raw).unwrap();
        assert_eq!(
            peer_addrs(&decoded),
            vec![
                Some("8.8.8.8:1000".parse().unwrap()),
                Some("[fe80::1]:2000".parse().unwrap())
            ]
        );
    }

    /// Our Data indication, read back by the `stun` and `turn` crates' decoders.
    #[test]
    fn a_data_indication_built_in_place_decodes() {
        use stun::message::Getter;
        use turn::proto::data::Data;
        for peer in ["203.0.113.7:5004", "[2001:db8::9]:6000"] {
            let peer: SocketAddr = peer.parse().unwrap();
            let payload = b"hello, relay";
            let mut buf = vec![0u8; DATA_INDICATION_HEADROOM + 16];
            let at = DATA_INDICATION_HEADROOM;
            buf[at..at + payload.len()].copy_from_slice(payload);
            let txid = [7u8; 12];
            let start = put_data_indication(&mut buf, at, peer, payload.len(), &txid);
            let frame = &buf[start..at + padded(payload.len())];
            let mut msg = Message::new();
            msg.unmarshal_binary(frame).unwrap();
            assert_eq!(stun_type(frame), Some(DATA_INDICATION));
            let mut decoded = PeerAddress::default();
            decoded.get_from(&msg).unwrap();
            assert_eq!(SocketAddr::new(decoded.ip, decoded.port), peer);
            let mut data = Data::default();
            data.get_from(&msg).unwrap();
            assert_eq!(data.0, payload);
        }
    }

    /// A Send indication built by the `turn` crate, parsed off the wire by ours.
    #[test]
    fn a_send_indication_is_parsed_off_the_wire() {
        use stun::message::{CLASS_INDICATION, METHOD_SEND};
        use turn::proto::data::Data;
        let peer: SocketAddr = "[2001:db8::1]:3478".parse().unwrap();
        let mut msg = Message::new();
        msg.build(&[
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            }),
            Box::new(Data(b"abcde".to_vec())),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        assert!(is_relayed_data(&msg.raw));
        assert_eq!(parse_send_indication(&msg.raw), Some((peer, &b"abcde"[..])));
        // Cut short, or without DATA: nothing to relay.
        assert_eq!(parse_send_indication(&msg.raw[..msg.raw.len() - 12]), None);
        let mut no_data = Message::new();
        no_data
            .build(&[
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
                Box::new(PeerAddress {
                    ip: peer.ip(),
                    port: peer.port(),
                }),
            ])
            .unwrap();
        assert_eq!(parse_send_indication(&no_data.raw), None);
    }

    #[test]
    fn channel_data_length_must_fit_and_the_number_be_valid() {
        let mut frame = channel_data_header(0x4001, 3).to_vec();
        frame.extend_from_slice(&[1, 2, 3, 0]);
        assert!(is_relayed_data(&frame));
        assert_eq!(parse_channel_data(&frame), Some((0x4001, &[1u8, 2, 3][..])));
        assert_eq!(parse_channel_data(&frame[..6]), None);
        let mut reserved = frame.clone();
        reserved[0] = 0x80;
        assert_eq!(parse_channel_data(&reserved), None);
        assert!(!is_relayed_data(&reserved));
    }

    /// Whatever a client sends, the data-plane parsers answer without panicking,
    /// and what they return lies inside the datagram.
    #[test]
    fn random_datagrams_never_panic_the_parsers() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..100_000 {
            let len = (next() % 96) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like a Send indication or ChannelData up front.
            match next() % 4 {
                0 if len >= 20 => {
                    buf[..2].copy_from_slice(&SEND_INDICATION.to_be_bytes());
                    buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                }
                1 if len >= 4 => buf[0] = 0x40 | (buf[0] & 0x3F),
                _ => {}
            }
            if let Some((_, data)) = parse_send_indication(&buf) {
                assert!(data.len() <= buf.len());
            }
            if let Some((number, data)) = parse_channel_data(&buf) {
                assert!(is_channel_number(number) && data.len() + 4 <= buf.len());
            }
            let _ = is_relayed_data(&buf);
        }
    }
}
