//! Placement: fixed partitions on a consistent-hash ring, each partition's preference
//! list, and the **layout** (the member list with its epoch) that membership changes
//! replace.
//!
//! Dynamo's "strategy 3": the key space is cut into `Q` equal partitions (default 256) by
//! the top bits of the key's hash, and *partitions*, not keys, are placed on nodes with
//! [`keel_ring::Ring`] (virtual nodes). A partition's **preference list** is the first `N`
//! distinct nodes the ring returns for it; the nodes after them, in ring order, are its
//! **fallbacks** (where a sloppy-quorum write parks a hint for a down owner). Placement is
//! a table lookup per key, a membership change recomputes `Q` preference lists, and a
//! partition is the unit a node streams on join/leave and compares with Merkle trees.
//!
//! # Layouts and epochs
//! A [`Layout`] is `(epoch, members, pending)`. Between membership changes `pending` is
//! empty. A change (join or leave, see [`membership`](crate::membership)) first installs
//! `(e+1, old, Some(new))` — **dual placement**: reads use the old owners, writes go to
//! the old *and* the new owners and need W acks in each set — then streams partitions to
//! their new owners, then installs `(e+2, new, None)`. Layouts spread by gossip; a node
//! adopts any layout with a higher epoch (ties: the larger member list, then the
//! lexicographically larger encoding, so every node picks the same one).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_ring::{NodeId, Placement as _, Ring, RingKey, hash_bytes};
use parking_lot::RwLock;

use crate::error::BuildError;
use crate::net::Network;
use crate::peer::Peer;

/// The member list a cluster runs with, versioned by its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// Bumped by every installed change; higher wins.
    pub(crate) epoch: u64,
    /// Members that own partitions now (sorted, distinct).
    pub(crate) members: Vec<String>,
    /// The members after the change in progress, if any (sorted, distinct).
    pub(crate) pending: Option<Vec<String>>,
}

impl Layout {
    /// A layout of the given members at `epoch`.
    pub(crate) fn new(epoch: u64, members: impl IntoIterator<Item = String>) -> Self {
        let mut members: Vec<String> = members.into_iter().collect();
        members.sort();
        members.dedup();
        Self {
            epoch,
            members,
            pending: None,
        }
    }

    /// `epoch|m1,m2|p1,p2` (`-` for no pending change). Names never contain `|` or `,`
    /// (they are `host:port` addresses; [`valid_name`] checks).
    pub(crate) fn encode(&self) -> String {
        let pending = self
            .pending
            .as_ref()
            .map_or_else(|| "-".to_owned(), |p| p.join(","));
        format!("{}|{}|{}", self.epoch, self.members.join(","), pending)
    }

    /// Parses [`encode`](Self::encode)'s output; `None` if malformed.
    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.split('|');
        let epoch = parts.next()?.parse().ok()?;
        let list = |s: &str| -> Option<Vec<String>> {
            let v: Vec<String> = s
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            v.iter().all(|m| valid_name(m)).then_some(v)
        };
        let members = list(parts.next()?)?;
        let pending = match parts.next()? {
            "-" => None,
            p => Some(list(p)?),
        };
        if parts.next().is_some() || members.is_empty() {
            return None;
        }
        let mut layout = Layout::new(epoch, members);
        layout.pending = pending.map(|p| Layout::new(0, p).members);
        Some(layout)
    }

    /// Whether `other` should replace `self` on a node holding `self`.
    pub(crate) fn is_superseded_by(&self, other: &Layout) -> bool {
        let key = |l: &Layout| {
            (
                l.epoch,
                l.members.len() + l.pending.as_ref().map_or(0, Vec::len),
                l.encode(),
            )
        };
        key(other) > key(self)
    }

    /// Every node in the layout: members and pending members.
    pub(crate) fn all_nodes(&self) -> Vec<String> {
        let mut all = self.members.clone();
        all.extend(self.pending.iter().flatten().cloned());
        all.sort();
        all.dedup();
        all
    }
}

/// A node name the layout can carry: non-empty, at most 255 bytes, no separators.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.contains(['|', ',', ';', '=', ' '])
        && NodeId::new(name).is_ok()
}

/// Placement of every partition over one member list.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) members: Vec<String>,
    /// Per partition: all member indices in ring order (owners first, then fallbacks).
    order: Vec<Vec<usize>>,
    n: usize,
}

impl Table {
    fn new(
        members: &[String],
        n: usize,
        partitions: usize,
        vnodes: u32,
    ) -> Result<Self, BuildError> {
        let mut ring = Ring::new(vnodes).map_err(BuildError::RingConfig)?;
        for name in members {
            ring.add_node(NodeId::new(name).map_err(BuildError::NodeName)?)
                .map_err(BuildError::Ring)?;
        }
        let ring_members: Vec<String> =
            ring.nodes().iter().map(|n| n.as_str().to_owned()).collect();
        let mut order = Vec::with_capacity(partitions);
        let mut out = Vec::new();
        for p in 0..partitions as u64 {
            ring.replica_indices_for_hash(p.ring_hash(), ring_members.len(), &mut out);
            order.push(out.clone());
        }
        Ok(Self {
            members: ring_members,
            order,
            n,
        })
    }

    /// The preference list of `p` (at most N names).
    pub(crate) fn owners(&self, p: u16) -> impl Iterator<Item = &str> {
        self.order
            .get(usize::from(p))
            .into_iter()
            .flat_map(|o| o.iter().take(self.n))
            .map(|&i| self.members[i].as_str())
    }

    /// The nodes after the preference list of `p`, in ring order.
    pub(crate) fn fallbacks(&self, p: u16) -> impl Iterator<Item = &str> {
        self.order
            .get(usize::from(p))
            .into_iter()
            .flat_map(|o| o.iter().skip(self.n))
            .map(|&i| self.members[i].as_str())
    }

    /// Whether `node` is an owner of `p`.
    pub(crate) fn owns(&self, node: &str, p: u16) -> bool {
        self.owners(p).any(|o| o == node)
    }
}

/// One installed layout and its placement tables.
#[derive(Debug)]
pub(crate) struct Placement {
    pub(crate) layout: Layout,
    /// Placement over `layout.members`: reads, write coordination.
    pub(crate) current: Table,
    /// Placement over `layout.pending` during a change: writes also go there.
    pub(crate) next: Option<Table>,
}

impl Placement {
    /// Where a write of partition `p` must go: the current owners, then the next owners
    /// not among them.
    pub(crate) fn write_targets(&self, p: u16) -> Vec<String> {
        let mut out: Vec<String> = self.current.owners(p).map(str::to_owned).collect();
        if let Some(next) = &self.next {
            for o in next.owners(p) {
                if !out.iter().any(|x| x == o) {
                    out.push(o.to_owned());
                }
            }
        }
        out
    }

    /// Sloppy-quorum stand-ins for partition `p`: nodes in ring order after the owners,
    /// excluding every node that is an owner in either table.
    pub(crate) fn fallbacks(&self, p: u16) -> Vec<String> {
        let targets = self.write_targets(p);
        self.current
            .fallbacks(p)
            .filter(|f| !targets.iter().any(|t| t == f))
            .map(str::to_owned)
            .collect()
    }
}

/// How this node reaches its peers: the network, the call timeout, and how long a
/// failed peer is skipped.
#[derive(Debug, Clone)]
pub(crate) struct PeerLinks {
    pub(crate) network: Arc<dyn Network>,
    pub(crate) timeout: Duration,
    pub(crate) retry_after: Duration,
}

/// The cluster as one node sees it: the installed layout, the peers and their health.
#[derive(Debug)]
pub(crate) struct Cluster {
    pub(crate) me: String,
    n: usize,
    partitions: usize,
    vnodes: u32,
    links: PeerLinks,
    placement: RwLock<Arc<Placement>>,
    peers: RwLock<HashMap<String, Arc<Peer>>>,
}

impl Cluster {
    pub(crate) fn new(
        me: String,
        layout: Layout,
        n: usize,
        partitions: usize,
        vnodes: u32,
        links: PeerLinks,
    ) -> Result<Self, BuildError> {
        let placement = build_placement(layout, n, partitions, vnodes)?;
        let cluster = Self {
            me,
            n,
            partitions,
            vnodes,
            links,
            placement: RwLock::new(Arc::new(placement)),
            peers: RwLock::new(HashMap::new()),
        };
        Ok(cluster)
    }

    /// Number of partitions.
    pub(crate) fn partitions(&self) -> usize {
        self.partitions
    }

    /// Virtual nodes per member on the ring.
    pub(crate) fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The installed placement (a snapshot; a change installs a new one).
    pub(crate) fn placement(&self) -> Arc<Placement> {
        Arc::clone(&self.placement.read())
    }

    /// The installed layout.
    pub(crate) fn layout(&self) -> Layout {
        self.placement.read().layout.clone()
    }

    /// Installs `layout` if it supersedes the installed one. Returns the replaced
    /// placement when it did.
    pub(crate) fn install(&self, layout: &Layout) -> Result<Option<Arc<Placement>>, BuildError> {
        if !self.placement.read().layout.is_superseded_by(layout) {
            return Ok(None);
        }
        let placement = Arc::new(build_placement(
            layout.clone(),
            self.n,
            self.partitions,
            self.vnodes,
        )?);
        let mut slot = self.placement.write();
        // Re-checked under the write lock: a concurrent install may have won.
        if !slot.layout.is_superseded_by(layout) {
            return Ok(None);
        }
        let old = std::mem::replace(&mut *slot, placement);
        Ok(Some(old))
    }

    /// Installs `layout` whatever the installed one is (a joining node adopting its
    /// seed's cluster).
    pub(crate) fn replace(&self, layout: &Layout) -> Result<(), BuildError> {
        let placement = Arc::new(build_placement(
            layout.clone(),
            self.n,
            self.partitions,
            self.vnodes,
        )?);
        *self.placement.write() = placement;
        Ok(())
    }

    /// Members and pending members (what `DHT.NODES` lists).
    pub(crate) fn members(&self) -> Vec<String> {
        self.placement.read().layout.all_nodes()
    }

    /// The partition of a key: the top bits of its portable hash (equal-sized ranges).
    pub(crate) fn partition_of(&self, key: &[u8]) -> u16 {
        let q = self.partitions as u128;
        // q <= 65536, so the product's top 64 bits fit a u16 after the shift.
        ((u128::from(hash_bytes(key)) * q) >> 64) as u16
    }

    /// The current preference list of a partition (node names, at most N).
    pub(crate) fn owners(&self, partition: u16) -> Vec<String> {
        self.placement
            .read()
            .current
            .owners(partition)
            .map(str::to_owned)
            .collect()
    }

    /// The connection to `node` (created on first use; never for this node).
    pub(crate) fn peer(&self, node: &str) -> Option<Arc<Peer>> {
        if node == self.me {
            return None;
        }
        if let Some(p) = self.peers.read().get(node) {
            return Some(Arc::clone(p));
        }
        let mut peers = self.peers.write();
        let p = peers.entry(node.to_owned()).or_insert_with(|| {
            Arc::new(Peer::new(
                node.to_owned(),
                self.links.timeout,
                self.links.retry_after,
                Arc::clone(&self.links.network),
            ))
        });
        Some(Arc::clone(p))
    }

    /// True when `node` is marked down by the call-timeout detector (never for itself).
    /// The gossip detector is combined with it in [`Inner::is_down`](crate::node::Inner).
    pub(crate) fn peer_down(&self, node: &str) -> bool {
        self.peers.read().get(node).is_some_and(|p| p.is_down())
    }
}

fn build_placement(
    layout: Layout,
    n: usize,
    partitions: usize,
    vnodes: u32,
) -> Result<Placement, BuildError> {
    let current = Table::new(&layout.members, n, partitions, vnodes)?;
    let next = match &layout.pending {
        Some(p) => Some(Table::new(p, n, partitions, vnodes)?),
        None => None,
    };
    Ok(Placement {
        layout,
        current,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip_and_order_by_epoch_then_size() {
        let mut l = Layout::new(3, ["b:1".to_owned(), "a:1".to_owned()]);
        assert_eq!(Layout::decode(&l.encode()), Some(l.clone()));
        l.pending = Some(vec!["a:1".into(), "b:1".into(), "c:1".into()]);
        assert_eq!(Layout::decode(&l.encode()), Some(l.clone()));
        let older = Layout::new(2, ["z:1".to_owned()]);
        assert!(older.is_superseded_by(&l));
        assert!(!l.is_superseded_by(&older));
        assert!(!l.is_superseded_by(&l.clone()));
        let bigger = Layout::new(3, ["a:1", "b:1", "c:1", "d:1"].map(String::from));
        let base = Layout::new(3, ["a:1".to_owned(), "b:1".to_owned()]);
        assert!(base.is_superseded_by(&bigger));
        assert!(!bigger.is_superseded_by(&base));
        for bad in ["", "x|a:1|-", "1||-", "1|a:1", "1|a b|-", "1|a:1|-|x"] {
            assert_eq!(Layout::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn fallbacks_follow_the_ring_after_the_owners() {
        let members: Vec<String> = (1..=5).map(|i| format!("127.0.0.1:{i}")).collect();
        let t = Table::new(&members, 3, 64, 16).unwrap();
        for p in 0..64 {
            let owners: Vec<&str> = t.owners(p).collect();
            let fallbacks: Vec<&str> = t.fallbacks(p).collect();
            assert_eq!(owners.len(), 3);
            assert_eq!(fallbacks.len(), 2);
            assert!(fallbacks.iter().all(|f| !owners.contains(f)));
        }
    }

    #[test]
    fn dual_placement_writes_to_old_and_new_owners() {
        let old: Vec<String> = (1..=3).map(|i| format!("127.0.0.1:{i}")).collect();
        let mut layout = Layout::new(1, old.clone());
        let mut new = old.clone();
        new.push("127.0.0.1:4".into());
        layout.pending = Some(new);
        let p = build_placement(layout, 3, 256, 16).unwrap();
        let next = p.next.as_ref().unwrap();
        let mut moved = 0;
        for q in 0..256 {
            let t = p.write_targets(q);
            assert!(p.current.owners(q).all(|o| t.iter().any(|x| x == o)));
            assert!(next.owners(q).all(|o| t.iter().any(|x| x == o)));
            moved += usize::from(t.len() > 3);
        }
        // A 4th node takes over about a quarter of the replicas.
        assert!(moved > 100, "{moved}");
    }
}
