//! Membership: gossip of the layout and of heartbeats, failure detection, and node
//! **join / leave** with partition streaming.
//!
//! # Why our own gossip and not chitchat or foca
//! The state that must spread is tiny — one [`Layout`] (epoch + member list) and one
//! heartbeat per node — and it must travel over the node's existing RESP peer
//! connections so that a single injected network and clock cover everything. chitchat
//! brings its own UDP transport and tokio timers, foca its own wire format and runtime
//! glue; either would be a second network stack beside the one the quorum traffic uses.
//! The algorithm here is the classic **gossip-style failure detector** (van Renesse,
//! Minsky, Hayden 1998), the one Cassandra and chitchat build on:
//!
//! - every `gossip_interval` a node bumps its own heartbeat `(incarnation, counter)` —
//!   the incarnation is its start time, so a restarted node is never mistaken for its
//!   stale past — and exchanges its whole view with one member picked round-robin from a
//!   hash of its name and the round (`DHT.R.GOSSIP`, push-pull);
//! - a node keeps, for every member, the highest heartbeat heard and *when it was heard*
//!   on the injected [`Clock`](crate::Clock); a member whose heartbeat has not advanced for
//!   `fail_after` is **down**. Evidence is indirect, as with SWIM's indirect probes: a
//!   member that one node cannot reach but others can is still heard through them;
//! - the local call-timeout detector in [`peer`](crate::peer) is combined with it, so a
//!   member that stops answering is skipped at once, before gossip agrees.
//!
//! The view converges in O(log n) rounds; messages are O(n) per round per node.
//!
//! # Join and leave
//! A change from members `M` to `M'` (one node more or one less) is driven by one node
//! (the joiner for `DHT.JOIN`, the leaver for `DHT.LEAVE`), one change at a time:
//!
//! 1. **Dual placement.** Install `(e+1, M, pending M')` everywhere (`DHT.R.LAYOUT`,
//!    acknowledged by every member that is up). From now on every write goes to the old
//!    and the new owners of its partition and is acknowledged only with W acks among the
//!    old owners *and* W among the new ones; reads still use the old owners.
//! 2. **Stream.** For every partition, each new owner that was not an old owner pulls the
//!    partition from the old owners (`DHT.R.PULL` → `DHT.R.DUMP`: every key with all its
//!    siblings, tombstones and TTLs) and merges it durably. It needs answers from at
//!    least `N − W + 1` old owners, so every write acknowledged before step 1 (on W old
//!    owners) is among what it pulled.
//! 3. **Switch.** Install `(e+2, M', none)`. Reads move to the new owners, which hold
//!    every acknowledged write: the old ones by step 2, the ones since step 1 by the
//!    dual-write rule.
//! 4. **Sweep.** A node that stopped owning a partition compares it once with each new
//!    owner (Merkle sync). This catches writes from a node that was down during the
//!    change and coordinated with the old layout before it heard of the new one.
//!
//! A failure in step 2 installs `(e+2, M, none)`: the change is rolled back and nothing
//! has moved ownership. Epochs spread by gossip too, so a member that missed a broadcast
//! catches up within a few rounds. A joining node with `--seed` fetches the layout from
//! the seed and runs the change itself; the layout is persisted in the data directory so
//! a restarted node rejoins with the last one it installed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::join_all;
use parking_lot::Mutex;
use redis::Value;
use xxhash_rust::xxh3::xxh3_64;

use crate::cluster::{Layout, Placement, valid_name};
use crate::node::Inner;
use crate::peer::PeerError;
use crate::version::SiblingSet;

/// This run's incarnation: the start time, raised above the last run's when the clock
/// stepped back across the restart (an NTP correction, a VM restored from a snapshot).
/// Peers take a heartbeat with a lower incarnation for an old one and ignore it, so a
/// node whose clock jumped back would otherwise look down to everyone until its clock
/// passed its previous start time. Persisted before use; a failed write only loses
/// this protection for the next restart.
fn next_incarnation(data_dir: &std::path::Path, now_ms: u64) -> u64 {
    let file = data_dir.join("incarnation");
    let _ = std::fs::create_dir_all(data_dir);
    let previous = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let incarnation = now_ms.max(previous.saturating_add(1)).max(1);
    let tmp = file.with_extension("tmp");
    if std::fs::write(&tmp, incarnation.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, &file);
    }
    incarnation
}

/// The highest heartbeat heard from a node and when it was heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Beat {
    incarnation: u64,
    counter: u64,
    heard_ms: u64,
}

/// This node's membership state: heartbeats, the failure detector, the change lock.
#[derive(Debug)]
pub(crate) struct Membership {
    incarnation: u64,
    counter: AtomicU64,
    round: AtomicU64,
    /// Ordered, so the gossip text (and a simulated run) does not depend on hashing.
    beats: Mutex<BTreeMap<String, Beat>>,
    fail_after_ms: u64,
    layout_file: PathBuf,
    /// One membership change driven from this node at a time.
    pub(crate) change: tokio::sync::Mutex<()>,
}

impl Membership {
    /// `now_ms` is the start time on the node's clock; the incarnation is that, or one
    /// more than the previous run's (persisted in `data_dir`) when the clock went back.
    pub(crate) fn new(now_ms: u64, fail_after_ms: u64, data_dir: &std::path::Path) -> Self {
        Self {
            incarnation: next_incarnation(data_dir, now_ms),
            counter: AtomicU64::new(0),
            round: AtomicU64::new(0),
            beats: Mutex::new(BTreeMap::new()),
            fail_after_ms,
            layout_file: data_dir.join("layout"),
            change: tokio::sync::Mutex::new(()),
        }
    }

    /// The layout persisted by the last run, if any.
    pub(crate) fn load_layout(&self) -> Option<Layout> {
        let text = std::fs::read_to_string(&self.layout_file).ok()?;
        Layout::decode(text.trim())
    }

    /// Persists `layout` (write to a temporary file, then rename).
    fn save_layout(&self, layout: &Layout) {
        let tmp = self.layout_file.with_extension("tmp");
        if std::fs::write(&tmp, layout.encode()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.layout_file);
        }
    }

    /// True when `node`'s heartbeat has not advanced for `fail_after` (a node never
    /// heard of counts from the first time it is asked about).
    pub(crate) fn gossip_down(&self, node: &str, now_ms: u64) -> bool {
        let mut beats = self.beats.lock();
        let beat = beats.entry(node.to_owned()).or_insert(Beat {
            incarnation: 0,
            counter: 0,
            heard_ms: now_ms,
        });
        now_ms.saturating_sub(beat.heard_ms) > self.fail_after_ms
    }

    /// Bumps this node's heartbeat; returns the gossip text of every known heartbeat.
    fn beat_text(&self, me: &str, now_ms: u64, bump: bool) -> String {
        let counter = if bump {
            self.counter.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.counter.load(Ordering::Relaxed)
        };
        let mut beats = self.beats.lock();
        beats.insert(
            me.to_owned(),
            Beat {
                incarnation: self.incarnation,
                counter,
                heard_ms: now_ms,
            },
        );
        beats
            .iter()
            .filter(|(_, b)| b.incarnation > 0)
            .map(|(n, b)| format!("{n}={}.{}", b.incarnation, b.counter))
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Merges heartbeats heard from a peer: a higher `(incarnation, counter)` is news.
    fn merge_beats(&self, me: &str, text: &str, now_ms: u64) {
        let mut beats = self.beats.lock();
        for item in text.split(';').filter(|s| !s.is_empty()) {
            let Some((name, hb)) = item.split_once('=') else {
                continue;
            };
            let Some((inc, ctr)) = hb.split_once('.') else {
                continue;
            };
            let (Ok(incarnation), Ok(counter)) = (inc.parse::<u64>(), ctr.parse::<u64>()) else {
                continue;
            };
            if name == me || !valid_name(name) {
                continue;
            }
            let entry = beats.entry(name.to_owned()).or_insert(Beat {
                incarnation: 0,
                counter: 0,
                heard_ms: now_ms,
            });
            if (incarnation, counter) > (entry.incarnation, entry.counter) {
                *entry = Beat {
                    incarnation,
                    counter,
                    heard_ms: now_ms,
                };
            }
        }
    }

    /// Forgets heartbeats of nodes no longer in the layout (bounded memory).
    fn retain(&self, nodes: &[String]) {
        self.beats.lock().retain(|n, _| nodes.contains(n));
    }
}

/// Why a membership change failed.
#[derive(Debug)]
pub(crate) enum ChangeError {
    /// Another change is in progress (or won a race).
    Busy,
    /// A member did not install the new layout.
    Broadcast(String),
    /// A partition could not be streamed to its new owner.
    Stream(String),
    /// Bad request (unknown node, not a member, …).
    Invalid(String),
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Busy => f.write_str("a membership change is in progress"),
            ChangeError::Broadcast(e) => write!(f, "layout not installed: {e}"),
            ChangeError::Stream(e) => write!(f, "partition streaming failed (rolled back): {e}"),
            ChangeError::Invalid(e) => f.write_str(e),
        }
    }
}

/// What a completed change did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChangeReport {
    pub(crate) epoch: u64,
    pub(crate) partitions_moved: usize,
    pub(crate) keys_streamed: usize,
}

/// Partitions pulled concurrently during a change.
const STREAM_CONCURRENCY: usize = 8;
/// Longest wait for one partition pull or dump (it moves a whole partition).
const STREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Merges submitted at once while pulling (one group commit each).
const MERGE_BATCH: usize = 256;

impl Inner {
    /// True when `node` is believed down (call timeouts or silent heartbeats).
    pub(crate) fn is_down(&self, node: &str) -> bool {
        node != self.cluster.me
            && (self.cluster.peer_down(node)
                || self.membership.gossip_down(node, self.clock.now_ms()))
    }

    /// Installs `layout` if it is newer; persists it and starts the sweep of partitions
    /// this node stopped owning. Returns whether it was installed.
    pub(crate) fn install_layout(self: &Arc<Self>, layout: &Layout) -> bool {
        let old = match self.cluster.install(layout) {
            Ok(Some(old)) => old,
            _ => return false,
        };
        self.membership.save_layout(layout);
        self.membership.retain(&layout.all_nodes());
        self.metrics.layout_changes.inc();
        let new = self.cluster.placement();
        let lost: Vec<u16> = (0..self.cluster.partitions() as u16)
            .filter(|&p| {
                let had = old.current.owns(&self.cluster.me, p)
                    || old
                        .next
                        .as_ref()
                        .is_some_and(|t| t.owns(&self.cluster.me, p));
                let has = new.current.owns(&self.cluster.me, p)
                    || new
                        .next
                        .as_ref()
                        .is_some_and(|t| t.owns(&self.cluster.me, p));
                had && !has
            })
            .collect();
        if !lost.is_empty() {
            let this = Arc::clone(self);
            tokio::spawn(async move { this.sweep(&new, &lost).await });
        }
        true
    }

    /// Pushes partitions this node no longer owns to their owners (one Merkle sync each).
    async fn sweep(&self, placement: &Placement, lost: &[u16]) {
        for &p in lost {
            for owner in placement.write_targets(p) {
                if owner != self.cluster.me {
                    let _ = self.sync_partition(p, &owner).await;
                }
            }
        }
    }

    /// The `DHT.R.GOSSIP` payload: this node's layout and heartbeats.
    pub(crate) fn gossip_payload(&self, bump: bool) -> (String, String) {
        let now = self.clock.now_ms();
        (
            self.cluster.layout().encode(),
            self.membership.beat_text(&self.cluster.me, now, bump),
        )
    }

    /// Takes in a peer's gossip.
    pub(crate) fn absorb_gossip(self: &Arc<Self>, layout: &str, beats: &str) {
        if let Some(l) = Layout::decode(layout) {
            self.install_layout(&l);
        }
        self.membership
            .merge_beats(&self.cluster.me, beats, self.clock.now_ms());
    }

    /// One gossip round: bump the heartbeat, push-pull with one member.
    pub(crate) async fn gossip_round(self: &Arc<Self>) {
        let (layout, beats) = self.gossip_payload(true);
        let others: Vec<String> = self
            .cluster
            .members()
            .into_iter()
            .filter(|m| *m != self.cluster.me)
            .collect();
        if others.is_empty() {
            return;
        }
        let round = self.membership.round.fetch_add(1, Ordering::Relaxed);
        let pick = xxh3_64(format!("{}/{round}", self.cluster.me).as_bytes()) as usize;
        let target = &others[pick % others.len()];
        let Some(peer) = self.cluster.peer(target) else {
            return;
        };
        let reply = peer
            .probe(
                redis::cmd("DHT.R.GOSSIP")
                    .arg(&self.cluster.me)
                    .arg(layout)
                    .arg(beats),
            )
            .await;
        if let Ok(Value::Array(items)) = reply {
            if let [Value::BulkString(l), Value::BulkString(b)] = items.as_slice() {
                self.absorb_gossip(&String::from_utf8_lossy(l), &String::from_utf8_lossy(b));
            }
        }
        self.metrics.gossip_rounds.inc();
    }

    /// Sends `layout` to `node` and returns the layout it then holds.
    async fn push_layout(self: &Arc<Self>, node: &str, layout: &Layout) -> Result<Layout, String> {
        if node == self.cluster.me {
            self.install_layout(layout);
            return Ok(self.cluster.layout());
        }
        let peer = self
            .cluster
            .peer(node)
            .ok_or_else(|| format!("no peer {node}"))?;
        match peer
            .call(redis::cmd("DHT.R.LAYOUT").arg(layout.encode()))
            .await
        {
            Ok(Value::BulkString(b)) => Layout::decode(&String::from_utf8_lossy(&b))
                .ok_or_else(|| format!("{node}: bad layout reply")),
            Ok(other) => Err(format!("{node}: unexpected reply {other:?}")),
            Err(e) => Err(format!("{node}: {e}")),
        }
    }

    /// Installs `layout` on every node in it. `strict`: every node not believed down must
    /// install exactly this layout.
    async fn broadcast(self: &Arc<Self>, layout: &Layout, strict: bool) -> Result<(), ChangeError> {
        let nodes = layout.all_nodes();
        let results = join_all(nodes.iter().map(|n| async move {
            let down = self.is_down(n);
            (n, down, self.push_layout(n, layout).await)
        }))
        .await;
        if !strict {
            return Ok(());
        }
        for (node, down, result) in results {
            match result {
                Ok(l) if l == *layout => {}
                Ok(l) if layout.is_superseded_by(&l) => return Err(ChangeError::Busy),
                Ok(_) => return Err(ChangeError::Broadcast(format!("{node} kept its layout"))),
                Err(_) if down => {}
                Err(e) => return Err(ChangeError::Broadcast(e)),
            }
        }
        Ok(())
    }

    /// Runs a membership change to `new_members` from this node (steps 1–3 above).
    pub(crate) async fn change_members(
        self: &Arc<Self>,
        new_members: Vec<String>,
    ) -> Result<ChangeReport, ChangeError> {
        let _guard = self.membership.change.lock().await;
        let current = self.cluster.layout();
        if current.pending.is_some() {
            return Err(ChangeError::Busy);
        }
        let target = Layout::new(0, new_members).members;
        if target.is_empty() {
            return Err(ChangeError::Invalid("a cluster needs a member".into()));
        }
        if target == current.members {
            return Ok(ChangeReport {
                epoch: current.epoch,
                ..ChangeReport::default()
            });
        }
        let dual = Layout {
            epoch: current.epoch + 1,
            members: current.members.clone(),
            pending: Some(target.clone()),
        };
        if !self.install_layout(&dual) {
            return Err(ChangeError::Busy);
        }
        if let Err(e) = self.broadcast(&dual, true).await {
            if !matches!(e, ChangeError::Busy) {
                self.rollback(&current).await;
            }
            return Err(e);
        }
        let streamed = match self.stream_all(&self.cluster.placement()).await {
            Ok(s) => s,
            Err(e) => {
                self.rollback(&current).await;
                return Err(e);
            }
        };
        let done = Layout::new(current.epoch + 2, target);
        self.install_layout(&done);
        // Best effort: whoever misses it learns it by gossip.
        let _ = self.broadcast(&done, false).await;
        self.metrics.partitions_moved.add(streamed.0 as u64);
        Ok(ChangeReport {
            epoch: done.epoch,
            partitions_moved: streamed.0,
            keys_streamed: streamed.1,
        })
    }

    async fn rollback(self: &Arc<Self>, current: &Layout) {
        let back = Layout {
            epoch: current.epoch + 2,
            members: current.members.clone(),
            pending: None,
        };
        self.install_layout(&back);
        let _ = self.broadcast(&back, false).await;
    }

    /// Step 2: every new owner pulls its new partitions. Returns (partition moves, keys).
    async fn stream_all(
        self: &Arc<Self>,
        placement: &Placement,
    ) -> Result<(usize, usize), ChangeError> {
        let Some(next) = &placement.next else {
            return Ok((0, 0));
        };
        let mut moves = Vec::new();
        for p in 0..self.cluster.partitions() as u16 {
            let old: Vec<String> = placement.current.owners(p).map(str::to_owned).collect();
            for t in next.owners(p).filter(|t| !old.iter().any(|o| o == t)) {
                moves.push((p, t.to_owned(), old.clone()));
            }
        }
        let count = moves.len();
        let mut keys = 0;
        for chunk in moves.chunks(STREAM_CONCURRENCY) {
            let results = join_all(chunk.iter().map(|(p, t, old)| async move {
                let mut last = String::new();
                for _attempt in 0..3 {
                    match self.order_pull(*p, t, old).await {
                        Ok(n) => return Ok(n),
                        Err(e) => last = e,
                    }
                }
                Err(format!("partition {p} to {t}: {last}"))
            }))
            .await;
            for r in results {
                keys += r.map_err(ChangeError::Stream)?;
            }
        }
        Ok((count, keys))
    }

    /// Has `target` pull partition `p` from `sources`.
    async fn order_pull(
        self: &Arc<Self>,
        p: u16,
        target: &str,
        sources: &[String],
    ) -> Result<usize, String> {
        if target == self.cluster.me {
            return self.pull_partition(p, sources).await;
        }
        let peer = self.cluster.peer(target).ok_or("no peer")?;
        let mut cmd = redis::cmd("DHT.R.PULL");
        cmd.arg(p);
        for s in sources {
            cmd.arg(s);
        }
        match peer.call_long(&cmd, STREAM_TIMEOUT).await {
            Ok(Value::Int(n)) => Ok(usize::try_from(n).unwrap_or(0)),
            Ok(other) => Err(format!("unexpected reply {other:?}")),
            Err(PeerError::Remote(e)) => Err(e),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Pulls every key of partition `p` from `sources` and merges it durably. Needs
    /// answers from `sources − W + 1` of them (at least one).
    pub(crate) async fn pull_partition(
        self: &Arc<Self>,
        p: u16,
        sources: &[String],
    ) -> Result<usize, String> {
        let need = (sources.len() + 1).saturating_sub(self.config.w).max(1);
        let dumps = join_all(
            sources
                .iter()
                .filter(|s| **s != self.cluster.me)
                .map(|s| async move { (s, self.dump_from(s, p).await) }),
        )
        .await;
        let mut answered = usize::from(sources.iter().any(|s| *s == self.cluster.me));
        let mut errors = Vec::new();
        // The union of what the sources hold, merged in memory first: one durable merge
        // per key instead of one per key and source.
        // A BTreeMap: keys are merged in key order, the same on every run (the simulation
        // replays a seed exactly).
        let mut union: BTreeMap<Vec<u8>, SiblingSet> = BTreeMap::new();
        for (source, dump) in dumps {
            match dump {
                Ok(entries) => {
                    answered += 1;
                    for (k, set) in entries {
                        union.entry(k).or_default().merge(&set);
                    }
                }
                Err(e) => errors.push(format!("{source}: {e}")),
            }
        }
        if answered < need {
            return Err(format!(
                "{answered} of {need} old owners answered: {}",
                errors.join("; ")
            ));
        }
        let entries: Vec<(Vec<u8>, SiblingSet)> = union.into_iter().collect();
        for chunk in entries.chunks(MERGE_BATCH) {
            let merged = join_all(
                chunk
                    .iter()
                    .map(|(k, set)| self.store.merge(p, k, set.clone())),
            )
            .await;
            if let Some(Err(e)) = merged.into_iter().find(Result::is_err) {
                return Err(format!("storage: {e}"));
            }
        }
        Ok(entries.len())
    }

    async fn dump_from(&self, source: &str, p: u16) -> Result<Vec<(Vec<u8>, SiblingSet)>, String> {
        let peer = self.cluster.peer(source).ok_or("no peer")?;
        let items = match peer
            .call_long(redis::cmd("DHT.R.DUMP").arg(p), STREAM_TIMEOUT)
            .await
        {
            Ok(Value::Array(items)) => items,
            Ok(other) => return Err(format!("unexpected reply {other:?}")),
            Err(e) => return Err(e.to_string()),
        };
        let mut out = Vec::with_capacity(items.len() / 2);
        for pair in items.chunks(2) {
            if let [Value::BulkString(k), Value::BulkString(v)] = pair {
                let set = SiblingSet::decode(v).map_err(|e| e.to_string())?;
                out.push((k.clone(), set));
            }
        }
        Ok(out)
    }

    /// `DHT.JOIN addr`: this node joins the cluster `addr` belongs to; or, run on a member
    /// of a multi-node cluster with a non-member `addr`, asks `addr` to join.
    pub(crate) async fn join_via(
        self: &Arc<Self>,
        seed: &str,
    ) -> Result<ChangeReport, ChangeError> {
        if !valid_name(seed) || seed == self.cluster.me {
            return Err(ChangeError::Invalid(format!("bad seed address {seed:?}")));
        }
        let mine = self.cluster.layout();
        let peer = self
            .cluster
            .peer(seed)
            .ok_or_else(|| ChangeError::Invalid("bad seed".into()))?;
        if mine.members.len() > 1 && !mine.all_nodes().iter().any(|m| m == seed) {
            // Run on a member: the other node joins us.
            return match peer
                .call(redis::cmd("DHT.JOIN").arg(&self.cluster.me))
                .await
            {
                Ok(_) => Ok(ChangeReport {
                    epoch: self.cluster.layout().epoch,
                    ..ChangeReport::default()
                }),
                Err(e) => Err(ChangeError::Broadcast(format!("{seed}: {e}"))),
            };
        }
        let theirs = self
            .fetch_layout(seed)
            .await
            .ok_or_else(|| ChangeError::Broadcast(format!("{seed} is unreachable")))?;
        if theirs.members.iter().any(|m| *m == self.cluster.me) && theirs.pending.is_none() {
            self.install_layout(&theirs);
            return Ok(ChangeReport {
                epoch: theirs.epoch,
                ..ChangeReport::default()
            });
        }
        // Adopt the seed's cluster, then add this node to it.
        if self.cluster.layout() != theirs {
            self.cluster
                .replace(&theirs)
                .map_err(|e| ChangeError::Invalid(e.to_string()))?;
            self.membership.save_layout(&theirs);
        }
        let mut members = theirs.members;
        members.push(self.cluster.me.clone());
        self.change_members(members).await
    }

    /// A seed's layout (one gossip exchange), or `None` if it does not answer.
    async fn fetch_layout(self: &Arc<Self>, seed: &str) -> Option<Layout> {
        let peer = self.cluster.peer(seed)?;
        let (layout, beats) = self.gossip_payload(false);
        let reply = peer
            .probe(
                redis::cmd("DHT.R.GOSSIP")
                    .arg(&self.cluster.me)
                    .arg(layout)
                    .arg(beats),
            )
            .await;
        match reply {
            Ok(Value::Array(items)) => match items.as_slice() {
                [Value::BulkString(l), Value::BulkString(b)] => {
                    self.membership.merge_beats(
                        &self.cluster.me,
                        &String::from_utf8_lossy(b),
                        self.clock.now_ms(),
                    );
                    Layout::decode(&String::from_utf8_lossy(l))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// On start: adopt the layout of the first seed that answers, or join its cluster
    /// when it does not list this node. No seed answering leaves the bootstrap layout.
    pub(crate) async fn join_seeds(self: &Arc<Self>, seeds: &[String]) -> Result<(), String> {
        for seed in seeds {
            let Some(theirs) = self.fetch_layout(seed).await else {
                continue;
            };
            if theirs.all_nodes().contains(&self.cluster.me) {
                self.install_layout(&theirs);
                return Ok(());
            }
            // A busy cluster (another change in progress) is retried, bounded.
            let mut last = String::new();
            for attempt in 0..20u64 {
                match self.join_via(seed).await {
                    Ok(_) => return Ok(()),
                    Err(ChangeError::Busy) => {
                        last = ChangeError::Busy.to_string();
                        tokio::time::sleep(std::time::Duration::from_millis(
                            100 * (attempt + 1).min(10),
                        ))
                        .await;
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
            return Err(last);
        }
        Ok(())
    }

    /// `DHT.LEAVE`: streams this node's partitions to their new owners, removes it from
    /// the layout, then hands its pending hints to the remaining members.
    pub(crate) async fn leave(self: &Arc<Self>) -> Result<ChangeReport, ChangeError> {
        let layout = self.cluster.layout();
        if !layout.members.iter().any(|m| *m == self.cluster.me) {
            return Err(ChangeError::Invalid("this node is not a member".into()));
        }
        if layout.members.len() == 1 {
            return Err(ChangeError::Invalid("the last member cannot leave".into()));
        }
        let members: Vec<String> = layout
            .members
            .into_iter()
            .filter(|m| *m != self.cluster.me)
            .collect();
        let report = self.change_members(members).await?;
        self.hand_over_hints().await;
        Ok(report)
    }

    /// Delivers every pending hint; those whose target is unreachable are handed to a
    /// member as a hint (`DHT.R.HINT`) so that leaving does not drop them.
    async fn hand_over_hints(self: &Arc<Self>) {
        for _ in 0..64 {
            self.deliver_hints(512).await;
            let Ok(hints) = self.store.hints(512) else {
                return;
            };
            if hints.is_empty() {
                return;
            }
            let members = self.cluster.layout().members;
            let mut moved = 0;
            for hint in hints {
                for m in members
                    .iter()
                    .filter(|m| **m != hint.target && !self.is_down(m))
                {
                    let Some(peer) = self.cluster.peer(m) else {
                        continue;
                    };
                    let sent = peer
                        .call(
                            redis::cmd("DHT.R.HINT")
                                .arg(&hint.target)
                                .arg(&hint.key[2..])
                                .arg(hint.set_bytes.as_slice()),
                        )
                        .await;
                    if matches!(sent, Ok(Value::Okay | Value::SimpleString(_)))
                        && self.store.delete_hint_if(hint.clone()).await.is_ok()
                    {
                        moved += 1;
                        break;
                    }
                }
            }
            if moved == 0 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_detect_silence_and_survive_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let m = Membership::new(100, 1_000, dir.path());
        // Unknown node: up until fail_after passes without news.
        assert!(!m.gossip_down("b:1", 10_000));
        assert!(!m.gossip_down("b:1", 11_000));
        assert!(m.gossip_down("b:1", 11_001));
        // News revives it.
        m.merge_beats("a:1", "b:1=50.3", 11_002);
        assert!(!m.gossip_down("b:1", 11_500));
        // An old heartbeat is no news.
        m.merge_beats("a:1", "b:1=50.2;b:1=49.9", 12_500);
        assert!(m.gossip_down("b:1", 12_500));
        // A restart (higher incarnation, counter from zero) is news.
        m.merge_beats("a:1", "b:1=60.0", 12_600);
        assert!(!m.gossip_down("b:1", 13_000));
        // Garbage is ignored, never a panic.
        m.merge_beats("a:1", "x;=;b:1=;b:1=a.b;c d=1.1;;", 13_000);
        assert!(!m.gossip_down("b:1", 13_000));
        // Our own heartbeat travels; others' known ones too.
        let text = m.beat_text("a:1", 13_000, true);
        assert!(text.contains("a:1=100.1"), "{text}");
        assert!(text.contains("b:1=60.0"), "{text}");
        m.retain(&["a:1".to_owned()]);
        assert!(!m.beat_text("a:1", 13_000, false).contains("b:1"));
    }

    #[test]
    fn the_incarnation_grows_even_when_the_clock_steps_back_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Membership::new(5_000, 1_000, dir.path()).incarnation, 5_000);
        // Restarted with the clock 3 s behind: still newer than the last run.
        assert_eq!(Membership::new(2_000, 1_000, dir.path()).incarnation, 5_001);
        assert_eq!(Membership::new(9_000, 1_000, dir.path()).incarnation, 9_000);
    }

    #[test]
    fn layouts_persist_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let m = Membership::new(1, 1_000, dir.path());
        assert_eq!(m.load_layout(), None);
        let mut l = Layout::new(7, ["a:1".to_owned(), "b:1".to_owned()]);
        l.pending = Some(vec!["a:1".into()]);
        m.save_layout(&l);
        assert_eq!(Membership::new(2, 1_000, dir.path()).load_layout(), Some(l));
    }
}
