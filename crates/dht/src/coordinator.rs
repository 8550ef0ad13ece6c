//! The coordinator: quorum reads with read repair, routed quorum writes with hinted
//! handoff.
//!
//! # Reads
//! Any node coordinates a read: it asks **R** owners of the key's preference list (itself
//! first when it is one — a local read — then live owners in preference order; a failed
//! reply brings in the next owner), answers with the merge of what they hold, and every
//! asked replica that answered with less than the merge gets it back (`DHT.R.PUT`): **read
//! repair**. Asking R rather than all N (Cassandra's choice, not Dynamo's) saves N − R
//! replica reads per GET; replicas that were not asked are brought up to date by hinted
//! handoff and Merkle anti-entropy instead. R + W > N still makes every read quorum
//! intersect every write quorum.
//!
//! # Writes
//! A write is executed by the key's *write coordinator*, the first owner in the preference
//! list that this node does not believe down (forwarded with `DHT.R.MUTATE` if that is
//! another node; on failure the next owner is tried). The coordinator applies the
//! [`Mutation`] to its own set and, without waiting for that commit's fsync, sends the
//! resulting set to the other owners (through the peer's batching lane: what queues for
//! one peer travels as one `DHT.R.MPUT`, see `peer`); it replies once **W** owners (itself included, once
//! its commit is durable) have it on disk. An
//! owner that is down or fails gets a **hint**: the coordinator stores the set durably
//! for it and a background task hands it over when the node answers again (**hinted
//! handoff**). Hints do not count towards W (a strict quorum among the preference list;
//! Dynamo's sloppy quorum would let a stand-in node count).
//!
//! A write that reaches fewer than W owners is answered with an error, but what reached
//! some replicas is not rolled back — as in Dynamo, Riak and Cassandra, an unacknowledged
//! write may still appear later. What is guaranteed is the converse: an acknowledged
//! write is on disk on W owners.

use std::sync::Arc;

use redis::Value;
use tokio::sync::mpsc;

use crate::mutation::{Mutation, decode_reply, encode_reply};
use crate::node::Inner;
use crate::peer::{LaneKind, PeerError};
use crate::reply::Reply;
use crate::resp::Request;
use crate::storage::Committed;
use crate::version::SiblingSet;

/// Read and write quorums for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quorum {
    pub(crate) r: usize,
    pub(crate) w: usize,
}

fn storage_error(e: impl std::fmt::Display) -> Reply {
    Reply::err(format!("dht: storage: {e}"))
}

impl Inner {
    /// Quorum read of one key: the merged set of R replies.
    pub(crate) async fn read(self: &Arc<Self>, key: &[u8], r: usize) -> Result<SiblingSet, Reply> {
        self.metrics.reads.inc();
        let p = self.cluster.partition_of(key);
        // Ask R owners, not all N: this node first (no network), then live owners in
        // preference order, down ones last; a failed reply brings in the next owner.
        let mut owners = self.cluster.owners(p);
        owners.sort_by_key(|o| (*o != self.cluster.me, self.is_down(o)));
        let need = r.min(owners.len()).max(1);
        let (tx, mut rx) = mpsc::channel::<(String, Option<SiblingSet>)>(owners.len().max(1));
        let mut next = 0;
        let mut pending = 0;
        let mut replies: Vec<(String, SiblingSet)> = Vec::new();
        while replies.len() < need {
            while pending + replies.len() < need && next < owners.len() {
                self.ask_replica(p, key, &owners[next], tx.clone());
                next += 1;
                pending += 1;
            }
            if pending == 0 {
                break;
            }
            match rx.recv().await {
                Some((owner, Some(set))) => replies.push((owner, set)),
                Some((_, None)) => {}
                None => break,
            }
            pending -= 1;
        }
        drop(tx);
        let mut merged = SiblingSet::new();
        for (_, s) in &replies {
            merged.merge(s);
        }
        // Read repair, after the reply: every asked replica that holds less than the merge.
        let ok = replies.len() >= need;
        let stale: Vec<String> = replies
            .into_iter()
            .filter(|(_, s)| *s != merged)
            .map(|(o, _)| o)
            .collect();
        if !stale.is_empty() {
            let this = Arc::clone(self);
            let key = key.to_vec();
            let all = merged.clone();
            tokio::spawn(async move {
                for owner in stale {
                    this.metrics.read_repairs.inc();
                    this.send_replica(p, &owner, &key, &all).await;
                }
            });
        }
        if ok {
            Ok(merged)
        } else {
            self.metrics.quorum_failures.inc();
            Err(Reply::err(format!(
                "dht: read reached fewer than r={need} replicas"
            )))
        }
    }

    /// Sends one replica read; the answer (or `None` on failure) arrives on `tx`.
    fn ask_replica(
        &self,
        p: u16,
        key: &[u8],
        owner: &str,
        tx: mpsc::Sender<(String, Option<SiblingSet>)>,
    ) {
        if owner == self.cluster.me {
            let _ = tx.try_send((owner.to_owned(), self.store.get(p, key).ok()));
            return;
        }
        let Some(peer) = self.cluster.peer(owner) else {
            let _ = tx.try_send((owner.to_owned(), None));
            return;
        };
        let key = key.to_vec();
        let owner = owner.to_owned();
        tokio::spawn(Box::pin(async move {
            let got = match peer.batched(LaneKind::Get, vec![key]).await {
                Ok(Value::BulkString(b)) => SiblingSet::decode(&b).ok(),
                _ => None,
            };
            let _ = tx.send((owner, got)).await;
        }));
    }

    /// Runs a write: forwards it to the key's write coordinator (or coordinates it here).
    pub(crate) async fn mutate(self: &Arc<Self>, args: Request, w: usize) -> Reply {
        let Some(key) = args.get(1) else {
            return Reply::err("dht: write without a key");
        };
        let p = self.cluster.partition_of(key);
        let owners = self.cluster.owners(p);
        for owner in owners.iter().filter(|o| !self.is_down(o)) {
            if *owner == self.cluster.me {
                return self.coordinate(args, w).await;
            }
            let Some(peer) = self.cluster.peer(owner) else {
                continue;
            };
            let mut cmd = redis::cmd("DHT.R.MUTATE");
            cmd.arg(w);
            for a in &args {
                cmd.arg(a.as_slice());
            }
            match peer.call(&cmd).await {
                Ok(Value::BulkString(b)) => {
                    self.metrics.forwarded.inc();
                    return decode_reply(&b);
                }
                Ok(_) => return Reply::err("dht: unexpected reply from coordinator"),
                Err(PeerError::Remote(e)) => return Reply::Error(e),
                // Timed out: the write may have happened there; trying the next owner
                // would make a concurrent sibling, which is safe (never a lost write).
                Err(_) => continue,
            }
        }
        self.metrics.quorum_failures.inc();
        Reply::err("dht: no owner of the key is reachable")
    }

    /// Coordinates a write on this node (it is an owner of the key).
    pub(crate) async fn coordinate(self: &Arc<Self>, args: Request, w: usize) -> Reply {
        let now = self.clock.now_ms();
        let mutation = match Mutation::parse(&args, now) {
            Some(Ok(m)) => m,
            Some(Err(reply)) => return reply,
            None => return Reply::err("dht: not a write command"),
        };
        let key = args[1].clone();
        let p = self.cluster.partition_of(&key);
        let me = self.cluster.me.clone();
        let result = self
            .store
            .mutate(p, &key, move |set, dot_floor| {
                let (reply, write) = mutation.apply(set, now);
                let version = write.map(|w| mutation.version(&me, dot_floor, set, w, now));
                let wrote = version.is_some();
                (version, (reply, wrote))
            })
            .await;
        let (set, (reply, wrote), committed) = match result {
            Ok(r) => r,
            Err(e) => return storage_error(e),
        };
        if !wrote {
            // The reply may rest on a write applied earlier in the same open transaction.
            return match committed.wait().await {
                Ok(()) => reply,
                Err(e) => storage_error(e),
            };
        }
        self.metrics.writes.inc();
        // The local commit and the replica writes run in parallel (one fsync of latency,
        // not two); the reply still waits for W owners with the write on disk.
        let (met, acked, need) = self.replicate(p, &key, set, committed, w).await;
        if met {
            reply
        } else {
            self.metrics.quorum_failures.inc();
            Reply::err(format!("dht: write reached {acked} of w={need} replicas"))
        }
    }

    /// Sends `set` to every write target of `p` (the owners, and during a membership
    /// change the next owners too) and waits until W of the current owners and W of the
    /// next owners have it durably (W capped at the size of each list; this node counts
    /// where it is an owner). A target that fails is replaced by the next healthy node on
    /// the ring, which keeps a hint for it (**sloppy quorum**); without one, this node
    /// keeps the hint and it does not count. This node's own copy counts once `committed`
    /// resolves (its fsync runs in parallel with the replica writes). Returns whether the
    /// quorum was met, the acks among the current owners, and W.
    async fn replicate(
        self: &Arc<Self>,
        p: u16,
        key: &[u8],
        set: SiblingSet,
        committed: Committed,
        w: usize,
    ) -> (bool, usize, usize) {
        let placement = self.cluster.placement();
        let me = self.cluster.me.as_str();
        let current: Vec<String> = placement.current.owners(p).map(str::to_owned).collect();
        let next: Option<Vec<String>> = placement
            .next
            .as_ref()
            .map(|t| t.owners(p).map(str::to_owned).collect());
        // A cluster smaller than N has fewer owners: the quorum is capped at their number.
        let need_current = w.min(current.len()).max(1);
        let need_next = next.as_ref().map_or(0, |n| w.min(n.len()).max(1));
        let mut acked_current = 0;
        let mut acked_next = 0;
        let met = |c: usize, n: usize| c >= need_current && n >= need_next;
        let targets: Vec<String> = placement
            .write_targets(p)
            .into_iter()
            .filter(|o| o != me)
            .collect();
        let fallbacks = Arc::new(parking_lot::Mutex::new(
            placement
                .fallbacks(p)
                .into_iter()
                .filter(|f| f != me)
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let (tx, mut rx) = mpsc::channel::<(String, bool)>(targets.len() + 1);
        let set = Arc::new(set);
        for owner in targets {
            let this = Arc::clone(self);
            let key = key.to_vec();
            let set = Arc::clone(&set);
            let tx = tx.clone();
            let fallbacks = Arc::clone(&fallbacks);
            tokio::spawn(Box::pin(async move {
                let ok = this.send_sloppy(p, &owner, &key, &set, &fallbacks).await;
                let _ = tx.send((owner, ok)).await;
            }));
        }
        let local = tx.clone();
        let me_owned = me.to_owned();
        tokio::spawn(async move {
            let _ = local.send((me_owned, committed.wait().await.is_ok())).await;
        });
        drop(tx);
        while !met(acked_current, acked_next) {
            match rx.recv().await {
                Some((owner, true)) => {
                    acked_current += usize::from(current.contains(&owner));
                    acked_next += next.as_ref().map_or(0, |n| usize::from(n.contains(&owner)));
                }
                Some((_, false)) => {}
                None => break,
            }
        }
        (met(acked_current, acked_next), acked_current, need_current)
    }

    /// Puts `set` on `owner`; if that fails, parks it as a hint on the next healthy
    /// fallback node (counts as an ack), else as a hint here (does not count).
    async fn send_sloppy(
        &self,
        p: u16,
        owner: &str,
        key: &[u8],
        set: &SiblingSet,
        fallbacks: &parking_lot::Mutex<std::collections::VecDeque<String>>,
    ) -> bool {
        if self.put_replica(owner, key, set).await {
            return true;
        }
        loop {
            let candidate = {
                let mut f = fallbacks.lock();
                let mut pick = None;
                while let Some(c) = f.pop_front() {
                    if !self.is_down(&c) {
                        pick = Some(c);
                        break;
                    }
                }
                pick
            };
            let Some(fallback) = candidate else { break };
            let Some(peer) = self.cluster.peer(&fallback) else {
                continue;
            };
            let sent = peer
                .call(
                    redis::cmd("DHT.R.HINT")
                        .arg(owner)
                        .arg(key)
                        .arg(set.encode()),
                )
                .await;
            if matches!(sent, Ok(Value::Okay | Value::SimpleString(_))) {
                self.metrics.sloppy_hints.inc();
                return true;
            }
        }
        if self
            .store
            .put_hint(owner, p, key, set.clone())
            .await
            .is_ok()
        {
            self.metrics.hints_stored.inc();
        }
        false
    }

    /// Puts `set` on `owner` (locally if it is this node). Returns whether it is on disk.
    async fn put_replica(&self, owner: &str, key: &[u8], set: &SiblingSet) -> bool {
        if owner == self.cluster.me {
            let p = self.cluster.partition_of(key);
            return self.store.merge(p, key, set.clone()).await.is_ok();
        }
        let Some(peer) = self.cluster.peer(owner) else {
            return false;
        };
        matches!(
            peer.batched(LaneKind::Put, vec![key.to_vec(), set.encode()])
                .await,
            Ok(Value::Okay | Value::SimpleString(_))
        )
    }

    /// Puts `set` on `owner` (locally if it is this node); on failure stores a hint.
    /// Returns whether the owner has it on disk.
    pub(crate) async fn send_replica(
        &self,
        p: u16,
        owner: &str,
        key: &[u8],
        set: &SiblingSet,
    ) -> bool {
        let ok = self.put_replica(owner, key, set).await;
        if !ok
            && owner != self.cluster.me
            && self
                .store
                .put_hint(owner, p, key, set.clone())
                .await
                .is_ok()
        {
            self.metrics.hints_stored.inc();
        }
        ok
    }

    /// One round of hinted handoff: tries to deliver up to `limit` hints.
    /// Returns how many were delivered.
    ///
    /// A hint goes to its target while the target still owns the key's partition (now
    /// or after the change in progress); once it does not — the layout changed while the
    /// hint waited, or the target left — it goes to the partition's current write
    /// targets instead, and is deleted only when all of them have it.
    pub(crate) async fn deliver_hints(&self, limit: usize) -> usize {
        let Ok(hints) = self.store.hints(limit) else {
            return 0;
        };
        let placement = self.cluster.placement();
        let mut delivered = 0;
        for hint in hints {
            let Some(prefix) = hint.key.get(..2) else {
                continue;
            };
            let p = u16::from_be_bytes([prefix[0], prefix[1]]);
            let key = &hint.key[2..];
            let Ok(set) = SiblingSet::decode(&hint.set_bytes) else {
                continue;
            };
            let targets = placement.write_targets(p);
            let destinations = if targets.contains(&hint.target) {
                vec![hint.target.clone()]
            } else {
                targets
            };
            if destinations.iter().any(|d| self.is_down(d)) {
                continue;
            }
            let mut all = true;
            for d in &destinations {
                if !self.put_replica(d, key, &set).await {
                    all = false;
                    break;
                }
            }
            if all && self.store.delete_hint_if(hint).await.is_ok() {
                delivered += 1;
                self.metrics.hints_delivered.inc();
            }
        }
        delivered
    }

    /// Asks a node for the live keys of a partition (locally when it is this node).
    pub(crate) async fn partition_keys(&self, owner: &str, p: u16) -> Option<Vec<Vec<u8>>> {
        if owner == self.cluster.me {
            return self.store.live_keys(p, self.clock.now_ms()).ok();
        }
        let peer = self.cluster.peer(owner)?;
        match peer.call(redis::cmd("DHT.R.KEYS").arg(p)).await {
            Ok(Value::Array(items)) => Some(
                items
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::BulkString(b) => Some(b),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }

    /// The live keys of a partition from its first reachable owner (this node first if
    /// it is one): an eventually consistent view.
    pub(crate) async fn keys_of_partition(&self, p: u16) -> Result<Vec<Vec<u8>>, Reply> {
        let mut owners = self.cluster.owners(p);
        owners.sort_by_key(|o| *o != self.cluster.me);
        for owner in owners {
            if let Some(keys) = self.partition_keys(&owner, p).await {
                return Ok(keys);
            }
        }
        Err(Reply::err(format!(
            "dht: no owner of partition {p} is reachable"
        )))
    }
}

/// Encodes a coordinator's reply for `DHT.R.MUTATE`.
pub(crate) fn mutate_reply(reply: &Reply) -> Reply {
    Reply::Bulk(encode_reply(reply))
}
