//! A decompression bomb is refused from its header, before the decoder
//! allocates for its pixels: a counting allocator measures what
//! [`ImageThumbnailer`] allocates for a PNG claiming 100000 × 100000 pixels
//! (40 GB decoded), against a real image of 2000 × 2000 that it does decode.
//! (One test in this file, so no other test's allocations are counted.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use webcall_domain::attachments::Thumbnailer;
use webcall_files::ImageThumbnailer;

struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated (in total, not at once) while `f` runs.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATED.load(Ordering::SeqCst);
    let out = f();
    (out, ALLOCATED.load(Ordering::SeqCst) - before)
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(image)
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `source` with its IHDR claiming `width` × `height` (the chunk's CRC made right).
fn claiming(source: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut png = source.to_vec();
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

#[test]
fn a_bomb_is_refused_before_its_pixels_are_allocated() {
    let thumbnailer = ImageThumbnailer::new();

    // The measure works: a real 2000 × 2000 image needs its 12 MB of pixels.
    let real = png(2000, 2000);
    let (preview, real_bytes) = allocated_by(|| thumbnailer.thumbnail(&real));
    assert!(preview.is_some());
    assert!(real_bytes > 12_000_000, "{real_bytes}");

    let small = png(8, 8);
    for (width, height) in [(100_000, 100_000), (16_384, 16_384), (16_000, 3_000)] {
        let bomb = claiming(&small, width, height);
        assert_eq!(
            image::ImageReader::with_format(Cursor::new(&bomb), ImageFormat::Png)
                .into_dimensions()
                .unwrap(),
            (width, height),
            "the header is valid and claims the size"
        );
        let (preview, bytes) = allocated_by(|| thumbnailer.thumbnail(&bomb));
        assert!(preview.is_none(), "{width}x{height}");
        assert!(
            bytes < 1024 * 1024,
            "{width}x{height}: {bytes} bytes allocated"
        );
    }
}
