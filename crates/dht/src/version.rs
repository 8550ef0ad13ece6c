//! Version vectors and sibling sets: how concurrent writes are detected and kept.
//!
//! These are **dotted version vectors** (Preguiça et al.; what Riak adopted after plain
//! vector clocks proved too coarse). Every version carries a *dot* — the one event that
//! created it, `(coordinator, n)` — and a [`VersionVector`] (node → counter) that is the
//! *context* the write saw plus its own dot. A write made by the key's coordinator takes a
//! context (the client's, or the merge of all local siblings for a blind write) and a new
//! dot `(me, max counter of me seen for this key + 1)`. When two versions meet:
//!
//! - if one's vector covers the other's dot, the other is obsolete and dropped;
//! - otherwise they are **concurrent** and both are kept as **siblings**.
//!
//! Comparing dots instead of whole vectors is what makes "supersedes exactly the siblings
//! it saw" true: with plain vector clocks, bumping the coordinator's counter past a sibling
//! the client never saw would make the new write dominate it.
//!
//! So a write that carried a context supersedes exactly the siblings it saw, and nothing
//! acknowledged is dropped by a timestamp (last-write-wins is what lost acknowledged writes
//! in Jepsen's Riak and Cassandra analyses). Deletes are siblings whose value is `None`
//! (tombstones): they supersede what they saw, and a concurrent write survives them.
//!
//! # The read rule
//!
//! A plain `GET` must return one value. [`SiblingSet::current`] picks, among the live
//! (non-tombstone, unexpired) siblings, the one with the latest coordinator timestamp, ties
//! broken by the larger value bytes — deterministic, so every node answers the same for the
//! same set. If every sibling is a tombstone or expired, the key is absent. `DHT.SIBLINGS`
//! returns all of them with their vectors.

use std::collections::BTreeMap;

use crate::error::DecodeError;

/// A version vector: node name → number of writes that node coordinated for this key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionVector(BTreeMap<String, u64>);

impl VersionVector {
    /// The empty vector (descended by every vector).
    pub fn new() -> Self {
        Self::default()
    }

    /// A vector with the given entries (later duplicates win).
    pub fn from_entries<I: IntoIterator<Item = (String, u64)>>(entries: I) -> Self {
        Self(entries.into_iter().collect())
    }

    /// The text form `DHT.SIBLINGS` prints and `DHT.PUT` takes: `node=n,node=n`.
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(n, c)| format!("{n}={c}")).collect();
        parts.join(",")
    }

    /// This node's counter (0 when absent).
    pub fn get(&self, node: &str) -> u64 {
        self.0.get(node).copied().unwrap_or(0)
    }

    /// True when `self` ≥ `other` entry-wise (equal vectors descend each other).
    ///
    /// ```
    /// use keel_dht::VersionVector;
    /// let mut a = VersionVector::new();
    /// a.increment("n1");
    /// let mut b = a.clone();
    /// b.increment("n2");
    /// assert!(b.descends(&a) && !a.descends(&b));
    /// let mut c = a.clone();
    /// c.increment("n3");
    /// assert!(b.concurrent(&c));
    /// ```
    pub fn descends(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(n, &c)| self.get(n) >= c)
    }

    /// True when neither descends from the other.
    pub fn concurrent(&self, other: &VersionVector) -> bool {
        !self.descends(other) && !other.descends(self)
    }

    /// Entry-wise maximum.
    pub fn merge(&mut self, other: &VersionVector) {
        for (n, &c) in &other.0 {
            let e = self.0.entry(n.clone()).or_insert(0);
            *e = (*e).max(c);
        }
    }

    /// Increments `node`'s entry (saturating).
    pub fn increment(&mut self, node: &str) {
        let e = self.0.entry(node.to_owned()).or_insert(0);
        *e = e.saturating_add(1);
    }

    /// The entries, in node-name order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(n, &c)| (n.as_str(), c))
    }
}

/// One version of a key's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sibling {
    /// The event that created this version: `(coordinator, counter)`.
    pub dot: (String, u64),
    /// The causal context this version saw (its own dot is *not* included: a vector
    /// entry `b = 2` would claim every `b` event up to 2 was seen, which is false for a
    /// write whose client never saw `(b, 1)`).
    pub vv: VersionVector,
    /// The value; `None` is a tombstone (a delete).
    pub value: Option<Vec<u8>>,
    /// Absolute expiry (ms since the epoch); `None` means no TTL.
    pub expires_at_ms: Option<u64>,
    /// The coordinator's wall clock when it wrote this version (for the read rule only).
    pub written_at_ms: u64,
}

impl Sibling {
    /// A new version written by `node` with the causal `context` it saw; `existing` is
    /// the coordinator's stored set for the key (its counters must not be reused).
    ///
    /// The version's timestamp is `written_at_ms`, raised when needed to one more than
    /// every version in `existing`: what its coordinator held is never *newer* than it,
    /// so it wins the read rule there and the [`MAX_SIBLINGS`] bound never drops it on
    /// the node that acknowledged it.
    pub fn new_write(
        node: &str,
        context: &VersionVector,
        existing: &SiblingSet,
        value: Option<Vec<u8>>,
        expires_at_ms: Option<u64>,
        written_at_ms: u64,
    ) -> Self {
        Self::new_write_with_floor(
            node,
            0,
            context,
            existing,
            value,
            expires_at_ms,
            written_at_ms,
        )
    }

    /// [`Sibling::new_write`] whose dot counter is at least `floor`: the node-wide
    /// counter that keeps a node from ever issuing the same dot twice, even when the
    /// key's stored set no longer shows the dot it issued last (see `storage.rs`).
    pub(crate) fn new_write_with_floor(
        node: &str,
        floor: u64,
        context: &VersionVector,
        existing: &SiblingSet,
        value: Option<Vec<u8>>,
        expires_at_ms: Option<u64>,
        written_at_ms: u64,
    ) -> Self {
        let counter = existing
            .context()
            .get(node)
            .max(context.get(node))
            .saturating_add(1)
            .max(floor);
        let newest = existing.siblings.iter().map(|s| s.written_at_ms).max();
        Sibling {
            dot: (node.to_owned(), counter),
            vv: context.clone(),
            value,
            expires_at_ms,
            written_at_ms: newest.map_or(written_at_ms, |t| written_at_ms.max(t.saturating_add(1))),
        }
    }

    /// True when `self` is `other` or its context includes `other`'s creating event.
    pub fn covers(&self, other: &Sibling) -> bool {
        self.dot == other.dot || self.vv.get(&other.dot.0) >= other.dot.1
    }

    /// True when this version holds a value at `now_ms` (not a tombstone, not expired).
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.value.is_some() && self.expires_at_ms.is_none_or(|t| t > now_ms)
    }
}

/// All concurrent versions of one key; none descends from another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiblingSet {
    siblings: Vec<Sibling>,
}

/// Most siblings kept per key.
///
/// Past this, the sibling that is oldest by `(written_at_ms, dot)` is dropped — the one
/// place a bounded memory rule overrides "keep all concurrent writes"; `DHT.STATS` counts
/// it (`siblings_dropped`). The rule is a total order, so every replica drops the same
/// ones whatever order the versions arrive in and replicas still converge (to the 16
/// newest concurrent versions). A new write is never dropped by its own coordinator (its
/// timestamp is above everything that node held, see [`Sibling::new_write`]) and dots are
/// never reused after a drop, so a dropped version cannot hide a later write. Reaching
/// the bound needs 17 writes that are pairwise concurrent, i.e. made with stale contexts
/// (`DHT.PUT`) or through different coordinators during failures.
pub const MAX_SIBLINGS: usize = 16;

impl SiblingSet {
    /// An empty set (a key never written).
    pub fn new() -> Self {
        Self::default()
    }

    /// The siblings, in a canonical order.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// True when there is no version at all.
    pub fn is_empty(&self) -> bool {
        self.siblings.is_empty()
    }

    /// The causal context of the whole set: every sibling's context and dot merged.
    /// A write carrying it supersedes every sibling in the set.
    pub fn context(&self) -> VersionVector {
        let mut vv = VersionVector::new();
        for s in &self.siblings {
            vv.merge(&s.vv);
            let e = vv.0.entry(s.dot.0.clone()).or_insert(0);
            *e = (*e).max(s.dot.1);
        }
        vv
    }

    /// Adds one version. Returns `true` when the set changed, and the number of
    /// siblings dropped by the [`MAX_SIBLINGS`] bound.
    ///
    /// ```
    /// use keel_dht::{Sibling, SiblingSet, VersionVector};
    /// let empty = VersionVector::new();
    /// let mut set = SiblingSet::new();
    /// let x = Sibling::new_write("a", &empty, &set, Some("x".into()), None, 1);
    /// set.insert(x);
    /// let seen_x = set.context();
    /// // A client that saw nothing writes through "b": concurrent, kept.
    /// set.insert(Sibling::new_write("b", &empty, &set, Some("y".into()), None, 2));
    /// assert_eq!(set.siblings().len(), 2);
    /// // A write whose context saw only x replaces x and keeps y.
    /// set.insert(Sibling::new_write("a", &seen_x, &set, Some("z".into()), None, 3));
    /// let values: Vec<_> = set.siblings().iter().map(|s| s.value.clone().unwrap()).collect();
    /// assert_eq!(values.len(), 2);
    /// assert!(values.contains(&b"y".to_vec()) && values.contains(&b"z".to_vec()));
    /// ```
    pub fn insert(&mut self, incoming: Sibling) -> (bool, usize) {
        if self.siblings.iter().any(|s| s.covers(&incoming)) {
            return (false, 0);
        }
        self.siblings.retain(|s| !incoming.covers(s));
        self.siblings.push(incoming);
        let mut dropped = 0;
        while self.siblings.len() > MAX_SIBLINGS {
            let oldest = self
                .siblings
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| (a.written_at_ms, &a.dot).cmp(&(b.written_at_ms, &b.dot)))
                .map(|(i, _)| i)
                .unwrap_or(0);
            self.siblings.remove(oldest);
            dropped += 1;
        }
        self.siblings.sort();
        (true, dropped)
    }

    /// Merges another replica's set into this one. Returns `true` when this set changed.
    pub fn merge(&mut self, other: &SiblingSet) -> bool {
        let mut changed = false;
        for s in &other.siblings {
            changed |= self.insert(s.clone()).0;
        }
        changed
    }

    /// The value a plain read returns (see the module docs for the rule).
    pub fn current(&self, now_ms: u64) -> Option<&Sibling> {
        self.siblings
            .iter()
            .filter(|s| s.is_live(now_ms))
            .max_by(|a, b| (a.written_at_ms, &a.value).cmp(&(b.written_at_ms, &b.value)))
    }

    /// Encodes the set for storage and replication.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        put_u32(&mut out, self.siblings.len());
        for s in &self.siblings {
            put_bytes(&mut out, s.dot.0.as_bytes());
            out.extend_from_slice(&s.dot.1.to_le_bytes());
            put_u32(&mut out, s.vv.0.len());
            for (n, c) in &s.vv.0 {
                put_bytes(&mut out, n.as_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
            match &s.value {
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, v);
                }
                None => out.push(0),
            }
            match s.expires_at_ms {
                Some(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.to_le_bytes());
                }
                None => out.push(0),
            }
            out.extend_from_slice(&s.written_at_ms.to_le_bytes());
        }
        out
    }

    /// Decodes [`SiblingSet::encode`]'s output; never panics on bad bytes.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are truncated or inconsistent.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader(bytes);
        let n = r.u32()?;
        if n > MAX_SIBLINGS {
            return Err(DecodeError("too many siblings"));
        }
        let mut siblings = Vec::with_capacity(n);
        for _ in 0..n {
            let dot_node = String::from_utf8(r.bytes()?.to_vec())
                .map_err(|_| DecodeError("node name is not utf-8"))?;
            let dot = (dot_node, r.u64()?);
            let entries = r.u32()?;
            let mut vv = BTreeMap::new();
            for _ in 0..entries {
                let name = String::from_utf8(r.bytes()?.to_vec())
                    .map_err(|_| DecodeError("node name is not utf-8"))?;
                vv.insert(name, r.u64()?);
            }
            let value = match r.u8()? {
                0 => None,
                1 => Some(r.bytes()?.to_vec()),
                _ => return Err(DecodeError("bad value flag")),
            };
            let expires_at_ms = match r.u8()? {
                0 => None,
                1 => Some(r.u64()?),
                _ => return Err(DecodeError("bad expiry flag")),
            };
            let written_at_ms = r.u64()?;
            siblings.push(Sibling {
                dot,
                vv: VersionVector(vv),
                value,
                expires_at_ms,
                written_at_ms,
            });
        }
        if !r.0.is_empty() {
            return Err(DecodeError("trailing bytes"));
        }
        siblings.sort();
        Ok(Self { siblings })
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, b.len());
    out.extend_from_slice(b);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<usize, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn write(
        node: &str,
        ctx: &SiblingSet,
        base: &SiblingSet,
        value: Option<&str>,
        t: u64,
    ) -> Sibling {
        Sibling::new_write(
            node,
            &ctx.context(),
            base,
            value.map(|v| v.as_bytes().to_vec()),
            None,
            t,
        )
    }

    #[test]
    fn a_tombstone_loses_to_a_concurrent_write_but_hides_what_it_saw() {
        let mut set = SiblingSet::new();
        set.insert(write("a", &set, &set, Some("v1"), 10));
        let before_delete = set.clone();
        set.insert(write("a", &set, &set, None, 20)); // delete that saw v1
        assert!(set.current(0).is_none());
        // A write at "b" that also saw only v1 is concurrent with the delete.
        set.insert(write("b", &before_delete, &before_delete, Some("v2"), 15));
        assert_eq!(set.siblings().len(), 2);
        assert_eq!(set.current(0).unwrap().value.as_deref(), Some(&b"v2"[..]));
    }

    #[test]
    fn read_rule_is_deterministic_and_skips_expired() {
        let empty = SiblingSet::new();
        let x = write("a", &empty, &empty, Some("x"), 5);
        let y = write("b", &empty, &empty, Some("y"), 5);
        let mut a = SiblingSet::new();
        a.insert(x.clone());
        a.insert(y.clone());
        let mut b = SiblingSet::new();
        b.insert(y);
        b.insert(x);
        assert_eq!(a, b);
        assert_eq!(a.current(0).unwrap().value.as_deref(), Some(&b"y"[..]));
        let mut expiring = write("c", &empty, &empty, Some("z"), 9);
        expiring.expires_at_ms = Some(100);
        a.insert(expiring);
        assert_eq!(a.current(99).unwrap().value.as_deref(), Some(&b"z"[..]));
        assert_eq!(a.current(100).unwrap().value.as_deref(), Some(&b"y"[..]));
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(SiblingSet::decode(&[1, 0, 0]).is_err());
        assert!(SiblingSet::decode(&[255, 255, 255, 255]).is_err());
        assert_eq!(
            SiblingSet::decode(&[0, 0, 0, 0]).unwrap(),
            SiblingSet::new()
        );
    }

    /// One step of a replicated history: a write coordinated by replica `at` whose client
    /// context is replica `ctx_from`'s state, or an anti-entropy merge `from` → `to`.
    #[derive(Debug, Clone)]
    enum Step {
        Write {
            at: usize,
            ctx_from: usize,
            delete: bool,
        },
        Merge {
            from: usize,
            to: usize,
        },
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..3usize, 0..3usize, any::<bool>()).prop_map(|(at, ctx_from, delete)| Step::Write {
                at,
                ctx_from,
                delete
            }),
            (0..3usize, 0..3usize).prop_map(|(from, to)| Step::Merge { from, to }),
        ]
    }

    proptest! {
        /// Model test over random histories on three replicas: once every replica has
        /// merged every other (in any order) they hold the same set; every write is either
        /// still a sibling or covered by a sibling whose context saw it (nothing acknowledged
        /// is silently lost); and no kept sibling covers another.
        #[test]
        fn replicas_converge_and_no_write_is_lost(steps in proptest::collection::vec(step(), 1..24), order in any::<bool>()) {
            let names = ["a", "b", "c"];
            let mut replicas = vec![SiblingSet::new(); 3];
            let mut written = Vec::new();
            for (t, st) in steps.iter().enumerate() {
                match *st {
                    Step::Write { at, ctx_from, delete } => {
                        let ctx = replicas[ctx_from].clone();
                        let value = if delete { None } else { Some(format!("v{t}")) };
                        let s = write(names[at], &ctx, &replicas[at], value.as_deref(), t as u64);
                        written.push(s.clone());
                        replicas[at].insert(s);
                    }
                    Step::Merge { from, to } => {
                        let src = replicas[from].clone();
                        replicas[to].merge(&src);
                    }
                }
            }
            let mut all = SiblingSet::new();
            let seq: Vec<usize> = if order { vec![0, 1, 2] } else { vec![2, 1, 0] };
            for &i in &seq { all.merge(&replicas[i]); }
            let mut other = SiblingSet::new();
            for &i in seq.iter().rev() { other.merge(&replicas[i]); }
            prop_assert_eq!(&all, &other);
            for w in &written {
                prop_assert!(all.siblings().iter().any(|s| s == w || s.covers(w)));
            }
            for (i, s) in all.siblings().iter().enumerate() {
                for (j, t) in all.siblings().iter().enumerate() {
                    prop_assert!(i == j || !s.covers(t));
                }
            }
            prop_assert_eq!(SiblingSet::decode(&all.encode()).unwrap(), all);
        }
    }
}
