//! The admin use cases against the in-memory store.
