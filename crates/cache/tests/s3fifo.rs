//! S3-FIFO's defining behaviours, on `LruCache` and on a one-shard `Cache`
//! (the same core; one shard makes the capacity exact): one-hit wonders
//! leave from the small queue, a ghost hit goes straight to main, and a
//! frequently used key survives a scan larger than the cache — where LRU
//! loses it.

use std::sync::{Arc, Mutex};

use keel_cache::{Cache, LruCache, Policy, RemovalCause};

/// The operations the tests need, on either cache.
trait Ops {
    fn put(&mut self, key: u32);
    fn read(&mut self, key: u32) -> bool;
    fn has(&self, key: u32) -> bool;
    fn len(&self) -> usize;
}

impl Ops for LruCache<u32, u32> {
    fn put(&mut self, key: u32) {
        LruCache::put(self, key, key);
    }
    fn read(&mut self, key: u32) -> bool {
        self.get(&key).is_some()
    }
    fn has(&self, key: u32) -> bool {
        self.peek(&key).is_some()
    }
    fn len(&self) -> usize {
        LruCache::len(self)
    }
}

impl Ops for Cache<u32, u32> {
    fn put(&mut self, key: u32) {
        self.insert(key, key);
    }
    fn read(&mut self, key: u32) -> bool {
        self.get(&key).is_some()
    }
    fn has(&self, key: u32) -> bool {
        self.contains_key(&key)
    }
    fn len(&self) -> usize {
        Cache::len(self) as usize
    }
}

type Evicted = Arc<Mutex<Vec<u32>>>;

/// Both cache kinds with `policy` and `capacity`, each with a listener
/// that records evicted keys.
fn caches(policy: Policy, capacity: u32) -> Vec<(&'static str, Box<dyn Ops>, Evicted)> {
    let single: Evicted = Arc::default();
    let sink = Arc::clone(&single);
    let lru = LruCache::builder()
        .max_capacity(u64::from(capacity))
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
        .max_capacity(u64::from(capacity))
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
fn one_hit_wonders_leave_from_the_small_queue() {
    for (kind, mut cache, evicted) in caches(Policy::S3Fifo, 100) {
        // A working set of 20 keys, each read twice after its insert.
        for k in 0..20 {
            cache.put(k);
        }
        for _ in 0..2 {
            for k in 0..20 {
                assert!(cache.read(k));
            }
        }
        // 10,000 keys that are written once and never read again.
        for k in 1_000..11_000 {
            cache.put(k);
        }
        for k in 0..20 {
            assert!(cache.has(k), "{kind}: working-set key {k} was pushed out");
        }
        let evicted = evicted.lock().unwrap();
        assert_eq!(evicted.len(), 10_000 + 20 - 100, "{kind}");
        assert!(
            evicted.iter().all(|&k| k >= 1_000),
            "{kind}: only one-hit wonders are evicted"
        );
        assert_eq!(cache.len(), 100, "{kind}");
    }
}

#[test]
fn lru_lets_one_hit_wonders_push_out_the_working_set() {
    // The contrast for the test above: same trace, LRU.
    for (kind, mut cache, _) in caches(Policy::Lru, 100) {
        for k in 0..20 {
            cache.put(k);
            assert!(cache.read(k));
        }
        for k in 1_000..11_000 {
            cache.put(k);
        }
        assert!((0..20).all(|k| !cache.has(k)), "{kind}");
    }
}

#[test]
fn a_ghost_hit_goes_straight_to_main() {
    for (kind, mut cache, evicted) in caches(Policy::S3Fifo, 100) {
        for k in 0..100 {
            cache.put(k);
        }
        // Key 100 evicts 0, the small queue's oldest (never read): 0's
        // hash goes to the ghost.
        cache.put(100);
        assert_eq!(*evicted.lock().unwrap(), vec![0], "{kind}");
        // 0 comes back while remembered: it goes to main, not to small ...
        cache.put(0);
        // ... so a stream of one-hit wonders, which churns the small queue,
        // leaves it alone, although it was never read.
        for k in 1_000..2_000 {
            cache.put(k);
        }
        assert!(cache.has(0), "{kind}: a ghost hit is admitted to main");
        // Key 1 entered small at the same time as 0 did and was not a
        // ghost hit: it is gone.
        assert!(!cache.has(1), "{kind}");
    }
}

#[test]
fn a_frequently_used_key_survives_a_scan_larger_than_the_cache() {
    for (policy, survives) in [(Policy::S3Fifo, true), (Policy::Lru, false)] {
        for (kind, mut cache, _) in caches(policy, 100) {
            // Hot keys: inserted and read three times.
            for k in 0..10 {
                cache.put(k);
            }
            for _ in 0..3 {
                for k in 0..10 {
                    assert!(cache.read(k));
                }
            }
            // A scan over 5× the capacity, read-through (get, insert on
            // a miss), twice; hot keys are read once in a while, less often
            // than every `capacity` operations.
            let mut hot_hits = 0;
            for round in 0..2 {
                for (i, k) in (10_000..10_500).enumerate() {
                    if !cache.read(k) {
                        cache.put(k);
                    }
                    if i % 250 == 249 {
                        let hot = (round * 2 + i / 250) as u32;
                        hot_hits += u32::from(cache.read(hot));
                    }
                }
            }
            assert_eq!(
                (0..10).all(|k| cache.has(k)),
                survives,
                "{policy:?} {kind}: hot keys after the scan"
            );
            assert_eq!(hot_hits, if survives { 4 } else { 0 }, "{policy:?} {kind}");
        }
    }
}
