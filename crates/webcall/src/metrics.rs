//! The process's Prometheus exporter: installed once, with the help text of
//! every metric and every counter at zero from the start (each crate describes
//! its own; this file the gauges it samples and the counters of `tls::front`
//! and `connections`); and what a scrape renders (the gauges sampled at that
//! moment, then the exporter's text).

use std::sync::{Arc, OnceLock};

use metrics::{counter, describe_counter, describe_gauge, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use webcall_app::hub::Hub;
use webcall_turn::TurnRelay;

/// What `/metrics` serves: the gauges of `hub` and `relay` as they are now,
/// then everything the exporter holds.
pub(crate) fn render(
    hub: Arc<Hub>,
    relay: Option<Arc<TurnRelay>>,
) -> webcall_http::metrics::Render {
    let handle = handle();
    Arc::new(move || {
        gauge!("webcall_peers").set(hub.local_peer_count() as f64);
        gauge!("webcall_rooms").set(hub.local_room_count() as f64);
        if let Some(relay) = &relay {
            gauge!("webcall_turn_allocations").set(relay.allocation_count() as f64);
            gauge!("webcall_turn_tcp_connections").set(relay.tcp_connection_count() as f64);
            gauge!("webcall_turn_tls_connections").set(relay.tls_connection_count() as f64);
        }
        handle.render()
    })
}

/// The process-wide Prometheus recorder (installed once; every `Application` in
/// a process, as in the tests, shares it).
fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), &buckets)
                .expect("static buckets are valid")
                .install_recorder()
                .expect("the only metrics recorder");
            describe_metrics();
            handle
        })
        .clone()
}

/// Help texts, and every counter at zero from the start (a series that appears
/// only after its first event makes rates and alerts misleading): each crate
/// describes what it records; the binary what it samples and counts itself.
fn describe_metrics() {
    webcall_http::metrics::describe_metrics();
    webcall_app::metrics::describe_metrics();
    webcall_turn::describe_metrics();
    describe_gauge!(
        "webcall_peers",
        "Peers connected to this instance (or within their resume grace)"
    );
    describe_gauge!("webcall_rooms", "Rooms with peers on this instance");
    describe_gauge!("webcall_turn_allocations", "TURN allocations alive");
    describe_gauge!(
        "webcall_turn_tcp_connections",
        "TURN client connections open over TCP and TLS"
    );
    describe_gauge!(
        "webcall_turn_tls_connections",
        "TURN-over-TLS client connections open"
    );
    describe_counter!(
        "webcall_tls_refused_total",
        "TLS connections closed before their handshake: too many at once (handshakes) or from one address (per_ip)"
    );
    describe_counter!(
        "webcall_http_refused_total",
        "HTTP-port connections closed at accept: too many from one address (per_ip)"
    );
    for reason in ["handshakes", "per_ip"] {
        counter!("webcall_tls_refused_total", "reason" => reason).absolute(0);
    }
    counter!("webcall_http_refused_total", "reason" => "per_ip").absolute(0);
}
