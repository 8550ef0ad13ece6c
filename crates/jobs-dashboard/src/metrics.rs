//! The dashboard's counters: a [`DashboardStats`] snapshot and the `metrics` facade.
//!
//! # When counters reach the facade
//!
//! **Per event.** A dashboard serves requests at human rates (or a script's), so an
//! atomic increment and a facade counter per request are noise next to the store call
//! each request makes.
//!
//! | metric | kind |
//! |---|---|
//! | `keel_jobs_dashboard_requests_total` | counter (every request answered) |
//! | `keel_jobs_dashboard_actions_total` | counter (state-changing requests that succeeded) |
//! | `keel_jobs_dashboard_rejected_total{reason="csrf"\|"host"}` | counter (403s) |

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a dashboard's counters since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DashboardStats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Actions (retry, delete, cancel, pause, resume, bulk dead-job actions) that changed
    /// the store.
    pub actions: u64,
    /// State-changing requests refused for a missing or wrong CSRF token or a foreign
    /// origin.
    pub csrf_rejected: u64,
    /// Requests refused for a Host header that is not allowed.
    pub host_rejected: u64,
}

#[derive(Debug)]
pub(crate) struct Counters {
    requests: AtomicU64,
    actions: AtomicU64,
    csrf_rejected: AtomicU64,
    host_rejected: AtomicU64,
    facade: [metrics::Counter; 4],
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            actions: AtomicU64::new(0),
            csrf_rejected: AtomicU64::new(0),
            host_rejected: AtomicU64::new(0),
            facade: [
                metrics::counter!("keel_jobs_dashboard_requests_total"),
                metrics::counter!("keel_jobs_dashboard_actions_total"),
                metrics::counter!("keel_jobs_dashboard_rejected_total", "reason" => "csrf"),
                metrics::counter!("keel_jobs_dashboard_rejected_total", "reason" => "host"),
            ],
        }
    }

    fn bump(&self, i: usize) {
        let slot = [
            &self.requests,
            &self.actions,
            &self.csrf_rejected,
            &self.host_rejected,
        ][i];
        slot.fetch_add(1, Ordering::Relaxed);
        self.facade[i].increment(1);
    }

    pub(crate) fn request(&self) {
        self.bump(0);
    }
    pub(crate) fn action(&self) {
        self.bump(1);
    }
    pub(crate) fn csrf_rejected(&self) {
        self.bump(2);
    }
    pub(crate) fn host_rejected(&self) {
        self.bump(3);
    }

    pub(crate) fn snapshot(&self) -> DashboardStats {
        DashboardStats {
            requests: self.requests.load(Ordering::Relaxed),
            actions: self.actions.load(Ordering::Relaxed),
            csrf_rejected: self.csrf_rejected.load(Ordering::Relaxed),
            host_rejected: self.host_rejected.load(Ordering::Relaxed),
        }
    }
}
