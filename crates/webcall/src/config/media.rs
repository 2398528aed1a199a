//! Routed calls (SFU mode) and their recordings: whether the server's media
//! end runs (`SFU_ENABLED`), its UDP port (`SFU_UDP_PORT`, one port for every
//! session; 0 = any free one), the addresses it tells clients
//! (`SFU_PUBLIC_IP`; by default `TURN_PUBLIC_IP`, else the host's primary
//! address found at start-up), when a room becomes routed by its size
//! (`SFU_FROM_PEERS`, 0 = never), how many loudest speakers each participant
//! hears in a large room (`SFU_AUDIO_TOP_N`) and where recordings go
//! (`RECORDING_DIR`, by default `recordings` beside the other data, as
//! `ATTACHMENT_DIR`'s `attachments`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use webcall_app::hub::SignalingConfig;

use super::vars::{problem, ConfigError, Vars};

/// The port of routed calls' media, when `SFU_UDP_PORT` is unset.
pub const DEFAULT_SFU_UDP_PORT: u16 = 3479;
/// Loudest speakers forwarded to each participant of a large routed room.
pub const DEFAULT_AUDIO_TOP_N: usize = 3;

/// The server's media end and its recordings.
#[derive(Debug, Clone)]
pub struct MediaSettings {
    /// `SFU_ENABLED` (default true): off, every call stays a mesh.
    pub enabled: bool,
    /// `SFU_UDP_PORT`: one UDP port for every session (0: any free one).
    pub udp_port: u16,
    /// `SFU_PUBLIC_IP`: a comma list; empty: `TURN_PUBLIC_IP`, else detected.
    pub public_ips: Vec<IpAddr>,
    /// `SFU_AUDIO_TOP_N`.
    pub audio_top_n: usize,
    /// `RECORDING_DIR`: created at start.
    pub recording_dir: PathBuf,
}

impl MediaSettings {
    /// Reads the variables; `SFU_FROM_PEERS` goes to the hub's `signaling`.
    /// `attachment_dir` is `ATTACHMENT_DIR`'s default: the default recording
    /// directory goes beside it.
    pub(super) fn parse(
        vars: &Vars,
        signaling: &mut SignalingConfig,
        attachment_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let from_peers: usize = vars.parse_or(
            "SFU_FROM_PEERS",
            signaling.sfu_from_peers.unwrap_or_default(),
        )?;
        // The default in a smaller room is simply never reached.
        if from_peers > signaling.max_peers && vars.get("SFU_FROM_PEERS").is_some() {
            return Err(problem(
                "SFU_FROM_PEERS",
                format!(
                    "must be at most ROOM_MAX_PEERS ({}); 0 = never by size",
                    signaling.max_peers
                ),
            ));
        }
        signaling.sfu_from_peers = (from_peers > 0).then_some(from_peers);
        let audio_top_n = vars.parse_or("SFU_AUDIO_TOP_N", DEFAULT_AUDIO_TOP_N)?;
        if audio_top_n == 0 {
            return Err(problem("SFU_AUDIO_TOP_N", "must be at least 1"));
        }
        let public_ips = vars
            .list("SFU_PUBLIC_IP")
            .iter()
            .map(|ip| ip.parse::<IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| problem("SFU_PUBLIC_IP", "must be a comma list of IP addresses"))?;
        let recording_dir = vars.get("RECORDING_DIR").map_or_else(
            || {
                attachment_dir
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("recordings")
            },
            PathBuf::from,
        );
        Ok(Self {
            enabled: vars.flag("SFU_ENABLED", true)?,
            udp_port: vars.parse_or("SFU_UDP_PORT", DEFAULT_SFU_UDP_PORT)?,
            public_ips,
            audio_top_n,
            recording_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;

    fn read(pairs: &[(&str, &str)]) -> Result<Config, super::ConfigError> {
        let vars: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_vars(&vars)
    }

    #[test]
    fn routed_calls_are_on_by_default_from_five_people_on_port_3479() {
        let config = read(&[]).unwrap();
        let media = &config.media;
        assert!(media.enabled);
        assert_eq!(media.udp_port, 3479);
        assert!(media.public_ips.is_empty());
        assert_eq!(media.audio_top_n, 3);
        assert_eq!(config.signaling.sfu_from_peers, Some(5));
        let small = read(&[("ROOM_MAX_PEERS", "2"), ("SFU_FROM_PEERS", "2")]).unwrap();
        assert_eq!(small.signaling.sfu_from_peers, Some(2));
        // Beside the SQLite file, as the attachments are.
        assert_eq!(media.recording_dir, std::path::Path::new("./recordings"));
        let beside = read(&[("DATABASE_URL", "sqlite:///var/lib/webcall/webcall.db")]).unwrap();
        assert_eq!(
            beside.media.recording_dir,
            std::path::Path::new("/var/lib/webcall/recordings")
        );
    }

    #[test]
    fn each_variable_is_read_and_a_bad_value_names_it() {
        let config = read(&[
            ("SFU_ENABLED", "false"),
            ("SFU_UDP_PORT", "0"),
            ("SFU_PUBLIC_IP", "203.0.113.7, 2001:db8::7"),
            ("SFU_FROM_PEERS", "0"),
            ("SFU_AUDIO_TOP_N", "5"),
            ("RECORDING_DIR", "/srv/recordings"),
        ])
        .unwrap();
        let media = &config.media;
        assert!(!media.enabled);
        assert_eq!(media.udp_port, 0);
        assert_eq!(
            media.public_ips,
            [
                "203.0.113.7".parse::<std::net::IpAddr>().unwrap(),
                "2001:db8::7".parse().unwrap()
            ]
        );
        assert_eq!(config.signaling.sfu_from_peers, None, "0 = never by size");
        assert_eq!(media.audio_top_n, 5);
        assert_eq!(media.recording_dir, std::path::Path::new("/srv/recordings"));
        for (var, bad) in [
            ("SFU_ENABLED", "maybe"),
            ("SFU_UDP_PORT", "70000"),
            ("SFU_PUBLIC_IP", "example.org"),
            ("SFU_FROM_PEERS", "17"),
            ("SFU_FROM_PEERS", "-1"),
            ("SFU_AUDIO_TOP_N", "0"),
        ] {
            let err = read(&[(var, bad)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={bad}: {err}");
        }
    }
}
