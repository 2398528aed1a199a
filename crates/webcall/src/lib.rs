//! The `webcall` server binary's library: configuration, logging, and the one
//! place where concrete adapters (SQL storage, JWT, argon2, Redis, the TURN
//! relay) are wired into the use cases and the HTTP layer.
//!
//! Start at [`Application::build`] (`startup`); `main.rs` only parses the
//! command line and reads the [`Config`] once. Layout:
//! - `config`: every environment variable, read once into [`Config`];
//! - `startup`: [`Application`], the composition root, and [`migrate`];
//! - `listener`: binding the TCP ports; `connections`: bounds on the HTTP
//!   port's connections; `tls`: HTTPS and TURN over TLS (certificates, the
//!   front that routes each connection, renewal, the HTTP redirect);
//! - `media`: the media end of routed calls and their recorder;
//! - `relay`: starting the embedded TURN relay; `ice`: what
//!   `/api/v1/webrtc/ice-servers` hands out; `operations`: the operator's use
//!   cases (relay allocations and quotas, key rotation) and their settings;
//!   `files`: files in rooms' chat (their directory, previews, the sweep);
//! - `metrics`: the Prometheus exporter and the metric catalogue;
//!   `telemetry`: logging; `doctor`: `webcall doctor`; `address`: the URL
//!   printed at start.

pub mod address;
pub mod config;
pub mod connections;
pub mod doctor;
mod files;
mod ice;
mod listener;
mod media;
mod metrics;
mod operations;
mod relay;
mod startup;
pub mod telemetry;
pub mod tls;

pub use config::Config;
pub use startup::{migrate, Application};
