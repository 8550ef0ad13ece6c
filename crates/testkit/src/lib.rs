//! Test-only helpers for Keel: a private `redis-server` per test, on a free port.
//!
//! ```no_run
//! # fn main() {
//! // In a test: start a server, or skip (print one line) when redis-server is absent —
//! // unless KEEL_REQUIRE_REDIS=1, which turns the skip into a failure (CI sets it).
//! let Some(mut redis) = keel_testkit::redis_or_skip("tiered cache invalidation") else {
//!     return;
//! };
//! let url = redis.url(); // "redis://127.0.0.1:PORT/"
//! redis.stop();          // simulate an outage
//! redis.restart().unwrap(); // same port, empty data
//! # let _ = url;
//! # }
//! ```
//!
//! # Guarantees
//!
//! - **Never the machine's Redis.** Each [`RedisServer`] is its own process on a port
//!   the OS reported free, bound to 127.0.0.1, with persistence off and its working
//!   directory in a temporary folder.
//! - **No orphans.** The server is killed and reaped on drop, which also runs when the
//!   test panics. If the test process itself dies without unwinding (SIGKILL, abort), the
//!   kernel kills the server too: it is spawned with `PR_SET_PDEATHSIG = SIGKILL` from a
//!   dedicated spawner thread that lives as long as the process (a death signal follows
//!   the *thread* that forked, so forking from a short-lived test thread would kill the
//!   server when that thread ends).
//! - **Ready when returned.** [`RedisServer::start`] and [`RedisServer::restart`] return
//!   only after the server has answered `PING`.
//!
//! # Layout
//!
//! - [`redis`]: [`RedisServer`], [`redis_or_skip`], [`redis_server_available`].
//! - [`nats`]: [`NatsServer`] (`nats-server -js`, file storage in a temp dir).
//! - [`postgres`]: [`PostgresServer`] (`initdb` into a temp dir, `postgres` on a free port,
//!   run as the `postgres` user when the tests run as root), [`postgres_or_skip`], and
//!   [`shared_postgres_database_or_skip`] (one server per test process, a database per test).
//! - [`skip`]: finding a server binary ([`Lookup`]) and the skip-or-fail rule
//!   ([`skip_or_fail`]) that every server helper (Redis today, Postgres and NATS next)
//!   shares. A skip line goes straight to stderr, so it shows in a plain `cargo test`.
//! - `spawner` (private): the long-lived thread that forks servers.

pub mod nats;
pub mod postgres;
pub mod redis;
pub mod skip;
mod spawner;

pub use crate::nats::NatsServer;
pub use crate::postgres::{
    PostgresServer, REQUIRE_POSTGRES_ENV, postgres_available, postgres_or_skip,
    shared_postgres_database_or_skip,
};
pub use crate::redis::{REQUIRE_REDIS_ENV, RedisServer, redis_or_skip, redis_server_available};
pub use crate::skip::{Lookup, skip_or_fail};
