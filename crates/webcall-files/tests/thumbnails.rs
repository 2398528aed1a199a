//! [`ImageThumbnailer`] on real images made here with the `image` crate: each
//! format's preview has the right size and type and is never larger than its
//! source; anything that is not one of the four formats gets no preview
//! (damaged ones: `thumbnail_fuzz.rs`; bombs: `decompression_bomb.rs`).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use webcall_domain::attachments::{
    ThumbnailSize, Thumbnailer, THUMBNAIL_HEAD_BYTES, THUMBNAIL_MAX_SIDE,
};
use webcall_files::ImageThumbnailer;

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    })
}

/// The preview, decoded again: its real size and format.
fn decoded(preview: &[u8]) -> (u32, u32, ImageFormat) {
    let format = image::guess_format(preview).unwrap();
    let image = image::load_from_memory(preview).unwrap();
    (image.width(), image.height(), format)
}

#[test]
fn each_format_gets_a_preview_that_fits_and_keeps_its_shape() {
    let thumbnailer = ImageThumbnailer::new();
    let wide = DynamicImage::ImageRgb8(gradient(640, 360));
    let cases = [
        (
            ImageFormat::Png,
            wide.clone(),
            "image/png",
            ImageFormat::Png,
        ),
        (
            ImageFormat::Jpeg,
            wide.clone(),
            "image/jpeg",
            ImageFormat::Jpeg,
        ),
        (
            ImageFormat::Gif,
            wide.clone(),
            "image/png",
            ImageFormat::Png,
        ),
        (
            ImageFormat::WebP,
            wide.clone(),
            "image/jpeg",
            ImageFormat::Jpeg,
        ),
    ];
    for (source, image, media_type, made) in cases {
        let bytes = encode(&image, source);
        let (preview, size, kind) = thumbnailer
            .thumbnail(&bytes)
            .unwrap_or_else(|| panic!("{source:?} gets a preview"));
        assert_eq!(
            size,
            ThumbnailSize {
                width: THUMBNAIL_MAX_SIDE,
                height: 180
            },
            "{source:?}"
        );
        assert_eq!(kind, media_type, "{source:?}");
        assert_eq!(decoded(&preview), (320, 180, made), "{source:?}");
    }
}

#[test]
fn a_tall_image_fits_by_its_height() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(gradient(400, 1600)),
        ImageFormat::Png,
    );
    let (preview, size, _) = ImageThumbnailer::new().thumbnail(&bytes).unwrap();
    assert_eq!((size.width, size.height), (80, 320));
    assert_eq!(decoded(&preview), (80, 320, ImageFormat::Png));
}

#[test]
fn a_small_image_is_never_enlarged() {
    let thumbnailer = ImageThumbnailer::new();
    for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP] {
        let bytes = encode(&DynamicImage::ImageRgb8(gradient(40, 25)), format);
        let (preview, size, _) = thumbnailer.thumbnail(&bytes).unwrap();
        assert_eq!((size.width, size.height), (40, 25), "{format:?}");
        let (w, h, _) = decoded(&preview);
        assert_eq!((w, h), (40, 25), "{format:?}");
    }
}

#[test]
fn transparency_is_kept_as_png() {
    let clear = RgbaImage::from_fn(640, 640, |x, _| Rgba([255, 0, 0, (x % 256) as u8]));
    let bytes = encode(&DynamicImage::ImageRgba8(clear), ImageFormat::WebP);
    let (preview, size, kind) = ImageThumbnailer::new().thumbnail(&bytes).unwrap();
    assert_eq!((size.width, size.height, kind), (320, 320, "image/png"));
    let image = image::load_from_memory(&preview).unwrap();
    assert!(image.color().has_alpha());
}

#[test]
fn other_files_get_no_preview() {
    let thumbnailer = ImageThumbnailer::new();
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><script>alert(1)</script><rect width="100" height="100"/></svg>"#;
    // A BMP's header: an image, but not one of the four formats.
    let bmp = b"BM\x46\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\x02\0\0\0\x02\0\0\0\x01\0\x18\0";
    for (what, bytes) in [
        ("svg", svg.as_slice()),
        ("empty", b"".as_slice()),
        ("text", b"hello, this is a log file\n".as_slice()),
        ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".as_slice()),
        ("bmp", bmp.as_slice()),
        ("png magic only", b"\x89PNG\r\n\x1a\n".as_slice()),
    ] {
        assert!(thumbnailer.thumbnail(bytes).is_none(), "{what}");
        if what != "png magic only" {
            let head = &bytes[..bytes.len().min(THUMBNAIL_HEAD_BYTES as usize)];
            assert!(!thumbnailer.recognises(head), "{what} is no image");
        }
    }
}

#[test]
fn the_four_formats_are_recognised_by_their_first_bytes() {
    let thumbnailer = ImageThumbnailer::new();
    let image = DynamicImage::ImageRgb8(gradient(40, 30));
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&image, format);
        assert!(
            thumbnailer.recognises(&bytes[..THUMBNAIL_HEAD_BYTES as usize]),
            "{format:?}"
        );
    }
}

/// A phone photo stored sideways with an EXIF orientation (6: turn 90°
/// clockwise) gets a preview that stands the right way up.
#[test]
fn a_photo_is_turned_as_its_exif_orientation_says() {
    use image::codecs::jpeg::JpegEncoder;
    use image::ImageEncoder;
    // TIFF header (big-endian), one IFD entry: Orientation (0x0112), SHORT, 1, 6.
    let exif = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    let sideways = gradient(640, 320);
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 90);
    encoder.set_exif_metadata(exif).unwrap();
    encoder
        .write_image(sideways.as_raw(), 640, 320, image::ExtendedColorType::Rgb8)
        .unwrap();
    let (preview, size, kind) = ImageThumbnailer::new().thumbnail(&bytes).unwrap();
    assert_eq!((size.width, size.height, kind), (160, 320, "image/jpeg"));
    assert_eq!(decoded(&preview), (160, 320, ImageFormat::Jpeg));
}
