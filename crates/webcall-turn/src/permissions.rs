//! The permissions (RFC 8656 §9, 5 min) and channel bindings (§12, 10 min) of
//! one allocation, as the data plane mirrors them from the crate's successful
//! responses. Expired entries count as absent; a channel binding also installs
//! a permission, and a channel is used only while its peer is permitted.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// RFC 8656 §9: a permission lasts 300 s unless refreshed.
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// RFC 8656 §12: a channel binding lasts 600 s unless refreshed.
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);

/// The permissions and channels of one allocation.
#[derive(Default)]
pub(crate) struct Table {
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, (SocketAddr, Instant)>,
    by_peer: HashMap<SocketAddr, u16>,
}

/// Entries a table holds before expired ones are swept on insert.
pub(crate) const SWEEP_ABOVE: usize = 64;

impl Table {
    pub(crate) fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|until| *until > now)
    }

    /// The live channel bound to `peer`, if the peer is also permitted.
    pub(crate) fn channel_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        let number = *self.by_peer.get(&peer)?;
        let (_, until) = self.channels.get(&number)?;
        (*until > now && self.permitted(peer.ip(), now)).then_some(number)
    }

    /// The permitted peer of a live channel.
    pub(crate) fn peer_of(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        let (peer, until) = self.channels.get(&number)?;
        (*until > now && self.permitted(peer.ip(), now)).then_some(*peer)
    }

    pub(crate) fn permit(&mut self, ip: IpAddr, now: Instant) {
        if self.permissions.len() >= SWEEP_ABOVE {
            self.permissions.retain(|_, until| *until > now);
        }
        self.permissions.insert(ip, now + PERMISSION_LIFETIME);
    }

    pub(crate) fn bind(&mut self, number: u16, peer: SocketAddr, now: Instant) {
        if self.channels.len() >= SWEEP_ABOVE {
            let by_peer = &mut self.by_peer;
            self.channels.retain(|_, (peer, until)| {
                let live = *until > now;
                if !live {
                    by_peer.remove(peer);
                }
                live
            });
        }
        // The crate refuses rebinding a number or a peer elsewhere while live; an
        // expired binding may be replaced.
        if let Some((old_peer, _)) = self.channels.insert(number, (peer, now + CHANNEL_LIFETIME)) {
            self.by_peer.remove(&old_peer);
        }
        if let Some(old_number) = self.by_peer.insert(peer, number) {
            if old_number != number {
                self.channels.remove(&old_number);
            }
        }
        self.permit(peer.ip(), now);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    fn at(secs: u64) -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_secs(secs)
    }

    #[test]
    fn a_channel_needs_a_live_permission_and_expires() {
        let peer: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        let mut table = Table::default();
        table.bind(0x4001, peer, at(0));
        assert_eq!(table.peer_of(0x4001, at(1)), Some(peer));
        assert_eq!(table.channel_of(peer, at(1)), Some(0x4001));
        // The permission the binding installed lapses first (300 s < 600 s).
        assert_eq!(table.peer_of(0x4001, at(301)), None);
        table.permit(peer.ip(), at(301));
        assert_eq!(table.peer_of(0x4001, at(302)), Some(peer));
        assert_eq!(table.peer_of(0x4001, at(601)), None);
        assert_eq!(table.channel_of(peer, at(601)), None);
    }

    #[test]
    fn rebinding_after_expiry_replaces_both_directions() {
        let first: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        let second: SocketAddr = "203.0.113.6:4000".parse().unwrap();
        let mut table = Table::default();
        table.bind(0x4001, first, at(0));
        table.bind(0x4001, second, at(700));
        assert_eq!(table.peer_of(0x4001, at(701)), Some(second));
        assert_eq!(table.channel_of(first, at(701)), None);
        assert_eq!(table.channel_of(second, at(701)), Some(0x4001));
    }

    #[test]
    fn expired_entries_are_swept_when_the_table_grows() {
        let mut table = Table::default();
        for i in 0..SWEEP_ABOVE as u16 {
            table.bind(
                0x4000 + i,
                SocketAddr::from(([203, 0, 113, i as u8], 1000)),
                at(0),
            );
        }
        table.bind(0x4FFF, "203.0.113.9:9".parse().unwrap(), at(1000));
        assert_eq!(table.channels.len(), 1);
        assert_eq!(table.by_peer.len(), 1);
        assert_eq!(table.permissions.len(), 1);
    }
}
