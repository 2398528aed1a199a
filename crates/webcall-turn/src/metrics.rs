//! The relay's metrics: help texts, and every counter at zero from the start.
//! They are recorded by the gate (auth failures, forbidden peers, quota
//! refusals, permissions, channel bindings), `allocations`, `dataplane` and
//! `counters` (relayed packets and bytes). The gauges of what the relay holds
//! (allocations, connections) are sampled and described by the binary.

use metrics::{counter, describe_counter, Unit};

/// Describes the relay's metrics to the installed recorder and starts its
/// counters at zero (a series that appears only after its first event makes
/// rates and alerts misleading).
pub fn describe_metrics() {
    describe_counter!("webcall_turn_allocations_total", "TURN allocations made");
    describe_counter!(
        "webcall_turn_permissions_total",
        "TURN permissions created or refreshed"
    );
    describe_counter!(
        "webcall_turn_channel_binds_total",
        "TURN channel bindings made or refreshed"
    );
    describe_counter!(
        "webcall_turn_relayed_packets_total",
        "Packets through the relay, by direction"
    );
    describe_counter!(
        "webcall_turn_relayed_bytes_total",
        Unit::Bytes,
        "Bytes through the relay, by direction"
    );
    describe_counter!(
        "webcall_turn_auth_failures_total",
        "TURN requests refused for their credentials (401)"
    );
    describe_counter!(
        "webcall_turn_forbidden_peers_total",
        "TURN permissions refused for the peer's address (403), and packets dropped for a peer the policy refuses"
    );
    describe_counter!(
        "webcall_turn_quota_refusals_total",
        "TURN allocations refused over quota (486)"
    );
    for direction in ["to_peer", "to_client"] {
        counter!("webcall_turn_relayed_packets_total", "direction" => direction).absolute(0);
        counter!("webcall_turn_relayed_bytes_total", "direction" => direction).absolute(0);
    }
    for name in [
        "webcall_turn_allocations_total",
        "webcall_turn_permissions_total",
        "webcall_turn_channel_binds_total",
        "webcall_turn_auth_failures_total",
        "webcall_turn_forbidden_peers_total",
        "webcall_turn_quota_refusals_total",
    ] {
        counter!(name).absolute(0);
    }
}
