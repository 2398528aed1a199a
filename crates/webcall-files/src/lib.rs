//! Attachment adapters: where files' bytes are kept and how an image's preview
//! is made. [`DiskFileStore`] implements the domain's `FileStore` port on a
//! directory (`ATTACHMENT_DIR`); [`ImageThumbnailer`] implements `Thumbnailer`
//! with the `image` crate (PNG, JPEG, GIF and WebP only, size-checked before
//! decoding).
//!
//! Depends on `webcall-domain`, tokio's file I/O and `image`; the `webcall`
//! binary wires both in. Start with `disk.rs`.

mod disk;
mod thumbnail;

pub use disk::{DiskFileStore, READ_CHUNK};
pub use thumbnail::ImageThumbnailer;
