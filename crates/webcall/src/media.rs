//! Routed calls' wiring: the server's media end ([`Sfu`], `webcall-sfu`) on
//! its one UDP port, the addresses it tells clients, and the recorder of
//! routed calls ([`DiskRecorder`], `webcall-record`) on `RECORDING_DIR`. Both
//! go to the hub; the recorder also serves the recordings' REST side.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
    let port = match settings.udp_port {
        // Any free port: found first, so that the candidates can name it.
        0 => std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
            .and_then(|socket| socket.local_addr())
            .context("SFU_UDP_PORT=0: no free UDP port")?
            .port(),
        port => port,
    };
    let bind = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port);
    let candidates: Vec<SocketAddr> = candidate_ips(config)
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    let sfu = Sfu::bind(SfuConfig {
        bind,
        candidates: candidates.clone(),
        audio_top_n: settings.audio_top_n,
    })
    .await
    .with_context(|| format!("cannot bind the SFU's UDP {bind} (SFU_UDP_PORT)"))?;
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

/// The addresses clients are told to send media to: `SFU_PUBLIC_IP`, else
/// `TURN_PUBLIC_IP`, else the host's primary address (IPv4: the media end
/// listens on IPv4).
fn candidate_ips(config: &Config) -> Vec<IpAddr> {
    let configured = &config.media.public_ips;
    let ips: Vec<IpAddr> = if !configured.is_empty() {
        configured.clone()
    } else if let Some(ip) = config.turn.as_ref().and_then(|turn| turn.public_ip) {
        vec![ip]
    } else if let Some(ip) = webcall_turn::detect_public_ip() {
        tracing::info!(%ip, "SFU_PUBLIC_IP not set: routed calls' media on the host's primary address (set it behind 1:1 NAT)");
        vec![ip]
    } else {
        tracing::warn!("SFU_PUBLIC_IP not set and no primary address found: routed calls' media on 127.0.0.1, which only local clients reach");
        vec![IpAddr::from([127, 0, 0, 1])]
    };
    let (v4, v6): (Vec<IpAddr>, Vec<IpAddr>) = ips.into_iter().partition(IpAddr::is_ipv4);
    if !v6.is_empty() {
        tracing::warn!(ignored = ?v6, "the SFU listens on IPv4 only: IPv6 addresses in SFU_PUBLIC_IP are not offered");
    }
    v4
}
