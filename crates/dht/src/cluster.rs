//! Placement: fixed partitions on a consistent-hash ring, and each partition's
//! preference list.
//!
//! Dynamo's "strategy 3": the key space is cut into `Q` equal partitions (default 256) by
//! the top bits of the key's hash, and *partitions*, not keys, are placed on nodes with
//! [`keel_ring::Ring`] (virtual nodes). A partition's **preference list** is the first `N`
//! distinct nodes the ring returns for it. Placement is a table lookup per key, a
//! membership change recomputes `Q` preference lists, and a partition is the unit a node
//! would stream on join/leave and compare with Merkle trees.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_ring::{NodeId, Placement, Ring, RingKey, hash_bytes};

use crate::error::BuildError;
use crate::peer::Peer;

/// The cluster as one node sees it.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) me: String,
    pub(crate) members: Vec<String>,
    /// Per partition: member indices in preference order (at most N).
    owners: Vec<Vec<usize>>,
    pub(crate) peers: HashMap<String, Arc<Peer>>,
    vnodes: u32,
}

impl Cluster {
    pub(crate) fn new(
        me: String,
        seeds: &[String],
        n: usize,
        partitions: usize,
        vnodes: u32,
        timeout: Duration,
        retry_after: Duration,
    ) -> Result<Self, BuildError> {
        let mut ring = Ring::new(vnodes).map_err(BuildError::RingConfig)?;
        let mut names: Vec<String> = seeds.iter().filter(|s| **s != me).cloned().collect();
        names.push(me.clone());
        names.sort();
        names.dedup();
        for name in &names {
            ring.add_node(NodeId::new(name).map_err(BuildError::NodeName)?)
                .map_err(BuildError::Ring)?;
        }
        let members: Vec<String> = ring.nodes().iter().map(|n| n.as_str().to_owned()).collect();
        let mut owners = Vec::with_capacity(partitions);
        let mut out = Vec::new();
        for p in 0..partitions as u64 {
            ring.replica_indices_for_hash(p.ring_hash(), n, &mut out);
            owners.push(out.clone());
        }
        let peers = members
            .iter()
            .filter(|m| **m != me)
            .map(|m| {
                (
                    m.clone(),
                    Arc::new(Peer::new(m.clone(), timeout, retry_after)),
                )
            })
            .collect();
        Ok(Self {
            me,
            members,
            owners,
            peers,
            vnodes,
        })
    }

    /// Number of partitions.
    pub(crate) fn partitions(&self) -> usize {
        self.owners.len()
    }

    /// Virtual nodes per member on the ring.
    pub(crate) fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The partition of a key: the top bits of its portable hash (equal-sized ranges).
    pub(crate) fn partition_of(&self, key: &[u8]) -> u16 {
        let q = self.owners.len() as u128;
        // q <= 65536, so the product's top 64 bits fit a u16 after the shift.
        ((u128::from(hash_bytes(key)) * q) >> 64) as u16
    }

    /// The preference list of a partition (node names, at most N).
    pub(crate) fn owners(&self, partition: u16) -> impl Iterator<Item = &str> {
        self.owners
            .get(usize::from(partition))
            .into_iter()
            .flatten()
            .map(|&i| self.members[i].as_str())
    }

    /// True when `node` is marked down by this node's detector (never for itself).
    pub(crate) fn is_down(&self, node: &str) -> bool {
        self.peers.get(node).is_some_and(|p| p.is_down())
    }
}
