//! Running one contender: closed-loop threads, sampled latency, a [`Measurement`].

use std::collections::BTreeMap;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// How a benchmark run is shaped: thread counts, rounds and how long each round lasts.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--quick`: fewer and shorter rounds, so one system finishes in about a minute.
    pub quick: bool,
    /// Thread counts to run every multi-threaded scenario at.
    pub threads: Vec<usize>,
    /// Interleaved rounds per contender (A B A B …); the reported throughput is the median.
    pub rounds: usize,
    /// Wall time of one round of one contender.
    pub round_time: Duration,
    /// `--scenario REGEX`: only scenarios whose name matches run (`None`: all of them).
    pub scenario: Option<regex_lite::Regex>,
}

impl Config {
    /// The default shape for a full (`quick == false`) or quick run.
    pub fn new(quick: bool, threads: Vec<usize>) -> Self {
        let (rounds, round_time) = if quick {
            (3, Duration::from_millis(200))
        } else {
            (7, Duration::from_millis(700))
        };
        Self {
            quick,
            threads,
            rounds,
            round_time,
            scenario: None,
        }
    }

    /// Runs only the scenarios whose name matches `pattern` (`--scenario`).
    #[must_use]
    pub fn with_scenario(mut self, pattern: Option<regex_lite::Regex>) -> Self {
        self.scenario = pattern;
        self
    }

    /// Whether the scenario named `scenario` is selected by `--scenario`.
    ///
    /// [`Report::compare`](crate::Report::compare) already skips unselected scenarios; a
    /// system module asks this first only to skip expensive setup (a server, a big trace).
    pub fn selected(&self, scenario: &str) -> bool {
        self.scenario
            .as_ref()
            .is_none_or(|re| re.is_match(scenario))
    }
}

/// What one round of one contender produced.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Operations completed (decisions, cache ops, messages, lookups…).
    pub ops: u64,
    /// Wall time the operations took.
    pub elapsed: Duration,
    /// Latency samples in nanoseconds (sampled: see [`run_threads`]).
    pub latency: Histogram<u64>,
    /// Extra per-contender figures, written into the JSON row as-is (e.g. `hit_ratio`).
    /// Rounds are reduced by median.
    pub extra: BTreeMap<String, f64>,
}

impl Measurement {
    /// An empty measurement to fill by hand.
    pub fn new() -> Self {
        Self {
            ops: 0,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
            extra: BTreeMap::new(),
        }
    }

    /// Throughput of this round.
    pub fn ops_per_sec(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// Adds an extra figure, builder style.
    #[must_use]
    pub fn with_extra(mut self, name: &str, value: f64) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }
}

impl Default for Measurement {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram for nanosecond latencies from 1 ns to 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds are valid")
}

/// Records a duration into a nanosecond histogram, saturating at its bounds.
pub fn record(hist: &mut Histogram<u64>, d: Duration) {
    let ns = (d.as_nanos() as u64).clamp(1, 60_000_000_000);
    hist.saturating_record(ns);
}

/// One implementation taking part in a comparison.
///
/// The closure receives the thread count and the round's duration and returns what it
/// measured. It is called once per round, interleaved with the other contenders.
pub struct Contender<'a> {
    pub(crate) name: String,
    pub(crate) keel: bool,
    pub(crate) run: Box<dyn FnMut(usize, Duration) -> Measurement + 'a>,
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .field("keel", &self.keel)
            .finish_non_exhaustive()
    }
}

impl<'a> Contender<'a> {
    /// A Keel implementation; ratios are computed for every Keel contender against every peer.
    pub fn keel(
        name: impl Into<String>,
        run: impl FnMut(usize, Duration) -> Measurement + 'a,
    ) -> Self {
        Self {
            name: name.into(),
            keel: true,
            run: Box::new(run),
        }
    }

    /// A peer implementation (another crate, or a naive baseline).
    pub fn peer(
        name: impl Into<String>,
        run: impl FnMut(usize, Duration) -> Measurement + 'a,
    ) -> Self {
        Self {
            name: name.into(),
            keel: false,
            run: Box::new(run),
        }
    }

    /// The contender's name as printed and written to JSON.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Every how many operations [`run_threads`] times one operation on its own.
///
/// Timing every call would add two clock reads (~40 ns) to operations that take 20–50 ns
/// and distort throughput; one in 32 keeps the overhead near 1% while still giving each
/// thread tens of thousands of samples per round.
pub const LATENCY_SAMPLE_EVERY: u64 = 32;

/// Runs a closed loop of operations on `threads` threads for `duration`.
///
/// `make_worker(thread_index)` is called on each worker thread to build its operation
/// closure (so per-thread state — an RNG, a key stream cursor — lives on that thread);
/// the closure is then called with an increasing operation index until time is up.
/// All threads start together behind a barrier. One call in [`LATENCY_SAMPLE_EVERY`] is
/// timed individually into the latency histogram.
pub fn run_threads<M, W>(threads: usize, duration: Duration, make_worker: M) -> Measurement
where
    M: Fn(usize) -> W + Sync,
    W: FnMut(u64),
{
    let threads = threads.max(1);
    let barrier = Barrier::new(threads + 1);
    let stop = AtomicBool::new(false);
    let (total_ops, hist, elapsed) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let barrier = &barrier;
                let stop = &stop;
                let make_worker = &make_worker;
                s.spawn(move || {
                    let mut op = make_worker(t);
                    let mut hist = new_histogram();
                    let mut i: u64 = 0;
                    barrier.wait();
                    'outer: loop {
                        // Check the stop flag once per batch: a relaxed load per op is cheap,
                        // but a batch keeps it off the hot path entirely.
                        for _ in 0..LATENCY_SAMPLE_EVERY - 1 {
                            op(i);
                            i += 1;
                        }
                        let start = Instant::now();
                        op(i);
                        record(&mut hist, start.elapsed());
                        i += 1;
                        if stop.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                    }
                    (i, hist)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        let mut merged = new_histogram();
        for h in handles {
            let (ops, hist) = h.join().expect("benchmark worker panicked");
            total += ops;
            merged.add(&hist).expect("histograms share bounds");
        }
        (total, merged, start.elapsed())
    });
    Measurement {
        ops: total_ops,
        elapsed,
        latency: hist,
        extra: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn run_threads_counts_every_operation_on_every_thread() {
        let counted = AtomicU64::new(0);
        let m = run_threads(2, Duration::from_millis(20), |_| {
            |_| {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        });
        assert_eq!(m.ops, counted.load(Ordering::Relaxed));
        assert!(m.ops >= 2 * LATENCY_SAMPLE_EVERY);
        assert_eq!(m.latency.len(), m.ops / LATENCY_SAMPLE_EVERY);
    }
}
