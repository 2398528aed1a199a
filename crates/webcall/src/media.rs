//! Routed calls' wiring: the server's media end ([`Sfu`], `webcall-sfu`) on
//! its one UDP port, the addresses it tells clients, and the recorder of
//! routed calls ([`DiskRecorder`], `webcall-record`) on `RECORDING_DIR`. Both
//! go to the hub; the recorder also serves the recordings' REST side.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use webcall_record::DiskRecorder;
use webcall_sfu::{Sfu, SfuConfig};

use crate::config::Config;

/// What routed calls run on.
pub(crate) struct Media {
    /// The media end, unless routed calls are off (`SFU_ENABLED=false`, or
    /// several instances share rooms through Redis).
    pub(crate) sfu: Option<Arc<Sfu>>,
    /// Every recording is written and found here.
    pub(crate) recorder: Arc<DiskRecorder>,
    /// The media end's addresses as clients reach them (the relay lets
    /// clients through to them).
    pub(crate) candidates: Vec<SocketAddr>,
}

/// Creates the recorder (and `RECORDING_DIR`) and binds the media end.
pub(crate) async fn start(config: &Config) -> anyhow::Result<Media> {
    let settings = &config.media;
    let dir = &settings.recording_dir;
    // The one place the recorder is made: the hub and the REST side share it.
    let recorder = Arc::new(
        DiskRecorder::new(dir.clone())
            .with_context(|| format!("cannot create {} (RECORDING_DIR)", dir.display()))?,
    );
    if !settings.enabled {
        tracing::info!("routed calls are off (SFU_ENABLED=false): every call is a mesh");
        return Ok(Media {
            sfu: None,
            recorder,
            candidates: Vec::new(),
        });
    }
    if config.storage.redis_url.is_some() {
        tracing::info!("several instances share rooms (REDIS_URL): routed calls are unavailable, every call is a mesh");
        return Ok(Media {
            sfu: None,
            recorder,
            candidates: Vec::new(),
        });
    }
    let port = settings.udp_port;
    let ips = candidate_ips(config);
    // One dual-stack socket (IPv6 and IPv4) where the host has IPv6, else IPv4.
    let sfu = match bind_media(
        settings.audio_top_n,
        Ipv6Addr::UNSPECIFIED.into(),
        port,
        &ips,
    )
    .await
    {
        Ok(sfu) => sfu,
        Err(e) => {
            tracing::info!(error = %e, "no IPv6 socket for routed calls' media: IPv4 only");
            bind_media(
                settings.audio_top_n,
                Ipv4Addr::UNSPECIFIED.into(),
                port,
                &ips,
            )
            .await
            .with_context(|| format!("cannot bind the SFU's UDP port {port} (SFU_UDP_PORT)"))?
        }
    };
    let candidates: Vec<SocketAddr> = sfu.candidates().to_vec();
    // Not "listening addr=": that is the HTTP port's line, which scripts look for.
    tracing::info!(
        udp = %sfu.local_addr(),
        candidates = ?candidates,
        "routed calls' media (SFU)"
    );
    Ok(Media {
        sfu: Some(sfu),
        recorder,
        candidates,
    })
}

/// Binds the media end on `ip` (all addresses of one family, or both for
/// `::`), offering those of `ips` ([`candidate_ips`]) of the families it can
/// reach.
async fn bind_media(
    audio_top_n: usize,
    ip: IpAddr,
    port: u16,
    ips: &[IpAddr],
) -> std::io::Result<Arc<Sfu>> {
    let both = ip.is_ipv6();
    let candidates = ips
        .iter()
        .filter(|c| both || c.is_ipv4())
        // Port 0: the port the socket gets (SFU_UDP_PORT=0 picks a free one).
        .map(|c| SocketAddr::new(*c, 0))
        .collect();
    Sfu::bind(SfuConfig {
        bind: SocketAddr::new(ip, port),
        candidates,
        audio_top_n,
    })
    .await
}

/// The addresses clients are told to send media to: `SFU_PUBLIC_IP`, else
/// the relay's public addresses (`TURN_PUBLIC_IP`, `TURN_PUBLIC_IP6`), else
/// the host's primary IPv4 address and its global IPv6 address if it has one.
fn candidate_ips(config: &Config) -> Vec<IpAddr> {
    let configured = &config.media.public_ips;
    if !configured.is_empty() {
        return configured.clone();
    }
    let turn = config.turn.as_ref();
    let v4 = turn
        .and_then(|turn| turn.public_ip)
        .or_else(webcall_turn::detect_public_ip);
    let v6 = turn
        .and_then(|turn| turn.public_ip6)
        .or_else(webcall_turn::detect_public_ip6)
        .map(IpAddr::V6);
    let ips: Vec<IpAddr> = v4.into_iter().chain(v6).collect();
    if ips.is_empty() {
        tracing::warn!("SFU_PUBLIC_IP not set and no primary address found: routed calls' media on 127.0.0.1, which only local clients reach");
        return vec![IpAddr::from([127, 0, 0, 1])];
    }
    tracing::info!(ips = ?ips, "SFU_PUBLIC_IP not set: routed calls' media on these addresses (set it behind 1:1 NAT)");
    ips
}
