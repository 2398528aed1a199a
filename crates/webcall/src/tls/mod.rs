//! TLS served by the binary itself: HTTPS on the HTTP port and TURN over TLS.
//!
//! - `certificates`: where the certificate comes from (files or ACME), the
//!   server configs with our ALPN list, and the handshake;
//! - `front`: per connection, the handshake under bounds and the routing of
//!   HTTPS to axum and TURN over TLS to the relay.

mod certificates;
mod front;

pub use certificates::{first_dns_name, Certificates, TlsIo};
pub use front::{
    Rewind, TlsFront, FIRST_BYTES_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_HANDSHAKES, MAX_HANDSHAKES_PER_IP,
};
