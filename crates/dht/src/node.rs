//! A node: its builder, its shared state and its TCP server (one task per connection,
//! pipelined requests answered in order).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::cluster::{Cluster, Layout, PeerLinks};
use crate::cmd::{self, Connection};
use crate::error::{BuildError, ProtocolError};
use crate::membership::Membership;
use crate::memory_disk::MemoryDisk;
use crate::metrics::{DhtStats, Metrics};
use crate::net::{BoxStream, Listener, Network, TcpNetwork};
use crate::reply::{Protocol, Reply};
use crate::resp::{Limits, parse_request};
use crate::storage::{Fsync, Store};

/// Default listen address: loopback, any free port (never Redis's 6379).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";
const DAY: Duration = Duration::from_secs(86_400);

/// Builds a [`Node`]; see [`Node::builder`].
#[must_use]
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    listen: SocketAddr,
    name: Option<String>,
    data_dir: Option<PathBuf>,
    seeds: Vec<String>,
    n: usize,
    r: usize,
    w: usize,
    partitions: usize,
    vnodes: u32,
    rpc_timeout: Duration,
    retry_after: Duration,
    handoff_interval: Duration,
    anti_entropy_interval: Duration,
    gossip_interval: Duration,
    fail_after: Duration,
    tombstone_grace: Duration,
    fsync: Fsync,
    limits: Limits,
    clock: Arc<dyn Clock>,
    network: Arc<dyn Network>,
    memory_disk: Option<MemoryDisk>,
}

/// Settings shared by the node's tasks.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) n: usize,
    pub(crate) r: usize,
    pub(crate) w: usize,
    pub(crate) limits: Limits,
    pub(crate) handoff_interval: Duration,
    pub(crate) anti_entropy_interval: Duration,
    pub(crate) gossip_interval: Duration,
    pub(crate) tombstone_grace: Duration,
}

impl NodeBuilder {
    /// Address to listen on (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
    /// The node's name in the cluster: the address other nodes reach it at. Defaults to
    /// the bound address.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Directory of the node's durable store (required).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
    /// Other nodes, by address. On start the node asks them for the cluster's layout:
    /// if a seed's cluster already lists this node (a restart, or a cluster started
    /// with every node given the same seeds) it adopts that layout; if it does not, the
    /// node **joins** it (partitions streamed to it before it owns them, see
    /// `DHT.JOIN`); if no seed answers, the node starts a cluster of itself and its seeds.
    pub fn seeds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, seeds: I) -> Self {
        self.seeds = seeds.into_iter().map(Into::into).collect();
        self
    }
    /// Replicas per key (N) and the default read/write quorums (R, W). Default 3/2/2.
    pub fn replication(mut self, n: usize, r: usize, w: usize) -> Self {
        (self.n, self.r, self.w) = (n, r, w);
        self
    }
    /// Number of fixed partitions (default 256).
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions;
        self
    }
    /// Virtual nodes per member on the placement ring (default 64).
    pub fn vnodes(mut self, vnodes: u32) -> Self {
        self.vnodes = vnodes;
        self
    }
    /// Timeout of one call to another node (default 1 s).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }
    /// How long a failed peer is skipped before it is tried again (default 1 s).
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
    /// Interval of the hinted-handoff task (default 200 ms).
    pub fn handoff_interval(mut self, d: Duration) -> Self {
        self.handoff_interval = d;
        self
    }
    /// Interval of the Merkle anti-entropy task (default 1 s; each round compares 16
    /// partitions, so a 256-partition node covers all of them every 16 rounds).
    pub fn anti_entropy_interval(mut self, d: Duration) -> Self {
        self.anti_entropy_interval = d;
        self
    }
    /// Interval of the gossip round (default 250 ms): heartbeat and layout exchange with
    /// one member.
    pub fn gossip_interval(mut self, d: Duration) -> Self {
        self.gossip_interval = d;
        self
    }
    /// A member whose heartbeat has not advanced for this long, on the injected clock, is
    /// down (default 3 s).
    pub fn fail_after(mut self, d: Duration) -> Self {
        self.fail_after = d;
        self
    }
    /// How old (on the injected clock) a tombstone must be before the GC may delete it,
    /// once every owner holds it (default 1 day; at most 365 days). A node holding a
    /// hint or an old partition copy that stays down longer than this can bring a
    /// deleted value back — see the crate docs' GC rule.
    pub fn tombstone_grace(mut self, d: Duration) -> Self {
        self.tombstone_grace = d;
        self
    }
    /// When this node's writes reach its disk (default [`Fsync::Always`]: fsynced before
    /// they are acknowledged). [`Fsync::EverySecond`] trades up to a second of
    /// acknowledged writes on a crash of this node for throughput — see [`Fsync`].
    pub fn fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }
    /// Request size limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// The wall clock for TTLs and version timestamps (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }
    /// How the node listens and connects (default [`TcpNetwork`]); the deterministic
    /// simulation passes turmoil's simulated network here.
    pub fn network(mut self, network: impl Network) -> Self {
        self.network = Arc::new(network);
        self
    }
    /// Keeps the data on `disk` instead of a redb file in the data directory (which then
    /// holds only the installed layout). For tests and the simulation: a node started again
    /// on the same disk sees what its previous run synced, and nothing else.
    pub fn memory_disk(mut self, disk: MemoryDisk) -> Self {
        self.memory_disk = Some(disk);
        self
    }

    /// Validates the settings.
    ///
    /// # Errors
    /// [`BuildError`] for zero or inconsistent replication, partitions, durations, limits
    /// or a missing data directory.
    pub fn build(self) -> Result<Node, BuildError> {
        let (n, r, w) = (self.n, self.r, self.w);
        if n == 0 || r == 0 || w == 0 || r > n || w > n {
            return Err(BuildError::Replication { n, r, w });
        }
        if self.partitions == 0 || self.partitions > crate::MAX_PARTITIONS {
            return Err(BuildError::Partitions(self.partitions));
        }
        if self.vnodes == 0 {
            return Err(BuildError::VirtualNodes);
        }
        for (what, d) in [
            ("rpc timeout", self.rpc_timeout),
            ("retry interval", self.retry_after),
            ("handoff interval", self.handoff_interval),
            ("anti-entropy interval", self.anti_entropy_interval),
            ("gossip interval", self.gossip_interval),
            ("failure timeout", self.fail_after),
        ] {
            if d < Duration::from_millis(1) || d > DAY {
                return Err(BuildError::Duration { what });
            }
        }
        if self.tombstone_grace < Duration::from_millis(1) || self.tombstone_grace > 365 * DAY {
            return Err(BuildError::Duration {
                what: "tombstone grace period",
            });
        }
        let l = self.limits;
        if l.max_bulk_len == 0
            || l.max_array_len == 0
            || l.max_inline_len == 0
            || l.max_request_len == 0
        {
            return Err(BuildError::Limits);
        }
        if self.data_dir.is_none() {
            return Err(BuildError::NoDataDir);
        }
        if let Some(name) = &self.name {
            if !crate::cluster::valid_name(name) {
                return Err(BuildError::BadName(name.clone()));
            }
        }
        Ok(Node { builder: self })
    }
}

/// A configured node, ready to [`start`](Node::start).
#[derive(Debug)]
pub struct Node {
    builder: NodeBuilder,
}

/// Shared state of a running node.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) cluster: Cluster,
    pub(crate) membership: Membership,
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    pub(crate) metrics: Metrics,
    pub(crate) next_client_id: AtomicU64,
    pub(crate) addr: SocketAddr,
}

impl Inner {
    pub(crate) fn stats(&self) -> DhtStats {
        let mut s = DhtStats::default();
        self.metrics.fill(&mut s);
        s.hints_pending = self.store.hint_count().unwrap_or(0);
        s.storage_commits = self.store.counters.commits.load(Ordering::Relaxed);
        s.storage_jobs = self.store.counters.jobs.load(Ordering::Relaxed);
        s.siblings_dropped = self.store.counters.siblings_dropped.load(Ordering::Relaxed);
        s.keys_stored = self.store.key_count().unwrap_or(0);
        s
    }
}

impl Node {
    /// A builder with the defaults: `127.0.0.1:0`, N/R/W = 3/2/2, 256 partitions.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let dir = tempfile::tempdir().unwrap();
    /// let node = keel_dht::Node::builder().data_dir(dir.path()).build().unwrap();
    /// let handle = node.start().await.unwrap();
    /// assert!(handle.addr().ip().is_loopback());
    /// assert_ne!(handle.addr().port(), 6379);
    /// handle.shutdown().await;
    /// # }
    /// ```
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0))),
            name: None,
            data_dir: None,
            seeds: Vec::new(),
            n: 3,
            r: 2,
            w: 2,
            partitions: 256,
            vnodes: 64,
            rpc_timeout: Duration::from_secs(1),
            retry_after: Duration::from_secs(1),
            handoff_interval: Duration::from_millis(200),
            anti_entropy_interval: Duration::from_secs(1),
            gossip_interval: Duration::from_millis(250),
            fail_after: Duration::from_secs(3),
            tombstone_grace: DAY,
            fsync: Fsync::Always,
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            network: Arc::new(TcpNetwork),
            memory_disk: None,
        }
    }

    /// Binds the listener, opens the store and starts serving (on the current tokio
    /// runtime).
    ///
    /// # Errors
    /// [`BuildError::Bind`], [`BuildError::Storage`], or a ring error for bad names.
    pub async fn start(self) -> Result<NodeHandle, BuildError> {
        let b = self.builder;
        let listener = b.network.bind(b.listen).await.map_err(BuildError::Bind)?;
        let addr = listener.local_addr().map_err(BuildError::Bind)?;
        let name = b.name.clone().unwrap_or_else(|| addr.to_string());
        let data_dir = b.data_dir.clone().ok_or(BuildError::NoDataDir)?;
        let store = match &b.memory_disk {
            Some(disk) => Store::open_memory(disk),
            None => Store::open_with(&data_dir, b.fsync),
        }
        .map_err(|e| BuildError::Storage(Box::new(e)))?;
        let membership = Membership::new(
            b.clock.now_ms().max(1),
            u64::try_from(b.fail_after.as_millis()).unwrap_or(u64::MAX),
            &data_dir,
        );
        let seeds: Vec<String> = b.seeds.iter().filter(|s| **s != name).cloned().collect();
        // The last installed layout, else a cluster of this node and its seeds.
        let layout = membership
            .load_layout()
            .unwrap_or_else(|| Layout::new(0, seeds.iter().cloned().chain([name.clone()])));
        let cluster = Cluster::new(
            name.clone(),
            layout,
            b.n,
            b.partitions,
            b.vnodes,
            PeerLinks {
                network: Arc::clone(&b.network),
                timeout: b.rpc_timeout,
                retry_after: b.retry_after,
            },
        )?;
        let inner = Arc::new(Inner {
            cluster,
            membership,
            store,
            clock: Arc::clone(&b.clock),
            config: Config {
                n: b.n,
                r: b.r,
                w: b.w,
                limits: b.limits,
                handoff_interval: b.handoff_interval,
                anti_entropy_interval: b.anti_entropy_interval,
                gossip_interval: b.gossip_interval,
                tombstone_grace: b.tombstone_grace,
            },
            metrics: Metrics::new(&name),
            next_client_id: AtomicU64::new(1),
            addr,
        });
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&inner), stopped.clone()));
        let handoff = tokio::spawn(handoff_loop(Arc::clone(&inner), stopped.clone()));
        let anti_entropy = tokio::spawn(anti_entropy_loop(Arc::clone(&inner), stopped.clone()));
        let gossip = tokio::spawn(gossip_loop(Arc::clone(&inner), stopped));
        let handle = NodeHandle {
            inner,
            stop,
            tasks: vec![accept, handoff, anti_entropy, gossip],
        };
        // Serving already (a join needs the other nodes to reach this one).
        if let Err(e) = handle.inner.join_seeds(&seeds).await {
            handle.shutdown().await;
            return Err(BuildError::Join(e));
        }
        Ok(handle)
    }
}

/// The longest [`NodeHandle::shutdown`] waits for tasks and the storage thread.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    inner: Arc<Inner>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl NodeHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The node's name in the cluster.
    pub fn name(&self) -> &str {
        &self.inner.cluster.me
    }

    /// A snapshot of the node's counters.
    pub fn stats(&self) -> DhtStats {
        self.inner.stats()
    }

    /// Stops accepting connections and the background tasks, closes open connections,
    /// and releases the store: once every task holding the node has ended, the storage
    /// writer thread is joined, so the data directory can be opened again at once.
    /// Every step is bounded ([`SHUTDOWN_BOUND`] in all); past it the store is released
    /// later, when the last straggling task ends.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BOUND;
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout_at(deadline, t).await;
        }
        // Connection and request tasks hold the node too; they end on the stop signal
        // or within the RPC timeout.
        while Arc::strong_count(&self.inner) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let writer = self.inner.store.take_writer();
        drop(self.inner);
        if let Some(writer) = writer {
            let join = tokio::task::spawn_blocking(move || {
                // Ends as soon as the last `Store` (its job sender) is dropped.
                while !writer.is_finished() && std::time::Instant::now() < deadline.into_std() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if writer.is_finished() {
                    let _ = writer.join();
                }
            });
            let _ = tokio::time::timeout_at(deadline, join).await;
        }
    }

    /// Resolves when the node has been asked to stop.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Resolves when the stop flag is set (or its sender is gone); holds no borrow after.
async fn stop_signal(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn accept_loop(
    mut listener: Box<dyn Listener>,
    inner: Arc<Inner>,
    mut stop: watch::Receiver<bool>,
) {
    let for_connections = stop.clone();
    loop {
        tokio::select! {
            () = stop_signal(&mut stop) => return,
            accepted = listener.accept() => {
                let Ok(socket) = accepted else { continue };
                inner.metrics.connections.inc();
                tokio::spawn(serve(socket, Arc::clone(&inner), for_connections.clone()));
            }
        }
    }
}

async fn handoff_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(inner.config.handoff_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop_signal(&mut stop) => return,
            _ = tick.tick() => { inner.deliver_hints(512).await; }
        }
    }
}

async fn gossip_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(inner.config.gossip_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop_signal(&mut stop) => return,
            _ = tick.tick() => { inner.gossip_round().await; }
        }
    }
}

async fn anti_entropy_loop(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(inner.config.anti_entropy_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start one interval later
    let mut cursor = 0;
    loop {
        tokio::select! {
            () = stop_signal(&mut stop) => return,
            _ = tick.tick() => { inner.anti_entropy_round(&mut cursor).await; }
        }
    }
}

/// Most requests of one connection executing at once.
const MAX_INFLIGHT: usize = 1024;
/// Reply bytes a connection buffers before it writes them and stops parsing requests.
const MAX_PENDING_REPLY: usize = 1 << 20;

/// Awaits the in-flight requests in arrival order and encodes their replies.
async fn flush(
    inflight: &mut Vec<tokio::task::JoinHandle<Reply>>,
    protocol: Protocol,
    out: &mut Vec<u8>,
) {
    for task in inflight.drain(..) {
        let reply = task
            .await
            .unwrap_or_else(|_| Reply::err("dht: command failed internally"));
        reply.encode(protocol, out);
    }
}

/// Serves one client connection: every complete request in the buffer is executed, and
/// all replies go out with one write (pipelining).
///
/// # Why pipelined requests run concurrently
/// A write waits for an fsync here and one on W−1 other nodes. Executed one after the
/// other, a pipeline — and above all the single multiplexed connection between two nodes,
/// which carries every forwarded write and replica put — would pay those waits in series
/// (measured: 840 SET/s on a 3-node cluster). Requests therefore run concurrently and their
/// replies are written in arrival order, with two barriers that keep a client's own view
/// sequential: a request on a key that is already in flight on this connection, and every
/// request that reads or changes connection state (`HELLO`, `DHT.CONSISTENCY`, `QUIT`, …) or
/// spans many keys, wait for everything before them. Node-to-node commands (`DHT.R.*`) are
/// independent and never wait.
async fn serve(mut socket: BoxStream, inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let id = inner.next_client_id.fetch_add(1, Ordering::Relaxed);
    let mut conn = Connection::new(id);
    let limits = inner.config.limits;
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut inflight: Vec<tokio::task::JoinHandle<Reply>> = Vec::new();
    let mut inflight_keys: HashSet<Vec<u8>> = HashSet::new();
    loop {
        let mut used = 0;
        let mut protocol_error: Option<ProtocolError> = None;
        let mut more = false;
        loop {
            match parse_request(&buf[used..], &limits) {
                Ok(Some((args, n))) => {
                    used += n;
                    if args.is_empty() {
                        continue;
                    }
                    inner.metrics.commands.inc();
                    let concurrent = match cmd::concurrency(&args) {
                        cmd::Concurrency::Free => true,
                        cmd::Concurrency::Key(k) => inflight_keys.insert(k.to_vec()),
                        cmd::Concurrency::Barrier => false,
                    };
                    if concurrent && inflight.len() < MAX_INFLIGHT {
                        let inner = Arc::clone(&inner);
                        let mut snapshot = conn.clone();
                        // Boxed: a request's future is large (a write's whole replication
                        // state machine) and tokio moves a task's stage into and out of
                        // its cell by value; boxed, the cell holds a pointer. perf on
                        // `keel-bench dht --scenario 'SET 50 clients -P 16'`: memmove
                        // went from 7.2 % to 4.3 % of samples (with the two boxes in
                        // `coordinator`); requests/s did not move beyond the noise of a
                        // loaded 2-core machine.
                        inflight.push(tokio::spawn(Box::pin(async move {
                            cmd::execute(&inner, &mut snapshot, args).await
                        })));
                        continue;
                    }
                    flush(&mut inflight, conn.protocol, &mut out).await;
                    inflight_keys.clear();
                    if let cmd::Concurrency::Key(k) = cmd::concurrency(&args) {
                        inflight_keys.insert(k.to_vec());
                    }
                    let reply = cmd::execute(&inner, &mut conn, args).await;
                    reply.encode(conn.protocol, &mut out);
                    inflight_keys.clear();
                    if conn.closing {
                        break;
                    }
                    if out.len() >= MAX_PENDING_REPLY {
                        // Write what is pending before parsing more: a client that
                        // pipelines and never reads then stalls on TCP backpressure
                        // instead of growing this buffer.
                        more = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        flush(&mut inflight, conn.protocol, &mut out).await;
        inflight_keys.clear();
        buf.drain(..used);
        if protocol_error.is_none() && buf.len() > limits.max_request_len {
            protocol_error = Some(ProtocolError::BulkLength);
        }
        if let Some(e) = &protocol_error {
            inner.metrics.protocol_errors.inc();
            Reply::err(format!("Protocol error: {e}")).encode(conn.protocol, &mut out);
        }
        if !out.is_empty() {
            // A client that never reads must not pin the connection past a stop.
            tokio::select! {
                () = stop_signal(&mut stop) => return,
                wrote = socket.write_all(&out) => if wrote.is_err() { return },
            }
            out.clear();
        }
        if protocol_error.is_some() || conn.closing {
            let _ = socket.shutdown().await;
            return;
        }
        if more {
            continue;
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        tokio::select! {
            () = stop_signal(&mut stop) => return,
            read = socket.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}
