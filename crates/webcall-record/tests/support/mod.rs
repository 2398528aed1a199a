//! Helpers of the recording tests.

pub mod media;
