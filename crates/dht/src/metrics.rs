//! Counters: a plain snapshot ([`DhtStats`]) and the `metrics` facade.
//!
//! Each event bumps one relaxed atomic and one facade [`metrics::Counter`] handle that
//! was registered when the node started (no registry lookup on the hot path). A node
//! handles tens of thousands of requests per second at most, and each already costs a
//! syscall, so per-event counting is cheap next to the work it counts.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one node's counters (`DHT.STATS`, [`NodeHandle::stats`](crate::NodeHandle::stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DhtStats {
    /// Client connections accepted.
    pub connections: u64,
    /// Commands executed (client and internal).
    pub commands: u64,
    /// Coordinated reads (`GET`, `MGET` keys, `TTL`, …).
    pub reads: u64,
    /// Writes this node coordinated as the key's write coordinator.
    pub writes: u64,
    /// Writes forwarded to another node that coordinates the key.
    pub forwarded: u64,
    /// Reads or writes that did not reach R or W replicas in time.
    pub quorum_failures: u64,
    /// Stale replicas repaired after a read.
    pub read_repairs: u64,
    /// Hints stored for a down or failing replica.
    pub hints_stored: u64,
    /// Hints handed to their node and deleted.
    pub hints_delivered: u64,
    /// Anti-entropy rounds run.
    pub anti_entropy_rounds: u64,
    /// Keys exchanged by anti-entropy (pulled or pushed).
    pub anti_entropy_keys: u64,
    /// Hints waiting for their node.
    pub hints_pending: u64,
    /// Connections closed for malformed or oversized input.
    pub protocol_errors: u64,
    /// Storage transactions committed (each one fsync).
    pub storage_commits: u64,
    /// Storage jobs applied (`storage_jobs / storage_commits` = group-commit batch size).
    pub storage_jobs: u64,
    /// Layouts (membership epochs) installed by this node.
    pub layout_changes: u64,
    /// Gossip rounds this node started.
    pub gossip_rounds: u64,
    /// Partition copies streamed to new owners by changes this node drove.
    pub partitions_moved: u64,
    /// Writes acknowledged by a fallback node holding a hint (sloppy quorum).
    pub sloppy_hints: u64,
    /// Concurrent siblings dropped by the [`MAX_SIBLINGS`](crate::MAX_SIBLINGS) bound.
    pub siblings_dropped: u64,
    /// Tombstones deleted here by the GC rule (see the crate docs).
    pub tombstones_collected: u64,
    /// Keys of partitions this node no longer owns, deleted after their new owners
    /// acknowledged them.
    pub old_copies_dropped: u64,
    /// Keys stored on this node (live values, expired values and tombstones).
    pub keys_stored: u64,
}

macro_rules! counters {
    ($($field:ident => $name:literal),* $(,)?) => {
        /// Live counters of one node.
        #[derive(Debug)]
        pub(crate) struct Metrics {
            $(pub(crate) $field: Event,)*
        }

        impl Metrics {
            pub(crate) fn new(node: &str) -> Self {
                Self {
                    $($field: Event::new($name, node),)*
                }
            }

            pub(crate) fn fill(&self, s: &mut DhtStats) {
                $(s.$field = self.$field.get();)*
            }
        }
    };
}

counters! {
    connections => "keel_dht_connections_total",
    commands => "keel_dht_commands_total",
    reads => "keel_dht_reads_total",
    writes => "keel_dht_writes_total",
    forwarded => "keel_dht_forwarded_total",
    quorum_failures => "keel_dht_quorum_failures_total",
    read_repairs => "keel_dht_read_repairs_total",
    hints_stored => "keel_dht_hints_stored_total",
    hints_delivered => "keel_dht_hints_delivered_total",
    protocol_errors => "keel_dht_protocol_errors_total",
    anti_entropy_rounds => "keel_dht_anti_entropy_rounds_total",
    anti_entropy_keys => "keel_dht_anti_entropy_keys_total",
    layout_changes => "keel_dht_layout_changes_total",
    gossip_rounds => "keel_dht_gossip_rounds_total",
    partitions_moved => "keel_dht_partitions_moved_total",
    sloppy_hints => "keel_dht_sloppy_hints_total",
    tombstones_collected => "keel_dht_tombstones_collected_total",
    old_copies_dropped => "keel_dht_old_copies_dropped_total",
}

/// One counted event: a snapshot atomic and a facade handle.
#[derive(Debug)]
pub(crate) struct Event {
    count: AtomicU64,
    facade: metrics::Counter,
}

impl Event {
    fn new(name: &'static str, node: &str) -> Self {
        Self {
            count: AtomicU64::new(0),
            facade: metrics::counter!(name, "node" => node.to_owned()),
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.count.fetch_add(n, Ordering::Relaxed);
        self.facade.increment(n);
    }

    pub(crate) fn inc(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
