//! [`ImageThumbnailer`]: an image's preview with the `image` crate. The
//! format is read from the bytes (PNG, JPEG, GIF, WebP; never a declared
//! type), the size from the header before anything is decoded, and an image
//! with more pixels or a longer side than allowed is refused there: a
//! decompression bomb never reaches the decoder.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};
use webcall_domain::attachments::{ThumbnailSize, Thumbnailer, THUMBNAIL_MAX_SIDE};

/// Makes PNG or JPEG previews at most [`THUMBNAIL_MAX_SIDE`] a side.
#[derive(Debug, Clone)]
pub struct ImageThumbnailer {
    max_pixels: u64,
    max_side: u32,
    max_alloc: u64,
}

impl ImageThumbnailer {
    /// 40 megapixels (a 48 MP phone photo is refused, a 24 MP one is not).
    pub const MAX_PIXELS: u64 = 40_000_000;
    /// The longest side of a source image.
    pub const MAX_SIDE: u32 = 16_384;
    /// What the decoder may allocate for one image.
    pub const MAX_ALLOC: u64 = 256 * 1024 * 1024;
    /// JPEG previews' quality.
    const JPEG_QUALITY: u8 = 80;

    pub fn new() -> Self {
        Self {
            max_pixels: Self::MAX_PIXELS,
            max_side: Self::MAX_SIDE,
            max_alloc: Self::MAX_ALLOC,
        }
    }

    fn preview(&self, bytes: &[u8]) -> Option<(Vec<u8>, ThumbnailSize, &'static str)> {
        let format = previewed_format(bytes)?;
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut limits = Limits::default();
        limits.max_image_width = Some(self.max_side);
        limits.max_image_height = Some(self.max_side);
        limits.max_alloc = Some(self.max_alloc);
        reader.limits(limits);
        // Reads the header only.
        let mut decoder = reader.into_decoder().ok()?;
        let (width, height) = decoder.dimensions();
        if width == 0
            || height == 0
            || width > self.max_side
            || height > self.max_side
            || u64::from(width) * u64::from(height) > self.max_pixels
            || decoder.total_bytes() > self.max_alloc
        {
            return None;
        }
        // A phone photo's EXIF rotation, so the preview stands the right way up.
        let orientation = decoder.orientation().ok();
        let mut image = DynamicImage::from_decoder(decoder).ok()?;
        if let Some(orientation) = orientation {
            image.apply_orientation(orientation);
        }
        let max = THUMBNAIL_MAX_SIDE;
        if image.width() > max || image.height() > max {
            image = image.thumbnail(max, max);
        }
        let size = ThumbnailSize {
            width: image.width(),
            height: image.height(),
        };
        let mut out = Vec::new();
        let png =
            image.color().has_alpha() || matches!(format, ImageFormat::Png | ImageFormat::Gif);
        if png {
            let (pixels, color) = if image.color().has_alpha() {
                (image.to_rgba8().into_raw(), image::ExtendedColorType::Rgba8)
            } else {
                (image.to_rgb8().into_raw(), image::ExtendedColorType::Rgb8)
            };
            PngEncoder::new(&mut out)
                .write_image(&pixels, size.width, size.height, color)
                .ok()?;
            Some((out, size, "image/png"))
        } else {
            let pixels = image.to_rgb8().into_raw();
            JpegEncoder::new_with_quality(&mut out, Self::JPEG_QUALITY)
                .write_image(
                    &pixels,
                    size.width,
                    size.height,
                    image::ExtendedColorType::Rgb8,
                )
                .ok()?;
            Some((out, size, "image/jpeg"))
        }
    }
}

impl Default for ImageThumbnailer {
    fn default() -> Self {
        Self::new()
    }
}

/// The format of an image this makes previews of (PNG, JPEG, GIF, WebP),
/// from its first bytes.
fn previewed_format(head: &[u8]) -> Option<ImageFormat> {
    image::guess_format(head).ok().filter(|format| {
        matches!(
            format,
            ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::Gif | ImageFormat::WebP
        )
    })
}

impl Thumbnailer for ImageThumbnailer {
    fn recognises(&self, head: &[u8]) -> bool {
        previewed_format(head).is_some()
    }

    fn thumbnail(&self, image: &[u8]) -> Option<(Vec<u8>, ThumbnailSize, &'static str)> {
        // The decoders are fuzzed upstream; should one still panic on some
        // input, that input gets no preview rather than failing its upload.
        std::panic::catch_unwind(|| self.preview(image))
            .ok()
            .flatten()
    }
}
