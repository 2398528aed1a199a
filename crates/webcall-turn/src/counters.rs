//! The relay's per-packet counters (`webcall_turn_relayed_packets_total` and
//! `webcall_turn_relayed_bytes_total`, by direction), looked up once: they are
//! bumped on the hot paths of the data plane and of the batched sends.

use std::sync::OnceLock;

/// Which way a relayed datagram went.
#[derive(Clone, Copy)]
pub(crate) enum Direction {
    ToPeer,
    ToClient,
}

/// Per-packet counters, looked up once (this is the relay's hot path).
struct Relayed {
    packets: metrics::Counter,
    bytes: metrics::Counter,
}

/// Counts one relayed datagram of `bytes`.
pub(crate) fn count_relayed(direction: Direction, bytes: usize) {
    count_relayed_many(direction, 1, bytes);
}

/// Counts `packets` relayed datagrams of `bytes` in all.
pub(crate) fn count_relayed_many(direction: Direction, packets: usize, bytes: usize) {
    static TO_PEER: OnceLock<Relayed> = OnceLock::new();
    static TO_CLIENT: OnceLock<Relayed> = OnceLock::new();
    let (cell, label) = match direction {
        Direction::ToPeer => (&TO_PEER, "to_peer"),
        Direction::ToClient => (&TO_CLIENT, "to_client"),
    };
    let counters = cell.get_or_init(|| Relayed {
        packets: metrics::counter!("webcall_turn_relayed_packets_total", "direction" => label),
        bytes: metrics::counter!("webcall_turn_relayed_bytes_total", "direction" => label),
    });
    counters.packets.increment(packets as u64);
    counters.bytes.increment(bytes as u64);
}
