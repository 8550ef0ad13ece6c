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

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisConnectionInfo, Value};
use tokio::time::Instant;

use crate::net::Network;

/// Why a call to a peer failed.
#[derive(Debug)]
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
