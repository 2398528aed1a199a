//! One WebM file written live: an Opus track (1) and a VP8 track (2), frames
//! as they arrive (no transcoding), in clusters that go to the disk whole.
//!
//! Layout: EBML header, a Segment of unknown size, Info (1 ms timecodes, a
//! Duration rewritten in place after every cluster), Tracks in a reserved
//! region (a track that starts late is added by rewriting the region in
//! place), then sized Clusters. A cluster starts at a video key frame, after
//! [`CLUSTER_SPAN_MS`] of media or [`CLUSTER_AGE`] of wall time, or when it
//! grows past [`CLUSTER_MAX_BYTES`]; it is kept in memory and written with
//! one `write` when it closes, so a crash leaves a file playable up to its
//! last whole cluster. The data reaches the disk (fsync) at most every
//! [`SYNC_EVERY`].

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::ebml::{self, id};

pub(crate) const AUDIO_TRACK: u8 = 1;
pub(crate) const VIDEO_TRACK: u8 = 2;
/// Media time one cluster spans at most.
pub(crate) const CLUSTER_SPAN_MS: u64 = 5_000;
/// Wall time a cluster stays open at most (a participant whose media
/// stopped still has its last frames written).
pub(crate) const CLUSTER_AGE: Duration = Duration::from_secs(5);
/// A cluster is closed once it holds this much.
pub(crate) const CLUSTER_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How often written data is forced to the disk at most.
pub(crate) const SYNC_EVERY: Duration = Duration::from_secs(5);
/// Opus encoders' look-ahead (libopus, as browsers use it): 312 samples.
const OPUS_PRE_SKIP: u16 = 312;
const OPUS_CODEC_DELAY_NS: u64 = 6_500_000;
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

/// The first Opus packet's channel count (its TOC byte's stereo flag).
pub(crate) fn opus_channels(packet: &[u8]) -> u8 {
    match packet.first() {
        Some(toc) if toc & 0x04 != 0 => 2,
        _ => 1,
    }
}

/// A VP8 key frame's width and height (RFC 6386 §9.1), `None` for an
/// inter frame or data too short to be a frame.
pub(crate) fn vp8_key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9D, 0x01, 0x2A] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF;
    (width > 0 && height > 0).then_some((width, height))
}

struct Cluster {
    timecode: u64,
    blocks: Vec<u8>,
    has_video: bool,
    opened: Instant,
}

/// Where the header's rewritable parts are.
struct Header {
    /// Offset of the Duration's 8 float bytes.
    duration_at: u64,
    /// Offset of the Tracks region ([`tracks_region_len`] bytes).
    tracks_at: u64,
}

/// See the module docs.
pub(crate) struct WebmFile {
    file: File,
    /// Opus channel count, once the first audio packet came.
    audio: Option<u8>,
    /// VP8 frame size, once the first key frame came.
    video: Option<(u16, u16)>,
    header: Option<Header>,
    cluster: Option<Cluster>,
    last_cluster_timecode: u64,
    /// Per track: the last block's time and the gap before it.
    last: [Option<(u64, u64)>; 2],
    /// The media written so far ends here (ms from the file's start).
    end_ms: u64,
    last_sync: Instant,
}

impl WebmFile {
    /// Creates the file (never replacing one).
    pub(crate) fn create(path: &Path) -> io::Result<Self> {
        let file = File::options().write(true).create_new(true).open(path)?;
        Ok(Self {
            file,
            audio: None,
            video: None,
            header: None,
            cluster: None,
            last_cluster_timecode: 0,
            last: [None, None],
            end_ms: 0,
            last_sync: Instant::now(),
        })
    }

    /// The codecs of the tracks it has: `opus`, `vp8`.
    pub(crate) fn codecs(&self) -> Vec<String> {
        let mut codecs = Vec::new();
        if self.audio.is_some() {
            codecs.push("opus".to_owned());
        }
        if self.video.is_some() {
            codecs.push("vp8".to_owned());
        }
        codecs
    }

    pub(crate) fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// An Opus packet at `ms` from the file's start.
    pub(crate) fn audio(&mut self, ms: u64, packet: &[u8], now: Instant) -> io::Result<()> {
        if self.audio.is_none() {
            self.audio = Some(opus_channels(packet));
            self.tracks_changed()?;
        }
        self.block(AUDIO_TRACK, ms, true, packet, now)
    }

    /// A VP8 frame at `ms`; frames before the first key frame are dropped
    /// (false).
    pub(crate) fn video(&mut self, ms: u64, frame: &[u8], now: Instant) -> io::Result<bool> {
        let key_size = vp8_key_frame_size(frame);
        if self.video.is_none() {
            let Some(size) = key_size else {
                return Ok(false);
            };
            self.video = Some(size);
            self.tracks_changed()?;
        }
        self.block(VIDEO_TRACK, ms, key_size.is_some(), frame, now)?;
        Ok(true)
    }

    /// Closes a cluster open for [`CLUSTER_AGE`], forces the data to disk
    /// when [`SYNC_EVERY`] passed.
    pub(crate) fn tick(&mut self, now: Instant) -> io::Result<()> {
        if self
            .cluster
            .as_ref()
            .is_some_and(|c| now.duration_since(c.opened) >= CLUSTER_AGE)
        {
            self.close_cluster(now)?;
        }
        Ok(())
    }

    /// Writes what is left and syncs; the media's length in ms.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        let now = Instant::now();
        self.close_cluster(now)?;
        if self.header.is_none() && (self.audio.is_some() || self.video.is_some()) {
            self.write_header()?;
        }
        self.file.sync_all()?;
        Ok(self.end_ms)
    }

    fn block(
        &mut self,
        track: u8,
        ms: u64,
        keyframe: bool,
        data: &[u8],
        now: Instant,
    ) -> io::Result<()> {
        let slot = usize::from(track - 1);
        let previous = self.last[slot];
        // Each track's times only go forward.
        let mut ms = match previous {
            Some((at, _)) => ms.max(at + 1),
            None => ms,
        };
        let video = track == VIDEO_TRACK;
        let new_cluster = match &self.cluster {
            None => true,
            Some(c) => {
                (video && keyframe && c.has_video)
                    || ms >= c.timecode + CLUSTER_SPAN_MS
                    || now.duration_since(c.opened) >= CLUSTER_AGE
                    || c.blocks.len() + data.len() > CLUSTER_MAX_BYTES
            }
        };
        if new_cluster {
            self.close_cluster(now)?;
            self.cluster = Some(Cluster {
                timecode: ms.max(self.last_cluster_timecode),
                blocks: Vec::with_capacity(64 * 1024),
                has_video: false,
                opened: now,
            });
        }
        let Some(cluster) = self.cluster.as_mut() else {
            return Ok(());
        };
        // A block may lie a little before its cluster (the other track ran
        // ahead): relative times are signed 16-bit.
        let relative = (ms as i64 - cluster.timecode as i64).max(i64::from(i16::MIN)) as i16;
        ms = (cluster.timecode as i64 + i64::from(relative)) as u64;
        ebml::put_id(&mut cluster.blocks, id::SIMPLE_BLOCK);
        ebml::put_size(&mut cluster.blocks, 4 + data.len() as u64);
        cluster.blocks.push(0x80 | track);
        cluster.blocks.extend_from_slice(&relative.to_be_bytes());
        cluster.blocks.push(if keyframe { 0x80 } else { 0x00 });
        cluster.blocks.extend_from_slice(data);
        cluster.has_video |= video;
        let gap = match previous {
            Some((at, _)) => ms.saturating_sub(at).min(1_000),
            None if video => 33,
            None => 20,
        };
        self.last[slot] = Some((ms, gap));
        Ok(())
    }

    fn close_cluster(&mut self, now: Instant) -> io::Result<()> {
        let Some(cluster) = self.cluster.take() else {
            return Ok(());
        };
        if self.header.is_none() {
            self.write_header()?;
        }
        let mut body = Vec::with_capacity(cluster.blocks.len() + 16);
        ebml::put_uint(&mut body, id::TIMECODE, cluster.timecode);
        body.extend_from_slice(&cluster.blocks);
        let mut element = Vec::with_capacity(body.len() + 12);
        ebml::put_element(&mut element, id::CLUSTER, &body);
        self.file.write_all(&element)?;
        self.last_cluster_timecode = cluster.timecode;
        self.end_ms = self
            .last
            .iter()
            .flatten()
            .map(|(at, gap)| at + gap)
            .max()
            .unwrap_or(0);
        self.write_duration()?;
        if now.duration_since(self.last_sync) >= SYNC_EVERY {
            self.file.sync_data()?;
            self.last_sync = now;
        }
        Ok(())
    }

    fn write_header(&mut self) -> io::Result<()> {
        let mut out = Vec::with_capacity(512);
        ebml::put_master(&mut out, id::EBML, |h| {
            ebml::put_uint(h, id::EBML_VERSION, 1);
            ebml::put_uint(h, id::EBML_READ_VERSION, 1);
            ebml::put_uint(h, id::EBML_MAX_ID_LENGTH, 4);
            ebml::put_uint(h, id::EBML_MAX_SIZE_LENGTH, 8);
            ebml::put_string(h, id::DOC_TYPE, "webm");
            ebml::put_uint(h, id::DOC_TYPE_VERSION, 4);
            ebml::put_uint(h, id::DOC_TYPE_READ_VERSION, 2);
        });
        ebml::put_id(&mut out, id::SEGMENT);
        out.extend_from_slice(&ebml::UNKNOWN_SIZE);
        // The Duration last, so that its 8 bytes end the Info element.
        ebml::put_master(&mut out, id::INFO, |info| {
            ebml::put_uint(info, id::TIMECODE_SCALE, 1_000_000);
            ebml::put_string(info, id::MUXING_APP, "webcall");
            ebml::put_string(info, id::WRITING_APP, "webcall");
            ebml::put_float(info, id::DURATION, 0.0);
        });
        let duration_at = out.len() as u64 - 8;
        let tracks_at = out.len() as u64;
        out.extend_from_slice(&tracks_region(self.audio, self.video));
        self.file.write_all(&out)?;
        self.header = Some(Header {
            duration_at,
            tracks_at,
        });
        Ok(())
    }

    /// A track came: the Tracks region is rewritten if the header is out.
    fn tracks_changed(&mut self) -> io::Result<()> {
        let Some(header) = &self.header else {
            return Ok(());
        };
        let region = tracks_region(self.audio, self.video);
        let at = header.tracks_at;
        self.write_at(at, &region)
    }

    fn write_duration(&mut self) -> io::Result<()> {
        let Some(header) = &self.header else {
            return Ok(());
        };
        let at = header.duration_at;
        self.write_at(at, &(self.end_ms as f64).to_be_bytes())
    }

    fn write_at(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(at))?;
        self.file.write_all(bytes)?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

fn opus_head(channels: u8) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels);
    head.extend_from_slice(&OPUS_PRE_SKIP.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

fn track_entries(audio: Option<u8>, video: Option<(u16, u16)>) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(channels) = audio {
        ebml::put_master(&mut body, id::TRACK_ENTRY, |t| {
            ebml::put_uint(t, id::TRACK_NUMBER, AUDIO_TRACK.into());
            ebml::put_uint(t, id::TRACK_UID, AUDIO_TRACK.into());
            ebml::put_uint(t, id::TRACK_TYPE, 2);
            ebml::put_uint(t, id::FLAG_LACING, 0);
            ebml::put_string(t, id::CODEC_ID, "A_OPUS");
            ebml::put_element(t, id::CODEC_PRIVATE, &opus_head(channels));
            ebml::put_uint(t, id::CODEC_DELAY, OPUS_CODEC_DELAY_NS);
            ebml::put_uint(t, id::SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
            ebml::put_master(t, id::AUDIO, |a| {
                ebml::put_float(a, id::SAMPLING_FREQUENCY, 48_000.0);
                ebml::put_uint(a, id::CHANNELS, channels.into());
            });
        });
    }
    if let Some((width, height)) = video {
        ebml::put_master(&mut body, id::TRACK_ENTRY, |t| {
            ebml::put_uint(t, id::TRACK_NUMBER, VIDEO_TRACK.into());
            ebml::put_uint(t, id::TRACK_UID, VIDEO_TRACK.into());
            ebml::put_uint(t, id::TRACK_TYPE, 1);
            ebml::put_uint(t, id::FLAG_LACING, 0);
            ebml::put_string(t, id::CODEC_ID, "V_VP8");
            ebml::put_master(t, id::VIDEO, |v| {
                ebml::put_uint(v, id::PIXEL_WIDTH, width.into());
                ebml::put_uint(v, id::PIXEL_HEIGHT, height.into());
            });
        });
    }
    body
}

/// The space the Tracks region takes: both tracks at their largest, and a
/// little more.
fn tracks_region_len() -> usize {
    4 + 8 + track_entries(Some(2), Some((u16::MAX, u16::MAX))).len() + 8
}

/// The Tracks element for what is known, padded with a Void to exactly
/// [`tracks_region_len`] bytes (its size field grows by a byte when one byte
/// would be left over: a Void takes two at least).
fn tracks_region(audio: Option<u8>, video: Option<(u16, u16)>) -> Vec<u8> {
    let len = tracks_region_len();
    let entries = track_entries(audio, video);
    let mut out = Vec::with_capacity(len);
    for size_len in 2..=8 {
        let element = 4 + size_len + entries.len();
        let rest = len - element;
        if rest == 1 {
            continue;
        }
        ebml::put_id(&mut out, id::TRACKS);
        ebml::put_size_len(&mut out, entries.len() as u64, size_len);
        out.extend_from_slice(&entries);
        if rest > 0 {
            ebml::put_void(&mut out, rest);
        }
        break;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tracks_region_keeps_its_size_whatever_it_holds() {
        let len = tracks_region_len();
        for (audio, video) in [
            (None, Some((320, 240))),
            (Some(1), None),
            (Some(2), Some((1920, 1080))),
            (Some(2), Some((u16::MAX, u16::MAX))),
            (Some(1), Some((16, 16))),
        ] {
            assert_eq!(
                tracks_region(audio, video).len(),
                len,
                "{audio:?} {video:?}"
            );
        }
    }

    #[test]
    fn key_frames_give_their_size() {
        let mut key = vec![0x50, 0x2A, 0x00, 0x9D, 0x01, 0x2A];
        key.extend_from_slice(&320u16.to_le_bytes());
        key.extend_from_slice(&(240u16 | 0x4000).to_le_bytes());
        assert_eq!(vp8_key_frame_size(&key), Some((320, 240)));
        let mut inter = key.clone();
        inter[0] |= 1;
        assert_eq!(vp8_key_frame_size(&inter), None);
        assert_eq!(vp8_key_frame_size(&key[..5]), None);
        assert_eq!(vp8_key_frame_size(&[]), None);
        assert_eq!(opus_channels(&[0xFC]), 2);
        assert_eq!(opus_channels(&[0xF8]), 1);
        assert_eq!(opus_channels(&[]), 1);
    }
}
