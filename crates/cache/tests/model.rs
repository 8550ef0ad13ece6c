//! Model-based property test: random operations, including clock advances,
//! applied to `LruCache` and to a deliberately simple `Vec`-based reference,
//! compared after every step — for every policy (LRU, SIEVE, S3-FIFO).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use keel_cache::{LruCache, Policy, RemovalCause};
use proptest::prelude::*;

const TICK_NS: u64 = 1 << 20;
const NEVER: u64 = u64::MAX;

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Peek(u8),
    Put(u8, u32),
    PutTtl(u8, u32, u64),
    Remove(u8),
    /// Advance the mock clock by this many microseconds.
    Advance(u64),
}

/// Mostly short spans (level 0–1 of the timer wheel), sometimes long ones:
/// up to ≈ 200 days for clock jumps and ≈ 4.5 years for TTLs, so every
/// level cascades and deadlines past the wheel's 2^36-tick span wrap.
fn micros(short: u64, long: u64) -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0..short, 1 => 0..long]
}

fn op() -> impl Strategy<Value = Op> {
    op_over(12)
}

/// Operations on keys `0..keys`.
fn op_over(keys: u8) -> impl Strategy<Value = Op> {
    let key = 0u8..keys;
    prop_oneof![
        4 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Peek),
        3 => (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (key.clone(), any::<u32>(), micros(20_000, 1 << 47))
            .prop_map(|(k, v, t)| Op::PutTtl(k, v, t)),
        1 => key.prop_map(Op::Remove),
        2 => micros(8_000, 1 << 44).prop_map(Op::Advance),
    ]
}

#[derive(Debug, Clone)]
struct Entry {
    key: u8,
    value: u32,
    /// Deadline tick, or `NEVER`.
    expires: u64,
    /// SIEVE's visited bit (0/1) or S3-FIFO's counter (0..=3).
    freq: u8,
    /// S3-FIFO: on the small queue (else main). The `Vec` keeps each
    /// queue's own order: its first entry with `small == q` is queue q's oldest.
    small: bool,
}

/// S3-FIFO's ghost, the plain way: every pushed key in order, the older
/// copies of a key marked dead, trimmed from the front to `cap`; a hit
/// marks the key dead.
#[derive(Debug, Default)]
struct GhostRef {
    ring: Vec<(u8, bool)>,
}

impl GhostRef {
    fn push(&mut self, key: u8, cap: usize) {
        for e in self.ring.iter_mut().filter(|e| e.0 == key) {
            e.1 = false;
        }
        self.ring.push((key, true));
        while self.ring.len() > cap {
            self.ring.remove(0);
        }
    }

    fn take(&mut self, key: u8) -> bool {
        match self.ring.iter_mut().find(|e| e.0 == key && e.1) {
            Some(e) => {
                e.1 = false;
                true
            }
            None => false,
        }
    }
}

/// The reference: a `Vec` ordered oldest (index 0) to newest, O(n) everything.
#[derive(Debug)]
struct Reference {
    entries: Vec<Entry>,
    capacity: usize,
    policy: Policy,
    /// SIEVE hand: index of the next candidate; `None` = start at the oldest.
    hand: Option<usize>,
    ghost: GhostRef,
    default_ttl_ns: Option<u64>,
    now_ns: u64,
    events: Vec<(u8, u32, RemovalCause)>,
}

impl Reference {
    fn now_tick(&self) -> u64 {
        self.now_ns / TICK_NS
    }

    fn deadline(&self, ttl_ns: Option<u64>) -> u64 {
        match ttl_ns {
            Some(ttl) => (self.now_ns + ttl) / TICK_NS + 1,
            None => NEVER,
        }
    }

    fn position(&self, key: u8) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    fn remove_at(&mut self, i: usize) -> Entry {
        let entry = self.entries.remove(i);
        if let Some(h) = self.hand {
            if i < h {
                self.hand = Some(h - 1);
            } else if i == h && self.policy == Policy::S3Fifo {
                // The hand moves to the next newer main entry now (later
                // inserts must not become its target), or restarts.
                self.hand = (h..self.entries.len()).find(|&j| !self.entries[j].small);
            } else if h >= self.entries.len() {
                self.hand = None;
            }
        }
        entry
    }

    fn expire(&mut self) {
        let now = self.now_tick();
        while let Some(i) = self.entries.iter().position(|e| e.expires <= now) {
            let e = self.remove_at(i);
            self.events.push((e.key, e.value, RemovalCause::Expired));
        }
    }

    fn live(&self, key: u8) -> Option<usize> {
        let now = self.now_tick();
        self.position(key)
            .filter(|&i| self.entries[i].expires > now)
    }

    /// An access: LRU moves the entry to the newest end, SIEVE sets its
    /// bit, S3-FIFO bumps its counter (at most 3); the position otherwise stays.
    fn access(&mut self, i: usize) {
        match self.policy {
            Policy::Lru => {
                let e = self.remove_at(i);
                self.entries.push(e);
            }
            Policy::Sieve => self.entries[i].freq = 1,
            Policy::S3Fifo => self.entries[i].freq = (self.entries[i].freq + 1).min(3),
            // Admission depends on a sketch indexed by per-process hashes:
            // tests/tinylfu.rs checks it against its own model.
            Policy::TinyLfu => unreachable!("TinyLfu has its own model test"),
        }
    }

    fn get(&mut self, key: u8) -> Option<u32> {
        self.expire();
        let i = self.position(key)?;
        let value = self.entries[i].value;
        self.access(i);
        Some(value)
    }

    fn peek(&self, key: u8) -> Option<u32> {
        self.live(key).map(|i| self.entries[i].value)
    }

    /// S3-FIFO: small's oldest goes to main if read while in small, else
    /// out (its key to the ghost, sized like main); in main a hand walks
    /// from the oldest towards the newest (wrapping), spending one unit of
    /// each counter above 0, and stops at the first at 0.
    fn s3fifo_victim(&mut self) -> usize {
        let small_target = (self.capacity / 10).max(1);
        loop {
            let small_len = self.entries.iter().filter(|e| e.small).count();
            let main_len = self.entries.len() - small_len;
            let oldest_small = self.entries.iter().position(|e| e.small);
            let oldest_main = self.entries.iter().position(|e| !e.small);
            match (oldest_small, oldest_main) {
                (Some(s), m) if small_len >= small_target || m.is_none() => {
                    if self.entries[s].freq == 0 {
                        let key = self.entries[s].key;
                        self.ghost.push(key, main_len.max(1));
                        return s;
                    }
                    let mut e = self.remove_at(s);
                    e.freq = 0;
                    e.small = false;
                    self.entries.push(e);
                }
                (_, Some(oldest)) => {
                    // The hand's entry, else the oldest main entry.
                    let next_main = |entries: &[Entry], from: usize| {
                        (from..entries.len()).find(|&i| !entries[i].small)
                    };
                    let mut p = self
                        .hand
                        .and_then(|h| next_main(&self.entries, h))
                        .unwrap_or(oldest);
                    while self.entries[p].freq != 0 {
                        self.entries[p].freq -= 1;
                        p = next_main(&self.entries, p + 1).unwrap_or(oldest);
                    }
                    self.hand = Some(p);
                    return p;
                }
                (_, None) => unreachable!("evict on an empty reference"),
            }
        }
    }

    fn evict(&mut self) {
        let victim = match self.policy {
            Policy::Lru => 0,
            Policy::Sieve => {
                let mut p = self.hand.unwrap_or(0);
                while self.entries[p].freq != 0 {
                    self.entries[p].freq = 0;
                    p = (p + 1) % self.entries.len();
                }
                self.hand = Some(p);
                p
            }
            Policy::S3Fifo => self.s3fifo_victim(),
            Policy::TinyLfu => unreachable!("TinyLfu has its own model test"),
        };
        let e = self.remove_at(victim);
        self.events.push((e.key, e.value, RemovalCause::Evicted));
    }

    fn put(&mut self, key: u8, value: u32, ttl_ns: Option<u64>) -> Option<u32> {
        self.expire();
        let expires = self.deadline(ttl_ns);
        if let Some(i) = self.position(key) {
            // An update is an access.
            let old = std::mem::replace(&mut self.entries[i].value, value);
            self.entries[i].expires = expires;
            self.access(i);
            self.events.push((key, old, RemovalCause::Replaced));
            return Some(old);
        }
        let old = self.position(key).map(|i| self.remove_at(i));
        // S3-FIFO: a key still in the ghost skips the small queue.
        let to_main = self.policy == Policy::S3Fifo && self.ghost.take(key);
        while self.entries.len() >= self.capacity {
            self.evict();
        }
        let expires = self.deadline(ttl_ns);
        self.entries.push(Entry {
            key,
            value,
            expires,
            freq: 0,
            small: self.policy == Policy::S3Fifo && !to_main,
        });
        let old = old?;
        self.events
            .push((old.key, old.value, RemovalCause::Replaced));
        Some(old.value)
    }

    fn remove(&mut self, key: u8) -> Option<u32> {
        self.expire();
        let i = self.position(key)?;
        let e = self.remove_at(i);
        self.events.push((e.key, e.value, RemovalCause::Removed));
        Some(e.value)
    }

    /// Live entries in the cache's iteration order: the small queue newest
    /// first (S3-FIFO only), then the main list newest first.
    fn order(&self) -> Vec<(u8, u32)> {
        let now = self.now_tick();
        let queue = |small: bool| {
            self.entries
                .iter()
                .rev()
                .filter(move |e| e.small == small && e.expires > now)
                .map(|e| (e.key, e.value))
        };
        queue(true).chain(queue(false)).collect()
    }
}

fn run(
    policy: Policy,
    capacity: usize,
    default_ttl_ms: Option<u64>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let (clock, mock) = quanta::Clock::mock();
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&events);
    let mut builder = LruCache::builder()
        .max_capacity(capacity as u64)
        .policy(policy)
        .clock(clock)
        .eviction_listener(move |k: &u8, v: &u32, cause| sink.borrow_mut().push((*k, *v, cause)));
    if let Some(ms) = default_ttl_ms {
        builder = builder.default_ttl(Duration::from_millis(ms));
    }
    let mut cache = builder
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model = Reference {
        entries: Vec::new(),
        capacity,
        policy,
        hand: None,
        ghost: GhostRef::default(),
        default_ttl_ns: default_ttl_ms.map(|ms| ms * 1_000_000),
        now_ns: 0,
        events: Vec::new(),
    };
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Get(k) => prop_assert_eq!(
                cache.get(&k).copied(),
                model.get(k),
                "step {} {:?}",
                step,
                op
            ),
            Op::Peek(k) => prop_assert_eq!(
                cache.peek(&k).copied(),
                model.peek(k),
                "step {} {:?}",
                step,
                op
            ),
            Op::Put(k, v) => {
                let ttl = model.default_ttl_ns;
                prop_assert_eq!(
                    cache.put(k, v),
                    model.put(k, v, ttl),
                    "step {} {:?}",
                    step,
                    op
                );
            }
            Op::PutTtl(k, v, us) => {
                let got = cache.put_with_ttl(k, v, Duration::from_micros(us));
                prop_assert_eq!(
                    got,
                    model.put(k, v, Some(us * 1_000)),
                    "step {} {:?}",
                    step,
                    op
                );
            }
            Op::Remove(k) => {
                prop_assert_eq!(cache.remove(&k), model.remove(k), "step {} {:?}", step, op)
            }
            Op::Advance(us) => {
                mock.increment(Duration::from_micros(us));
                model.now_ns += us * 1_000;
            }
        }
        prop_assert_eq!(
            cache.len(),
            model.entries.len(),
            "len after step {} {:?}",
            step,
            op
        );
        prop_assert!(cache.len() <= capacity);
        let order: Vec<(u8, u32)> = cache.iter().map(|(k, v)| (*k, *v)).collect();
        prop_assert_eq!(order, model.order(), "order after step {} {:?}", step, op);
        let mut got = std::mem::take(&mut *events.borrow_mut());
        let mut want = std::mem::take(&mut model.events);
        let key = |e: &(u8, u32, RemovalCause)| (e.0, e.1, format!("{:?}", e.2));
        got.sort_by_key(key);
        want.sort_by_key(key);
        prop_assert_eq!(got, want, "listener events after step {} {:?}", step, op);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn lru_matches_reference(capacity in 1usize..8, ops in prop::collection::vec(op(), 1..200)) {
        run(Policy::Lru, capacity, None, ops)?;
    }

    #[test]
    fn lru_with_default_ttl_matches_reference(capacity in 1usize..8, ttl in 1u64..15, ops in prop::collection::vec(op(), 1..200)) {
        run(Policy::Lru, capacity, Some(ttl), ops)?;
    }

    #[test]
    fn sieve_matches_reference(capacity in 1usize..8, ops in prop::collection::vec(op(), 1..200)) {
        run(Policy::Sieve, capacity, None, ops)?;
    }

    #[test]
    fn sieve_with_default_ttl_matches_reference(capacity in 1usize..8, ttl in 1u64..15, ops in prop::collection::vec(op(), 1..200)) {
        run(Policy::Sieve, capacity, Some(ttl), ops)?;
    }

    /// Capacities up to 24 and keys over 3× that, so the small queue holds
    /// more than one entry (10 %) and the ghost fills, hits and trims.
    #[test]
    fn s3fifo_matches_reference(capacity in 1usize..24, ops in prop::collection::vec(op_over(72), 1..300)) {
        run(Policy::S3Fifo, capacity, None, ops)?;
    }

    #[test]
    fn s3fifo_small_key_space_matches_reference(capacity in 1usize..8, ops in prop::collection::vec(op(), 1..200)) {
        run(Policy::S3Fifo, capacity, None, ops)?;
    }

    #[test]
    fn s3fifo_with_default_ttl_matches_reference(capacity in 1usize..24, ttl in 1u64..15, ops in prop::collection::vec(op_over(72), 1..300)) {
        run(Policy::S3Fifo, capacity, Some(ttl), ops)?;
    }
}
