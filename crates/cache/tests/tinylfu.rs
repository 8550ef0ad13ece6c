//! W-TinyLFU (`Policy::TinyLfu`): its sketch's admission rejects a scan and
//! a stream of one-hit wonders that LRU lets through, a key seen often gets
//! in, and a model test checks every operation against a `HashMap`
//! reference that learns evictions from the listener (admission depends on
//! per-process hashes, so the reference cannot predict the victim; it checks
//! everything else: values, lengths, weights, events, and that an eviction
//! happens only when the cache is full).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use keel_cache::{Cache, LruCache, Policy, RemovalCause};
use proptest::prelude::*;

/// Read-through on either cache kind: get, insert on a miss.
trait ReadThrough {
    fn read(&mut self, key: u32) -> bool;
    fn has(&self, key: u32) -> bool;
}

impl ReadThrough for LruCache<u32, u32> {
    fn read(&mut self, key: u32) -> bool {
        if self.get(&key).is_some() {
            return true;
        }
        self.put(key, key);
        false
    }
    fn has(&self, key: u32) -> bool {
        self.peek(&key).is_some()
    }
}

impl ReadThrough for Cache<u32, u32> {
    fn read(&mut self, key: u32) -> bool {
        if self.get(&key).is_some() {
            return true;
        }
        self.insert(key, key);
        false
    }
    fn has(&self, key: u32) -> bool {
        self.contains_key(&key)
    }
}

type Evicted = Arc<Mutex<Vec<u32>>>;

/// `LruCache` and a one-shard `Cache` with `policy`, each recording evictions.
fn caches(policy: Policy, capacity: u64) -> Vec<(&'static str, Box<dyn ReadThrough>, Evicted)> {
    let single: Evicted = Arc::default();
    let sink = Arc::clone(&single);
    let lru = LruCache::builder()
        .max_capacity(capacity)
        .policy(policy)
        .eviction_listener(move |k: &u32, _: &u32, cause| {
            if cause == RemovalCause::Evicted {
                sink.lock().unwrap().push(*k);
            }
        })
        .build()
        .unwrap();
    let sharded: Evicted = Arc::default();
    let sink = Arc::clone(&sharded);
    let cache = Cache::builder()
        .max_capacity(capacity)
        .shards(1)
        .policy(policy)
        .eviction_listener(move |k: &u32, _: &u32, cause| {
            if cause == RemovalCause::Evicted {
                sink.lock().unwrap().push(*k);
            }
        })
        .build()
        .unwrap();
    vec![
        ("LruCache", Box::new(lru), single),
        ("Cache", Box::new(cache), sharded),
    ]
}

#[test]
fn the_sketch_rejects_a_scan_that_lru_lets_through() {
    for (policy, rejects) in [(Policy::TinyLfu, true), (Policy::Lru, false)] {
        for (kind, mut cache, evicted) in caches(policy, 1_000) {
            // A working set of 500 keys, each read eight times.
            for _ in 0..8 {
                for k in 0..500 {
                    cache.read(k);
                }
            }
            evicted.lock().unwrap().clear();
            // One pass over 20,000 keys never seen before: 20× the capacity.
            for k in 1_000_000..1_020_000 {
                cache.read(k);
            }
            let hot_left = (0..500).filter(|&k| cache.has(k)).count();
            let hot_evicted = evicted.lock().unwrap().iter().filter(|&&k| k < 500).count();
            if rejects {
                assert_eq!(hot_left, 500, "{policy:?} {kind}: the working set stays");
                assert_eq!(hot_evicted, 0, "{policy:?} {kind}: only scan keys leave");
                let scan_left = (1_000_000..1_020_000).filter(|&k| cache.has(k)).count();
                assert!(scan_left <= 500, "{policy:?} {kind}: {scan_left} scan keys");
            } else {
                assert_eq!(hot_left, 0, "{policy:?} {kind}: the scan flushes LRU");
            }
        }
    }
}

#[test]
fn one_hit_wonders_do_not_displace_keys_read_again() {
    for (kind, mut cache, _) in caches(Policy::TinyLfu, 1_000) {
        // Interleave a skewed working set (keys 0..800, read again and
        // again) with a stream of keys that are never read twice.
        let mut hits = 0u32;
        let mut next_new = 10_000_000u32;
        for round in 0..40u32 {
            for k in 0..800 {
                hits += u32::from(cache.read(k) && round >= 20);
                cache.read(next_new);
                next_new += 1;
            }
        }
        // Rounds 20..40 read the working set 16,000 times; it fits, so
        // nearly every read hits despite 32,000 one-hit wonders.
        assert!(hits >= 15_900, "{kind}: {hits} hits of 16000");
    }
}

#[test]
fn a_key_read_often_enough_is_admitted_over_cold_entries() {
    for (kind, mut cache, _) in caches(Policy::TinyLfu, 200) {
        // Fill with keys read once each, so main is full of cold entries.
        for k in 0..400 {
            cache.read(k);
        }
        // A newcomer read through repeatedly: it loses its first duels
        // (no frequency yet), then its count passes the cold victims'.
        let mut admitted_after = None;
        for attempt in 0..20 {
            cache.read(7_777);
            // Push it out of the 1-entry window with fresh keys.
            cache.read(100_000 + attempt);
            cache.read(200_000 + attempt);
            if cache.has(7_777) {
                admitted_after = Some(attempt);
                break;
            }
        }
        assert!(admitted_after.is_some(), "{kind}: never admitted");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Get(u8),
    Peek(u8),
    Put(u8, u32, u32),
    Remove(u8),
}

fn op_over(keys: u8, max_weight: u32) -> impl Strategy<Value = Op> {
    let key = 0u8..keys;
    prop_oneof![
        5 => key.clone().prop_map(Op::Get),
        1 => key.clone().prop_map(Op::Peek),
        4 => (key.clone(), any::<u32>(), 1..=max_weight).prop_map(|(k, v, w)| Op::Put(k, v, w)),
        1 => key.prop_map(Op::Remove),
    ]
}

/// Applies `ops` to a TinyLFU `LruCache` (values weigh `weight % 8`, 0
/// counting as 1) and to a `HashMap` reference; evictions come from the
/// listener and must name an entry the reference holds, with its value.
fn run(capacity: u64, weighted: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = Rc::clone(&events);
    let mut builder = LruCache::builder()
        .max_capacity(capacity)
        .policy(Policy::TinyLfu)
        .eviction_listener(move |k: &u8, v: &(u32, u32), cause| {
            sink.borrow_mut().push((*k, *v, cause))
        });
    if weighted {
        builder = builder.weigher(|_: &u8, v: &(u32, u32)| v.1);
    }
    let mut cache = builder
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut model: HashMap<u8, (u32, u32)> = HashMap::new();
    let weight_of = |v: &(u32, u32)| u64::from(if weighted { v.1.max(1) } else { 1 });
    for (step, op) in ops.into_iter().enumerate() {
        let weight_before: u64 = model.values().map(weight_of).sum();
        let mut put_weight = None;
        match op {
            Op::Get(k) => {
                prop_assert_eq!(
                    cache.get(&k).copied(),
                    model.get(&k).copied(),
                    "step {}",
                    step
                )
            }
            Op::Peek(k) => {
                prop_assert_eq!(
                    cache.peek(&k).copied(),
                    model.get(&k).copied(),
                    "step {}",
                    step
                )
            }
            Op::Put(k, v, w) => {
                let value = (v, w);
                let old = cache.put(k, value);
                prop_assert_eq!(old, model.get(&k).copied(), "step {} {:?}", step, op);
                put_weight =
                    Some(weight_of(&value).saturating_sub(model.get(&k).map_or(0, weight_of)));
                model.insert(k, value);
            }
            Op::Remove(k) => {
                prop_assert_eq!(cache.remove(&k), model.remove(&k), "step {}", step)
            }
        }
        let mut evicted = 0u64;
        for (k, v, cause) in events.borrow_mut().drain(..) {
            match cause {
                RemovalCause::Evicted => {
                    prop_assert_eq!(model.remove(&k), Some(v), "step {} evicted {}", step, k);
                    evicted += weight_of(&v);
                }
                RemovalCause::Replaced | RemovalCause::Removed => {}
                RemovalCause::Expired => prop_assert!(false, "no TTLs here"),
            }
        }
        let weight: u64 = model.values().map(weight_of).sum();
        prop_assert_eq!(cache.len(), model.len(), "len after step {}", step);
        prop_assert_eq!(cache.weight(), weight, "weight after step {}", step);
        prop_assert!(weight <= capacity);
        if evicted > 0 {
            // Only a write that did not fit evicts, and only what it needs
            // (an entry of the written key's old value may also go).
            let grow = put_weight.unwrap_or(0);
            prop_assert!(
                weight_before + grow > capacity,
                "step {}: evicted {} with room",
                step,
                evicted
            );
        }
        let mut listed: Vec<(u8, (u32, u32))> = cache.iter().map(|(k, v)| (*k, *v)).collect();
        listed.sort();
        let mut want: Vec<(u8, (u32, u32))> = model.iter().map(|(k, v)| (*k, *v)).collect();
        want.sort();
        prop_assert_eq!(listed, want, "contents after step {}", step);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tinylfu_matches_a_map_reference(capacity in 1u64..40, ops in prop::collection::vec(op_over(120, 1), 1..400)) {
        run(capacity, false, ops)?;
    }

    #[test]
    fn tinylfu_small_key_space_matches_a_map_reference(capacity in 1u64..8, ops in prop::collection::vec(op_over(12, 1), 1..200)) {
        run(capacity, false, ops)?;
    }

    #[test]
    fn tinylfu_weighted_matches_a_map_reference(capacity in 1u64..40, ops in prop::collection::vec(op_over(60, 9), 1..300)) {
        run(capacity, true, ops)?;
    }
}
