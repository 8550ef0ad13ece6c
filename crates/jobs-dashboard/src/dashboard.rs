//! [`Dashboard`]: the builder, the shared state behind every handler, the router and the
//! server loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use keel_jobs::{QueueCounts, Store};
use parking_lot::Mutex;
use rand::TryRngCore;

use crate::error::{BuildError, RequestError};
use crate::guard::{CsrfToken, HostPolicy};
use crate::metrics::{Counters, DashboardStats};
use crate::query::MAX_LIMIT;
use crate::throughput::{Sampler, Throughput};
use crate::{api, pages};

/// How often [`Dashboard::serve`] samples the store for throughput between page views.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The web dashboard over one store: build it, then [`serve`](Dashboard::serve) it or
/// mount its [`router`](Dashboard::router) in your own axum app.
///
/// Cheap to clone (one `Arc`).
///
/// ```
/// use std::sync::Arc;
/// use keel_jobs::MemoryStore;
/// use keel_jobs_dashboard::Dashboard;
///
/// let store = Arc::new(MemoryStore::builder().build());
/// let dashboard = Dashboard::builder().store(store).build()?;
/// let app: axum::Router = dashboard.router(); // or dashboard.serve(listener, shutdown)
/// assert_eq!(dashboard.csrf_token().len(), 64);
/// # drop(app);
/// # Ok::<(), keel_jobs_dashboard::BuildError>(())
/// ```
#[derive(Debug)]
pub struct Dashboard<S> {
    pub(crate) inner: Arc<Inner<S>>,
}

impl<S> Clone for Dashboard<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner<S> {
    pub(crate) store: Arc<S>,
    pub(crate) csrf: CsrfToken,
    pub(crate) hosts: HostPolicy,
    pub(crate) page_size: usize,
    pub(crate) counters: Counters,
    pub(crate) sampler: Mutex<Sampler>,
}

impl<S: Store> Inner<S> {
    /// Queue counts, recorded as a throughput sample on the way.
    pub(crate) async fn counts(
        &self,
    ) -> Result<(BTreeMap<String, QueueCounts>, Throughput), RequestError> {
        let counts = self.store.counts().await?;
        let mut sampler = self.sampler.lock();
        sampler.record(self.store.now(), &self.store.stats(), &counts);
        Ok((counts, sampler.throughput()))
    }

    pub(crate) fn finished_per_sec(&self, queue: &str) -> Option<f64> {
        self.sampler.lock().finished_per_sec(queue)
    }
}

impl<S: Store> Dashboard<S> {
    /// A builder; [`store`](DashboardBuilder::store) is required.
    pub fn builder() -> DashboardBuilder<S> {
        DashboardBuilder {
            store: None,
            page_size: 50,
            extra_hosts: Vec::new(),
            any_host: false,
        }
    }

    /// The CSRF token every state-changing request must carry (form field `csrf` or
    /// header `X-Keel-Csrf`). Also served at `GET /api/csrf` to same-origin callers.
    pub fn csrf_token(&self) -> &str {
        self.inner.csrf.as_str()
    }

    /// The dashboard's counters.
    pub fn stats(&self) -> DashboardStats {
        self.inner.counters.snapshot()
    }

    /// The store this dashboard shows.
    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// The pages, the JSON API and the actions, behind the Host check. Mount it in your
    /// own app with `Router::nest` only at the root: the pages link with absolute paths.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/", get(pages::overview::<S>))
            .route("/jobs", get(pages::jobs::<S>))
            .route("/jobs/{id}", get(pages::job::<S>))
            .route("/jobs/{id}/{action}", post(pages::job_action::<S>))
            .route("/failures", get(pages::failures::<S>))
            .route("/queues/{action}", post(pages::queue_action::<S>))
            .route("/api/queues", get(api::queues::<S>))
            .route("/api/jobs", get(api::jobs::<S>))
            .route("/api/jobs/{id}", get(api::job::<S>))
            .route("/api/jobs/{id}/{action}", post(api::job_action::<S>))
            .route("/api/failures", get(api::failures::<S>))
            .route("/api/queues/{action}", post(api::queue_action::<S>))
            .route("/api/csrf", get(api::csrf::<S>))
            .fallback(pages::not_found)
            .with_state(Arc::clone(&self.inner));
        let inner = Arc::clone(&self.inner);
        routes.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            let inner = Arc::clone(&inner);
            async move {
                inner.counters.request();
                if let Err(e) = inner.hosts.check(req.headers()) {
                    inner.counters.host_rejected();
                    return (e.status(), e.to_string()).into_response();
                }
                let mut response: Response = next.run(req).await;
                let h = response.headers_mut();
                // The pages are never framed (clickjacking a "delete all" button) and never
                // cached (they show live counts and carry the token).
                h.insert("x-frame-options", "DENY".parse().expect("static"));
                h.insert(
                    "content-security-policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'"
                        .parse()
                        .expect("static"),
                );
                h.insert("cache-control", "no-store".parse().expect("static"));
                h.insert("x-content-type-options", "nosniff".parse().expect("static"));
                h.insert("referrer-policy", "same-origin".parse().expect("static"));
                response
            }
        }))
    }

    /// Serves the dashboard on `listener` until `shutdown` completes, sampling the store
    /// every few seconds for the throughput figures.
    ///
    /// # Errors
    ///
    /// The listener's I/O error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let inner = Arc::clone(&self.inner);
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                // A failing store shows on the pages; the sampler just tries again.
                let _ = inner.counts().await;
            }
        });
        let result = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        sampler.abort();
        result
    }
}

/// Builds a [`Dashboard`].
#[derive(Debug)]
#[must_use]
pub struct DashboardBuilder<S> {
    store: Option<Arc<S>>,
    page_size: usize,
    extra_hosts: Vec<String>,
    any_host: bool,
}

impl<S: Store> DashboardBuilder<S> {
    /// The store to show and operate (required). Share it with a worker pool in the same
    /// process to see live throughput.
    pub fn store(mut self, store: Arc<S>) -> Self {
        self.store = Some(store);
        self
    }

    /// Jobs per page when the request does not say (default 50, at most 1 000).
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n;
        self
    }

    /// Also answer requests whose Host is `name` (e.g. the name of an SSH tunnel's end
    /// or a reverse proxy). Loopback names and addresses are always answered.
    pub fn allow_host(mut self, name: impl Into<String>) -> Self {
        self.extra_hosts.push(name.into().to_ascii_lowercase());
        self
    }

    /// Answer requests whatever their Host header (for a dashboard deliberately exposed
    /// beyond loopback; it has no login, so put it behind one). Off by default.
    pub fn allow_any_host(mut self, any: bool) -> Self {
        self.any_host = any;
        self
    }

    /// Draws the CSRF secret and builds the dashboard.
    ///
    /// # Errors
    ///
    /// [`BuildError::Missing`] without a store, [`BuildError::PageSize`] for a page size
    /// of 0 or above 1 000, [`BuildError::Random`] when the OS random source fails.
    pub fn build(self) -> Result<Dashboard<S>, BuildError> {
        let store = self.store.ok_or(BuildError::Missing("store"))?;
        if !(1..=MAX_LIMIT).contains(&self.page_size) {
            return Err(BuildError::PageSize(self.page_size));
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret)
            .map_err(BuildError::Random)?;
        Ok(Dashboard {
            inner: Arc::new(Inner {
                store,
                csrf: CsrfToken::from_bytes(secret),
                hosts: if self.any_host {
                    HostPolicy::Any
                } else {
                    HostPolicy::Loopback(self.extra_hosts)
                },
                page_size: self.page_size,
                counters: Counters::new(),
                sampler: Mutex::new(Sampler::default()),
            }),
        })
    }
}
