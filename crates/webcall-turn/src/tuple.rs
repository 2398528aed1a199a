//! Who an allocation belongs to, in the relay's own words: the client-to-server
//! [`Transport`] and the [`FiveTuple`] (transport, client address, listener
//! address) that names "this client over this transport" everywhere in the
//! crate — the gate's allocation table, the data plane's relays, the TCP and
//! TLS connections. Depends on nothing else of the crate.

use std::net::SocketAddr;

/// The client-to-server transport of an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Transport {
    Udp,
    Tcp,
    /// TURN over TLS (on the HTTPS port or `TURN_TLS_LISTEN`).
    Tls,
}

/// Identifies an allocation: transport, client address, listener address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FiveTuple {
    pub(crate) transport: Transport,
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
}
