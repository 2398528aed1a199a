//! The server's media end for routed calls (SFU mode): every participant of a
//! routed room has one WebRTC session here, and the media each one sends is
//! forwarded to the others of its room without decoding. Built on `str0m`
//! (sans-I/O WebRTC): all sessions share one UDP socket (`SFU_UDP_PORT`),
//! driven by one task.
//!
//! Depends on `webcall-domain` (the [`MediaRouter`] port it implements) and
//! str0m; the `webcall` binary starts it and hands it to the hub.
//!
//! SKELETON: the public API below is the contract between the helpers
//! (`/work/helpers/CONTRACT.md`); the bodies are filled in on the
//! `sfu-engine` branch.

use std::net::SocketAddr;
use std::sync::Arc;

use webcall_domain::media::{MediaRouter, RoomRecording, SfuReplies, SfuReply, SfuSignal};
use webcall_domain::signaling::{PeerId, RoomName};
use webcall_domain::DomainError;

/// What the media end needs to know at start.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The UDP socket every session shares (`SFU_UDP_PORT`, on all addresses).
    pub bind: SocketAddr,
    /// The addresses offered to clients as host candidates (the server's
    /// public address and port; the bound address when empty).
    pub candidates: Vec<SocketAddr>,
    /// In a room larger than this, only this many loudest speakers' audio is
    /// forwarded to each participant (`SFU_AUDIO_TOP_N`).
    pub audio_top_n: usize,
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub sessions: usize,
    pub rooms: usize,
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
}

/// The media end: cheap to share (`Arc`), its work happens on its own task.
pub struct Sfu {
    local_addr: SocketAddr,
}

impl Sfu {
    /// Binds the socket and starts the media end's task on the current tokio runtime.
    pub async fn bind(config: SfuConfig) -> std::io::Result<Arc<Self>> {
        let socket = tokio::net::UdpSocket::bind(config.bind).await?;
        Ok(Arc::new(Self {
            local_addr: socket.local_addr()?,
        }))
    }

    /// The bound socket's address (its port when `SFU_UDP_PORT` was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Ends every session, finishes running recordings and stops the task.
    pub fn shutdown(&self) {}

    pub fn stats(&self) -> SfuStats {
        SfuStats::default()
    }
}

impl MediaRouter for Sfu {
    fn open(
        &self,
        _room: &RoomName,
        _peer: &PeerId,
        _username: &str,
        replies: SfuReplies,
    ) -> Result<(), DomainError> {
        replies(SfuReply::Error {
            code: "failed".into(),
            message: "not built yet".into(),
        });
        Ok(())
    }

    fn signal(&self, _peer: &PeerId, _signal: SfuSignal) {}

    fn close(&self, _peer: &PeerId) {}

    fn record(
        &self,
        _room: &RoomName,
        _recording: Box<dyn RoomRecording>,
    ) -> Result<(), DomainError> {
        Err(DomainError::Invalid {
            field: "recording",
            message: "not built yet",
        })
    }

    fn stop_recording(&self, _room: &RoomName) -> bool {
        false
    }
}
