//! A Dynamo-style key-value cluster that any Redis client can use: every node speaks
//! RESP2/RESP3, coordinates any key, replicates it to N nodes with R/W quorums, keeps
//! concurrent writes as siblings (dotted version vectors), repairs on read, hands writes
//! to recovering nodes (hinted handoff) and stores everything durably in redb.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
//! use redis::AsyncCommands;
//!
//! let dir = tempfile::tempdir().unwrap();
//! // One node (a cluster of one: quorums are capped at the number of owners).
//! let node = keel_dht::Node::builder().data_dir(dir.path()).build().unwrap();
//! let handle = node.start().await.unwrap(); // 127.0.0.1, a free port
//!
//! let client = redis::Client::open(format!("redis://{}/", handle.addr())).unwrap();
//! let mut conn = client.get_multiplexed_async_connection().await.unwrap();
//! let _: () = conn.set("user:42", "ada").await.unwrap();
//! assert_eq!(conn.get::<_, String>("user:42").await.unwrap(), "ada");
//! assert_eq!(conn.incr::<_, _, i64>("visits", 1).await.unwrap(), 1);
//! assert_eq!(handle.stats().writes, 2);
//! handle.shutdown().await;
//! # }
//! ```
//!
//! A 3-node cluster: `keel-dht node --listen 127.0.0.1:7001 --data d1 --seed
//! 127.0.0.1:7002 --seed 127.0.0.1:7003` and likewise for the other two, then
//! `redis-cli -p 7001`. A 4th node joins through any member: `keel-dht node --listen
//! 127.0.0.1:7004 --data d4 --seed 127.0.0.1:7001` (or `DHT.JOIN 127.0.0.1:7001` sent to
//! it); `DHT.LEAVE` sent to a node streams its partitions away and removes it.
//!
//! # Layout
//!
//! - [`node`] — [`Node`] / [`NodeBuilder`] / [`NodeHandle`]: configuration, the TCP
//!   server (one task per connection, pipelined), the hinted-handoff task.
//! - [`resp`] — the bounded, incremental RESP2 request parser.
//! - [`reply`] — [`Reply`] and its RESP2 / RESP3 encodings ([`Protocol`]).
//! - `cmd/` — one file per command family, each *parse → apply → reply*: `string`
//!   (GET SET GETDEL APPEND STRLEN MGET MSET), `counter` (INCR…), `expire` (EXPIRE…
//!   TTL…), `keyspace` (DEL EXISTS TYPE SCAN KEYS DBSIZE FLUSHALL DHT.PUT),
//!   `connection` (PING ECHO HELLO CLIENT SELECT QUIT RESET), `server` (INFO COMMAND
//!   CONFIG GET), `dht` (DHT.NODES RING OWNERS CONSISTENCY SIBLINGS STATS), `internal`
//!   (node-to-node DHT.R.*).
//! - `mutation` — every write as a value, applied by the key's write coordinator.
//! - `coordinator` — quorum reads with read repair, routed quorum writes, hints.
//! - `cluster` — fixed partitions placed with `keel-ring`, preference lists.
//! - `anti_entropy` — per-partition Merkle trees compared between replicas on a timer.
//! - `reclaim` — tombstone GC and dropping copies of partitions a node no longer owns.
//! - `membership` — gossip of the layout and heartbeats, the failure detector, join and
//!   leave with partition streaming (`DHT.JOIN`, `DHT.LEAVE`, `--seed`).
//! - `peer` — connections to other nodes, the call-timeout failure detector, and the
//!   per-peer lanes that batch replica reads and puts (`DHT.R.MGET` / `DHT.R.MPUT`).
//! - [`net`] — the injected network ([`Network`]; [`TcpNetwork`] by default), so a test
//!   can run the node on a simulated one.
//! - `storage` — redb tables with a group-commit writer thread (a task on a
//!   [`MemoryDisk`]).
//! - [`memory_disk`] — [`MemoryDisk`]: an in-memory redb backend kept across restarts, on
//!   which a crash loses exactly what was not synced.
//! - [`version`] — [`VersionVector`], [`Sibling`], [`SiblingSet`] (dotted version vectors).
//! - [`clock`] — the injected wall clock ([`Clock`], [`SystemClock`], [`ManualClock`]).
//! - [`metrics`] — [`DhtStats`] and the `metrics` facade counters (per event).
//! - [`error`] — [`BuildError`], [`ProtocolError`], [`DecodeError`], [`DhtError`].
//!
//! # Study notes
//!
//! ## Requirements
//! - Any Redis client works against any node (RESP2/RESP3, the common string commands,
//!   Redis-format errors, pipelining); no MOVED redirects — any node coordinates any key.
//! - Every key on N nodes; reads and writes succeed while R / W of them answer.
//! - No acknowledged write is lost: not by a crash (`kill -9`), not by concurrent writers
//!   (siblings instead of last-write-wins), not by a node that was down (hints, read repair).
//! - Hostile input never crashes a node or makes it allocate what a header claims.
//!
//! ## Design
//! - **Placement**: Q = 256 fixed partitions (top bits of the xxh3 key hash); partitions are
//!   placed on a [`keel_ring::Ring`] with virtual nodes; a partition's preference list is
//!   the first N distinct nodes. The member list is a versioned **layout** (epoch) that
//!   spreads by gossip; joins and leaves install it in two steps (dual placement while
//!   partitions stream to their new owners, then the switch), so nothing acknowledged is
//!   lost and reads and writes go on during the change.
//! - **Failure detection**: gossip-style heartbeats (a member silent for `fail_after` on
//!   the injected clock is down) combined with call timeouts.
//! - **Writes** go to the key's *write coordinator*, the first owner not believed down;
//!   it applies the write in one storage job (atomic read-modify-write) and creates a new
//!   version with a fresh dot (never reused, even across restarts); while its own fsync
//!   runs it already sends the set to the other owners, and it answers after W durable
//!   acks (its own commit included only once durable). A failed or down owner's copy goes
//!   to the next healthy node on the ring after the preference list, which keeps it as a
//!   durable **hint** and counts towards W (**sloppy quorum**); its handoff task delivers
//!   it when the owner answers again. With no such node (a cluster of N) the coordinator
//!   keeps the hint itself.
//! - **Reads** ask R owners (this node first when it is one), answer with the merge of
//!   their replies (siblings unioned, obsolete versions dropped) and **repair** every asked
//!   replica that was stale; the others catch up by handoff and anti-entropy.
//! - **Versions**: dotted version vectors; a blind Redis `SET` supersedes everything its
//!   coordinator holds; `DHT.PUT key value context` supersedes exactly the siblings that
//!   context saw; deletes are tombstones. `GET` returns the live sibling with the latest
//!   coordinator timestamp (ties: larger bytes); `DHT.SIBLINGS` returns all with contexts.
//!   Dots name the coordinator's *run* (`node~incarnation`), not the node: a node that
//!   lost an acknowledged write of its own in a crash (replicas had it, its fsync had not
//!   run) would otherwise hand a reader at `ONE` a context covering that write, and the
//!   reader's next write would drop it (`tests/consistency_one.rs`; see `mutation`).
//! - **Anti-entropy**: every interval a node compares the Merkle trees (64 leaves) of the
//!   next 16 partitions it owns with the next owner of each and exchanges only the keys
//!   under differing leaves, both ways.
//! - **Tombstone GC**: a key whose siblings are all tombstones, the newest older than the
//!   grace period (`tombstone_grace`, default 1 day, on the injected clock), is deleted
//!   on every owner of its partition — only when no membership change runs, every owner
//!   is up and every owner answers that it holds *exactly* that set (hash of the
//!   canonical encoding), and then on each owner only if its set is still unchanged. No
//!   owner then holds the deleted value, so nothing can push it back; a replica that
//!   missed the delete holds the value, not the tombstone, so the GC waits for it. The
//!   argument and its one limit (a hint or old copy whose holder is down longer than the
//!   grace period) are in `reclaim`. **Expired TTL values** go by the same rule, an
//!   expired sibling counting as a tombstone written at its deadline: collecting one
//!   sooner could let a stale replica push back the live value it superseded.
//! - **Old partition copies**: a node that no longer owns a partition (after a join or a
//!   leave) pushes it to the partition's owners (Merkle comparison, push only) and, once
//!   all of them acknowledged durably, deletes the keys that did not change meanwhile;
//!   every anti-entropy round looks for such partitions.
//! - **Durability**: redb with `fsync` per commit and group commit (one writer thread
//!   batches up to 512 jobs per transaction). [`Fsync::EverySecond`] is an explicit
//!   opt-in (`--fsync everysec`) that acknowledges before the fsync and loses up to the
//!   last second of a crashed node's writes (see [`Fsync`]).
//!
//! ## Complexity
//!
//! | operation | cost |
//! |---|---|
//! | placement of a key | O(1): hash + table lookup (tables rebuilt in O(Q·log V) on start) |
//! | GET | R replica reads (one local when this node owns the key), O(log K) each; remote ones share a `DHT.R.MGET` per peer under load |
//! | SET | ≤ 1 forward + the local fsync (shared by the batch) in parallel with N−1 replica puts (each one fsync, shared by their batch; puts queued for one peer travel as one `DHT.R.MPUT` and are one storage job there), answer after W |
//! | sibling merge | O(S²) for S siblings (S ≤ 16) |
//! | SCAN / DBSIZE | one partition range per step / all Q partitions |
//!
//! ## Trade-offs
//! - Routing writes through a per-key coordinator costs a hop (2/3 of writes on 3 nodes)
//!   but serialises a key's writes, which makes `INCR`, `SET NX` and blind writes sane;
//!   concurrent siblings appear only when the coordinator changes (failures).
//!   `INCR`/`DECR` are therefore exact (each applied once, per-key linearizable) while a
//!   key's coordinator is stable; around a coordinator change an increment can be lost
//!   (applied to a stale copy, then superseded) or, after a forwarding timeout, applied
//!   twice — the precise rules are in `cmd/counter.rs`.
//! - Reads ask R replicas, not N (Cassandra's choice): cheaper GETs, but read repair only
//!   reaches the replicas asked; anti-entropy covers the rest on its timer.
//! - Sloppy quorum (Dynamo's choice): a hint on a stand-in node counts towards W, so
//!   writes stay available with owners down, but R + W > N no longer guarantees that a
//!   read sees them until the hints are handed over.
//! - Our own gossip instead of chitchat/foca: the state is one epoch-versioned member
//!   list plus heartbeats, carried on the peer connections the data already uses (see
//!   `membership` for the reasoning).
//! - Tombstones live at least the grace period (disk for safety, as Cassandra's
//!   `gc_grace_seconds`) and need every owner up to go: a long-down owner keeps them.
//!   Expired values likewise stay TTL + grace period on disk (reading as absent).
//! - redb fsyncs every commit; group commit keeps that affordable under concurrency but a
//!   lone client pays one fsync per write.
//! - Siblings are capped at [`MAX_SIBLINGS`] per key: past it the oldest by
//!   `(timestamp, dot)` is dropped on every replica alike and counted (`siblings_dropped`).
//!
//! ## CAP stance and consistency levels
//! AP by default: during a partition any side with W owners of a key accepts writes to it,
//! and divergent writes become siblings that are reconciled, never silently dropped.
//! Per connection, `DHT.CONSISTENCY ONE|QUORUM|ALL` sets R and W:
//! - **ONE** (R = W = 1): highest availability; a read may miss the latest write.
//! - **QUORUM** (R = W = ⌊N/2⌋+1): R + W > N, so without failures a read overlaps the
//!   latest acknowledged write and sees it (or a sibling of it); acknowledged writes are on
//!   ⌊N/2⌋+1 disks.
//! - **ALL** (R = W = N): fails as soon as one owner is unreachable.
//!
//! None of them is linearizable (no consensus): concurrent writes become siblings.
//!
//! ## Interview questions
//! - *Why partitions instead of hashing keys straight onto the ring?* Partitions are the
//!   unit of transfer and comparison (Merkle trees, streaming on join), and placement
//!   becomes a fixed-size table.
//! - *What does R + W > N buy?* Every read quorum intersects every write quorum, so a read
//!   sees the latest acknowledged write — absent failures and sloppy quorums.
//! - *Why not last-write-wins?* Clock skew and concurrent writers make LWW drop
//!   acknowledged writes (Jepsen on Riak/Cassandra); version vectors detect concurrency.
//! - *Why dotted version vectors?* Plain vector clocks either explode with client ids or
//!   falsely supersede siblings when a server bumps its own counter; a dot names the one
//!   event a version is, so "saw it" is exact.
//! - *How are deletes safe?* A tombstone is a version: it supersedes what it saw and
//!   replicates like a value, so a stale replica cannot resurrect the key. *And when can
//!   the tombstone go?* Only when no copy of the old value is left to push back: every
//!   owner must hold the same tombstone (checked, not assumed) and the grace period must
//!   cover hints and old copies whose holders are briefly down.
//! - *What if a node dies mid-write?* The write is acknowledged only after W fsyncs;
//!   its missed copies wait as hints and are also fixed by read repair.
//!
//! - *How does a node join without losing writes?* Writes go to old and new owners (W
//!   acks in each set) while the new owner pulls the partitions from N − W + 1 old
//!   owners; only then does ownership switch. Garage lost writes in Jepsen by switching
//!   first.
//!
//! ## Deterministic simulation
//! `tests/sim/` runs whole clusters in one test on turmoil: the node's network
//! ([`NodeBuilder::network`]), wall clock ([`NodeBuilder::clock`], with a per-node skew)
//! and disk ([`NodeBuilder::memory_disk`]) are injected; timers are tokio's, which turmoil
//! drives in simulated time. Each seed draws a fault schedule — per-node clock skew of up
//! to ±2 s, a silent node crash and restart (unsynced writes lost) with the node's clock
//! jumped 0.5–5 s forwards or back, a partition (a node, sometimes with a client, cut
//! off), a window of message loss, a window of high latency, a 4th node joining and one
//! of the first three leaving, all while two clients run read-modify-write cycles with
//! fresh and stale contexts and plain `SET`/`GET`s (blind writes, which the checker lets
//! supersede any write invoked before they completed) — then heals, and a history
//! checker asserts the documented guarantees:
//! every acknowledged write survives (as the value, a sibling, or superseded by a write
//! that saw it), and with R + W > N and no failures a read sees the latest acknowledged
//! write. `cargo test` runs 8 seeds (about 5 s in the test profile); `.ci/run` sets
//! `KEEL_SIM_SEEDS=200` (with the `SET`s and restart clock jumps: 90 975 acknowledged
//! writes checked, 0 violations, 133 of 200 leaves completed, 121 s on the loaded
//! 2-core box); `KEEL_SIM_SEED=n` runs one; a failure prints its seed and the
//! command to rerun it. It has teeth: with W = 1 and a disk wiped on crash (a sabotage run,
//! not committed) 2 of 10 seeds fail with lost acknowledged writes.
//!
//! Why turmoil rather than madsim: turmoil simulates the network and time under the real
//! tokio, so the node runs unchanged (one `Network` trait, no patched tokio); madsim
//! replaces tokio crate-wide, which the `redis` client and the rest of the workspace would
//! all have to build against.
//!
//! ## Not done yet (see the crate's issue)
//! The 0.3× bar is met on GET without pipelining only; SET (with or without `-P 16`) and
//! pipelined GET miss it. Two quiet `keel-bench dht --quick` runs (nothing else on the
//! machine), ratio to the default-config redis-server: GET 0.42 / 0.43× (p99 5.1 ms),
//! SET 0.08 / 0.07× (10.4k / 9.8k req/s; 0.13 / 0.15× `appendfsync always`), SET with
//! `--fsync everysec` 0.14 / 0.15×, SET -P 16 0.04 / 0.02× (24.0k / 21.6k), GET -P 16
//! 0.08 / 0.08× (90.1k / 84.7k against 1.11M). The loaded figures below overstate the
//! pipelined ratios because the load slowed Redis more than Keel. The peer the bar
//! is read against is a redis-server with its default config (RDB snapshots, no AOF: it
//! acknowledges from memory); `keel-bench dht` also prints a redis-server with
//! `appendfsync always`, the like-for-like pairing on durability. Batching replica reads
//! and puts per peer (`peer`'s lanes) doubled pipelined GETs: `keel-bench dht --quick`,
//! `GET 50 clients -P 16`, 34.0k req/s before (load ≈ 4 on the shared 2-core machine) →
//! 69.4k after (load ≈ 10), 0.48× the default-config redis-server in that run (whose own
//! figure falls from ≈ 625k to ≈ 145k under such load, so the ratio is indicative). Same
//! run: GET 0.35×; SET 0.05× the default-config server (0.35× `appendfsync always`),
//! `--fsync everysec` 0.14×; SET -P 16 0.03× (6.9k; 12.5k before at load ≈ 4). Writes are
//! bound by redb: a profile of `SET -P 16` puts ≈ 40 % of the samples in the storage
//! writer threads (B-tree copy-on-write of one page per random key per commit, xxh3
//! checksums, malloc) — an LSM engine (fjall) or coordinating at any owner instead of
//! forwarding (saves a hop and an RPC per write, but makes siblings of concurrent writes
//! through different nodes) are the next levers.
//! Seed replay is not yet bit-for-bit: a run and its rerun
//! agree until a node's start fails and is retried, then can drift by a few milliseconds (so a failing
//! seed reproduces its fault schedule and workload, not always its exact interleaving).
//! Found (not yet fixed): in every drifting seed checked (2, 8, 9) the joining node's
//! `Node::start` fails at least once (its join times out against the crashed or
//! restarting node) and the sim retries it; a failed start runs `NodeHandle::shutdown`,
//! which wakes the node's tasks through a tokio `watch` channel, and tokio files each
//! `watch` receiver under one of 8 notifiers picked by its runtime RNG — unseeded unless
//! built with `--cfg tokio_unstable` (turmoil seeds it only then) — so the stopped tasks
//! run, and send their last messages, in a per-process random order. Seeds 1 and 3 (no
//! failed start) replay identically; in one pass over seeds 1–12, 2, 8 and 9 drifted;
//! a drifting seed's history digest takes one of a few values across processes. The fix is a stop signal with a
//! deterministic wake order in `node.rs` (a `Notify`, or aborting the tasks in order).
//! `KEEL_SIM_DEBUG=1` prints every failed start. Fixed on the way: the heartbeat map is a
//! `BTreeMap`, and message loss is paused for the instant of a crash (the FIN/RST a
//! crashed host's sockets send depend on the drop order and each drew from turmoil's
//! random source).
//! `the_same_seed_gives_the_same_history` stays ignored until that is fixed.

mod anti_entropy;
pub mod clock;
mod cluster;
mod cmd;
mod coordinator;
pub mod error;
mod membership;
pub mod memory_disk;
pub mod metrics;
mod mutation;
pub mod net;
pub mod node;
mod peer;
mod reclaim;
pub mod reply;
pub mod resp;
mod storage;
pub mod version;

pub use clock::{Clock, ManualClock, SystemClock};
pub use cmd::Consistency;
pub use error::{BuildError, DecodeError, DhtError, ProtocolError};
pub use memory_disk::MemoryDisk;
pub use metrics::DhtStats;
pub use net::{Network, TcpNetwork};
pub use node::{Node, NodeBuilder, NodeHandle};
pub use reply::{Protocol, Reply};
pub use storage::{Fsync, SYNC_INTERVAL};
pub use version::{MAX_SIBLINGS, Sibling, SiblingSet, VersionVector};

/// Most partitions a cluster can have (partition numbers are `u16`).
pub const MAX_PARTITIONS: usize = 65_536;
