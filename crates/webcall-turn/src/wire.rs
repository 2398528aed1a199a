//! Just enough of the STUN/TURN wire format to classify datagrams cheaply and to
//! build the error responses the gate sends itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use stun::attributes::{AttrType, ATTR_XOR_PEER_ADDRESS};
use stun::error_code::{ErrorCode, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{Message, MessageType, Setter, CLASS_ERROR_RESPONSE};
use stun::textattrs::TextAttribute;

const MAGIC_COOKIE: u32 = 0x2112_A442;

// Message types (method + class) the gate cares about.
pub const ALLOCATE_REQUEST: u16 = 0x0003;
pub const ALLOCATE_SUCCESS: u16 = 0x0103;
pub const ALLOCATE_ERROR: u16 = 0x0113;
pub const REFRESH_REQUEST: u16 = 0x0004;
pub const CREATE_PERMISSION_REQUEST: u16 = 0x0008;
pub const CHANNEL_BIND_REQUEST: u16 = 0x0009;
pub const CREATE_PERMISSION_SUCCESS: u16 = 0x0108;
pub const CHANNEL_BIND_SUCCESS: u16 = 0x0109;
pub const SEND_INDICATION: u16 = 0x0016;
pub const DATA_INDICATION: u16 = 0x0017;

/// The STUN message type of `buf`, if it looks like a STUN message (RFC 8489:
/// top two bits zero, the magic cookie, room for the header).
pub fn stun_type(buf: &[u8]) -> Option<u16> {
    if buf.len() < 20 || buf[0] & 0xC0 != 0 {
        return None;
    }
    if u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC_COOKIE {
        return None;
    }
    Some(u16::from_be_bytes([buf[0], buf[1]]))
}

/// Whether a message type is an error response (class bits 0b11).
pub fn is_error_response(typ: u16) -> bool {
    typ & 0x0110 == 0x0110
}

/// A text attribute (USERNAME, REALM, NONCE) of `msg`.
pub fn text(msg: &Message, attr: AttrType) -> Option<String> {
    TextAttribute::get_from_as(msg, attr).ok().map(|t| t.text)
}

/// Every XOR-PEER-ADDRESS in `msg` (RFC 8656 allows several in CreatePermission);
/// `None` for one that does not decode.
pub fn peer_ips(msg: &Message) -> Vec<Option<IpAddr>> {
    let txid = msg.transaction_id.0;
    msg.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .map(|a| xor_ip(&a.value, &txid))
        .collect()
}

fn xor_ip(value: &[u8], txid: &[u8; 12]) -> Option<IpAddr> {
    let cookie = MAGIC_COOKIE.to_be_bytes();
    match (value.get(1)?, value.len()) {
        (1, 8) => {
            let mut ip = [0u8; 4];
            for i in 0..4 {
                ip[i] = value[4 + i] ^ cookie[i];
            }
            Some(IpAddr::V4(Ipv4Addr::from(ip)))
        }
        (2, 20) => {
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&cookie);
            mask[4..].copy_from_slice(txid);
            let mut ip = [0u8; 16];
            for i in 0..16 {
                ip[i] = value[4 + i] ^ mask[i];
            }
            Some(IpAddr::V6(Ipv6Addr::from(ip)))
        }
        _ => None,
    }
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
/// MESSAGE-INTEGRITY when the request authenticated, then FINGERPRINT.
pub fn error_response(
    request: &Message,
    code: ErrorCode,
    extra: Vec<Box<dyn Setter>>,
    integrity: Option<MessageIntegrity>,
) -> Option<Vec<u8>> {
    let mut setters: Vec<Box<dyn Setter>> = vec![
        Box::new(request.transaction_id),
        Box::new(MessageType::new(request.typ.method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason(code).as_bytes().to_vec(),
        }),
    ];
    setters.extend(extra);
    if let Some(integrity) = integrity {
        setters.push(Box::new(integrity));
    }
    setters.push(Box::new(FINGERPRINT));
    let mut response = Message::new();
    response.build(&setters).ok()?;
    Some(response.raw)
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
        assert!(is_error_response(ALLOCATE_ERROR));
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
            peer_ips(&decoded),
            vec![
                Some("8.8.8.8".parse().unwrap()),
                Some("fe80::1".parse().unwrap())
            ]
        );
    }
}
