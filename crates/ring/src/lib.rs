//! Consistent hashing and its alternatives — ring with virtual nodes, jump hash,
//! rendezvous, Maglev, multi-probe and bounded loads — behind one [`Placement`] trait,
//! with replica lists, weighted nodes, portable hashing, hot-key detection and a
//! comparison harness.
//!
//! ```
//! use keel_ring::{NodeId, Placement, Ring};
//!
//! let mut ring = Ring::new(100).unwrap(); // 100 virtual nodes per weight unit
//! for name in ["cache-a", "cache-b", "cache-c"] {
//!     ring.add_node(NodeId::new(name).unwrap()).unwrap();
//! }
//! ring.add_weighted_node(NodeId::new("cache-big").unwrap(), 2).unwrap();
//!
//! let owner = ring.node_for("user:42").unwrap().clone();
//! let replicas = ring.replicas("user:42", 3); // 3 distinct nodes, owner first
//! assert_eq!(replicas[0], &owner);
//! assert_eq!(replicas.len(), 3);
//!
//! // Removing another node never moves this key unless it lived there.
//! let other = ring.nodes().iter().find(|n| **n != owner).unwrap().clone();
//! ring.remove_node(&other).unwrap();
//! assert_eq!(ring.node_for("user:42"), Some(&owner));
//! ```
//!
//! # Layout
//!
//! - [`placement`] — the [`Placement`] trait: `node_for`, `replicas`, add/remove nodes.
//! - [`node`] — [`NodeId`], a node's stable identity (its name).
//! - [`hash`] — portable hashing ([`RingKey`], xxh3 with fixed seeds).
//! - [`ring`] — consistent hashing with virtual nodes; weights scale the vnode count.
//! - [`jump`] — jump consistent hash (append / remove at the tail only).
//! - [`rendezvous`] — weighted rendezvous / highest random weight (`-w / ln h`).
//! - [`maglev`] — Maglev lookup table (prime size, rebuilt on membership change).
//! - [`multi_probe`] — multi-probe consistent hashing (one point per node, `k` probes).
//! - [`bounded`] — consistent hashing with bounded loads (acquire / release).
//! - [`hot_keys`] — Space-Saving top-k with exponential decay, per-node load shares.
//! - [`spread`] — hot-key mitigation: read from the replica list.
//! - [`analysis`] — the comparison harness used by `keel-bench ring` and `keel tour`.
//! - [`metrics`] — the [`RingStats`] snapshot and the `metrics` facade counters (and the
//!   rule for which events are counted).
//! - [`error`] — [`BuildError`] (construction) and [`RingError`] (membership, routing).
//! - `points` (private) — sorted hash points with a prefix index: the successor search
//!   shared by the ring, multi-probe and bounded loads.
//!
//! # Conventions
//!
//! - **Construction.** A type with more than one option has `Type::builder()` with chained
//!   setters and `build() -> Result<_, BuildError>`: [`BoundedLoads::builder`] (`vnodes`,
//!   `epsilon`), [`HotKeyDetector::builder`] (`capacity`, `half_life`, `clock`). A type with
//!   one parameter keeps `Type::new(param) -> Result<_, BuildError>` ([`Ring::new`],
//!   [`MultiProbe::new`], [`Maglev::new`], [`ReadSpreader::new`]); parameterless ones have
//!   an infallible `new()` ([`Jump::new`], [`Rendezvous::new`]). `BoundedLoads::new(v, ε)`
//!   and `HotKeyDetector::new(config, clock)` stay as shorthands for their builders. Every
//!   constructor validates its input (zero and oversized counts are a [`BuildError`], never
//!   a panic), and `BuildError` converts into [`RingError`] with `?`.
//! - **Bounds.** Every size is capped so no call can hang or exhaust memory:
//!   [`ring::MAX_POINTS`] (vnodes × weights, ring / multi-probe / bounded loads),
//!   [`multi_probe::MAX_PROBES`] (a lookup's cost), [`maglev::MAX_TABLE_SIZE`] (and nodes
//!   < table size), [`hot_keys::MAX_CAPACITY`] (detector memory); a [`ReadSpreader`]'s
//!   fan-out is clamped to the member count. Any `n` may be passed to `replicas`: a list
//!   longer than 16 tracks chosen members in a bitmap (jump: a Fenwick tree; multi-probe:
//!   one pass over the points), so even a list of every member is O(points + N log N),
//!   never O(points × N).
//! - **Counters.** Components that keep counters ([`BoundedLoads`], [`HotKeyDetector`],
//!   [`ReadSpreader`]) return a plain [`RingStats`] snapshot from `stats()`, and report the
//!   same events to the `metrics` facade per event; lookups are never counted. The rule and
//!   the metric names are in [`metrics`].
//!
//! # Study notes
//!
//! ## The question
//!
//! *"Explain consistent hashing."* Follow-ups: *"How do you balance load?"*, *"What moves
//! when a node joins or leaves?"*, *"What about hot keys?"* This crate answers each with
//! working code and measured numbers.
//!
//! ## Requirements
//!
//! - **Placement**: `node_for(key)` and `replicas(key, n)` — `n` distinct nodes in a stable
//!   preference order (fewer if the cluster is smaller), for replication (the DHT).
//! - **Minimal disruption**: when a node joins, keys move only *to* it; when one leaves,
//!   only *its* keys move. Ideally ≈ K/N keys either way.
//! - **Balance**: every node gets close to its (weighted) share.
//! - **Agreement**: two processes with the same membership compute the same placement —
//!   hashing is deterministic and portable (xxh3 with fixed seeds, never `RandomState`),
//!   placement depends on node *names*, not insertion order, and a checked-in vector file
//!   (`tests/vectors/placement.tsv`) pins the results. Any name works, however short or
//!   similar to the others: a ring point hashes the name *and* the virtual-node index
//!   together (`tests/balance.rs` checks `db1`, `a`, `w-0`, long and similar names for every
//!   algorithm). That derivation changed once (issue 10: `xxh3(name, seed + i)` collapsed
//!   short names onto a few points), so ring, multi-probe and bounded-load placements of
//!   builds before it differ from today's, as do jump's replica lists after the owner
//!   (now drawn from the buckets not yet chosen, so `replicas(k, n)` is a prefix of
//!   `replicas(k, n + 1)` for every algorithm) — upgrade every process of a cluster together.
//! - **Hot keys**: detect them in a stream with bounded memory, and spread their load.
//!
//! ## Why not `hash(key) % N`?
//!
//! Going from `N` to `N + 1` nodes keeps a key in place only when
//! `h mod N == h mod (N+1)`, which holds for about 1 in `N + 1` keys: **almost every key
//! moves** (89 % at N = 8), and every cache in front of the cluster goes cold at once.
//! Consistent hashing moves only the ≈ 1/(N+1) that must move:
//!
//! ```
//! use keel_ring::{NodeId, Placement, Ring, RingKey};
//! let keys = 0..10_000u64;
//! let modulo_moved = keys.clone().filter(|k| k.ring_hash() % 8 != k.ring_hash() % 9).count();
//! assert!(modulo_moved > 8_500); // ≈ 8/9 of the keys
//!
//! let mut ring = Ring::new(100).unwrap();
//! for i in 0..8 {
//!     ring.add_node(NodeId::new(format!("n{i}")).unwrap()).unwrap();
//! }
//! let before: Vec<_> = keys.clone().map(|k| ring.node_for(&k).unwrap().clone()).collect();
//! ring.add_node(NodeId::new("n8").unwrap()).unwrap();
//! let ring_moved = keys.zip(before).filter(|(k, b)| ring.node_for(k) != Some(b)).count();
//! assert!(ring_moved < 2_000); // ≈ 1/9 of the keys, all to n8
//! ```
//!
//! ## The algorithms
//!
//! - **Ring with virtual nodes** (Karger et al., 1997) — [`Ring`]. Nodes and keys hash onto
//!   a circle; a key belongs to the next node point clockwise. One point per node gives
//!   arcs of wildly different length (the largest is ≈ ln N / N of the circle), so each
//!   node gets `v` points: the load's σ ≈ 1/√v of the mean. A weight `w` gives `w·v`
//!   points. Keel's lookup uses a prefix index over the sorted points (one array read plus
//!   ≈ one step) instead of a 16-step binary search.
//! - **Jump consistent hash** (Lamping & Veach, 2014) — [`Jump`]. A few lines of
//!   arithmetic map a key to a bucket in `0..N` with no memory, perfect expected balance
//!   and optimal movement. Buckets are numbered, so nodes can only be appended or removed
//!   at the end; no weights.
//! - **Rendezvous / HRW** (Thaler & Ravishankar, 1998) — [`Rendezvous`]. Each node scores
//!   the key; the highest score wins and the sorted scores *are* the replica list. O(N) per
//!   lookup, no state; weights through the `−w / ln u` score.
//! - **Maglev** (Eisenbud et al., 2016) — [`Maglev`]. Nodes fill a prime-sized table by
//!   taking turns along their own permutations; lookup is one array read. Near-perfect
//!   balance, but the table is rebuilt on every change and a few keys move between
//!   surviving nodes.
//! - **Multi-probe** (Appleton & O'Reilly, 2015) — [`MultiProbe`]. One point per node,
//!   `k` probes per key, closest point wins: O(N) memory, `k` searches per lookup.
//! - **Bounded loads** (Mirrokni, Thorup & Zadimoghaddam, 2018) — [`BoundedLoads`]. A ring
//!   whose nodes refuse load above `⌈(1+ε)·average⌉`; overflow walks on to the next node.
//!
//! | algorithm | lookup | memory | build / change | join / leave moves | weights |
//! |---|---|---|---|---|---|
//! | ring, `v` vnodes | O(1) expected (prefix index; O(log Nv) search) | O(N·v) | O(N·v log N·v) | only to / from the node | vnode count |
//! | jump | O(ln N) | O(N) names only | O(1) | optimal; **tail only** | no |
//! | rendezvous | O(N) (replicas O(N log n)) | O(N) | O(N) | optimal | `−w / ln u` |
//! | Maglev, table `M` | O(1) | O(M) | O(M log M) rebuild | leaver's keys **plus extra** | turns per round |
//! | multi-probe, `k` probes | O(k) expected | O(N) | O(N log N) | only to / from the node | points per weight |
//! | bounded loads | O(1) expected + walk past full nodes | O(N·v) | as ring | more than minimal (overflow chains) | cap ∝ weight |
//!
//! ## Keel's figures next to the published ones
//!
//! `cargo run --release -p keel-ring --example compare` (the [`analysis`] harness; also in
//! `keel tour`): 1,000,000 integer keys, nodes `node-0000…`, one node joins, the middle one
//! leaves (the last for jump). σ is the standard deviation of keys per node in % of the
//! mean. "Extra" = keys moved between *surviving* nodes. Measured on a 2-core VM, re-run
//! after the point-derivation fix (issue 10; ring, multi-probe and bounded-load rows and
//! weighted shares changed, the others are identical).
//!
//! | claim | published | Keel, N = 8 / 64 / 512 |
//! |---|---|---|
//! | ring, 100 vnodes: σ | ≈ 10 % (1/√100) | 10.3 % / 9.0 % / 9.9 % |
//! | ring, 1000 vnodes: σ | ≈ 3.2 % (1/√1000) | 3.4 % / 3.3 % / 3.9 % |
//! | jump: σ, movement | σ ≈ 0, optimal | σ 0.29 % / 0.72 % / 2.21 %; join moved 1.00 / 1.00 / 0.98 × K/(N+1), leave 1.00 / 0.98 / 0.98 × K/N, 0 extra |
//! | rendezvous: σ, movement | even, optimal | σ 0.20 % / 0.71 % / 2.26 %; 0 extra |
//! | multi-probe, 21 probes: peak/mean | ≈ 1.05 | 1.076 / 1.111 / 1.125 (σ 4.8 % / 15.2 % / 17.4 %); 0 extra |
//! | Maglev (M = 65537): movement on leave | more than minimal | leave moved 1.02 / 1.32 / 5.73 × K/N: extra 0.16 % / 0.50 % / 0.92 % of all keys; join likewise |
//! | bounded loads ε = 0.25: peak | ≤ ⌈(1+ε)·avg⌉ | peak/mean 1.130 / 1.154 / 1.247 ≤ 1.25 (plain ring: 1.130 / 1.154 / 1.317) |
//!
//! How to read it:
//!
//! - **Key-sampling noise.** Even a perfect placement of K random keys has σ ≈ √(N/K):
//!   0.28 % / 0.8 % / 2.26 % here. Jump, rendezvous and Maglev sit exactly on that floor —
//!   that *is* "σ ≈ 0". A ring's σ is √(1/v + N/K): for 1000 vnodes at N = 512,
//!   √(3.16² + 2.26²) ≈ 3.9 %, as measured.
//! - **Multi-probe misses 1.05** at these sizes. The `1 + 1/(k−1)` bound is asymptotic
//!   (the analysis assumes `k ≪ √N / ln N`); with one point per node, a node whose point
//!   sits just after another's owns a tiny arc that even 21 probes rarely hit (the
//!   emptiest node at N = 64 gets 25 % of the mean, at N = 512 1.5 %). Peak/mean is
//!   1.08–1.13; more probes help (64 probes: 1.048 at N = 64, emptiest node 59 %).
//! - **Maglev's extra movement** is small in absolute terms (≤ 1 % of keys) but grows
//!   relative to K/N as N approaches `M/100`: at N = 512 each node has only 128 slots, and
//!   the rebuilt turn order shifts a few slots of every survivor. The tests bound it at
//!   [`maglev::EXTRA_MOVEMENT_BOUND`] = 5 % of keys.
//! - **Bounded loads** forwards only when a node is full, so at N = 8 (ring peak 1.13 < 1.25)
//!   it behaves almost exactly like the ring (12 of 1,000,000 keys forwarded while the
//!   first few keys make the cap tight), and at N = 512 it cuts the ring's 1.32 to 1.25.
//!   Its price is movement: join 1.20, leave 1.23 × K/N at N = 512, about 0.06 % of the
//!   keys moving between surviving nodes, because overflow chains shift.
//! - **Weighted shares** (weights 1–4 cycling; worst node's |share/expected − 1|):
//!   rendezvous 0.6 / 2.9 / 10.2 %, Maglev 0.3 / 2.0 / 10.9 % (sampling noise of ≈ 800 keys
//!   on a weight-1 node at N = 512), ring-1000 4.5 / 8.2 / 15.3 %, ring-100
//!   13.2 / 28.6 / 26.7 % (a weight-1 node has only 100 points), multi-probe
//!   12.0 / 31.8 / 91.4 % (starved nodes again).
//! - **Lookup cost** (one thread, hashing included; `keel-bench ring` has the interleaved
//!   comparison with `hash-rings` and `hashring`): Maglev ≈ 3–6 ns, ring-100 ≈ 13–28 ns,
//!   jump ≈ 45–85 ns, multi-probe ≈ 290–360 ns, rendezvous ≈ 30 ns at N = 8 growing
//!   linearly to ≈ 1–2 µs at N = 512. Memory: Maglev 256 KiB fixed, ring-100 ≈ 1.7 KiB per
//!   node, ring-1000 ≈ 16 KiB per node, jump / rendezvous / multi-probe ≈ 50 B per node.
//!
//! ### Lookups per second against the peer crates
//!
//! `keel-bench ring`, 1 thread, 65,536 random `u64` keys, interleaved rounds, medians
//! (2-core shared VM). Peers hash with SipHash by default; the `+xxh3` runs give
//! `hash-rings` Keel's exact key hash and show the gap is the algorithm's layout, not the
//! hash. Each lookup ends at the node's name on both sides (jump: at the bucket number);
//! the figures below were taken when Keel's side stopped one load earlier, at the member
//! index, and await a re-run.
//!
//! | algorithm | N | Keel | `hash-rings` | `hash-rings` + xxh3 | `hashring` | ratio (worst) |
//! |---|---|---|---|---|---|---|
//! | ring, 100 vnodes | 8 | 38.7 M/s | 11.0 M/s | 11.2 M/s | 17.6 M/s | 2.2× |
//! | ring, 100 vnodes | 512 | 19.3 M/s | 3.35 M/s | 3.12 M/s | 2.18 M/s | 5.8× |
//! | jump | 8 | 21.2 M/s | 14.6 M/s | 12.5 M/s | — | 1.45× |
//! | jump | 512 | 8.5 M/s | 5.13 M/s | 4.91 M/s | — | 1.66× |
//! | rendezvous | 8 | 31.5 M/s | 3.37 M/s | 3.86 M/s | — | 8.2× |
//! | rendezvous | 512 | 595 k/s | 63.9 k/s | 62.7 k/s | — | 9.3× |
//! | weighted rendezvous | 8 / 512 | 5.59 M/s / 610 k/s | 1.34 M/s / 34.6 k/s | — | — | 4.2× / 17.6× |
//! | Maglev, M = 65537 | 8 / 512 | 75 M/s / 164 M/s | 16.0 M/s / 30.2 M/s | — | — | 4.7× / 5.4× |
//! | multi-probe, 21 probes | 8 / 512 | 3.70 M/s / 3.46 M/s | 1.28 M/s / 649 k/s | — | — | 2.9× / 5.3× |
//!
//! Where it comes from: the ring's prefix index replaces a `BTreeMap` range query
//! (`hash-rings`) or a binary search over 51,200 entries (`hashring`); rendezvous mixes
//! the key hash with a precomputed node hash (one multiply-xorshift per node) instead of
//! hashing the pair through `BuildHasher` per node, and skips the logarithm of nodes that
//! cannot win; Maglev and multi-probe use sorted arrays and a division-free range map.
//! Jump is the same arithmetic on both sides; the remaining difference is the key hash
//! and the peer's generic `Hasher` plumbing.
//!
//! ## Which one to pick
//!
//! - **A cluster with replicas and arbitrary joins/leaves** (a DHT, a cache tier): the ring
//!   with 100–1000 vnodes — cheap lookups, natural replica walk, weights (the choice for
//!   `keel-dht`).
//! - **Few nodes, weights, no shared state** (client-side sharding, CDN origin choice):
//!   rendezvous. O(N) is nothing at N ≤ 100, and the replica list is just the sort order.
//! - **Numbered shards that only grow** (storage partitions, a fixed list with failover
//!   handled elsewhere): jump — zero memory, perfect balance.
//! - **Packet-rate lookups with a rarely changing backend set** (L4 load balancers): Maglev.
//! - **Memory-tight, many nodes**: multi-probe, if its imbalance is acceptable.
//! - **Load, not keys, must be bounded** (requests, connections, hot keys): bounded loads.
//!
//! ## Hot spots: causes and mitigations
//!
//! Consistent hashing balances *keys*, not *requests*. Causes of hot nodes: too few
//! vnodes (σ ≈ 1/√v), heterogeneous machines without weights, and — the one no placement
//! fixes — a **hot key** (a celebrity's profile, a viral post) whose requests all hash to
//! one node. Detect them with a streaming heavy-hitter sketch: [`HotKeyDetector`] keeps
//! `k` Space-Saving counters under exponential decay (memory O(k), every key above `1/k`
//! of recent traffic is guaranteed to be tracked) and reports per-node shares. Mitigate:
//!
//! - **Spread reads over the replica list** ([`ReadSpreader`]): the replicas hold the data
//!   anyway; rotating a hot key's reads over 3 replicas divides its load by 3.
//! - **Bounded loads** ([`BoundedLoads`]): no node takes more than `(1+ε)` × its share of
//!   the load in flight; overflow goes to the next node on the ring.
//! - Elsewhere: a small local cache in front (L1), key splitting (`key#0…key#7` for
//!   counters), request coalescing (single-flight).
//!
//! ## Trade-offs worth saying out loud
//!
//! - Virtual nodes trade memory and build time for balance (σ ∝ 1/√v, memory ∝ v).
//! - Jump hash is the best on paper and the least flexible: no arbitrary removal, no
//!   weights, and buckets are positions, so node identity lives outside it.
//! - Rendezvous needs no structure and handles weights exactly, but costs O(N) per lookup.
//! - Maglev buys O(1) lookups and perfect balance with extra movement on change.
//! - Lookups take `&self` and never allocate; membership changes rebuild. For concurrent
//!   readers, publish a rebuilt placement behind an `Arc` (copy-on-write) or a `RwLock`.
//!
//! ## Interview questions, short answers
//!
//! - *Why consistent hashing?* Modulo hashing moves ≈ N/(N+1) of the keys on any change;
//!   consistent hashing moves ≈ 1/N, and only to or from the changed node.
//! - *Why virtual nodes?* One point per node leaves arcs of very different size (max
//!   ≈ ln N / N); `v` points per node bring σ down to ≈ 1/√v, spread a leaving node's keys
//!   over many survivors instead of one, and let weights be "more points".
//! - *How many vnodes?* 100–200 in practice (σ ≈ 7–10 %); 1000 for ≈ 3 %; memory grows
//!   linearly (≈ 17 bytes per point here, prefix index included).
//! - *What moves when a node joins?* Only the keys on the arcs its points take over, ≈ K/(N+1),
//!   all to the new node. When it leaves, only its keys, spread to the next points' owners.
//! - *How do you get replicas?* Walk clockwise and take the next distinct physical nodes
//!   (skip further vnodes of nodes already chosen); rendezvous: the top-n scores.
//! - *Jump hash vs ring?* Jump: no memory, perfect balance, but only append/remove-last
//!   and no weights. Ring: any membership change, weights, replica walk.
//! - *Why is Maglev's table size prime?* So every `skip` in `1..M` is coprime with `M` and
//!   each node's permutation visits every slot.
//! - *How to handle heterogeneous nodes?* Weights: vnode count ∝ capacity (ring),
//!   `−w / ln u` (rendezvous), turns per round (Maglev).
//! - *What about hot keys?* Detect with a heavy-hitter sketch (Space-Saving / Count-Min +
//!   heap) over a decaying window; mitigate by reading from replicas, bounded loads, a
//!   local cache, or splitting the key.
//! - *Consistent hashing with bounded loads?* Cap each node at ⌈(1+ε)·avg⌉ of the current
//!   load and forward overflow clockwise; Google Cloud Pub/Sub and Vimeo used ε ≈ 0.25.
//! - *How do two clients agree on placement?* Same membership, same deterministic hash
//!   (not a per-process random seed), placement independent of insertion order.

pub mod analysis;
pub mod bounded;
pub mod error;
pub mod hash;
pub mod hot_keys;
pub mod jump;
pub mod maglev;
pub mod metrics;
pub mod multi_probe;
pub mod node;
pub mod placement;
mod points;
pub mod rendezvous;
pub mod ring;
pub mod spread;

/// Re-exported so callers can build the [`quanta::Clock`] the hot-key detector takes.
pub use quanta;

pub use analysis::{Algorithm, AlgorithmReport, AnalysisConfig};
pub use bounded::{BoundedLoads, BoundedLoadsBuilder, BoundedLoadsStats};
pub use error::{BuildError, RingError};
pub use hash::{RingKey, hash_bytes};
pub use hot_keys::{HotKey, HotKeyConfig, HotKeyDetector, HotKeyDetectorBuilder, HotKeyStats};
pub use jump::Jump;
pub use maglev::Maglev;
pub use metrics::RingStats;
pub use multi_probe::MultiProbe;
pub use node::NodeId;
pub use placement::Placement;
pub use rendezvous::Rendezvous;
pub use ring::Ring;
pub use spread::ReadSpreader;
