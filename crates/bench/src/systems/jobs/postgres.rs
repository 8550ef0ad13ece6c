//! Postgres rounds on the scenario's private server from `keel-testkit` (`fsync` off, as
//! the testkit starts it, for every contender; a fresh database per round): keel-jobs
//! `PostgresStore` (tokio-postgres, `FOR UPDATE SKIP LOCKED` batch fetch, `LISTEN/NOTIFY`
//! wake-ups). apalis-postgres is in `apalis.rs`.

use std::sync::Arc;
use std::time::Duration;

use keel_jobs::PostgresStore;
use keel_testkit::PostgresServer;

use super::{KEEL_CONCURRENCY, fresh_database, keel_drive, runtime};
use crate::harness::Measurement;

pub(super) fn keel_round(server: &PostgresServer, duration: Duration) -> Measurement {
    let url = fresh_database(server);
    runtime().block_on(async {
        let store = PostgresStore::builder()
            .url(url)
            // One connection per concurrent ack would be wasteful; 32 keeps the server's
            // 100-connection default free for the peer's pool in the same run.
            .pool_size(32.min(KEEL_CONCURRENCY))
            .build()
            .await
            .expect("connect");
        keel_drive(Arc::new(store), duration).await
    })
}
