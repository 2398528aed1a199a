//! `/readyz` for the relay: [`TurnRelay`] as a [`HealthCheck`], which sends a
//! STUN Binding request to its own UDP listener.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use stun::agent::TransactionId;
use stun::message::{Message, BINDING_REQUEST, BINDING_SUCCESS};
use tokio::net::UdpSocket;
use webcall_domain::ports::HealthCheck;
use webcall_domain::DomainError;

use crate::relay::TurnRelay;

/// Where to send a health-check Binding request: the listener itself, or
/// loopback when it listens on every interface.
fn probe_target(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

/// `/readyz` for the relay: it answers a STUN Binding request on UDP.
#[async_trait]
impl HealthCheck for TurnRelay {
    fn name(&self) -> &'static str {
        "turn"
    }

    async fn check(&self) -> Result<(), DomainError> {
        let target = probe_target(self.udp_addr());
        let bind: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(DomainError::infrastructure)?;
        let mut request = Message::new();
        request
            .build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
            .map_err(|e| DomainError::infrastructure(e.to_string()))?;
        let mut buf = [0u8; 1500];
        for _ in 0..3 {
            socket
                .send_to(&request.raw, target)
                .await
                .map_err(DomainError::infrastructure)?;
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buf)).await
            {
                let mut response = Message::new();
                if response.unmarshal_binary(&buf[..n]).is_ok()
                    && response.typ == BINDING_SUCCESS
                    && response.transaction_id == request.transaction_id
                {
                    return Ok(());
                }
            }
        }
        Err(DomainError::infrastructure(
            "the TURN relay does not answer STUN Binding requests",
        ))
    }
}
