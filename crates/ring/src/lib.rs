//! Consistent hashing and its alternatives — ring with virtual nodes, jump hash,
//! rendezvous, Maglev, multi-probe and bounded loads — behind one [`Placement`] trait,
//! with replica lists, weighted nodes, portable hashing, hot-key detection and a
//! comparison harness.
//!
//! ```
//! use keel_ring::{NodeId, Placement, Ring};
//!
//! let mut ring = Ring::new(100).unwrap(); // 100 virtual nodes per weight unit
//! for name in ["cache-a", "cache-b", "cache-c"] {
//!     ring.add_node(NodeId::new(name).unwrap()).unwrap();
//! }
//! ring.add_weighted_node(NodeId::new("cache-big").unwrap(), 2).unwrap();
//!
//! let owner = ring.node_for("user:42").unwrap().clone();
//! let replicas = ring.replicas("user:42", 3); // 3 distinct nodes, owner first
//! assert_eq!(replicas[0], &owner);
//! assert_eq!(replicas.len(), 3);
//!
//! // Removing another node never moves this key unless it lived there.
//! let other = ring.nodes().iter().find(|n| **n != owner).unwrap().clone();
//! ring.remove_node(&other).unwrap();
//! assert_eq!(ring.node_for("user:42"), Some(&owner));
//! ```
//!
//! # Layout
//!
//! - [`placement`] — the [`Placement`] trait: `node_for`, `replicas`, add/remove nodes.
//! - [`node`] — [`NodeId`], a node's stable identity (its name).
//! - [`hash`] — portable hashing ([`RingKey`], xxh3 with fixed seeds).
//! - [`ring`] — consistent hashing with virtual nodes; weights scale the vnode count.
//! - [`jump`] — jump consistent hash (append / remove at the tail only).
//! - [`rendezvous`] — weighted rendezvous / highest random weight (`-w / ln h`).
//! - [`maglev`] — Maglev lookup table (prime size, rebuilt on membership change).
//! - [`multi_probe`] — multi-probe consistent hashing (one point per node, `k` probes).
//! - [`bounded`] — consistent hashing with bounded loads (acquire / release).
//! - [`hot_keys`] — Space-Saving top-k with exponential decay, per-node load shares.
//! - [`spread`] — hot-key mitigation: read from the replica list.
//! - [`analysis`] — the comparison harness used by `keel-bench ring` and `keel tour`.
//! - [`error`] — [`RingError`].
//!
//! STUDY_NOTES_PLACEHOLDER

pub mod analysis;
pub mod bounded;
pub mod error;
pub mod hash;
pub mod hot_keys;
pub mod jump;
pub mod maglev;
pub mod multi_probe;
pub mod node;
pub mod placement;
mod points;
pub mod rendezvous;
pub mod ring;
pub mod spread;

/// Re-exported so callers can build the [`quanta::Clock`] the hot-key detector takes.
pub use quanta;

pub use analysis::{Algorithm, AlgorithmReport, AnalysisConfig};
pub use bounded::{BoundedLoads, BoundedLoadsStats};
pub use error::RingError;
pub use hash::{RingKey, hash_bytes};
pub use hot_keys::{HotKey, HotKeyConfig, HotKeyDetector, HotKeyStats};
pub use jump::Jump;
pub use maglev::Maglev;
pub use multi_probe::MultiProbe;
pub use node::NodeId;
pub use placement::Placement;
pub use rendezvous::Rendezvous;
pub use ring::Ring;
pub use spread::ReadSpreader;
