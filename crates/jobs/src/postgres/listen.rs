//! `LISTEN/NOTIFY` wake-ups: one dedicated connection per store listens on `keel_jobs`;
//! every transaction that makes a job runnable now sends `pg_notify('keel_jobs', queue)`,
//! which Postgres delivers at commit (and not at all on rollback). An idle worker waiting
//! in [`Store::wait_for_work`](crate::Store::wait_for_work) wakes at once instead of after
//! its poll interval.
//!
//! The listener reconnects with capped backoff when its connection drops (server restart);
//! while it is down, waits simply run to their bound — the polling fallback.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// The notification channel.
pub(crate) const CHANNEL: &str = "keel_jobs";

/// Per-queue wake-ups.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    /// Whether the listener connection is up (`LISTEN` done).
    pub(crate) listening: AtomicBool,
}

impl Wakeups {
    pub(crate) fn notify_for(&self, queue: &str) -> Arc<Notify> {
        let mut queues = self.queues.lock();
        if let Some(n) = queues.get(queue) {
            return Arc::clone(n);
        }
        let n = Arc::new(Notify::new());
        queues.insert(queue.to_owned(), Arc::clone(&n));
        n
    }

    pub(crate) fn wake(&self, queue: &str) {
        if let Some(n) = self.queues.lock().get(queue) {
            n.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for n in self.queues.lock().values() {
            n.notify_waiters();
        }
    }
}

/// Runs until aborted: connect, `LISTEN`, forward notifications; reconnect on loss.
pub(crate) async fn run(config: Config, wakeups: Arc<Wakeups>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
            let driver = tokio::spawn(async move {
                loop {
                    match futures::future::poll_fn(|cx| connection.poll_message(cx)).await {
                        Some(Ok(AsyncMessage::Notification(n))) => {
                            if tx.send(n.payload().to_owned()).is_err() {
                                break;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            });
            if client
                .batch_execute(&format!("LISTEN {CHANNEL}"))
                .await
                .is_ok()
            {
                wakeups.listening.store(true, Ordering::Release);
                backoff = Duration::from_millis(50);
                // Jobs may have arrived while we were not listening.
                wakeups.wake_all();
                while let Some(queue) = rx.recv().await {
                    wakeups.wake(&queue);
                }
                wakeups.listening.store(false, Ordering::Release);
            }
            driver.abort();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
