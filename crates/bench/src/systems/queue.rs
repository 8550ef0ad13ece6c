//! `keel-bench queue`: Keel's bounded queue against crossbeam-channel, flume
//! and std `sync_channel`; Keel's priority queue against a
//! `Mutex<BinaryHeap>` + `Condvar`; Keel's work-stealing pool against rayon.
//!
//! # Workload
//!
//! - **Hand-off** (FIFO and priority): capacity 1024, `u64` messages, P
//!   producer threads pushing as fast as they can for the round, C consumer
//!   threads popping until the queue disconnects. Throughput is messages
//!   received per second (round start to the last message drained). Shapes:
//!   SPSC (1→1), MPSC (2→1), SPMC (1→2), MPMC (2→2). std's `Receiver` cannot be shared,
//!   so std runs the SPSC and MPSC shapes only.
//! - **Latency** is the hand-off latency: every 32nd message carries its send
//!   time (the low 48 bits, nanoseconds since the round began), and the
//!   consumer records receive − send. The other messages carry 0 there, so
//!   the clock is read on 1 in 32 messages only. The top 16 bits are a
//!   pseudo-random priority (xorshift per producer, same for every contender).
//! - **Pool**: a fork-join tree of depth 12 (8,191 tasks; each leaf does a
//!   little arithmetic); Keel spawns children through a `Spawner` and waits
//!   with `wait_idle`, rayon uses `ThreadPool::scope` + `Scope::spawn`. Ops are
//!   tasks completed per second.
//! - **Idle wait CPU** (a note, not a ratio): a consumer blocked on an empty
//!   queue for 200 ms; its CPU time comes from `/proc/thread-self/schedstat`.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use keel_queue::{Pool, Queue, Spawner};

use crate::harness::{Contender, Measurement, new_histogram, record};
use crate::{Config, Report};

const CAPACITY: usize = 1024;
const SAMPLE_EVERY: u64 = 32;
const TIME_MASK: u64 = (1 << 48) - 1;

/// One side of a channel under test.
trait Tx: Clone + Send + 'static {
    fn send(&self, value: u64);
}

trait Rx: Clone + Send + 'static {
    fn recv(&self) -> Option<u64>;
}

impl Tx for keel_queue::Sender<u64> {
    #[inline]
    fn send(&self, value: u64) {
        let _ = self.push(value);
    }
}
impl Rx for keel_queue::Receiver<u64> {
    #[inline]
    fn recv(&self) -> Option<u64> {
        self.pop().ok()
    }
}
impl Tx for crossbeam_channel::Sender<u64> {
    #[inline]
    fn send(&self, value: u64) {
        let _ = crossbeam_channel::Sender::send(self, value);
    }
}
impl Rx for crossbeam_channel::Receiver<u64> {
    #[inline]
    fn recv(&self) -> Option<u64> {
        crossbeam_channel::Receiver::recv(self).ok()
    }
}
impl Tx for flume::Sender<u64> {
    #[inline]
    fn send(&self, value: u64) {
        let _ = flume::Sender::send(self, value);
    }
}
impl Rx for flume::Receiver<u64> {
    #[inline]
    fn recv(&self) -> Option<u64> {
        flume::Receiver::recv(self).ok()
    }
}
impl Tx for std::sync::mpsc::SyncSender<u64> {
    #[inline]
    fn send(&self, value: u64) {
        let _ = std::sync::mpsc::SyncSender::send(self, value);
    }
}
/// std's receiver is single-consumer: only used with one consumer thread.
#[derive(Clone)]
struct StdRx(Arc<Mutex<std::sync::mpsc::Receiver<u64>>>);
impl Rx for StdRx {
    #[inline]
    fn recv(&self) -> Option<u64> {
        // One consumer: the lock is uncontended and taken once per message,
        // the same for every round; it is released by the receive.
        self.0.lock().ok()?.recv().ok()
    }
}

/// The textbook bounded priority queue: one mutex, two condition variables.
struct HeapQueue {
    state: Mutex<(BinaryHeap<u64>, bool)>,
    not_empty: Condvar,
    not_full: Condvar,
}

#[derive(Clone)]
struct HeapTx(Arc<HeapQueue>);
#[derive(Clone)]
struct HeapRx(Arc<HeapQueue>);

impl Tx for HeapTx {
    fn send(&self, value: u64) {
        let q = &self.0;
        let Ok(mut state) = q.state.lock() else {
            return;
        };
        while state.0.len() >= CAPACITY && !state.1 {
            state = match q.not_full.wait(state) {
                Ok(s) => s,
                Err(_) => return,
            };
        }
        state.0.push(value);
        drop(state);
        q.not_empty.notify_one();
    }
}
impl Rx for HeapRx {
    fn recv(&self) -> Option<u64> {
        let q = &self.0;
        let mut state = q.state.lock().ok()?;
        loop {
            if let Some(v) = state.0.pop() {
                drop(state);
                q.not_full.notify_one();
                return Some(v);
            }
            if state.1 {
                return None;
            }
            state = q.not_empty.wait(state).ok()?;
        }
    }
}
impl HeapQueue {
    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.1 = true;
        }
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// Runs P producers and C consumers for `duration`; `close` runs after the
/// producers stopped and dropped their senders (for queues that do not
/// disconnect on drop).
fn handoff<S: Tx, R: Rx>(
    producers: usize,
    consumers: usize,
    duration: Duration,
    tx: S,
    rx: R,
    close: impl FnOnce(),
) -> Measurement {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(producers + consumers + 1);
    let received = AtomicU64::new(0);
    let start_cell: Mutex<Option<Instant>> = Mutex::new(None);
    let mut latency = new_histogram();
    let elapsed = std::thread::scope(|s| {
        let base = Instant::now();
        let mut producer_handles = Vec::new();
        for p in 0..producers {
            let tx = tx.clone();
            let (stop, barrier) = (&stop, &barrier);
            producer_handles.push(s.spawn(move || {
                let mut rng =
                    0x9E37_79B9_7F4A_7C15u64 ^ (p as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
                barrier.wait();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..SAMPLE_EVERY - 1 {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        tx.send(rng & !TIME_MASK);
                    }
                    let now = (base.elapsed().as_nanos() as u64 & TIME_MASK).max(1);
                    tx.send((rng & !TIME_MASK) | now);
                    i += SAMPLE_EVERY;
                }
                drop(tx);
                i
            }));
        }
        drop(tx);
        let mut consumer_handles = Vec::new();
        for _ in 0..consumers {
            let rx = rx.clone();
            let (barrier, received) = (&barrier, &received);
            consumer_handles.push(s.spawn(move || {
                let mut hist = new_histogram();
                let mut count = 0u64;
                barrier.wait();
                while let Some(v) = rx.recv() {
                    count += 1;
                    let sent = v & TIME_MASK;
                    if sent != 0 {
                        let now = base.elapsed().as_nanos() as u64 & TIME_MASK;
                        record(&mut hist, Duration::from_nanos(now.saturating_sub(sent)));
                    }
                }
                received.fetch_add(count, Ordering::Relaxed);
                hist
            }));
        }
        drop(rx);
        barrier.wait();
        let start = Instant::now();
        if let Ok(mut cell) = start_cell.lock() {
            *cell = Some(start);
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        for h in producer_handles {
            let _ = h.join();
        }
        close();
        for h in consumer_handles {
            if let Ok(hist) = h.join() {
                let _ = latency.add(&hist);
            }
        }
        start.elapsed()
    });
    Measurement {
        ops: received.load(Ordering::Relaxed),
        elapsed,
        latency,
        extra: Default::default(),
    }
}

fn keel_fifo(p: usize, c: usize, d: Duration) -> Measurement {
    let (tx, rx) = keel_queue::bounded::<u64>(CAPACITY).expect("capacity is positive");
    handoff(p, c, d, tx, rx, || {})
}

fn keel_priority(p: usize, c: usize, d: Duration) -> Measurement {
    let (tx, rx) = Queue::builder()
        .capacity(CAPACITY)
        .priority::<u64>()
        .expect("capacity is positive");
    handoff(p, c, d, tx, rx, || {})
}

fn crossbeam(p: usize, c: usize, d: Duration) -> Measurement {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    handoff(p, c, d, tx, rx, || {})
}

fn flume_bounded(p: usize, c: usize, d: Duration) -> Measurement {
    let (tx, rx) = flume::bounded::<u64>(CAPACITY);
    handoff(p, c, d, tx, rx, || {})
}

fn std_sync_channel(p: usize, c: usize, d: Duration) -> Measurement {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u64>(CAPACITY);
    handoff(p, c, d, tx, StdRx(Arc::new(Mutex::new(rx))), || {})
}

fn mutex_heap(p: usize, c: usize, d: Duration) -> Measurement {
    let queue = Arc::new(HeapQueue {
        state: Mutex::new((BinaryHeap::with_capacity(CAPACITY), false)),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let closer = queue.clone();
    handoff(p, c, d, HeapTx(queue.clone()), HeapRx(queue), move || {
        closer.close()
    })
}

// ---- pool --------------------------------------------------------------------

const TREE_DEPTH: u32 = 12;

#[inline]
fn leaf_work(seed: u64) -> u64 {
    let mut x = seed;
    for i in 0..64u64 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    x
}

/// What every Keel tree task needs. Pool tasks are `'static`, so the context
/// is leaked once per benchmark (rayon's scope lets tasks borrow it instead);
/// both contenders then capture one reference and the depth.
struct TreeCtx {
    spawner: Spawner,
    sink: AtomicU64,
}

fn keel_tree(ctx: &'static TreeCtx, depth: u32) {
    if depth == 0 {
        ctx.sink
            .fetch_add(leaf_work(depth as u64) & 1, Ordering::Relaxed);
        return;
    }
    for _ in 0..2 {
        ctx.spawner.execute(move || keel_tree(ctx, depth - 1));
    }
}

fn rayon_tree<'s>(scope: &rayon::Scope<'s>, depth: u32, sink: &'s AtomicU64) {
    if depth == 0 {
        sink.fetch_add(leaf_work(depth as u64) & 1, Ordering::Relaxed);
        return;
    }
    for _ in 0..2 {
        scope.spawn(move |s| rayon_tree(s, depth - 1, sink));
    }
}

fn tasks_per_tree() -> u64 {
    (1u64 << (TREE_DEPTH + 1)) - 1
}

fn keel_pool_round(pool: &Pool, ctx: &'static TreeCtx, d: Duration) -> Measurement {
    let ctx: &'static TreeCtx = ctx;
    let mut m = Measurement::new();
    let start = Instant::now();
    while start.elapsed() < d {
        let t0 = Instant::now();
        // The root is a task too, so the tree is tasks_per_tree() tasks.
        pool.execute(move || keel_tree(ctx, TREE_DEPTH));
        pool.wait_idle();
        record(&mut m.latency, t0.elapsed());
        m.ops += tasks_per_tree();
    }
    m.elapsed = start.elapsed();
    m
}

fn rayon_pool_round(pool: &rayon::ThreadPool, d: Duration) -> Measurement {
    let sink = AtomicU64::new(0);
    let mut m = Measurement::new();
    let start = Instant::now();
    while start.elapsed() < d {
        let t0 = Instant::now();
        pool.scope(|s| s.spawn(|s| rayon_tree(s, TREE_DEPTH, &sink)));
        record(&mut m.latency, t0.elapsed());
        m.ops += tasks_per_tree();
    }
    m.elapsed = start.elapsed();
    m
}

// ---- idle wait ------------------------------------------------------------------

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), if available.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time a consumer burns while blocked 200 ms on an empty queue.
fn idle_wait_cpu<R: Rx, S: Tx>(tx: S, rx: R) -> Option<Duration> {
    let consumer = std::thread::spawn(move || {
        let before = thread_cpu_ns()?;
        let _ = rx.recv();
        Some(thread_cpu_ns()? - before)
    });
    std::thread::sleep(Duration::from_millis(200));
    tx.send(1);
    consumer.join().ok()?.map(Duration::from_nanos)
}

/// Runs the queue benchmark.
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let shapes: [(&str, usize, usize); 4] = [
        ("SPSC 1→1", 1, 1),
        ("MPSC 2→1", 2, 1),
        ("SPMC 1→2", 1, 2),
        ("MPMC 2→2", 2, 2),
    ];
    for (shape, p, c) in shapes {
        let scenario = format!("fifo {shape} cap 1024");
        let mut contenders = vec![
            Contender::keel("keel-queue fifo", move |_, d| keel_fifo(p, c, d)),
            Contender::peer("crossbeam-channel", move |_, d| crossbeam(p, c, d)),
            Contender::peer("flume", move |_, d| flume_bounded(p, c, d)),
        ];
        if c == 1 {
            contenders.push(Contender::peer("std sync_channel", move |_, d| {
                std_sync_channel(p, c, d)
            }));
        }
        report.compare(cfg, &scenario, p + c, &mut contenders);
    }
    for (shape, p, c) in [("SPSC 1→1", 1, 1), ("MPMC 2→2", 2, 2)] {
        let scenario = format!("priority {shape} cap 1024");
        report.compare(
            cfg,
            &scenario,
            p + c,
            &mut [
                Contender::keel("keel-queue priority", move |_, d| keel_priority(p, c, d)),
                Contender::peer("Mutex<BinaryHeap>+Condvar", move |_, d| mutex_heap(p, c, d)),
            ],
        );
    }
    const POOL_TREE: &str = "pool fork-join tree (8191 tasks)";
    for &threads in &cfg.threads {
        // Starting two pools is the expensive part: skip it when not selected.
        if !cfg.selected(POOL_TREE) {
            break;
        }
        let keel_pool = Pool::builder()
            .threads(threads)
            .name("bench-pool")
            .build()?;
        let ctx: &'static TreeCtx = Box::leak(Box::new(TreeCtx {
            spawner: keel_pool.spawner(),
            sink: AtomicU64::new(0),
        }));
        let rayon_pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        report.compare(
            cfg,
            POOL_TREE,
            threads,
            &mut [
                Contender::keel("keel-queue pool", |_, d| {
                    keel_pool_round(&keel_pool, ctx, d)
                }),
                Contender::peer("rayon", |_, d| rayon_pool_round(&rayon_pool, d)),
            ],
        );
        drop(keel_pool);
    }
    // 200 ms per peer of nothing but waiting: only when selected.
    if !cfg.selected("idle wait") {
        return Ok(());
    }
    let mut idle = Vec::new();
    if let Ok((tx, rx)) = keel_queue::bounded::<u64>(CAPACITY) {
        idle.push(("keel-queue", idle_wait_cpu(tx, rx)));
    }
    let (tx, rx) = crossbeam_channel::bounded::<u64>(CAPACITY);
    idle.push(("crossbeam-channel", idle_wait_cpu(tx, rx)));
    let (tx, rx) = flume::bounded::<u64>(CAPACITY);
    idle.push(("flume", idle_wait_cpu(tx, rx)));
    let line = idle
        .iter()
        .map(|(name, cpu)| match cpu {
            Some(cpu) => format!("{name} {:.1} µs", cpu.as_secs_f64() * 1e6),
            None => format!("{name} n/a"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let note =
        format!("idle wait: CPU time of a consumer blocked 200 ms on an empty queue: {line}");
    println!("  {note}");
    report.note(note);
    Ok(())
}
