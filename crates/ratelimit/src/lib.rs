//! Rate limiting: five algorithms, one decision type, keyed and memory-bounded, on Redis
//! and as tower middleware.
//!
//! ```
//! use std::time::Duration;
//! use keel_ratelimit::{Gcra, KeyedLimiter, Quota, quanta::Clock};
//!
//! // 5 requests per second per client, bursts of up to 5; time is injected.
//! let (clock, mock) = Clock::mock();
//! let limiter = KeyedLimiter::<String, Gcra>::with_clock(Quota::per_second(5)?, clock);
//!
//! let allowed = (0..8).filter(|_| limiter.check("client-1").allowed).count();
//! assert_eq!(allowed, 5);
//! let denied = limiter.check("client-1");
//! assert_eq!(denied.retry_after, Some(Duration::from_millis(200)));
//! assert!(limiter.check("client-2").allowed);         // other keys are independent
//!
//! mock.increment(Duration::from_millis(200));
//! assert!(limiter.check("client-1").allowed);         // exactly retry_after later
//! # Ok::<(), keel_ratelimit::QuotaError>(())
//! ```
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | `quota.rs` | [`Quota`]: limit per window plus burst, validated once ([`QuotaError`]) |
//! | `decision.rs` | [`Decision`]: allowed, limit, remaining, reset_after, retry_after — one type for everything |
//! | `algorithm.rs` | the [`Algorithm`] trait: parameters + per-key state + `check`/`peek`/`is_idle` |
//! | `fixed_window.rs` | [`FixedWindow`] — the baseline, with its boundary burst |
//! | `sliding_log.rs` | [`SlidingLog`] — exact, O(limit) memory per key |
//! | `sliding_counter.rs` | [`SlidingCounter`] — weighted previous window, bounded error |
//! | `token_bucket.rs` | [`TokenBucket`] — the bucket as one `AtomicU64` ("full again at"), lock-free, the same CAS loop as GCRA |
//! | `gcra.rs` | [`Gcra`] — one `AtomicU64` (theoretical arrival time), CAS loop |
//! | `limiter.rs` | [`RateLimiter`], [`RateLimiterBuilder`] — one state: a direct (un-keyed) limiter |
//! | `keyed.rs` | [`KeyedLimiter`], [`KeyedLimiterBuilder`], [`CleanupPolicy`] — sharded map of states, per-key quotas, cleanup |
//! | `metrics.rs` | [`LimiterMetrics`], [`RatelimitStats`] — per-thread counters + `metrics` facade (and the rule for when counters reach it) |
//! | `clock.rs` | nanoseconds since the limiter's epoch from the injected [`quanta::Clock`]; what each algorithm does when it steps back |
//! | `reciprocal.rs` | division by the emission interval as a multiply (hot path) |
//! | `sync.rs` | the `loom` shim for the GCRA / token-bucket atomic (`tests/loom_gcra.rs`) |
//! | [`error`] | [`BuildError`], [`QuotaError`], [`CheckError`], `RedisLimitError` |
//! | `redis` (feature `redis`) | `RedisLimiter`, `RedisLimiterBuilder`: Lua (`src/lua/*.lua`) as Redis 7 functions (`FCALL`, EVALSHA fallback), server `TIME`, fail-open/closed |
//! | `deny_cache.rs` (feature `redis`) | the Redis GCRA limiter's bounded memory of denied keys: repeated denials answered locally, exactly (TAT only moves forward) |
//! | `middleware` (feature `tower`) | `RateLimitLayer`, `RateLimitLayerBuilder` / `RateLimit`: keys, 429, `RateLimit-*` headers |
//!
//! # Conventions (the same in every Keel crate)
//!
//! * **Construction:** `Type::builder()`, chained setters (`.quota(..)`, `.clock(..)`, …),
//!   `.build()` → `Result<_, `[`BuildError`]`>` (`RedisLimiter`'s `build` is `async`: it
//!   connects). Required settings are setters too and a missing one is a [`BuildError`];
//!   `new(quota)` and `with_clock(quota, clock)` are infallible shorthands where every
//!   other setting has a valid default.
//! * **Observability:** `stats()` returns a [`RatelimitStats`] snapshot; counters reach
//!   the `metrics` facade per event, at once, through handles registered at construction
//!   (no `publish_metrics()` step — see `metrics.rs` for the rule and the counter names).
//! * **Errors:** typed, in [`error`]; a [`BuildError`] keeps its cause as its `source()`.
//!
//! Also: `examples/axum_server.rs` (axum server limited per IP and per API key,
//! `--features axum`), and the behaviour suites in `tests/` (`concurrency.rs`,
//! `properties.rs`, `clock_backwards.rs`, `keyed.rs`, `redis.rs`, `redis_faults.rs`,
//! `middleware.rs`, and `loom_gcra.rs`, run with
//! `RUSTFLAGS="--cfg loom" cargo test -p keel-ratelimit --release --test loom_gcra
//! --target-dir target/loom`).
//!
//! Cargo features: `redis` (tokio + the `redis` crate), `tower` (`tower-layer`,
//! `tower-service`, `http`), `axum` (peer IP from axum's `ConnectInfo`; implies `tower`).
//!
//! # Study notes
//!
//! ## Requirements
//!
//! * Limit how often a client (user id, IP, API key) may call an API: `limit` requests per
//!   `window`, optionally with a burst allowance; requests may weigh more than one (cost n).
//! * Every answer says *why*: how many remain, when the limit resets, and — when denied —
//!   exactly how long to wait (`retry_after`; a request made exactly then is allowed).
//! * Thread-safe, fast (tens of millions of decisions per second per core), and memory
//!   bounded under millions of distinct keys.
//! * Shared across processes (Redis) with atomic decisions and one round trip, correct
//!   when client clocks disagree, and a deliberate behaviour when Redis is down.
//! * Plugs into HTTP servers (tower/axum) with the standard headers.
//! * Bad input is a typed error: a zero limit or window is rejected at construction
//!   ([`QuotaError`]); a cost that can never fit is [`CheckError::InsufficientCapacity`],
//!   not an eternal "retry later".
//!
//! ## The five algorithms
//!
//! | algorithm | idea | state per key | accuracy | bursts |
//! |---|---|---|---|---|
//! | [`FixedWindow`] | count in aligned windows `[kW, (k+1)W)` | start + count (16 B) | exact per aligned window; **2× limit** across a boundary | whole limit at any moment, twice at a boundary |
//! | [`SlidingLog`] | remember each allowed request's time | ≤ `limit` timestamps | **exact**: ≤ limit in *every* window of length W | whole limit at once, then waits for the oldest to expire |
//! | [`SlidingCounter`] | `previous·(W−elapsed)/W + current` | index + 2 counts (24 B) | estimate; ≤ limit per aligned window, < 2× in the worst case, ~exact for smooth traffic | like the log, smoothed |
//! | [`TokenBucket`] | `burst` tokens, refilled at `limit/W` | "full again at" (**one u64**; was tokens + last under a mutex) | exact: ≤ burst + rate·t over any t | `burst` at once, then the refill rate |
//! | [`Gcra`] | theoretical arrival time `TAT`; allow iff `max(TAT,now)+n·T−now ≤ burst·T` | **one u64** | same as token bucket (it is the same policy) | same as token bucket |
//!
//! *Fixed window* is the baseline everybody knows (`INCR` + `EXPIRE`); its flaw — `limit`
//! requests at 0:59.9 and `limit` more at 1:00.1 — is tested. *Sliding log* is the exact
//! answer, paid for in memory. *Sliding counter* keeps the memory of the fixed window and
//! removes most of its flaw (Cloudflare's choice). *Token bucket* expresses "average rate
//! plus burst" directly. *GCRA* stores the token bucket as a single timestamp — when the
//! bucket would be full again — so the update is one compare-and-swap: no lock, 8 bytes
//! per key (governor's and `redis-cell`'s choice). The property test
//! `token_bucket_and_gcra_are_the_same_policy` checks that both allow exactly the same
//! requests on random traffic.
//!
//! ## Complexity
//!
//! | operation | time | memory |
//! |---|---|---|
//! | `check` fixed window / counter / bucket / GCRA | O(1) | O(1) per key |
//! | `check` sliding log | O(1) amortized (each entry evicted once); O(k) to find `retry_after` | O(limit) per key |
//! | [`KeyedLimiter::check`], key present | O(1): hash, shard read lock, probe, decide | — |
//! | [`KeyedLimiter::check`], new key | O(1) amortized (insert; sweeps amortized over inserts) | one slot |
//! | [`KeyedLimiter::retain_recent`] | O(keys), one shard locked at a time | frees idle keys |
//! | [`KeyedLimiter::set_quota`] | O(keys) | — |
//! | `RedisLimiter::check` | one `EVALSHA` round trip; O(1) in Redis (log: O(log n) `ZADD`) | one key (log: two) with a TTL |
//!
//! ## Design
//!
//! * **One decision type.** Every algorithm, the keyed limiter, the Redis scripts and the
//!   middleware speak [`Decision`]. Headers and 429s are derived from it, so switching the
//!   algorithm changes nothing else.
//! * **Injected time.** All times are nanoseconds since the limiter's epoch read from a
//!   [`quanta::Clock`] (`Clock::new()` in production — the TSC, a few ns; `Clock::mock()`
//!   in tests, which drive time by hand and never sleep).
//! * **Per-key synchronisation.** GCRA and the token bucket are a CAS loop on one
//!   `AtomicU64` (`Relaxed` is enough: the decision depends on that one location, whose
//!   modification order is total). The window algorithms hold a tiny
//!   `parking_lot::Mutex` per key. The
//!   8-threads × 10 000 attempts test on a frozen clock allows exactly `limit` for every
//!   algorithm, direct and keyed.
//! * **Keyed map.** 64 `RwLock<HashTable>` shards (foldhash, hash computed once, state
//!   stored inline): the hot path takes one shared lock and allocates nothing. Per-key
//!   quotas (overrides, a resolver for plan tiers) are read only when a key's state is
//!   created; runtime changes rewrite live slots and keep their state.
//! * **Bounded memory.** A key whose state is *idle* (indistinguishable from fresh) can be
//!   forgotten without changing any decision — a model test compares a keyed limiter that
//!   sweeps constantly with one limiter per key. Sweeps run automatically when a shard has
//!   doubled; an optional hard cap evicts active keys (counted) when even that is not enough.
//! * **Observability.** Allowed/denied per limiter as a [`RatelimitStats`] (`stats()`) and as
//!   `keel_ratelimit_decisions_total{limiter, outcome}` through the `metrics` facade; Redis
//!   adds backend errors and fail-open/fail-closed counts.
//!
//! ## Distributed rate limiting (the `redis` module)
//!
//! * **Check-then-set races.** `GET` the count, decide, `SET` it: two clients both read 9
//!   of 10 and both allow. Each decision is one Lua script, which Redis runs atomically.
//! * **One round trip.** On Redis ≥ 7 one `FCALL` of a function library loaded at build
//!   (≈ 34 300 server instructions per GCRA decision against `EVALSHA`'s ≈ 45 000); on
//!   older servers one `EVALSHA`. The code is re-loaded only after the server lost it
//!   (`Function not found` / `NOSCRIPT`). Tests count the commands on the server.
//! * **Clock skew.** Scripts read `redis.call('TIME')`: one clock for every client. The
//!   test runs two clients three hours apart — with client time they allow twice the
//!   limit, with server time they decide identically.
//! * **Outages.** Fail open (availability: the API stays up, unprotected), fail closed
//!   (protection: the API refuses work) or return the error — chosen per limiter, counted,
//!   and recovered from automatically by the `redis` crate's `ConnectionManager`. Every
//!   call has one deadline end to end (reconnect waits included), and a connection that
//!   only times out — a silently dropped flow — is replaced after a few timeouts in a row.
//! * **Memory.** Keys carry a prefix and a `PEXPIRE` equal to the time until the state is
//!   idle, so Redis holds only active clients.
//! * **Hot keys.** One very busy key is one Redis slot on one shard: all its decisions
//!   serialize there. The GCRA limiter remembers a denied key's TAT (a fixed table of
//!   4096 keys by default): until then, requests for it that cannot fit are denied
//!   locally, with no round trip — the server's own decision, because GCRA's TAT only
//!   moves forward and the remembered one is measured from before the call was sent.
//!   Other mitigations: a local pre-limiter (a [`KeyedLimiter`] in front that
//!   absorbs obvious abuse), or splitting the key's quota into N sub-keys chosen at random
//!   (each gets limit/N — approximate).
//!
//! ## Trade-offs
//!
//! * Exactness vs memory: sliding log is exact but O(limit) per key; the counter is O(1)
//!   but approximate; GCRA is O(1) and exact for the "rate + burst" policy.
//! * Burst vs smoothing: windows let the whole limit through at once; bucket/GCRA bound
//!   any interval by `burst + rate·t`; a burst of 1 gives perfectly spaced requests.
//! * Lock-free vs simple: GCRA's (and the token bucket's) single atomic scales under
//!   contention; the mutex-based window algorithms are simpler to read and still one uncontended atomic per decision.
//! * Forgetting keys: idle-only cleanup never changes a decision; a hard cap bounds memory
//!   absolutely but may give an evicted, active client a fresh allowance.
//! * Fail open vs fail closed: an outage of the limiter should usually not be an outage
//!   of the API (fail open) — unless the limit protects something that must not be
//!   overrun (payments, SMS costs): fail closed.
//!
//! ## Measured (`cargo run --release -p keel-bench -- ratelimit`)
//!
//! On the 2-core development machine (figures move ±30 % with its load):
//!
//! * **Keyed, 10 000 keys (uniform and Zipf), 1 and 2 threads:** Keel GCRA 1.2–1.6× and
//!   token bucket 1.0–1.2× governor's keyed limiter (`DashMap` + SipHash). The gain is the
//!   hash (foldhash) and the state stored inline in the shard's table.
//! * **One key (direct limiter), 1 and 2 threads:** Keel GCRA 0.90–1.06× governor's
//!   direct limiter, token bucket 0.60–1.23× before it became lock-free (two runs; its deny
//!   path took a mutex — a lock and an unlock — where GCRA and governor only load; it is
//!   now the same single-`AtomicU64` CAS as GCRA, see `token_bucket.rs`). Both
//!   sides read the clock the same way (`raw()` + `delta_as_nanos`, the TSC), which takes
//!   about half the profile samples of a ≈ 18 ns decision; the remaining difference is that Keel counts every
//!   decision (one uncontended `lock xadd` on this thread's counter slot) and governor
//!   counts nothing. Two layout details had made Keel's one-key decision ≈ 2× slower
//!   (0.5–0.6×): the 4 KiB block of counter slots ended exactly 4 KiB below the hot
//!   quota/clock fields, so the first thread's slot *4K-aliased* them, and the owned-slot
//!   plain load + store stalled the next decision's TSC read; both are fixed (see
//!   `metrics.rs`), and the GCRA state now sits on its own cache line.
//! * **Redis:** exactly one `EVALSHA` per decision (a test counts the server's commands);
//!   0.5–0.6× the rate of a no-op script, because the GCRA script runs `TIME`, `GET` and
//!   `SET … PX` (≈ 10 µs of server time per call against ≈ 3 µs for the no-op, measured
//!   with `INFO commandstats`) on a machine whose two cores the client shares.
//!
//! ## Interview questions
//!
//! * **How would you implement rate limiting for our API?** — Key every request (API key,
//!   user id, IP), pick a policy (GCRA/token bucket for "rate + burst", sliding log when
//!   exactness matters), keep state in an in-process concurrent map for one instance or in
//!   Redis (atomic Lua, server time) for a fleet, answer 429 with `Retry-After` and the
//!   `RateLimit` headers, bound memory by forgetting idle keys, and count decisions.
//! * **Sliding window vs token bucket?** — A window counts requests in the last W (log:
//!   exact; counter: weighted estimate); it caps the total per window but allows the whole
//!   limit in one instant. A token bucket caps the *rate* and the *burst* separately: at
//!   most `burst` at once and `rate` on average, i.e. ≤ burst + rate·t over any interval.
//! * **Why does fixed window fail?** — Counts reset at boundaries: `limit` at the end of
//!   one window plus `limit` at the start of the next is 2× within a moment.
//! * **What is GCRA and why is it popular?** — A token bucket stored as one timestamp
//!   (TAT); one CAS per decision, 8 bytes per key, exact `retry_after = TAT + n·T − τ − now`.
//! * **How do you handle distributed rate limiting?** — Central state in Redis; make each
//!   decision one atomic Lua script (no check-then-set race), use the server's `TIME` (no
//!   skew), `EVALSHA` for one round trip, TTLs for memory, and decide fail-open vs
//!   fail-closed for outages; optionally a local limiter in front for hot keys.
//! * **How do you keep per-user state from growing forever?** — Drop state that is
//!   indistinguishable from fresh (TAT in the past, full bucket, empty window): amortized
//!   sweeps on insert, plus a hard cap if the key space is adversarial.
//! * **What headers should a 429 carry?** — `Retry-After` (seconds), and the IETF
//!   `RateLimit-Limit/Remaining/Reset` (early drafts) or `RateLimit-Policy` / `RateLimit`
//!   (structured, newer drafts) on every response.

mod algorithm;
mod clock;
mod decision;
#[cfg(feature = "redis")]
mod deny_cache;
pub mod error;
mod fixed_window;
mod gcra;
mod keyed;
mod limiter;
mod metrics;
mod quota;
mod reciprocal;
mod sliding_counter;
mod sliding_log;
mod sync;
mod token_bucket;

#[cfg(feature = "tower")]
pub mod middleware;
#[cfg(feature = "redis")]
pub mod redis;

/// The clock crate, re-exported so callers build `quanta::Clock`s of the same version.
pub use quanta;

pub use algorithm::Algorithm;
pub use decision::Decision;
pub use error::{BuildError, CheckError, QuotaError};
pub use fixed_window::{FixedWindow, FixedWindowState};
pub use gcra::{Gcra, GcraState};
pub use keyed::{
    CleanupPolicy, DEFAULT_MAX_KEYS, KeyedLimiter, KeyedLimiterBuilder, MAX_SHARDS, QuotaResolver,
};
pub use limiter::{RateLimiter, RateLimiterBuilder};
pub use metrics::{LimiterMetrics, RatelimitStats};
pub use quota::{MAX_WINDOW, Quota};
pub use sliding_counter::{SlidingCounter, SlidingCounterState};
pub use sliding_log::{SlidingLog, SlidingLogState};
pub use token_bucket::{TokenBucket, TokenBucketState};
