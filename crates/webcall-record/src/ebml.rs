//! EBML writing, the little of it WebM needs: element IDs (written as their
//! bytes, class marker included), sizes as variable-length integers, and
//! unsigned, float, string and binary elements appended to a buffer.

/// The IDs WebCall writes (Matroska/WebM names).
pub(crate) mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMECODE_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const CODEC_DELAY: u32 = 0x56AA;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMECODE: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const VOID: u32 = 0xEC;
}

/// The size that says "unknown" (a live Segment): 8 bytes, all value bits set.
pub(crate) const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

/// The largest size a variable-length integer of 8 bytes holds (all ones is
/// reserved for "unknown").
pub(crate) const MAX_SIZE: u64 = (1 << 56) - 2;

/// An element ID as its bytes: the ID's own big-endian bytes, without the
/// leading zero bytes (the class marker is part of the ID).
pub(crate) fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// How many bytes the shortest encoding of `size` takes.
pub(crate) fn size_len(size: u64) -> usize {
    (1..=8).find(|n| size < (1u64 << (7 * n)) - 1).unwrap_or(8)
}

/// `size` as a variable-length integer of exactly `len` bytes (1-8; `len`
/// must be at least [`size_len`]).
pub(crate) fn put_size_len(out: &mut Vec<u8>, size: u64, len: usize) {
    debug_assert!((1..=8).contains(&len) && len >= size_len(size));
    let marked = size | (1u64 << (7 * len));
    out.extend_from_slice(&marked.to_be_bytes()[8 - len..]);
}

/// `size` as the shortest variable-length integer.
pub(crate) fn put_size(out: &mut Vec<u8>, size: u64) {
    put_size_len(out, size, size_len(size.min(MAX_SIZE)));
}

/// A whole element: ID, size, then `body`.
pub(crate) fn put_element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

/// An unsigned integer element, in as few bytes as it needs (at least one).
pub(crate) fn put_uint(out: &mut Vec<u8>, id: u32, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    put_element(out, id, &bytes[skip..]);
}

/// A float element, always as 8 bytes (so that it can be rewritten in place).
pub(crate) fn put_float(out: &mut Vec<u8>, id: u32, value: f64) {
    put_element(out, id, &value.to_be_bytes());
}

pub(crate) fn put_string(out: &mut Vec<u8>, id: u32, value: &str) {
    put_element(out, id, value.as_bytes());
}

/// A master element whose children `fill` writes.
pub(crate) fn put_master(out: &mut Vec<u8>, id: u32, fill: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    fill(&mut body);
    put_element(out, id, &body);
}

/// A Void element of exactly `len` bytes (at least 2: its ID and a size).
pub(crate) fn put_void(out: &mut Vec<u8>, len: usize) {
    debug_assert!(len >= 2);
    put_id(out, id::VOID);
    let size_len = if len >= 9 { 8 } else { 1 };
    let body = len - 1 - size_len;
    put_size_len(out, body as u64, size_len);
    out.resize(out.len() + body, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_size(&mut out, value);
        out
    }

    #[test]
    fn sizes_take_the_shortest_encoding_and_skip_all_ones() {
        assert_eq!(size(0), [0x80]);
        assert_eq!(size(1), [0x81]);
        assert_eq!(size(126), [0xFE]);
        // 127 in one byte would be all ones ("unknown"): two bytes.
        assert_eq!(size(127), [0x40, 0x7F]);
        assert_eq!(size(500), [0x41, 0xF4]);
        assert_eq!(size(16_382), [0x7F, 0xFE]);
        assert_eq!(size(16_383), [0x20, 0x3F, 0xFF]);
        assert_eq!(size(MAX_SIZE).len(), 8);
        assert_eq!(size(MAX_SIZE)[0], 0x01);
        let mut padded = Vec::new();
        put_size_len(&mut padded, 5, 4);
        assert_eq!(padded, [0x10, 0x00, 0x00, 0x05]);
        assert_eq!(UNKNOWN_SIZE[0], 0x01);
    }

    #[test]
    fn ids_are_their_own_bytes() {
        let mut out = Vec::new();
        put_id(&mut out, id::EBML);
        put_id(&mut out, id::TIMECODE_SCALE);
        put_id(&mut out, id::DURATION);
        put_id(&mut out, id::SIMPLE_BLOCK);
        assert_eq!(
            out,
            [0x1A, 0x45, 0xDF, 0xA3, 0x2A, 0xD7, 0xB1, 0x44, 0x89, 0xA3]
        );
    }

    #[test]
    fn elements_of_each_type() {
        let mut out = Vec::new();
        put_uint(&mut out, id::TRACK_NUMBER, 1);
        put_uint(&mut out, id::TIMECODE_SCALE, 1_000_000);
        put_uint(&mut out, id::TIMECODE, 0);
        assert_eq!(
            out,
            [0xD7, 0x81, 0x01, 0x2A, 0xD7, 0xB1, 0x83, 0x0F, 0x42, 0x40, 0xE7, 0x81, 0x00]
        );
        let mut out = Vec::new();
        put_string(&mut out, id::DOC_TYPE, "webm");
        assert_eq!(out, [0x42, 0x82, 0x84, b'w', b'e', b'b', b'm']);
        let mut out = Vec::new();
        put_float(&mut out, id::DURATION, 1.5);
        assert_eq!(out[..3], [0x44, 0x89, 0x88]);
        assert_eq!(f64::from_be_bytes(out[3..].try_into().unwrap()), 1.5);
        let mut out = Vec::new();
        put_master(&mut out, id::VIDEO, |v| put_uint(v, id::PIXEL_WIDTH, 320));
        assert_eq!(out, [0xE0, 0x84, 0xB0, 0x82, 0x01, 0x40]);
    }

    #[test]
    fn voids_fill_exactly_the_space_asked() {
        for len in 2..300 {
            let mut out = Vec::new();
            put_void(&mut out, len);
            assert_eq!(out.len(), len, "{len}");
            assert_eq!(out[0], 0xEC);
        }
    }
}
