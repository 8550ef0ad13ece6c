//! The batching producer: records are grouped per partition into batches that are sent when
//! full (`batch_bytes`) or old enough (`linger`), by one sender thread, through a **bounded**
//! buffer.
//!
//! # Backpressure
//!
//! Every record reserves its encoded size in a buffer of `buffer_bytes` until its batch is in
//! the log. When the buffer is full, [`Producer::send`] blocks (up to `max_block`),
//! [`Producer::send_async`] waits asynchronously (same bound), and
//! [`Producer::send_timeout`] with `Duration::ZERO` fails at once — each with
//! [`ProduceError::BufferFull`]. Memory is bounded by `buffer_bytes` plus one batch being
//! written; nothing is dropped silently.
//!
//! # Acks
//!
//! [`Acks::None`] resolves a record's [`Delivery`] when its batch is sealed (no offset);
//! [`Acks::Leader`] after the write; [`Acks::Durable`] after the write *and* an fsync,
//! whatever the topic's durability policy.
//!
//! # Idempotence
//!
//! With `idempotent(true)` (default) the producer takes a producer id from the stream and
//! numbers each partition's records from 0. A batch keeps its sequence numbers across
//! retries, so a retry after an error that happened *after* the write (the classic lost
//! ack) is answered by the log with the original offsets instead of a second copy.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::batch::{BATCH_HEADER_LEN, ProducerInfo, Record, encode_batch};
use crate::clock::{SharedClock, millis};
use crate::error::{BuildError, ProduceError, StreamError};
use crate::partitioner::{KeylessPartitioning, partition_for_key};
use crate::stream::Stream;

/// When a send counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// Fire and forget: done when the batch is sealed.
    None,
    /// Done when written to the log (page cache).
    Leader,
    /// Done when written and fsynced.
    #[default]
    Durable,
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Partition.
    pub partition: u32,
    /// Offset (`None` with [`Acks::None`]).
    pub offset: Option<i64>,
}

#[derive(Debug, Default)]
struct Slot {
    result: Mutex<Option<Result<RecordMetadata, String>>>,
    cond: Condvar,
    notify: Notify,
}

impl Slot {
    fn complete(&self, r: Result<RecordMetadata, String>) {
        *self.result.lock() = Some(r);
        self.cond.notify_all();
        self.notify.notify_waiters();
        self.notify.notify_one();
    }
}

/// The pending acknowledgement of one record.
#[derive(Debug, Clone)]
pub struct Delivery {
    slot: Arc<Slot>,
}

impl Delivery {
    /// Blocks until acknowledged, up to `timeout`.
    ///
    /// # Errors
    /// [`ProduceError::AckTimeout`]; [`ProduceError::Log`] when the append failed.
    pub fn wait(&self, timeout: Duration) -> Result<RecordMetadata, ProduceError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut r = self.slot.result.lock();
        loop {
            if let Some(r) = r.as_ref() {
                return r.clone().map_err(ProduceError::Log);
            }
            match deadline {
                Some(d) => {
                    if self.slot.cond.wait_until(&mut r, d).timed_out() && r.is_none() {
                        return Err(ProduceError::AckTimeout(timeout));
                    }
                }
                None => self.slot.cond.wait(&mut r),
            }
        }
    }

    /// Waits asynchronously, up to `timeout`.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn wait_async(&self, timeout: Duration) -> Result<RecordMetadata, ProduceError> {
        let fut = async {
            loop {
                let notified = self.slot.notify.notified();
                if let Some(r) = self.slot.result.lock().as_ref() {
                    return r.clone().map_err(ProduceError::Log);
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| ProduceError::AckTimeout(timeout))?
    }

    /// The result if already known.
    pub fn try_result(&self) -> Option<Result<RecordMetadata, ProduceError>> {
        self.slot
            .result
            .lock()
            .clone()
            .map(|r| r.map_err(ProduceError::Log))
    }
}

#[derive(Debug)]
struct OpenBatch {
    records: Vec<Record>,
    deliveries: Vec<Arc<Slot>>,
    bytes: usize,
    created_ms: i64,
}

#[derive(Debug)]
struct Sealed {
    topic: Arc<str>,
    partition: u32,
    raw: Vec<u8>,
    deliveries: Vec<Arc<Slot>>,
    reserved: usize,
    first_error: Option<String>,
}

#[derive(Debug, Default)]
struct Accumulator {
    open: HashMap<(Arc<str>, u32), OpenBatch>,
    ready: VecDeque<Sealed>,
    buffered: usize,
    in_flight: usize,
    sticky: HashMap<Arc<str>, u32>,
    next_seq: HashMap<(Arc<str>, u32), i32>,
    flush: bool,
    closed: bool,
    /// Senders waiting for buffer space: like Kafka's "exhausted" pool, this makes every
    /// open batch ready at once instead of letting the wait last until linger.
    waiting: usize,
}

/// Producer counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerStats {
    /// Records accepted by `send`.
    pub records_sent: u64,
    /// Batches appended.
    pub batches_written: u64,
    /// Duplicate batches the log recognised (retries).
    pub duplicate_batches: u64,
    /// Records whose append failed.
    pub records_failed: u64,
    /// Sends that found the buffer full and waited.
    pub buffer_full_waits: u64,
    /// Sends that gave up because the buffer stayed full.
    pub buffer_full_errors: u64,
    /// Bytes reserved right now.
    pub buffered_bytes: u64,
    /// Largest reservation ever seen (≤ `buffer_bytes`).
    pub max_buffered_bytes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    records_sent: AtomicU64,
    batches_written: AtomicU64,
    duplicate_batches: AtomicU64,
    records_failed: AtomicU64,
    buffer_full_waits: AtomicU64,
    buffer_full_errors: AtomicU64,
    max_buffered: AtomicU64,
}

#[derive(Debug)]
struct Config {
    linger: Duration,
    batch_bytes: usize,
    buffer_bytes: usize,
    acks: Acks,
    max_block: Duration,
    keyless: KeylessPartitioning,
    retries: u32,
}

#[derive(Debug)]
struct Shared {
    stream: Stream,
    clock: SharedClock,
    config: Config,
    producer_id: Option<i64>,
    state: Mutex<Accumulator>,
    /// Signalled when buffer space is freed or everything is flushed.
    space: Condvar,
    space_async: Notify,
    /// Signalled when a batch is sealed or a flush/close is requested.
    work: Condvar,
    counters: Counters,
    round_robin: AtomicU64,
    stopped: AtomicBool,
}

/// Builder of [`Producer`]; from [`Producer::builder`].
#[derive(Debug)]
#[must_use]
pub struct ProducerBuilder {
    stream: Stream,
    clock: Option<SharedClock>,
    config: Config,
    idempotent: bool,
}

impl ProducerBuilder {
    /// Wait this long for more records before sending a partial batch (default 5 ms).
    pub fn linger(mut self, d: Duration) -> Self {
        self.config.linger = d;
        self
    }
    /// Send a batch once it holds this many bytes (default 64 KiB).
    pub fn batch_bytes(mut self, n: usize) -> Self {
        self.config.batch_bytes = n;
        self
    }
    /// Bound on bytes waiting to be written (default 32 MiB).
    pub fn buffer_bytes(mut self, n: usize) -> Self {
        self.config.buffer_bytes = n;
        self
    }
    /// Acknowledgement level (default durable).
    pub fn acks(mut self, a: Acks) -> Self {
        self.config.acks = a;
        self
    }
    /// How long `send` may block on a full buffer (default 60 s).
    pub fn max_block(mut self, d: Duration) -> Self {
        self.config.max_block = d;
        self
    }
    /// Keyless records: sticky (default) or round-robin.
    pub fn keyless(mut self, k: KeylessPartitioning) -> Self {
        self.config.keyless = k;
        self
    }
    /// Idempotent producer id and sequence numbers (default on).
    pub fn idempotent(mut self, on: bool) -> Self {
        self.idempotent = on;
        self
    }
    /// Append retries on an I/O error (default 3).
    pub fn retries(mut self, n: u32) -> Self {
        self.config.retries = n;
        self
    }
    /// Clock for linger (default: the stream's).
    pub fn clock(mut self, clock: impl crate::Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Starts the sender thread.
    ///
    /// # Errors
    /// [`BuildError::Invalid`] for a zero batch or buffer size, a buffer smaller than one
    /// batch, or a zero linger; [`BuildError::Open`] when no producer id can be allocated.
    pub fn build(self) -> Result<Producer, BuildError> {
        let c = &self.config;
        if c.batch_bytes < BATCH_HEADER_LEN + 16 || c.batch_bytes > 64 << 20 {
            return Err(BuildError::Invalid {
                name: "batch_bytes",
                reason: "must be between 77 B and 64 MiB",
            });
        }
        if c.buffer_bytes < c.batch_bytes {
            return Err(BuildError::Invalid {
                name: "buffer_bytes",
                reason: "must hold at least one batch",
            });
        }
        if c.linger.is_zero() {
            return Err(BuildError::Invalid {
                name: "linger",
                reason: "must be positive (use a small value)",
            });
        }
        let producer_id = if self.idempotent {
            Some(self.stream.init_producer_id().map_err(BuildError::Open)?)
        } else {
            None
        };
        let clock = self
            .clock
            .unwrap_or_else(|| self.stream.inner.clock.clone());
        let shared = Arc::new(Shared {
            stream: self.stream,
            clock,
            config: self.config,
            producer_id,
            state: Mutex::new(Accumulator::default()),
            space: Condvar::new(),
            space_async: Notify::new(),
            work: Condvar::new(),
            counters: Counters::default(),
            round_robin: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let s = shared.clone();
        let sender = std::thread::Builder::new()
            .name("keel-stream-sender".into())
            .spawn(move || s.run())
            .map_err(|e| BuildError::Open(StreamError::Io(e)))?;
        Ok(Producer {
            shared,
            sender: Some(sender),
        })
    }
}

/// A batching, idempotent producer with a bounded buffer. `Send + Sync`: share it by reference
/// or `Arc`.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    sender: Option<JoinHandle<()>>,
}

impl Producer {
    /// A builder for a producer on `stream`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keel_stream::{Producer, Record, Stream, TopicConfig};
    /// let dir = tempfile::tempdir().unwrap();
    /// let stream = Stream::builder().dir(dir.path()).build().unwrap();
    /// stream.create_topic("orders", TopicConfig::builder().partitions(3).build().unwrap()).unwrap();
    /// let producer = Producer::builder(&stream).linger(Duration::from_millis(1)).build().unwrap();
    /// let d = producer.send("orders", Record::keyed("user-1", "created")).unwrap();
    /// producer.flush(Duration::from_secs(5)).unwrap();
    /// let meta = d.wait(Duration::from_secs(5)).unwrap();
    /// assert_eq!(meta.partition, keel_stream::partition_for_key(b"user-1", 3));
    /// assert_eq!(meta.offset, Some(0));
    /// ```
    pub fn builder(stream: &Stream) -> ProducerBuilder {
        ProducerBuilder {
            stream: stream.clone(),
            clock: None,
            config: Config {
                linger: Duration::from_millis(5),
                batch_bytes: 64 << 10,
                buffer_bytes: 32 << 20,
                acks: Acks::Durable,
                max_block: Duration::from_secs(60),
                keyless: KeylessPartitioning::Sticky,
                retries: 3,
            },
            idempotent: true,
        }
    }

    /// Queues a record, blocking up to `max_block` while the buffer is full.
    ///
    /// # Errors
    /// [`ProduceError::BufferFull`], [`ProduceError::RecordTooLarge`], [`ProduceError::Closed`],
    /// [`ProduceError::Rejected`] for an unknown topic.
    pub fn send(&self, topic: &str, record: Record) -> Result<Delivery, ProduceError> {
        self.send_timeout(topic, record, self.shared.config.max_block)
    }

    /// Queues a record, blocking up to `timeout` (zero: never block).
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn send_timeout(
        &self,
        topic: &str,
        record: Record,
        timeout: Duration,
    ) -> Result<Delivery, ProduceError> {
        let (topic, partitions, size) = self.shared.prepare(topic, &record)?;
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.state.lock();
        let mut waited = false;
        loop {
            if st.closed {
                return Err(ProduceError::Closed);
            }
            if st.buffered + size <= self.shared.config.buffer_bytes {
                break;
            }
            if !waited {
                waited = true;
                self.shared
                    .counters
                    .buffer_full_waits
                    .fetch_add(1, Ordering::Relaxed);
            }
            st.waiting += 1;
            self.shared.work.notify_all();
            let timed_out = match deadline {
                Some(d) if Instant::now() >= d => true,
                Some(d) => self.shared.space.wait_until(&mut st, d).timed_out(),
                None => {
                    self.shared.space.wait(&mut st);
                    false
                }
            };
            st.waiting -= 1;
            if timed_out && st.buffered + size > self.shared.config.buffer_bytes {
                self.shared
                    .counters
                    .buffer_full_errors
                    .fetch_add(1, Ordering::Relaxed);
                return Err(ProduceError::BufferFull(timeout));
            }
        }
        Ok(self
            .shared
            .enqueue(&mut st, topic, partitions, record, size))
    }

    /// Queues a record, waiting asynchronously up to `max_block` while the buffer is full.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub async fn send_async(&self, topic: &str, record: Record) -> Result<Delivery, ProduceError> {
        let (topic, partitions, size) = self.shared.prepare(topic, &record)?;
        let max_block = self.shared.config.max_block;
        let wait = async {
            let mut waited = false;
            loop {
                let notified = self.shared.space_async.notified();
                {
                    let mut st = self.shared.state.lock();
                    if st.closed {
                        return Err(ProduceError::Closed);
                    }
                    if st.buffered + size <= self.shared.config.buffer_bytes {
                        return Ok(self.shared.enqueue(
                            &mut st,
                            topic.clone(),
                            partitions,
                            record.clone(),
                            size,
                        ));
                    }
                    st.waiting += 1;
                }
                self.shared.work.notify_all();
                if !waited {
                    waited = true;
                    self.shared
                        .counters
                        .buffer_full_waits
                        .fetch_add(1, Ordering::Relaxed);
                }
                let _guard = WaitingGuard(&self.shared);
                notified.await;
            }
        };
        match tokio::time::timeout(max_block, wait).await {
            Ok(r) => r,
            Err(_) => {
                self.shared
                    .counters
                    .buffer_full_errors
                    .fetch_add(1, Ordering::Relaxed);
                Err(ProduceError::BufferFull(max_block))
            }
        }
    }

    /// Sends everything queued now and waits (up to `timeout`) until it is acknowledged.
    ///
    /// # Errors
    /// [`ProduceError::AckTimeout`].
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.state.lock();
        st.flush = true;
        self.shared.work.notify_all();
        while st.buffered > 0 || st.in_flight > 0 || !st.open.is_empty() || !st.ready.is_empty() {
            if self.shared.stopped.load(Ordering::Acquire) {
                break;
            }
            st.flush = true;
            self.shared.work.notify_all();
            match deadline {
                Some(d) => {
                    if self.shared.space.wait_until(&mut st, d).timed_out() {
                        return Err(ProduceError::AckTimeout(timeout));
                    }
                }
                None => self.shared.space.wait(&mut st),
            }
        }
        Ok(())
    }

    /// Wakes the sender so it re-checks linger deadlines now (after a mock clock moved).
    pub fn wake(&self) {
        self.shared.work.notify_all();
    }

    /// The idempotent producer id, if any.
    pub fn producer_id(&self) -> Option<i64> {
        self.shared.producer_id
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProducerStats {
        let c = &self.shared.counters;
        ProducerStats {
            records_sent: c.records_sent.load(Ordering::Relaxed),
            batches_written: c.batches_written.load(Ordering::Relaxed),
            duplicate_batches: c.duplicate_batches.load(Ordering::Relaxed),
            records_failed: c.records_failed.load(Ordering::Relaxed),
            buffer_full_waits: c.buffer_full_waits.load(Ordering::Relaxed),
            buffer_full_errors: c.buffer_full_errors.load(Ordering::Relaxed),
            buffered_bytes: self.shared.state.lock().buffered as u64,
            max_buffered_bytes: c.max_buffered.load(Ordering::Relaxed),
        }
    }

    /// Flushes (up to `timeout`) and stops the sender. Records still queued after the timeout
    /// fail with [`ProduceError::Closed`] in their [`Delivery`].
    ///
    /// # Errors
    /// [`ProduceError::AckTimeout`] when the flush did not finish.
    pub fn close(mut self, timeout: Duration) -> Result<(), ProduceError> {
        let r = self.flush(timeout);
        self.stop();
        r
    }

    fn stop(&mut self) {
        {
            let mut st = self.shared.state.lock();
            st.closed = true;
            st.flush = true;
        }
        self.shared.work.notify_all();
        self.shared.space.notify_all();
        self.shared.space_async.notify_waiters();
        if let Some(h) = self.sender.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Decrements `waiting` when an async wait ends (also on cancellation).
struct WaitingGuard<'a>(&'a Shared);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.state.lock().waiting -= 1;
    }
}

impl Shared {
    fn prepare(
        &self,
        topic: &str,
        record: &Record,
    ) -> Result<(Arc<str>, u32, usize), ProduceError> {
        let t = self.stream.topic(topic).map_err(ProduceError::Rejected)?;
        let size = record.encoded_size_bound();
        let max = t
            .config()
            .max_batch_bytes()
            .min(self.config.buffer_bytes)
            .saturating_sub(BATCH_HEADER_LEN);
        if size > max {
            return Err(ProduceError::RecordTooLarge { size, max });
        }
        Ok((Arc::from(topic), t.partition_count(), size))
    }

    fn enqueue(
        &self,
        st: &mut Accumulator,
        topic: Arc<str>,
        partitions: u32,
        record: Record,
        size: usize,
    ) -> Delivery {
        let partition = match &record.key {
            Some(k) => partition_for_key(k, partitions),
            None => match self.config.keyless {
                KeylessPartitioning::RoundRobin => {
                    (self.round_robin.fetch_add(1, Ordering::Relaxed) % u64::from(partitions))
                        as u32
                }
                KeylessPartitioning::Sticky => {
                    *st.sticky.entry(topic.clone()).or_insert_with(|| {
                        (self.round_robin.fetch_add(1, Ordering::Relaxed) % u64::from(partitions))
                            as u32
                    })
                }
            },
        };
        let key = (topic.clone(), partition);
        if st
            .open
            .get(&key)
            .is_some_and(|b| b.bytes + size > self.config.batch_bytes)
        {
            self.seal(st, &key);
        }
        let now = self.clock.now_ms();
        let slot = Arc::new(Slot::default());
        let b = st.open.entry(key.clone()).or_insert_with(|| OpenBatch {
            records: Vec::new(),
            deliveries: Vec::new(),
            bytes: BATCH_HEADER_LEN,
            created_ms: now,
        });
        b.records.push(record);
        b.deliveries.push(slot.clone());
        b.bytes += size;
        let full = b.bytes >= self.config.batch_bytes;
        st.buffered += size;
        self.counters
            .max_buffered
            .fetch_max(st.buffered as u64, Ordering::Relaxed);
        self.counters.records_sent.fetch_add(1, Ordering::Relaxed);
        if full {
            self.seal(st, &key);
        }
        Delivery { slot }
    }

    /// Moves an open batch to the ready queue, numbering it for idempotence.
    fn seal(&self, st: &mut Accumulator, key: &(Arc<str>, u32)) {
        let Some(b) = st.open.remove(key) else { return };
        if self.config.keyless == KeylessPartitioning::Sticky
            && st.sticky.get(&key.0) == Some(&key.1)
        {
            // KIP-480: move on to another partition once this one's batch is sent.
            st.sticky.remove(&key.0);
        }
        let producer = self.producer_id.map(|pid| {
            let seq = st.next_seq.entry(key.clone()).or_insert(0);
            let base_sequence = *seq;
            *seq = seq.wrapping_add(b.records.len() as i32);
            ProducerInfo {
                producer_id: pid,
                producer_epoch: 0,
                base_sequence,
            }
        });
        let reserved = b.bytes - BATCH_HEADER_LEN;
        let (raw, first_error) = match encode_batch(&b.records, b.created_ms, producer) {
            Ok(raw) => (raw, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        if self.config.acks == Acks::None {
            for d in &b.deliveries {
                d.complete(Ok(RecordMetadata {
                    partition: key.1,
                    offset: None,
                }));
            }
        }
        st.ready.push_back(Sealed {
            topic: key.0.clone(),
            partition: key.1,
            raw,
            deliveries: b.deliveries,
            reserved,
            first_error,
        });
        self.work.notify_one();
    }

    fn run(&self) {
        let mut st = self.state.lock();
        loop {
            let now = self.clock.now_ms();
            let linger = millis(self.config.linger);
            let due: Vec<(Arc<str>, u32)> = st
                .open
                .iter()
                .filter(|(_, b)| {
                    st.flush
                        || st.closed
                        || st.waiting > 0
                        || now.saturating_sub(b.created_ms) >= linger
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in &due {
                self.seal(&mut st, k);
            }
            if st.ready.is_empty() {
                if st.closed {
                    break;
                }
                if st.flush && st.open.is_empty() {
                    st.flush = false;
                    self.space.notify_all();
                }
                // Real-time wait only paces re-checks; linger itself is measured on the clock.
                let pace = self.config.linger.min(Duration::from_millis(2));
                self.work.wait_for(&mut st, pace);
                continue;
            }
            let batches: Vec<Sealed> = st.ready.drain(..).collect();
            st.in_flight += batches.len();
            drop(st);
            for b in batches {
                self.write(b);
            }
            st = self.state.lock();
            st.in_flight = 0;
            self.space.notify_all();
            self.space_async.notify_waiters();
        }
        // Closed: fail whatever could not be written.
        for b in st.ready.drain(..) {
            for d in b.deliveries {
                d.complete(Err("producer closed".into()));
            }
        }
        st.buffered = 0;
        drop(st);
        self.stopped.store(true, Ordering::Release);
        self.space.notify_all();
        self.space_async.notify_waiters();
    }

    fn write(&self, b: Sealed) {
        let n = b.deliveries.len();
        let result = match b.first_error {
            Some(e) => Err(e),
            None => {
                let mut attempt = 0;
                loop {
                    let r = self.stream.log(&b.topic, b.partition).and_then(|log| {
                        log.append_batch(b.raw.clone(), self.config.acks == Acks::Durable)
                    });
                    match r {
                        Err(StreamError::Io(_)) if attempt < self.config.retries => attempt += 1,
                        other => break other.map_err(|e| e.to_string()),
                    }
                }
            }
        };
        match &result {
            Ok(info) => {
                self.counters
                    .batches_written
                    .fetch_add(1, Ordering::Relaxed);
                if info.duplicate {
                    self.counters
                        .duplicate_batches
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(_) => {
                self.counters
                    .records_failed
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        if self.config.acks != Acks::None {
            for (i, d) in b.deliveries.iter().enumerate() {
                d.complete(match &result {
                    Ok(info) => Ok(RecordMetadata {
                        partition: b.partition,
                        offset: Some(info.base_offset + i as i64),
                    }),
                    Err(e) => Err(e.clone()),
                });
            }
        }
        let mut st = self.state.lock();
        st.buffered -= b.reserved;
        drop(st);
        self.space.notify_all();
        self.space_async.notify_waiters();
    }
}
