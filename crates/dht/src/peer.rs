//! Connections to other nodes, and the simplest failure detector that works.
//!
//! Nodes talk to each other with internal RESP commands (`DHT.R.GET`, `DHT.R.PUT`,
//! `DHT.R.MUTATE`, …) over the `redis` crate's multiplexed connection: one TCP connection
//! per peer carries many concurrent requests (pipelined), which is what replication fan-out
//! needs. Every call has a timeout. A call that fails on I/O or times out marks the peer
//! **down** for `retry_after`; while down, coordinators skip it (writes go to hints at
//! once instead of waiting for a timeout) and the first call after the window probes it
//! again. This is a timeout-based detector, not SWIM or phi-accrual: it is local to each
//! node and never gossiped.
//!
//! # Replica reads and puts share messages
//! A coordinator's replica reads (`DHT.R.GET`) and replica puts (`DHT.R.PUT`) go through
//! a per-peer [`Lane`]: what queues while up to [`BATCHES_IN_FLIGHT`] earlier batches are
//! on the wire leaves as one `DHT.R.MGET key…` or `DHT.R.MPUT key set…` (at most
//! [`MAX_BATCH_ITEMS`] items). The peer reads a `MGET` in one read transaction and applies
//! a `MPUT` as one storage job (one transaction, one group commit) and answers once the
//! whole batch is durable, so an `OK` still means every item is on its disk. Alone, a request
//! leaves at once in a batch of one (no waiting for company); under load — pipelined
//! clients, many connections — 16 pipelined writes cost the peer one message, one task and
//! one job instead of sixteen. A batch fails as a whole (each item's caller then falls back
//! as after a failed single call: next owner, hint).

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisConnectionInfo, Value};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::net::Network;

/// Why a call to a peer failed.
#[derive(Debug, Clone)]
pub(crate) enum PeerError {
    /// Marked down recently; not tried.
    Down,
    /// Connect or request timed out.
    Timeout,
    /// Connection-level failure.
    Io(String),
    /// The peer answered with an error reply.
    Remote(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Down => f.write_str("peer is down"),
            PeerError::Timeout => f.write_str("peer timed out"),
            PeerError::Io(e) => write!(f, "peer i/o: {e}"),
            PeerError::Remote(e) => write!(f, "peer replied: {e}"),
        }
    }
}

/// Database 0, no credentials, RESP2. A `static`: the driver future that
/// `new_with_config` returns captures the borrow, and it must be `'static` to be spawned.
static CONNECTION_INFO: std::sync::LazyLock<RedisConnectionInfo> =
    std::sync::LazyLock::new(RedisConnectionInfo::default);

/// One remote node.
pub(crate) struct Peer {
    pub(crate) addr: String,
    network: Arc<dyn Network>,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    down_until: Mutex<Option<Instant>>,
    timeout: Duration,
    retry_after: Duration,
    gets: Lane,
    puts: Lane,
}

/// Most items in one batched message.
pub(crate) const MAX_BATCH_ITEMS: usize = 256;
/// Batches of one lane on the wire at once; what arrives meanwhile waits and leaves
/// together.
pub(crate) const BATCHES_IN_FLIGHT: usize = 4;

/// Which batched replica operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LaneKind {
    /// `DHT.R.MGET key…`: one encoded set per key.
    Get,
    /// `DHT.R.MPUT key set…`: merged durably, one `OK` for the batch.
    Put,
}

type LaneItem = (Vec<Vec<u8>>, oneshot::Sender<Result<Value, PeerError>>);

/// The queue of one batched operation towards one peer; its task starts on first use
/// and ends when the peer is dropped.
#[derive(Default)]
struct Lane {
    tx: Mutex<Option<mpsc::UnboundedSender<LaneItem>>>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("addr", &self.addr)
            .field("down", &self.is_down())
            .finish()
    }
}

impl Peer {
    pub(crate) fn new(
        addr: String,
        timeout: Duration,
        retry_after: Duration,
        network: Arc<dyn Network>,
    ) -> Self {
        Self {
            addr,
            network,
            conn: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            timeout,
            retry_after,
            gets: Lane::default(),
            puts: Lane::default(),
        }
    }

    /// One replica operation through the peer's batching lane (see the module docs):
    /// `args` is `[key]` for [`LaneKind::Get`] and `[key, encoded set]` for
    /// [`LaneKind::Put`]. The answer is this item's element of the batch's reply.
    pub(crate) async fn batched(
        self: &Arc<Self>,
        kind: LaneKind,
        args: Vec<Vec<u8>>,
    ) -> Result<Value, PeerError> {
        if self.is_down() {
            return Err(PeerError::Down);
        }
        let (done, answer) = oneshot::channel();
        {
            let lane = match kind {
                LaneKind::Get => &self.gets,
                LaneKind::Put => &self.puts,
            };
            let mut tx = lane.tx.lock();
            if tx.as_ref().is_none_or(mpsc::UnboundedSender::is_closed) {
                let (s, rx) = mpsc::unbounded_channel();
                tokio::spawn(lane_loop(Arc::downgrade(self), kind, rx));
                *tx = Some(s);
            }
            let sent = tx.as_ref().map(|s| s.send((args, done)));
            if !matches!(sent, Some(Ok(()))) {
                return Err(PeerError::Io("batching lane closed".into()));
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(PeerError::Io("batch dropped".into())))
    }

    /// Sends one batch and hands every item its answer.
    async fn send_batch(&self, kind: LaneKind, batch: Vec<LaneItem>) {
        let mut cmd = redis::cmd(match kind {
            LaneKind::Get => "DHT.R.MGET",
            LaneKind::Put => "DHT.R.MPUT",
        });
        let mut waiting = Vec::with_capacity(batch.len());
        for (args, done) in batch {
            for a in &args {
                cmd.arg(a.as_slice());
            }
            waiting.push(done);
        }
        match self.call(&cmd).await {
            Ok(Value::Array(items)) if items.len() == waiting.len() => {
                for (done, item) in waiting.into_iter().zip(items) {
                    let _ = done.send(Ok(item));
                }
            }
            Ok(Value::Array(_)) => {
                for done in waiting {
                    let _ = done.send(Err(PeerError::Remote("dht: batch reply length".into())));
                }
            }
            Ok(v) => {
                for done in waiting {
                    let _ = done.send(Ok(v.clone()));
                }
            }
            Err(e) => {
                for done in waiting {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }

    /// True while the peer is inside its down window.
    pub(crate) fn is_down(&self) -> bool {
        self.down_until.lock().is_some_and(|t| Instant::now() < t)
    }

    fn mark_down(&self) {
        *self.down_until.lock() = Some(Instant::now() + self.retry_after);
    }

    async fn connection(&self, mode: Mode) -> Result<MultiplexedConnection, PeerError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        // A call queued behind a failed attempt: fail now instead of paying another
        // full timeout (N queued calls would otherwise wait N timeouts in turn).
        if mode != Mode::Probe && self.is_down() {
            return Err(PeerError::Down);
        }
        let config = AsyncConnectionConfig::new().set_response_timeout(Some(self.timeout));
        let connect = self.network.connect(&self.addr);
        let (conn, driver) = tokio::time::timeout(self.timeout, async move {
            let stream = connect.await.map_err(|e| PeerError::Io(e.to_string()))?;
            MultiplexedConnection::new_with_config(&CONNECTION_INFO, stream, config)
                .await
                .map_err(|e| PeerError::Io(e.to_string()))
        })
        .await
        .map_err(|_| PeerError::Timeout)??;
        // The connection's I/O task; it ends when the last clone of `conn` is dropped.
        tokio::spawn(driver);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Sends one command and waits (bounded by the timeout) for its reply.
    pub(crate) async fn call(&self, cmd: &Cmd) -> Result<Value, PeerError> {
        self.call_within(cmd, self.timeout, Mode::Data).await
    }

    /// Sends a command that may legitimately run long (streaming a partition) and waits
    /// up to `timeout`. Running out of time does not mark the peer down (it is busy,
    /// not gone); connection failures do.
    pub(crate) async fn call_long(&self, cmd: &Cmd, timeout: Duration) -> Result<Value, PeerError> {
        self.call_within(cmd, timeout, Mode::Long).await
    }

    /// A membership probe (gossip, a seed lookup): tried even while the peer is marked
    /// down, and a failure does not mark it down — silence is judged by the gossip
    /// detector, so a node probing a seed that has not started yet does not make its
    /// first writes skip that seed for a whole `retry_after`. A success clears the mark.
    pub(crate) async fn probe(&self, cmd: &Cmd) -> Result<Value, PeerError> {
        self.call_within(cmd, self.timeout, Mode::Probe).await
    }

    async fn call_within(
        &self,
        cmd: &Cmd,
        timeout: Duration,
        mode: Mode,
    ) -> Result<Value, PeerError> {
        if mode != Mode::Probe && self.is_down() {
            return Err(PeerError::Down);
        }
        let result = match self.connection(mode).await {
            Ok(mut conn) => {
                conn.set_response_timeout(timeout);
                match tokio::time::timeout(timeout, cmd.query_async::<Value>(&mut conn)).await {
                    Err(_) if mode == Mode::Long => return Err(PeerError::Timeout),
                    Err(_) => Err(PeerError::Timeout),
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e))
                        if matches!(
                            e.kind(),
                            redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
                        ) =>
                    {
                        return Err(PeerError::Remote(e.to_string()));
                    }
                    Ok(Err(e)) if mode == Mode::Long && e.is_timeout() => {
                        return Err(PeerError::Timeout);
                    }
                    Ok(Err(e)) => Err(PeerError::Io(e.to_string())),
                }
            }
            // Marked down by another call meanwhile: its window stands as it is.
            Err(PeerError::Down) => return Err(PeerError::Down),
            Err(e) => Err(e),
        };
        if result.is_err() {
            if mode != Mode::Probe {
                self.mark_down();
            }
            *self.conn.lock().await = None;
        } else {
            *self.down_until.lock() = None;
        }
        result
    }
}

/// Gathers what queued for one lane into batches, at most [`BATCHES_IN_FLIGHT`] on the
/// wire at once. Holds the peer weakly: the loop ends when the peer (its sender) is gone.
async fn lane_loop(peer: Weak<Peer>, kind: LaneKind, mut rx: mpsc::UnboundedReceiver<LaneItem>) {
    let permits = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a permit is what lets a batch fill up under load.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_ITEMS {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let Some(peer) = peer.upgrade() else { return };
        tokio::spawn(async move {
            peer.send_batch(kind, batch).await;
            drop(permit);
        });
    }
}

/// How a call treats failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Replication and reads: any failure marks the peer down for `retry_after`.
    Data,
    /// Partition streaming: a timeout is not a failure of the peer.
    Long,
    /// Membership probes: never mark, always try.
    Probe,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Puts queued for one peer while a batch is on the wire share a message and a
    /// storage job there, each caller gets its own answer, and a batched read returns
    /// each key's set.
    #[tokio::test(flavor = "current_thread")]
    async fn batched_puts_share_one_storage_job_and_read_back() {
        use crate::version::{Sibling, SiblingSet, VersionVector};
        let dir = tempfile::tempdir().unwrap();
        let node = crate::Node::builder()
            .data_dir(dir.path())
            .replication(1, 1, 1)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap();
        let peer = Arc::new(Peer::new(
            node.addr().to_string(),
            Duration::from_secs(5),
            Duration::from_secs(1),
            Arc::new(crate::net::TcpNetwork),
        ));
        let jobs_before = node.stats().storage_jobs;
        let set_of = |i: u64| {
            let mut set = SiblingSet::new();
            set.insert(Sibling::new_write_with_floor(
                "writer",
                1,
                &VersionVector::default(),
                &SiblingSet::new(),
                Some(format!("v{i}").into_bytes()),
                None,
                i,
            ));
            set
        };
        const ITEMS: u64 = 64;
        let puts: Vec<_> = (0..ITEMS)
            .map(|i| {
                let peer = Arc::clone(&peer);
                let item = vec![format!("k{i}").into_bytes(), set_of(i).encode()];
                tokio::spawn(async move { peer.batched(LaneKind::Put, item).await })
            })
            .collect();
        for p in puts {
            let answer = tokio::time::timeout(Duration::from_secs(10), p)
                .await
                .unwrap()
                .unwrap();
            assert!(matches!(answer, Ok(Value::Okay)), "{answer:?}");
        }
        let jobs = node.stats().storage_jobs - jobs_before;
        // One job per put without the lane; the spawned puts all queue before the lane's
        // task first runs, so they leave in one batch (one job).
        assert!(jobs <= 2, "{ITEMS} batched puts took {jobs} storage jobs");
        for i in [0, 17, ITEMS - 1] {
            let got = peer
                .batched(LaneKind::Get, vec![format!("k{i}").into_bytes()])
                .await;
            let Ok(Value::BulkString(bytes)) = got else {
                panic!("{got:?}")
            };
            assert_eq!(SiblingSet::decode(&bytes).unwrap(), set_of(i));
        }
        drop(peer);
        node.shutdown().await;
    }

    /// Calls queued behind a connection attempt to a silent peer must not each pay a
    /// full timeout in turn once the first has marked the peer down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_calls_to_a_silent_peer_fail_together_not_one_timeout_each() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let peer = std::sync::Arc::new(Peer::new(
            addr,
            Duration::from_millis(200),
            Duration::from_secs(60),
            Arc::new(crate::net::TcpNetwork),
        ));
        let calls: Vec<_> = (0..20)
            .map(|_| {
                let peer = std::sync::Arc::clone(&peer);
                tokio::spawn(async move { peer.call(&redis::cmd("PING")).await })
            })
            .collect();
        // One timeout (200 ms) is the expected cost; 20 serial timeouts would be 4 s.
        let all = tokio::time::timeout(Duration::from_secs(2), async {
            for c in calls {
                assert!(c.await.unwrap().is_err());
            }
        })
        .await;
        assert!(all.is_ok(), "queued calls paid one timeout each");
        assert!(peer.is_down());
        hold.abort();
    }
}
