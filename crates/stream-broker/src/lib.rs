//! keel-stream-broker: a single-node broker that speaks the Kafka protocol over
//! [`keel_stream`]'s partition logs, so `kcat`, `kafka-python` and librdkafka clients work
//! against it unchanged.
//!
//! ```
//! use keel_stream_broker::Broker;
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let dir = tempfile::tempdir().unwrap();
//! let broker = Broker::builder()
//!     .listen("127.0.0.1:0".parse().unwrap())
//!     .data_dir(dir.path())
//!     .auto_create_topics(true)
//!     .build()
//!     .unwrap()
//!     .start()
//!     .await
//!     .unwrap();
//! let addr = broker.local_addr(); // point a Kafka client's bootstrap.servers here
//! assert_ne!(addr.port(), 0);
//! assert_eq!(broker.stats().connections_accepted, 0);
//! broker.shutdown().await;
//! # }
//! ```
//!
//! From the command line: `keel stream broker --listen 127.0.0.1:9092 --data DIR`, or this
//! crate's own binary `keel-stream-broker` (default listen `127.0.0.1:19092`, not Kafka's 9092).
//!
//! # Layout
//!
//! - `broker` (re-exported): [`Broker`], [`BrokerBuilder`], [`BrokerHandle`] — settings,
//!   opening the data directory, start and shutdown.
//! - `server`: the accept loop, one task per connection, limits (connections, request size,
//!   in-flight requests, idle timeout), the housekeeping tick.
//! - [`client`]: a small blocking client (the tour and benchmarks drive the broker with it).
//! - [`codec`]: frames in and out — length check, header routing, `kafka-protocol` decoding
//!   with panics contained, response encoding.
//! - [`api`]: one handler per API (`versions` is public: the table of what we serve).
//! - `topics`: topics on disk over [`keel_stream::PartitionLog`], their Kafka configs ([`TopicSettings`]).
//! - `groups`: the group coordinator (membership, generations, the join/sync barrier,
//!   session and rebalance timeouts, static membership).
//! - `offset_store`: committed offsets, one atomically rewritten file per group.
//! - `producer_ids`: unique producer ids across restarts, allocated in fsynced blocks.
//! - `logging`: [`log_to_stderr`] for the binaries.
//! - `metrics`: [`BrokerStats`] and the `metrics` facade counters.
//! - `error`: [`BuildError`], [`BrokerError`], [`FrameError`].
//!
//! # How the Kafka protocol works (study notes)
//!
//! **Framing.** TCP; every request and response is `int32 length` + payload. A request
//! starts with `api_key`, `api_version`, `correlation_id`, `client_id`; the response echoes
//! the correlation id. A broker answers a connection's requests *in order* (clients
//! pipeline and match by order as well as by id). The length is checked against
//! `max_request_bytes` *before* allocating, so `0x7fffffff` costs nothing.
//!
//! **Versions.** Every API has numbered versions. A client opens with `ApiVersions`; the
//! broker lists `(api, min, max)` and the client uses the highest version both know. A
//! broker that does not know the client's `ApiVersions` version answers at v0 with
//! `UNSUPPORTED_VERSION` plus its list, and the client retries lower. Newer versions are
//! "flexible": compact strings/arrays (unsigned varint lengths) and tagged fields, so fields
//! can be added without a new version. `kafka-protocol` encodes all of it; the ranges we
//! advertise (see [`api::versions::SUPPORTED`]) stop where semantics we do not implement
//! begin (topic ids in Produce/Fetch v13, KIP-848 groups).
//!
//! **Produce/Fetch.** A producer sends *record batches* (format v2: a 61-byte header with
//! base offset, CRC-32C, producer id/epoch/base sequence, then varint-encoded records). The
//! broker assigns offsets by rewriting the base offset (outside the CRC) and stores the
//! batch as it came; a fetch returns stored bytes unchanged — the "zero-copy" property
//! that makes Kafka fast. `Fetch` long-polls: `max_wait_ms` / `min_bytes`.
//!
//! **Idempotent producers.** `InitProducerId` hands out a producer id; each batch carries
//! `(producer id, epoch, first sequence)` per partition. The log remembers the last batches
//! of each producer: a retry of a written batch is answered with its original offsets
//! (no duplicate), a gap is `OUT_OF_ORDER_SEQUENCE_NUMBER`, an older epoch is fenced.
//!
//! **Consumer groups (classic protocol).** `FindCoordinator` names the broker owning the
//! group (always us). Members `JoinGroup` with their supported assignors and subscription
//! metadata; the coordinator waits until every known member has (re)joined or the
//! rebalance timeout passes, bumps the *generation*, picks a protocol all support, and
//! elects a *leader*, which alone receives everyone's metadata. The leader computes the
//! assignment **on the client** and sends it in `SyncGroup`; the coordinator relays each
//! member's share. Members `Heartbeat` within `session.timeout.ms`; a heartbeat during a
//! rebalance gets `REBALANCE_IN_PROGRESS` (rejoin), a stale generation `ILLEGAL_GENERATION`,
//! an expired member `UNKNOWN_MEMBER_ID`. `OffsetCommit` is checked against the generation,
//! so a zombie from an old generation cannot overwrite progress. Static members
//! (`group.instance.id`, KIP-345) that come back within the session timeout take their
//! old place without a rebalance.
//!
//! # Requirements
//!
//! - Existing Kafka clients work unchanged (tested with kcat/librdkafka and kafka-python).
//! - Every acknowledged record survives `kill -9` under fsync-every-batch durability.
//! - A malformed, oversized or silent client affects only its own connection.
//! - Committed offsets and producer ids survive restarts.
//!
//! # Complexity
//!
//! | operation | cost |
//! |---|---|
//! | produce (per batch) | one `pwrite` (+ `fdatasync` under every-batch), O(1) index push |
//! | fetch | O(log segments + log batches) index search, one `pread`, no re-encoding |
//! | list offsets by time | O(log n) time-index search + one batch decode |
//! | join/sync/heartbeat | O(members) under the coordinator lock |
//! | offset commit | rewrite of the group's file: O(partitions the group committed) + fsync |
//!
//! # What a single node cannot do, and how it would become a cluster
//!
//! One broker is one failure domain: acknowledged data survives a crash (fsync) but not the
//! loss of the disk, and nothing is served while it is down. Kafka's answer is
//! *replication*: each partition has a leader and followers that fetch from it like
//! consumers; the **ISR** (in-sync replicas) is the set caught up within
//! `replica.lag.time.max.ms`; `acks=all` waits until every ISR member has the batch, and the
//! *high watermark* (what consumers may read) is the minimum of the ISR's log ends. A
//! **controller** (KRaft: a Raft quorum of controllers holding the metadata log) assigns
//! partitions, elects a new leader from the ISR when one dies (bumping the *leader epoch*
//! so a deposed leader's writes are fenced, and letting followers truncate divergent tails
//! with `OffsetForLeaderEpoch`), and spreads group coordinators by hashing group ids onto
//! the partitions of `__consumer_offsets`. Here `Metadata` says node 0 leads every
//! partition with replicas = ISR = `[0]`, `acks=-1` equals `acks=1`, and the high watermark
//! is the log end. Turning this into a cluster would mean: a metadata log (Raft) for topics
//! and partition leadership, follower fetchers reusing the Fetch path, HW = min ISR LEO,
//! and routing `FindCoordinator` by group hash.
//!
//! # Tested with real clients
//!
//! - kcat 1.7.1 / librdkafka 2.0.2 (`tests/kcat.rs`): 10,000 keyed messages produced with
//!   `acks=all` and consumed back, content and per-key order compared; `kcat -L`; balanced
//!   consumer groups (`kcat -G`) resume from committed offsets.
//! - kafka-python 2.3 (`tests/kafka_python.rs`, a virtualenv the test creates): `acks=all`
//!   producer, `CreateTopics` through its admin client, a group of two consumers that splits
//!   four partitions and commits; one leaves and the other takes over with nothing lost or
//!   skipped. kafka-python 3.0 passes the same script but needs ~30 s: its single-threaded
//!   poll loop abandons a join that waits on the other member and rejoins, so the group
//!   rebalances several times before it settles (a client behaviour; 2.x and librdkafka
//!   settle at once).
//!
//!
//! - Batches are stored as sent: compressed batches are accepted and served untouched (the
//!   broker never decompresses), but `ListOffsets` by time inside a compressed batch falls
//!   back to the batch's first offset.
//! - No transactions (`transactional.id` is refused), no fetch sessions (always full
//!   fetches), no SASL/TLS, no ACLs.
//! - `cleanup.policy=compact` (and `compact,delete`) topics are compacted by key by the
//!   housekeeping tick, on keel-stream's `PartitionLog::compact`, each time a segment has
//!   been sealed since the last pass; tombstones live `delete.retention.ms`. Offsets never
//!   move. A compact-only topic is never trimmed by `retention.ms`/`retention.bytes`.
//! - An unknown API key or an unsupported version of an API other than `ApiVersions` closes
//!   the connection with a log line (what Kafka does); the client was told our ranges.
//!
//! # Interview questions
//!
//! - *Why does the client, not the broker, compute assignments?* So assignors (range,
//!   sticky, custom rack-aware) evolve without broker upgrades; the broker only needs a
//!   barrier and a relay.
//! - *What does `acks=all` guarantee?* That every in-sync replica has the batch — not that
//!   it is on disk. Durability comes from replication; `min.insync.replicas` bounds how
//!   small the ISR may be.
//! - *How does an idempotent producer avoid duplicates on retry?* Per-partition sequence
//!   numbers; the broker keeps the last few batches' ranges per producer and answers a
//!   retry with the original offsets.
//! - *What stops a zombie consumer from committing?* The generation id in `OffsetCommit`
//!   (and member ids): a stale generation gets `ILLEGAL_GENERATION`.
//! - *How do you keep a malicious client from exhausting memory?* Bound the frame length
//!   before allocating, bound every array count by the bytes left (the `kafka-protocol`
//!   patch in `vendor/`), bound in-flight requests and connections, time out idle peers.

pub mod api;
mod broker;
pub mod client;
pub mod codec;
mod error;
mod groups;
mod logging;
mod metrics;
mod offset_store;
mod producer_ids;
mod server;
mod topics;

pub use broker::{Broker, BrokerBuilder, BrokerHandle};
pub use error::{BrokerError, BuildError, FrameError};
pub use logging::log_to_stderr;
pub use metrics::BrokerStats;
pub use topics::{CleanupPolicy, TopicSettings};
