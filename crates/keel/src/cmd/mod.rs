//! Subcommands that start a system's servers: `keel dht …`, `keel jobs dashboard`,
//! `keel stream broker`. One file per system, each with a clap `Args` type and a
//! `run(args) -> anyhow::Result<()>`; `main.rs` adds one variant and one match arm per
//! system. Servers bind 127.0.0.1 and never a standard port by default.

#[cfg(feature = "dht")]
pub(crate) mod dht;
#[cfg(feature = "jobs")]
pub(crate) mod jobs;
#[cfg(feature = "stream")]
pub(crate) mod stream;
