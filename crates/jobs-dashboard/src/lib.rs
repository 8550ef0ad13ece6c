//! The web dashboard of [`keel_jobs`]: queues with counts by state and throughput,
//! paginated job lists with filters, a job's detail (payload, attempts, error history),
//! failures grouped by error, and the actions an operator needs — retry, delete or cancel
//! one job, retry or delete every dead job of a queue, pause and resume a queue — as
//! CSRF-protected POST forms and a JSON API. Server-rendered HTML (maud), a little inline
//! CSS, no JavaScript at all.
//!
//! ```no_run
//! use std::sync::Arc;
//! use keel_jobs::RedbStore;
//! use keel_jobs_dashboard::Dashboard;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(RedbStore::builder().path("jobs.redb").build()?);
//! // Share `store` with a WorkerPool in the same process to see live throughput.
//! let dashboard = Dashboard::builder().store(store).build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! dashboard.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! From the shell: `cargo run --release -p keel -- jobs --store jobs.redb dashboard
//! --listen 127.0.0.1:8080`.
//!
//! # Layout
//!
//! | module | what it holds |
//! |---|---|
//! | `dashboard.rs` | [`Dashboard`] and [`DashboardBuilder`]: shared state, the router (with the Host check and security headers), `serve` |
//! | `pages.rs` | the HTML pages (`/`, `/jobs`, `/jobs/{id}`, `/failures`) and the form actions (`POST /jobs/{id}/{action}`, `POST /queues/{action}`) |
//! | `api.rs` | the JSON API (`/api/…`), and the keyset page both use |
//! | `actions.rs` | the actions, shared by forms and API, mapped to 404/409 |
//! | `guard.rs` | the CSRF token and the Origin and Host checks (why each is needed) |
//! | `query.rs` | parsing untrusted input: states, ids, filters, limits, `next` paths |
//! | `throughput.rs` | rates from samples of the store's counters |
//! | `metrics.rs` | [`DashboardStats`] and the `metrics` facade |
//! | `error.rs` | [`BuildError`], [`RequestError`] |
//!
//! Tests: `tests/http.rs` (every page and API route over real HTTP: pagination, filters,
//! CSRF, each action, escaping, bad input), `tests/scale.rs` (200,000 dead jobs in an
//! embedded store; page load times printed), `tests/chromium.rs` (a screenshot in headless
//! Chromium; skipped with a notice when it is absent unless `KEEL_REQUIRE_CHROMIUM=1`).
//!
//! # Requirements
//!
//! - Works over any [`keel_jobs::Store`]: the embedded (redb), memory, Postgres and Redis
//!   backends all plug in through the trait; the dashboard adds no storage of its own.
//! - Stays fast with hundreds of thousands of jobs: every list is a **keyset page**
//!   ([`ListFilter::after`](keel_jobs::ListFilter::after) = the last id shown; the page asks
//!   for one job more than it shows to know whether a next page exists), never an
//!   `OFFSET` scan and never a count of the whole filter.
//! - GET never changes state. Every change is a POST that carries the per-process CSRF
//!   token and, when the browser sends one, a same-host `Origin`.
//! - Everything untrusted — payloads, error messages, queue and kind names, tags — is
//!   HTML-escaped by maud; no page runs a script (the Content-Security-Policy forbids
//!   them), so even an escaping bug could not run one.
//! - Bad input (a non-numeric id, an unknown state, a limit of 0 or 10⁹) is a 400 with a
//!   message; a missing job a 404; an action that does not apply (retry a job that is
//!   not dead, delete a running one) a 409. Never a panic.
//! - Binds to loopback by default and answers only loopback `Host` names (see `guard.rs`
//!   on DNS rebinding); it has no login of its own.
//!
//! # Design and trade-offs
//!
//! - **Server-rendered, no JS.** A page is one store call and one template: nothing to
//!   build, nothing to go stale in a browser tab; forms and links do everything. Bulk
//!   deletion asks for a ticked checkbox (`required`) instead of a script `confirm()`.
//! - **Keyset pagination only goes forward** ("Next page", "First page"): backwards would
//!   need a descending `list`, which the store trait does not offer. Ids increase in
//!   enqueue order, so pages are stable while jobs come and go.
//! - **Throughput is sampled**, not stored: the dashboard records the store handle's
//!   counters on each overview and every 5 s while serving, and shows the rate over the
//!   last minute. Counters are per process, so a dashboard sharing its store with a
//!   worker pool shows that pool's rates; per-queue "finished/s" comes from count deltas
//!   (dead, plus succeeded where the store retains completed jobs).
//!
//! # Complexity (per request)
//!
//! | page | store call | cost (embedded store) |
//! |---|---|---|
//! | overview | `counts` | O(queues) |
//! | job list | `list(after, limit + 1)` | O(log n + k), k = jobs scanned from the cursor until the page fills |
//! | job detail | `get` | O(log n) |
//! | failures | `dead_by_error` | O(error groups): the in-process stores index dead jobs by (queue, kind, last error) |
//!
//! # What interviewers ask
//!
//! - *Why not `LIMIT 50 OFFSET 100000`?* The database still walks the 100,000 skipped
//!   rows, on every page; and rows inserted meanwhile shift every later page. A cursor
//!   (`WHERE id > last_seen ORDER BY id LIMIT 50`) is an index seek.
//! - *Why a CSRF token when the server only listens on localhost?* The browser is on
//!   localhost too: any site it visits can POST to `127.0.0.1`. The token is what such a
//!   site cannot read.
//! - *And DNS rebinding?* A hostile name re-resolved to 127.0.0.1 makes our server
//!   same-origin with the attacker's page; the Host header still says the attacker's
//!   name, so we refuse it.

mod actions;
pub mod api;
mod dashboard;
mod error;
pub mod guard;
mod metrics;
mod pages;
pub mod query;
mod throughput;

pub use dashboard::{Dashboard, DashboardBuilder};
pub use error::{BuildError, RequestError};
pub use metrics::DashboardStats;
pub use throughput::Throughput;
