//! [`ImageThumbnailer`] on damaged images (truncated, bytes flipped, garbage
//! after a format's magic number): no preview from a broken PNG, and never a
//! panic. A panic hook counts panics, since the thumbnailer would turn one into
//! `None` (this file holds one test, so no other test's panic is counted).

use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use webcall_domain::attachments::Thumbnailer;
use webcall_files::ImageThumbnailer;

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// Truncated and corrupted images of every format: no preview, no panic.
#[test]
fn damaged_images_get_no_preview_and_never_panic() {
    let panics = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&panics);
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let thumbnailer = ImageThumbnailer::new();
    let image = DynamicImage::ImageRgb8(RgbImage::from_fn(64, 48, |x, y| {
        Rgb([(x * 4) as u8, (y * 5) as u8, (x + y) as u8])
    }));
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let whole = encode(&image, format);
        assert!(thumbnailer.thumbnail(&whole).is_some(), "{format:?}");
        // Cut short at every few bytes (some decoders show what they have
        // of a cut JPEG or GIF; a PNG's data is checked, so a cut one is refused).
        for cut in (0..whole.len()).step_by(7) {
            let preview = thumbnailer.thumbnail(&whole[..cut]);
            if format == ImageFormat::Png || cut < 16 {
                assert!(preview.is_none(), "{format:?} cut at {cut}");
            }
        }
        // Random bytes flipped after the magic number.
        for _ in 0..200 {
            let mut bad = whole.clone();
            for _ in 0..1 + next() % 8 {
                let at = 8 + (next() as usize) % (bad.len() - 8);
                bad[at] = next() as u8;
            }
            let _ = thumbnailer.thumbnail(&bad);
        }
    }
    // Garbage after each format's magic number.
    for magic in [
        b"\x89PNG\r\n\x1a\n".as_slice(),
        b"\xff\xd8\xff",
        b"GIF89a",
        b"RIFF\0\0\0\0WEBPVP8 ",
    ] {
        for _ in 0..100 {
            let mut bytes = magic.to_vec();
            bytes.extend((0..next() % 300).map(|_| next() as u8));
            assert!(thumbnailer.thumbnail(&bytes).is_none());
        }
    }
    let _ = std::panic::take_hook();
    assert_eq!(panics.load(Ordering::SeqCst), 0, "the decoders panicked");
}
