//! keel-cache: an O(1) LRU cache with TTL — single-threaded, concurrent and
//! stampede-proof, and two-level with Redis.
//!
//! ```
//! use std::time::Duration;
//! use keel_cache::{Cache, LruCache, Policy};
//!
//! let mut lru = LruCache::new(2).unwrap(); // single-threaded, exact LRU, O(1)
//! lru.put("a", 1);
//! lru.put("b", 2);
//! lru.get(&"a"); // "a" is now the most recent
//! lru.put("c", 3); // evicts "b"
//! assert_eq!(lru.peek(&"b"), None);
//!
//! let (clock, mock) = quanta::Clock::mock(); // tests drive time by hand
//! let cache: Cache<u64, String> = Cache::builder() // thread-safe, sharded
//!     .max_capacity(10_000).policy(Policy::Sieve).default_ttl(Duration::from_secs(60))
//!     .clock(clock).build().unwrap();
//! let user = cache.get_or_load(42, || "Ada".to_string()).unwrap(); // one loader call per key
//! assert_eq!(user, "Ada");
//! mock.increment(Duration::from_secs(61));
//! assert_eq!(cache.get(&42), None); // expired
//! ```
//!
//! # Layout
//!
//! | module | what |
//! |---|---|
//! | `arena` | the index-based arena and the doubly linked recency list through it |
//! | `timer_wheel` | hierarchical timer wheel: proactive O(1) expiry |
//! | `policy` | [`Policy`]: exact LRU (default), SIEVE, S3-FIFO and W-TinyLFU |
//! | `s3fifo` | S3-FIFO's small/main queues (two arena lists) and its bounded ghost of hashes |
//! | `tinylfu` | W-TinyLFU: window and main (the same two lists), the admission duel |
//! | `sketch` | TinyLFU's count-min sketch: 4-bit counters, doorkeeper, periodic halving |
//! | `raw` | the core shared by both caches: hash table + arena + wheel + policy |
//! | `options` | the options both builders share (capacity, TTL, policy, clock), their setters and validation, written once |
//! | `lru` | [`LruCache`]: the single-threaded cache and its builder |
//! | `concurrent` | [`Cache`]: sharded, thread-safe — `mod.rs` (operations), `shard` (one shard), `load` (single-flight: leader, waiters, guards; loaders contained), `builder` ([`CacheBuilder`], the sweeper) |
//! | `listener` | [`RemovalCause`] for the eviction listener |
//! | `stats` | [`CacheStats`], the snapshot every `stats()` returns |
//! | `metrics` | every `metrics`-facade metric, and when counters reach it |
//! | `sync` | the mutex/condvar used by single-flight, swapped for loom's under `--cfg loom` |
//! | `tiered` | `TieredCache` (feature `redis`): L1 + Redis L2 with pub/sub invalidation |
//! | `error` | [`BuildError`], [`LoadError`], `TieredError` |
//!
//! # Conventions
//!
//! - Construction: `Type::builder()`, chained setters (every builder has
//!   `.clock(..)`), `build() -> Result<_, BuildError>`; `LruCache::new(n)` and
//!   `Cache::new(n)` are shorthands for `builder().max_capacity(n).build()`.
//! - `stats()` returns [`CacheStats`] (`TieredCache::stats` wraps it in
//!   `TieredStats` with the L2 counters).
//! - Metrics: [`Cache`] publishes to the `metrics` facade in batches (every
//!   1,024 operations per shard, and on `stats()` / `run_pending_tasks()`),
//!   because its hot path cannot afford a facade call per `get`;
//!   `TieredCache` publishes its L2 counters per event; [`LruCache`] does not
//!   publish (read `stats()`). See `metrics.rs`.

//! # Requirements
//!
//! - `get`, `peek`, `put`, `remove` in O(1); iteration in recency order.
//! - Capacity by entry count or by weight (a weigher closure).
//! - Default and per-entry TTL; expired entries are never returned and are
//!   removed proactively, so memory is released even if nobody reads them.
//! - An eviction listener told *why* (evicted, expired, replaced, removed),
//!   firing without a maintenance call.
//! - More policies (SIEVE, S3-FIFO, W-TinyLFU) selectable at build time, each O(1) per
//!   operation with weights and TTLs; LRU stays exact.
//! - A thread-safe cache that scales on several cores; `get_or_load` with
//!   stampede protection; counters; a two-level cache with Redis.
//!
//! # Design
//!
//! ## Why a hash map plus a doubly linked list gives O(1)
//!
//! The map answers "where is key K?" in O(1); the list keeps entries in
//! recency order, and a *doubly* linked list can unlink any node it has a
//! handle to in O(1) (it knows both neighbours). So `get` = map lookup +
//! unlink + push at the head; eviction = pop the tail + one map removal. A
//! singly linked list, a `Vec` or a `VecDeque` would need an O(n) search or
//! shift to move an entry from the middle.
//!
//! Here the list lives in an arena (`Vec<Node>` with `u32` links and a free
//! list), not in `Box`ed nodes: no `unsafe`, no allocation per insert once
//! the arena has grown, and small nodes. The table is a
//! `hashbrown::HashTable<u32>` that stores only the arena index and reads
//! the key from the arena, so each key is stored once. The single-threaded
//! node for `u64 → u64` is 56 bytes; the benchmark measures ≈ 63–68 bytes
//! per entry including the table (glibc heap in use after a fill).
//!
//! ## How TTL cleanup works and what it costs
//!
//! Reads check the deadline, so an expired entry is never returned. To
//! *free* entries nobody reads, each entry with a TTL is also linked into a
//! hierarchical timer wheel (6 levels × 64 slots, 2^20 ns ticks, ≈ 2 years
//! of range). Every operation first advances the wheel to "now": O(1) when
//! the tick has not changed, otherwise it empties the slots that came due;
//! entries past their deadline are removed (listener: `Expired`), the rest
//! move down a level. Each entry moves at most once per level, so expiry is
//! O(1) amortised, and work is spread over the operations that happen
//! anyway. Cost: two `u32` links, a deadline and a slot index per entry,
//! 1.5 KiB of slot heads per cache/shard; TTL resolution of one tick
//! (an entry lives at most ≈ 1 ms past its TTL). The clock is only read
//! when some entry has a deadline. For an idle [`Cache`], a background
//! sweeper (`sweep_interval`) runs the same advance on every shard.
//! Alternatives: a `BTreeMap<(deadline, key)>` (O(log n), mini-redis), or
//! a FIFO when every entry has the same TTL.
//!
//! ## Sharding vs a global LRU
//!
//! [`Cache`] splits keys over `N` shards (power of two, default 16 × CPUs,
//! at least 64 entries each), each a `parking_lot::Mutex` around the same
//! core. One operation locks one shard; `get` allocates nothing and counts
//! statistics under the lock in plain integers. The price: LRU is exact
//! *per shard*, not globally — the victim is the oldest entry of its shard,
//! which is among the ≈ N oldest globally; with thousands of entries per
//! shard the hit ratio is indistinguishable from a global LRU in the
//! benchmark (see `keel-bench cache`). A global LRU needs every `get` to
//! write one shared list — a lock everybody takes, the reason
//! `Mutex<lru::LruCache>` stops scaling. moka and quick_cache instead make
//! reads cheaper still by *deferring* the recency update (moka buffers reads
//! and replays them under a `try_lock`; quick_cache sets a bit, like SIEVE);
//! Keel's SIEVE also turns a hit into a bit write.
//!
//! ## LRU vs SIEVE vs S3-FIFO vs TinyLFU
//!
//! | policy | hit path | resists scans | extra state | notes |
//! |---|---|---|---|---|
//! | LRU | move to head | no | — | exact recency; one-hit wonders push out popular keys |
//! | SIEVE (NSDI '24) | set a bit | partly | 1 bit + a hand | FIFO queue + a hand that clears bits; new keys that are not re-read go first ("quick demotion"); simple, lock-friendly |
//! | S3-FIFO (SOSP '23) | bump a 2-bit counter | yes | a second list (small queue), 1 byte counter, ghost ≈ 0.9 × capacity × ~25 bytes of hashes | a small FIFO filters one-hit wonders, a ghost queue remembers them so a returning key goes straight to main |
//! | W-TinyLFU ([`Policy::TinyLfu`]; moka, Caffeine) | bump a counter + count in the sketch (skipped once the counter is at 3) | yes | a 0.5 % window list, 4-bit count-min sketch + doorkeeper (16 bytes per entry of capacity) | admission by frequency: a candidate leaving the window enters main only if the sketch saw it more often than main's victim; best hit ratio on every trace below |
//!
//! On the benchmark's Zipf(1.0) workload (key space 10× the capacity) SIEVE
//! keeps a higher hit ratio than LRU (≈ 0.82–0.85 vs ≈ 0.78–0.82 on a
//! 2-core run), and moka's TinyLFU a higher one still (≈ 0.91), at a
//! fraction of the throughput.
//!
//! Measured with `cargo run --release -p keel-bench -- cache` (capacity 100k,
//! Zipf s = 1.0 over 1M keys, 90 % reads / 10 % writes, insert on miss; 2-core
//! VM, median of 7 interleaved rounds; one run, expect ±15 % between runs):
//!
//! | threads | keel LRU | keel SIEVE | moka | quick_cache | `Mutex<lru>` |
//! |---|---|---|---|---|---|
//! | 1 | 8.78M ops/s (hit 0.779) | 10.16M (0.833) | 0.996M (0.894) | 8.80M (0.857) | 8.16M (0.779) |
//! | 2 | 13.25M (0.782) | 17.56M (0.855) | 1.48M (0.900) | 13.05M (0.845) | 7.76M (0.779) |
//!
//! So Keel runs ≈ 9–12× moka's ops/s and about level with quick_cache; moka
//! buys its higher hit ratio with a frequency sketch and buffered bookkeeping.
//! (Those round hit ratios were inflated for moka: each timed round restarted
//! at the stream's start, so a slow contender replayed a short warm prefix.
//! Rounds now continue where they stopped, and `trace_hit_ratio` replays the
//! whole trace on one thread, independent of timing.)
//!
//! Three traces since S3-FIFO (`--quick`: capacity 20k, 2M-key streams;
//! `trace_hit_ratio`, independent of load, ±0.001 between processes): **zipf** (as above), **scan** (every
//! other key from a loop over 2× the capacity, the rest Zipf), **one-hit**
//! (every other key new, the rest Zipf):
//!
//! | trace | keel LRU | keel SIEVE | keel S3-FIFO | moka | quick_cache | `lru` |
//! |---|---|---|---|---|---|---|
//! | zipf | 0.752 | 0.806 | **0.810** | 0.807 | 0.807 | 0.751 |
//! | scan | 0.358 | 0.429 | 0.481 | **0.585** | 0.552 | 0.358 |
//! | one-hit | 0.354 | 0.429 | **0.444** | 0.422 | 0.435 | 0.354 |
//!
//! S3-FIFO beats LRU by 0.06–0.12 and matches or beats moka on Zipf and
//! one-hit wonders; on the scan trace moka's frequency sketch keeps more of
//! the Zipf set's middle (keys re-read less often than once per capacity
//! of misses, which S3-FIFO's ghost has forgotten by then).
//!
//! ## W-TinyLFU: admission by frequency
//!
//! [`Policy::TinyLfu`] closes most of that gap. How: new keys enter a tiny
//! window FIFO (0.5 % of the capacity); the window's oldest entry is a
//! *candidate* for main, and once main is full it gets in only if a
//! count-min sketch estimates it was seen more often recently than main's
//! CLOCK victim — otherwise the candidate is the one evicted. Why it works:
//! a scan or a one-hit wonder is seen once, so it loses every duel against a
//! key that is read again; keys of a loop larger than the cache tie with
//! each other, so the ones already in main stay (a stable part of the loop
//! hits every lap instead of none). The sketch, not a ghost of the last
//! evictions, remembers keys the cache dropped, over ≈ 10 × capacity
//! accesses: 4-bit counters, four per key in one 64-byte block that also holds
//! the key's doorkeeper bits (one cache line per update), halved every
//! 10 × capacity counted increments; a doorkeeper Bloom filter absorbs each
//! key's first sighting so one-time keys never reach the counters (without
//! it: one-hit 0.441 instead of 0.464). Cost: 16 bytes per entry of capacity
//! and a sketch update per hit and per insert. Hit ratios at the full
//! benchmark's size (capacity 100k, 2M-key streams; the benchmark's
//! `trace_hit_ratio` replay — a fresh cache, the trace once to warm up, then
//! once counted — on one thread, so independent of load; moka moves by
//! ±0.007 between processes):
//!
//! | trace | keel LRU | keel SIEVE | keel S3-FIFO | **keel W-TinyLFU** | moka | quick_cache |
//! |---|---|---|---|---|---|---|
//! | zipf | 0.779 | 0.829 | 0.834 | **0.853** | 0.848 | 0.853 |
//! | scan | 0.394 | 0.545 | 0.551 | **0.593** | 0.607 | 0.583 |
//! | one-hit | 0.373 | 0.421 | 0.426 | **0.464** | 0.440–0.448 | 0.452 |
//!
//! W-TinyLFU is above moka on zipf (+0.005) and one-hit (+0.016–0.024) and
//! 0.013 below it on scan, where moka's segmented main (probation +
//! protected) keeps the Zipf set's middle apart from the loop better than a
//! single CLOCK. Tuning tried (same replay): a 1 % window 0.592 on scan, 2 %
//! 0.591; halving every 5× / 15× / 20× capacity 0.591 / 0.594 / 0.593;
//! counting misses as well as inserts 0.587; no doorkeeper 0.590.
//! Bytes per entry (glibc heap in use per u64→u64 entry): Keel ≈ 63, moka ≈ 320,
//! quick_cache ≈ 59, `lru` ≈ 70.
//!
//! Instructions per operation (`valgrind --tool=callgrind`, counted only in
//! the timed loop: one thread, capacity 100k, the benchmark's 2M-key traces,
//! one warm pass, then 500k operations; instruction counts do not depend on
//! the machine's load, wall-clock time also pays for cache misses):
//!
//! | trace | keel SIEVE | keel W-TinyLFU | quick_cache |
//! |---|---|---|---|
//! | zipf | 227 | 264 | 192 |
//! | scan | 333 | 429 | 302 |
//! | one-hit | 409 | 579 | 325 |
//!
//! Reproduce with the benchmark's callgrind mode (see `keel-bench`'s cache
//! module): `KEEL_CACHE_PROFILE=keel-sieve valgrind --tool=callgrind
//! --toggle-collect='*profiled_ops*' keel-bench cache --scenario '^one-hit'`,
//! total instructions / 500 000. A later build (before the pre-sized table
//! at twice the capacity and the field-by-field slot reuse, which are not
//! measured yet) counted SIEVE 225 / 317 / 387, W-TinyLFU 265 / 417 / 555
//! and quick_cache 186 / 299 / 325: counts move by a few instructions
//! between processes (random hash seeds).
//!
//! Part of the gap is the hit ratio over that window (zipf / scan / one-hit:
//! SIEVE 0.835 / 0.595 / 0.421, W-TinyLFU 0.871 / 0.645 / 0.467,
//! quick_cache 0.869 / 0.632 / 0.555): a miss costs a second lock, an
//! insert and an eviction. W-TinyLFU's extra cost is the sketch: a hit
//! updates it only while the entry's counter is below 3 (329 → 264 on zipf
//! when that rule came in, hit ratios within 0.001).
//!
//! Wall clock, with those changes: three quiet full runs of `keel-bench cache`
//! (nothing else on the machine), the fastest Keel policy against quick_cache
//! at 1 thread — zipf SIEVE 0.94 / 0.95 / 1.01×, scan SIEVE 1.20 / 1.16 /
//! 1.21×, one-hit SIEVE 1.08 / 1.01 / 1.02× (0.70–0.96× before); at 2 threads
//! every Keel policy is ≥ 1.05× quick_cache on every trace (SIEVE 1.29–1.67×).
//! W-TinyLFU at 1 thread: 0.84–0.94×. The 1-thread Zipf gap is the open item.
//!
//! ## Cache-aside, write-through, write-behind, refresh-ahead
//!
//! - **Cache-aside** (what `get_or_load` and the tour do): read the cache,
//!   on a miss load from the database and fill the cache; writes go to the
//!   database and *invalidate* the cache.
//! - **Write-through** (`TieredCache::set`): writes update cache and store
//!   together, so reads after a write hit.
//! - **Write-behind**: write the cache now, the store later in batches —
//!   fast writes, but a crash loses them; not implemented here.
//! - **Refresh-ahead**: reload hot entries shortly before they expire, so
//!   readers never wait; can be built on `get_or_load` + the TTL.
//!
//! ## Stampede protection
//!
//! When a hot key expires, hundreds of requests miss at once and all hit
//! the database ("thundering herd"). `get_or_load` is *single-flight*: the
//! first miss registers an in-flight marker under the shard lock and runs
//! the loader; every other miss on that key waits for its result (blocking
//! or `async`). Errors are shared, not cached; a panicking loader gives every
//! waiter [`LoadError::Panicked`]; a cancelled async leader gives
//! [`LoadError::Cancelled`]; the marker is always removed. A write or
//! invalidation during a load supersedes it, so stale loads cannot
//! overwrite newer data. Other defences: TTL jitter, refresh-ahead, serving
//! stale while revalidating.
//!
//! # Complexity
//!
//! | operation | time | notes |
//! |---|---|---|
//! | `get` / `peek` / `contains_key` | O(1) | + expiry of what is due, O(1) amortised per expired entry |
//! | `put` / `insert` | O(1) amortised | evicts as many entries as the weight requires |
//! | `remove` / `invalidate` | O(1) | |
//! | `iter` | O(n) | recency order (LRU), insertion order (SIEVE; S3-FIFO: small queue, then main; W-TinyLFU: window, then main) |
//! | S3-FIFO eviction | O(1) amortised | a promotion leaves small once per insertion; each step of main's hand spends one counter unit that only a hit adds; ghost push/lookup O(1) |
//! | `get_or_load` | O(1) + one loader call per key | waiters block until the leader finishes |
//! | `len` / `stats` on [`Cache`] | O(shards) | locks each shard briefly |
//! | memory | O(capacity) | arena stops growing at the capacity; in-flight map holds only current loads |
//!
//! # Trade-offs
//!
//! - S3-FIFO vs SIEVE: S3-FIFO keeps popular keys through scans and bursts
//!   of one-time keys (higher hit ratio on those traces), and pays for it on
//!   every miss: a ghost lookup, and on an eviction from small a ghost push
//!   (a ring slot + a hash-table entry, trimmed to main's length — bounded
//!   by the entries the cache holds), plus a relink when an entry moves from
//!   small to main. On plain Zipf, SIEVE is as good and cheaper.
//! - Main's "reinsertion" is a hand (as in SIEVE) rather than the paper's
//!   move-to-head: no relinking per step, and the same O(1) amortised bound.
//! - Sharding gives per-shard LRU, not global LRU, and per-shard capacity
//!   (an entry heavier than one shard's share is rejected).
//! - TTLs are rounded up to ≈ 1 ms ticks.
//! - `Cache::get` clones the value: use `Arc<T>` for large values.
//! - The listener runs on the thread that caused the removal (after the
//!   shard lock is released); keep it short. A panicking listener is
//!   contained and counted (`listener_panics`), like a panicking loader, so
//!   it cannot stop the sweeper, `invalidate_all` or an expiry part-way.
//! - `TieredCache` is eventually consistent: pub/sub is fire-and-forget, so
//!   after a subscriber reconnect L1 is cleared; L1 TTLs bound staleness.
//!   The subscriber pings its connection (`liveness_interval`) so a silently
//!   dropped flow is noticed. A load that started before an invalidation
//!   never writes its value back (versioned write-back: a per-key generation
//!   checked by a Lua script); write-backs run off the caller's path, and
//!   each call's Redis work has one deadline (`l2_timeout`).
//!
//! # Interview questions
//!
//! - *Implement a cache that expires old entries.* — `LruCache` with
//!   `default_ttl`/`put_with_ttl`: check the deadline on read, and remove
//!   proactively with a timer wheel (or a min-heap / ordered map) advanced
//!   on every operation, plus a background sweeper for idle caches.
//! - *What's the time complexity of your operations?* — O(1) for get, put
//!   and remove: a hash map gives the node, a doubly linked list moves or
//!   unlinks it without a scan; expiry is O(1) amortised per entry.
//! - *How do you make this thread-safe?* — One lock is correct but every
//!   `get` writes the list, so it serialises; shard by key hash (N locks)
//!   and accept per-shard LRU, or make reads cheaper (bit-setting policies
//!   like SIEVE/CLOCK, or buffered recency updates like moka).
//! - *How do you prevent a cache stampede?* — Single-flight per key (one
//!   loader, others wait), plus TTL jitter or refresh-ahead so hot keys do
//!   not all expire at once; contain loader panics so waiters never hang.
//! - *LRU or something else?* — LRU is simple but scan-prone; SIEVE/S3-FIFO
//!   keep more of the popular set with less work per hit; TinyLFU admits by
//!   frequency for the best hit ratio at higher cost.
//! - *How does TinyLFU decide?* — A count-min sketch (a few small counters
//!   per key, minimum of them as the estimate, halved periodically so old
//!   popularity fades) estimates recent frequency in ≈ 8 bytes per entry.
//!   When the cache is full, the newcomer is compared with the entry the
//!   eviction policy would drop, and the less frequent of the two goes: a
//!   key seen once never displaces one that is read again.
//! - *Why does S3-FIFO beat LRU on scans and one-hit wonders?* — In LRU
//!   every new key goes to the head and pushes the whole cache one step
//!   towards eviction, so a scan larger than the cache (or a stream of keys
//!   used once) flushes the popular keys. S3-FIFO admits new keys only into
//!   a small queue (10 %); a key must be read again there to reach main, so
//!   one-time keys are evicted from small and never touch main. The ghost
//!   queue (hashes only) fixes the cost of a too-small filter: a key that
//!   comes back soon after being dropped goes straight to main. Hits only
//!   bump a counter, so reads are cheap under a lock.
//! - *How do several app servers share a cache?* — L1 in process, L2 in
//!   Redis; write-through to L2 and publish invalidations so other L1s drop
//!   their copies; bound L1 staleness with TTLs; when Redis is down, serve
//!   from L1 and the database and count the errors.
//! - *A slow load races an invalidation: who wins?* — Without care, the
//!   load: it read the database before the write and stores the old value
//!   after the invalidation, for everyone, until the TTL. Supersede
//!   in-flight loads on write/invalidate (L1), and version the L2 write:
//!   read a per-key generation with the miss, bump it on every
//!   write/invalidate, and write back only if it is unchanged (a Lua
//!   check-and-set; `WATCH`/`MULTI` works too).
//! - *How do you notice a connection that silently died?* — You cannot from
//!   reads alone: a dropped NAT flow gives no error, only silence. Ping it
//!   with a deadline (or enable TCP keepalive), and treat repeated timeouts
//!   as a dead connection to replace.

mod arena;
mod concurrent;
mod error;
mod listener;
mod lru;
mod metrics;
mod options;
mod policy;
mod raw;
mod s3fifo;
mod sketch;
mod stats;
mod sync;
#[cfg(feature = "redis")]
mod tiered;
mod timer_wheel;
mod tinylfu;

pub use concurrent::{Cache, CacheBuilder};
#[cfg(feature = "redis")]
pub use error::TieredError;
pub use error::{BuildError, LoadError};
pub use listener::RemovalCause;
pub use lru::{LruCache, LruCacheBuilder};
pub use policy::Policy;
pub use stats::CacheStats;
#[cfg(feature = "redis")]
pub use tiered::{SyncState, TieredCache, TieredCacheBuilder, TieredStats};
