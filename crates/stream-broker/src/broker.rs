//! [`Broker::builder`] → [`Broker`] (data directory open and recovered) →
//! [`Broker::start`] → [`BrokerHandle`] (listening).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use keel_stream::{Clock, Durability, SystemClock};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};

use crate::error::{BrokerError, BuildError};
use crate::groups::{Coordinator, GroupLimits};
use crate::metrics::{BrokerStats, Counters};
use crate::offset_store::OffsetStore;
use crate::producer_ids::ProducerIds;
use crate::server;
use crate::topics::{TopicRegistry, TopicSettings};

/// The broker's settings (see the builder's setters for each).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) listen: SocketAddr,
    pub(crate) advertised_host: Option<String>,
    pub(crate) data_dir: PathBuf,
    pub(crate) auto_create_topics: bool,
    pub(crate) default_topic: TopicSettings,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) max_fetch_wait: Duration,
    pub(crate) max_fetch_bytes: usize,
    pub(crate) idle_timeout: Duration,
    pub(crate) tick: Duration,
    pub(crate) max_topics: usize,
    pub(crate) group_limits: GroupLimits,
}

/// The shared state every connection works on.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) topics: TopicRegistry,
    pub(crate) groups: Coordinator,
    pub(crate) offsets: OffsetStore,
    pub(crate) producer_ids: ProducerIds,
    pub(crate) counters: Counters,
    /// Woken after every append, so long-polling fetches re-check.
    pub(crate) appended: Notify,
    /// `(host, port)` clients are told to connect to.
    pub(crate) advertised: parking_lot::RwLock<(String, i32)>,
}

/// Builder of a [`Broker`]. Defaults: listen on `127.0.0.1:19092` (not Kafka's 9092),
/// auto-create off, 1-partition topics fsynced every batch, 100 MiB max request, 1024
/// connections, 16 in-flight requests per connection, fetch waits capped at 30 s.
#[derive(Debug)]
#[must_use]
pub struct BrokerBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
}

impl BrokerBuilder {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.config.listen = addr;
        self
    }
    /// Host name given to clients in `Metadata`/`FindCoordinator` (default: the listen IP).
    pub fn advertised_host(mut self, host: impl Into<String>) -> Self {
        self.config.advertised_host = Some(host.into());
        self
    }
    /// Where topics, committed offsets and producer ids live.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.data_dir = dir.into();
        self
    }
    /// Create a topic when a client asks for an unknown one (Kafka's
    /// `auto.create.topics.enable`; off by default, so a typo is an error, not a topic).
    pub fn auto_create_topics(mut self, on: bool) -> Self {
        self.config.auto_create_topics = on;
        self
    }
    /// Partitions of auto-created topics and of `CreateTopics` with `-1`.
    pub fn default_partitions(mut self, n: u32) -> Self {
        self.config.default_topic.partitions = n;
        self
    }
    /// fsync policy of new topics (a topic's `flush.messages`/`flush.ms` override it).
    pub fn durability(mut self, d: Durability) -> Self {
        self.config.default_topic.durability = d;
        self
    }
    /// Largest request frame accepted (Kafka's `socket.request.max.bytes`); a larger length
    /// prefix closes the connection before anything is allocated.
    pub fn max_request_bytes(mut self, n: usize) -> Self {
        self.config.max_request_bytes = n;
        self
    }
    /// Connections served at once; more are closed on accept with a log line.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }
    /// Requests read ahead per connection before the broker stops reading it.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.config.max_in_flight = n;
        self
    }
    /// Upper bound on a fetch's `max_wait_ms` (long polling).
    pub fn max_fetch_wait(mut self, d: Duration) -> Self {
        self.config.max_fetch_wait = d;
        self
    }
    /// A connection silent this long (no complete request) is closed.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.config.idle_timeout = d;
        self
    }
    /// How often session timeouts, rebalance deadlines and retention are checked.
    pub fn tick(mut self, d: Duration) -> Self {
        self.config.tick = d;
        self
    }
    /// Bounds on group members' session timeouts (Kafka: 6 s ..= 30 min).
    pub fn session_timeout_bounds(mut self, min: Duration, max: Duration) -> Self {
        let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
        self.config.group_limits.min_session_ms = ms(min);
        self.config.group_limits.max_session_ms = ms(max);
        self
    }
    /// The clock for session timeouts, rebalance deadlines, record timestamps and retention.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Validates the settings and opens (recovers) the data directory.
    ///
    /// ```
    /// use keel_stream_broker::{Broker, BuildError};
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(matches!(Broker::builder().build(), Err(BuildError::MissingDataDir)));
    /// assert!(Broker::builder().data_dir(dir.path()).max_connections(0).build().is_err());
    /// let broker = Broker::builder().data_dir(dir.path()).build().unwrap();
    /// assert_eq!(broker.stats().requests, 0);
    /// ```
    ///
    /// # Errors
    /// [`BuildError::MissingDataDir`], [`BuildError::Invalid`] naming the setting,
    /// [`BuildError::TopicDefaults`], [`BuildError::Open`] when recovery fails.
    pub fn build(self) -> Result<Broker, BuildError> {
        fn open<T>(path: PathBuf, r: Result<T, BrokerError>) -> Result<T, BuildError> {
            r.map_err(|source| BuildError::Open { path, source })
        }
        let c = self.config;
        let invalid = |name, reason| Err(BuildError::Invalid { name, reason });
        if c.data_dir.as_os_str().is_empty() {
            return Err(BuildError::MissingDataDir);
        }
        if !(64..=1 << 30).contains(&c.max_request_bytes) {
            return invalid("max_request_bytes", "must be between 64 B and 1 GiB");
        }
        if c.max_connections == 0 || c.max_connections > 1 << 20 {
            return invalid("max_connections", "must be between 1 and 1048576");
        }
        if c.max_in_flight == 0 || c.max_in_flight > 1024 {
            return invalid("max_in_flight", "must be between 1 and 1024");
        }
        if c.max_fetch_wait > Duration::from_secs(300) {
            return invalid("max_fetch_wait", "at most 5 minutes");
        }
        if c.idle_timeout.is_zero() || c.tick.is_zero() || c.tick > Duration::from_secs(60) {
            return invalid("idle_timeout/tick", "must be positive (tick at most 60 s)");
        }
        let gl = c.group_limits;
        if gl.min_session_ms <= 0 || gl.min_session_ms > gl.max_session_ms {
            return invalid("session_timeout_bounds", "need 0 < min <= max");
        }
        c.default_topic
            .stream_config()
            .map_err(BuildError::TopicDefaults)?;
        std::fs::create_dir_all(&c.data_dir).map_err(|e| BuildError::Open {
            path: c.data_dir.clone(),
            source: e.into(),
        })?;
        let topics_dir = c.data_dir.join("topics");
        let topics = open(
            topics_dir.clone(),
            TopicRegistry::open(&topics_dir, self.clock.clone(), c.max_topics),
        )?;
        let groups_dir = c.data_dir.join("groups");
        let offsets = open(groups_dir.clone(), OffsetStore::open(&groups_dir))?;
        let producer_ids = open(c.data_dir.clone(), ProducerIds::open(&c.data_dir))?;
        let state = State {
            groups: Coordinator::new(self.clock.clone(), c.group_limits),
            advertised: parking_lot::RwLock::new((
                c.listen.ip().to_string(),
                i32::from(c.listen.port()),
            )),
            config: c,
            topics,
            offsets,
            producer_ids,
            counters: Counters::default(),
            appended: Notify::new(),
        };
        Ok(Broker {
            state: Arc::new(state),
        })
    }
}

/// A broker whose data directory is open; [`start`](Self::start) makes it listen.
#[derive(Debug)]
pub struct Broker {
    state: Arc<State>,
}

impl Broker {
    /// A builder with the defaults described on [`BrokerBuilder`].
    pub fn builder() -> BrokerBuilder {
        BrokerBuilder {
            config: Config {
                listen: SocketAddr::from(([127, 0, 0, 1], 19092)),
                advertised_host: None,
                data_dir: PathBuf::new(),
                auto_create_topics: false,
                default_topic: TopicSettings::default(),
                max_request_bytes: 100 << 20,
                max_connections: 1024,
                max_in_flight: 16,
                max_fetch_wait: Duration::from_secs(30),
                max_fetch_bytes: 16 << 20,
                idle_timeout: Duration::from_secs(600),
                tick: Duration::from_millis(100),
                max_topics: 10_000,
                group_limits: GroupLimits {
                    min_session_ms: 6_000,
                    max_session_ms: 1_800_000,
                    max_groups: 10_000,
                    max_members: 1_000,
                },
            },
            clock: Arc::new(SystemClock),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BrokerStats {
        stats(&self.state)
    }

    /// Binds the listen address and serves connections on the current tokio runtime
    /// (multi-threaded: log appends run on blocking threads).
    ///
    /// # Errors
    /// [`BrokerError::Bind`] when the address cannot be bound.
    pub async fn start(self) -> Result<BrokerHandle, BrokerError> {
        let addr = self.state.config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| BrokerError::Bind { addr, source })?;
        let host = self
            .state
            .config
            .advertised_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string());
        *self.state.advertised.write() = (host, i32::from(local.port()));
        let (stop_tx, stop_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(self.state.config.max_connections));
        let task = tokio::spawn(server::run(self.state.clone(), listener, permits, stop_rx));
        log::info!("keel stream broker listening on {local}");
        Ok(BrokerHandle {
            state: self.state,
            local,
            stop: stop_tx,
            task,
        })
    }
}

fn stats(state: &State) -> BrokerStats {
    let mut s = state.counters.snapshot();
    s.rebalances = state.groups.rebalances();
    s
}

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    state: Arc<State>,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl BrokerHandle {
    /// The bound address (the real port when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> BrokerStats {
        stats(&self.state)
    }

    /// Publishes the gauges that need a scan: topics, groups and, per group and topic, the
    /// lag (log end minus committed offset, summed over partitions).
    pub fn publish_metrics(&self) {
        let s = &self.state;
        metrics::gauge!("keel_stream_broker_topics").set(s.topics.len() as f64);
        metrics::gauge!("keel_stream_broker_groups").set(s.groups.len() as f64);
        for group in s.offsets.groups() {
            for ((topic, partition), committed) in s.offsets.all(&group) {
                let Some(t) = s.topics.get(&topic) else {
                    continue;
                };
                let Some(log) = t.partition(partition) else {
                    continue;
                };
                let lag = (log.log_end_offset() - committed.offset).max(0);
                metrics::gauge!("keel_stream_broker_group_lag", "group" => group.clone(), "topic" => topic.clone(), "partition" => partition.to_string())
                    .set(lag as f64);
            }
        }
    }

    /// Stops accepting, closes every connection and waits for the accept loop to end.
    /// Appends already acknowledged are on disk per their topic's durability; the logs are
    /// flushed when the last handle to them drops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        for t in self.state.topics.all() {
            for log in &t.logs {
                let _ = log.flush();
            }
        }
    }
}
