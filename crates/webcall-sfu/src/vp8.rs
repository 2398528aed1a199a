//! The little of VP8 the forwarding unit reads: whether a frame is a key frame
//! and, for key frames, the picture size (RFC 6386 §9.1, the uncompressed data
//! chunk at the start of every frame).

/// The size of a key frame's picture, or `None` for an inter frame or a frame
/// too short or malformed to say.
pub(crate) fn key_frame_size(frame: &[u8]) -> Option<(u16, u16)> {
    if !is_key_frame(frame) || frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((width, height))
}

/// A key frame: the frame tag's lowest bit (`P`, "not a key frame") is 0.
pub(crate) fn is_key_frame(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_frame_sizes() {
        // Tag (key frame, shown), start code, 640 x 360 with scaling bits set.
        let frame = [
            0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x41, 0xaa,
        ];
        assert_eq!(key_frame_size(&frame), Some((640, 360)));
        assert!(is_key_frame(&frame));
    }

    #[test]
    fn inter_frames_and_garbage_have_no_size() {
        assert_eq!(
            key_frame_size(&[0x11, 0, 0, 0x9d, 0x01, 0x2a, 1, 1, 1, 1]),
            None
        );
        assert_eq!(key_frame_size(&[0x10, 0, 0, 0, 0, 0, 1, 1, 1, 1]), None);
        assert_eq!(key_frame_size(&[0x10, 0]), None);
        assert!(!is_key_frame(&[]));
    }
}
