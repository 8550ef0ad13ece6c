//! The comparison harness: every algorithm, the same nodes, the same keys.
//!
//! For each algorithm and node count it measures the load balance (peak-to-mean,
//! standard deviation in % of the mean), the keys moved when one node joins and when one
//! leaves (relative to the ideal K/N, and how many moved *between surviving nodes*), the
//! lookup time, the memory and build time, and for weighted nodes the deviation from the
//! weight share. `keel-bench ring` and `keel tour` both call [`analyze`].
//!
//! Keys are the integers `0..K` (hashed with [`crate::RingKey`]); nodes are named
//! `node-0000`, `node-0001`, …; the joining node is the next name, the leaving node is the
//! middle one (the last one for jump hash, which can only shrink at the tail).
//! Lookups run on `threads` threads over disjoint key ranges.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::bounded::BoundedLoads;
use crate::error::{BuildError, RingError};
use crate::hash::RingKey;
use crate::jump::Jump;
use crate::maglev::Maglev;
use crate::multi_probe::MultiProbe;
use crate::node::NodeId;
use crate::placement::Placement;
use crate::rendezvous::Rendezvous;
use crate::ring::Ring;

/// An algorithm and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    /// Ring with `vnodes` virtual nodes per node.
    Ring {
        /// Virtual nodes per weight unit.
        vnodes: u32,
    },
    /// Jump consistent hash.
    Jump,
    /// Weighted rendezvous (HRW).
    Rendezvous,
    /// Maglev with a prime table size.
    Maglev {
        /// Table size `M`.
        table_size: u32,
    },
    /// Multi-probe with `probes` probes.
    MultiProbe {
        /// Probes per lookup.
        probes: u32,
    },
    /// Bounded loads over a ring.
    BoundedLoads {
        /// Virtual nodes per weight unit.
        vnodes: u32,
        /// Slack ε.
        epsilon: f64,
    },
}

impl Algorithm {
    /// The set compared in the crate docs, the bench and the tour.
    pub fn standard() -> Vec<Algorithm> {
        vec![
            Algorithm::Ring { vnodes: 100 },
            Algorithm::Ring { vnodes: 1000 },
            Algorithm::Jump,
            Algorithm::Rendezvous,
            Algorithm::Maglev {
                table_size: crate::maglev::DEFAULT_TABLE_SIZE,
            },
            Algorithm::MultiProbe {
                probes: crate::multi_probe::DEFAULT_PROBES,
            },
            Algorithm::BoundedLoads {
                vnodes: 100,
                epsilon: 0.25,
            },
        ]
    }

    /// A short label, e.g. `ring-100`, `maglev-65537`, `bounded-0.25`.
    pub fn label(&self) -> String {
        match self {
            Algorithm::Ring { vnodes } => format!("ring-{vnodes}"),
            Algorithm::Jump => "jump".to_string(),
            Algorithm::Rendezvous => "rendezvous".to_string(),
            Algorithm::Maglev { table_size } => format!("maglev-{table_size}"),
            Algorithm::MultiProbe { probes } => format!("multi-probe-{probes}"),
            Algorithm::BoundedLoads { epsilon, .. } => format!("bounded-{epsilon}"),
        }
    }

    /// A new, empty placement.
    ///
    /// # Errors
    /// Invalid parameters, as the constructors.
    pub fn build(&self) -> Result<Box<dyn Placement>, RingError> {
        Ok(match *self {
            Algorithm::Ring { vnodes } => Box::new(Ring::new(vnodes)?),
            Algorithm::Jump => Box::new(Jump::new()),
            Algorithm::Rendezvous => Box::new(Rendezvous::new()),
            Algorithm::Maglev { table_size } => Box::new(Maglev::new(table_size)?),
            Algorithm::MultiProbe { probes } => Box::new(MultiProbe::new(probes)?),
            Algorithm::BoundedLoads { vnodes, epsilon } => {
                Box::new(BoundedLoads::new(vnodes, epsilon)?)
            }
        })
    }

    /// True when the algorithm accepts weights other than 1.
    pub fn supports_weights(&self) -> bool {
        !matches!(self, Algorithm::Jump)
    }

    /// The figure published for this algorithm (what Keel's numbers are compared to).
    pub fn published(&self) -> &'static str {
        match self {
            Algorithm::Ring { vnodes: 100 } => "σ ≈ 10 % of mean (1/√100)",
            Algorithm::Ring { vnodes: 1000 } => "σ ≈ 3.2 % of mean (1/√1000)",
            Algorithm::Ring { .. } => "σ ≈ 1/√vnodes of mean",
            Algorithm::Jump => "σ ≈ 0 (binomial noise only); optimal movement K/N",
            Algorithm::Rendezvous => "even in expectation (binomial noise); optimal movement",
            Algorithm::Maglev { .. } => {
                "near-perfect balance; more than minimal movement on removal"
            }
            Algorithm::MultiProbe { .. } => "21 probes: peak-to-mean ≈ 1.05",
            Algorithm::BoundedLoads { .. } => "peak ≤ ⌈(1+ε)·avg⌉",
        }
    }
}

/// What to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisConfig {
    /// Algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Node counts, e.g. 8, 64, 512.
    pub node_counts: Vec<usize>,
    /// Number of keys.
    pub keys: usize,
    /// Threads used for the lookup passes.
    pub threads: usize,
}

impl AnalysisConfig {
    /// The full comparison: N ∈ {8, 64, 512}, 1,000,000 keys.
    pub fn full() -> Self {
        Self {
            algorithms: Algorithm::standard(),
            node_counts: vec![8, 64, 512],
            keys: 1_000_000,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Same shape with 200,000 keys (labelled in reports by `keys`).
    pub fn quick() -> Self {
        Self {
            keys: 200_000,
            ..Self::full()
        }
    }
}

/// Results for one algorithm at one node count.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgorithmReport {
    /// Algorithm label.
    pub algorithm: String,
    /// What the literature says.
    pub published: &'static str,
    /// Node count.
    pub nodes: usize,
    /// Key count.
    pub keys: usize,
    /// Keys per node, in node-name order.
    pub loads: Vec<u64>,
    /// Largest load / mean load.
    pub peak_to_mean: f64,
    /// Standard deviation of the load, % of the mean.
    pub stddev_pct: f64,
    /// Keys that moved when one node joined.
    pub moved_on_add: u64,
    /// `moved_on_add / (K / (N+1))` — 1.0 is optimal.
    pub moved_on_add_ratio: f64,
    /// Of those, keys that moved somewhere other than the new node (0 for minimal
    /// disruption).
    pub moved_on_add_elsewhere: u64,
    /// Keys that moved when one node left.
    pub moved_on_remove: u64,
    /// `moved_on_remove / (K / N)` — 1.0 is optimal.
    pub moved_on_remove_ratio: f64,
    /// Of those, keys that were not on the leaving node (extra movement).
    pub moved_on_remove_extra: u64,
    /// Mean nanoseconds per lookup on one thread (including hashing the key), over up to
    /// 200,000 keys; for bounded loads, per `acquire`.
    pub lookup_ns: f64,
    /// Heap memory of the placement.
    pub memory_bytes: usize,
    /// Time to build the placement with all nodes.
    pub build_time: Duration,
    /// With weights 1, 2, 3, 4 (cycling): largest |actual share / weight share − 1|, in %.
    /// `None` when the algorithm has no weights.
    pub weighted_deviation_pct: Option<f64>,
    /// Bounded loads only: the cap `⌈(1+ε)·K/N⌉` the peak is compared to.
    pub cap: Option<u64>,
}

/// Node names used by the harness.
pub fn node_name(i: usize) -> NodeId {
    NodeId::from_nonempty(format!("node-{i:04}"))
}

/// Runs the whole comparison; `progress` is called after each (algorithm, N).
///
/// # Errors
/// Only if an algorithm's parameters are invalid.
pub fn analyze(
    config: &AnalysisConfig,
    mut progress: impl FnMut(&AlgorithmReport),
) -> Result<Vec<AlgorithmReport>, RingError> {
    let mut reports = Vec::new();
    for &nodes in &config.node_counts {
        for algorithm in &config.algorithms {
            let report = analyze_one(*algorithm, nodes, config.keys, config.threads)?;
            progress(&report);
            reports.push(report);
        }
    }
    Ok(reports)
}

/// Which global node number each placement index is.
fn numbering(p: &dyn Placement, ids: &HashMap<NodeId, u32>) -> Vec<u32> {
    p.nodes().iter().map(|n| ids[n]).collect()
}

/// Assigns every key `0..keys` (global node numbers), returning the summed thread time.
fn assign(
    p: &dyn Placement,
    ids: &HashMap<NodeId, u32>,
    keys: usize,
    threads: usize,
) -> (Vec<u32>, Duration) {
    let map = numbering(p, ids);
    let mut out = vec![0u32; keys];
    let threads = threads.max(1);
    let chunk = keys.div_ceil(threads).max(1);
    let mut total = Duration::ZERO;
    std::thread::scope(|s| {
        let handles: Vec<_> = out
            .chunks_mut(chunk)
            .enumerate()
            .map(|(t, slice)| {
                let map = &map;
                s.spawn(move || {
                    let base = (t * chunk) as u64;
                    let start = Instant::now();
                    for (i, slot) in slice.iter_mut().enumerate() {
                        let hash = (base + i as u64).ring_hash();
                        *slot = p.index_for_hash(hash).map_or(u32::MAX, |x| map[x]);
                    }
                    start.elapsed()
                })
            })
            .collect();
        for h in handles {
            total += h.join().unwrap_or_default();
        }
    });
    (out, total)
}

/// Bounded loads are stateful: keys acquire one after another.
fn assign_bounded(
    router: &mut BoundedLoads,
    ids: &HashMap<NodeId, u32>,
    keys: usize,
) -> (Vec<u32>, Duration) {
    router.reset_loads();
    let map = numbering(router, ids);
    let index: HashMap<NodeId, usize> = router
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let start = Instant::now();
    let out = (0..keys as u64)
        .map(|k| {
            router
                .acquire_hash(k.ring_hash())
                .map_or(u32::MAX, |n| map[index[&n]])
        })
        .collect();
    (out, start.elapsed())
}

/// Mean lookup time on one thread over the first (up to) 200,000 keys, hashing included.
fn single_thread_lookup_ns(p: &dyn Placement, keys: usize) -> f64 {
    let sample = keys.clamp(1, 200_000) as u64;
    let start = Instant::now();
    let mut sink = 0usize;
    for k in 0..sample {
        sink ^= p.index_for_hash(k.ring_hash()).unwrap_or(0);
    }
    std::hint::black_box(sink);
    start.elapsed().as_nanos() as f64 / sample as f64
}

fn loads_of(assignment: &[u32], nodes: usize) -> Vec<u64> {
    let mut loads = vec![0u64; nodes];
    for &a in assignment {
        if let Some(l) = loads.get_mut(a as usize) {
            *l += 1;
        }
    }
    loads
}

/// `(peak / mean, σ % of mean)`.
pub fn balance(loads: &[u64]) -> (f64, f64) {
    if loads.is_empty() {
        return (0.0, 0.0);
    }
    let n = loads.len() as f64;
    let mean = loads.iter().sum::<u64>() as f64 / n;
    if mean == 0.0 {
        return (0.0, 0.0);
    }
    let peak = *loads.iter().max().unwrap_or(&0) as f64;
    let var = loads
        .iter()
        .map(|&l| (l as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (peak / mean, 100.0 * var.sqrt() / mean)
}

/// A built placement, its assignment, build time and summed lookup time.
type Run = (Box<dyn Placement>, Vec<u32>, Duration, Duration);

fn run(
    algorithm: Algorithm,
    members: &[(NodeId, u32)],
    ids: &HashMap<NodeId, u32>,
    keys: usize,
    threads: usize,
) -> Result<Run, RingError> {
    let start = Instant::now();
    let mut p = algorithm.build()?;
    p.add_weighted_nodes(members)?;
    let build = start.elapsed();
    let (assignment, lookups) = run_assign(algorithm, &mut p, ids, keys, threads)?;
    Ok((p, assignment, build, lookups))
}

fn run_assign(
    algorithm: Algorithm,
    p: &mut Box<dyn Placement>,
    ids: &HashMap<NodeId, u32>,
    keys: usize,
    threads: usize,
) -> Result<(Vec<u32>, Duration), RingError> {
    Ok(match algorithm {
        Algorithm::BoundedLoads { vnodes, epsilon } => {
            // Rebuild as the concrete type to acquire.
            let mut router = BoundedLoads::new(vnodes, epsilon)?;
            let members: Vec<(NodeId, u32)> = p
                .nodes()
                .iter()
                .map(|n| (n.clone(), p.weight(n).unwrap_or(1)))
                .collect();
            router.add_weighted_nodes(&members)?;
            let result = assign_bounded(&mut router, ids, keys);
            *p = Box::new(router);
            result
        }
        _ => assign(p.as_ref(), ids, keys, threads),
    })
}

/// Analyses one algorithm at one node count.
///
/// # Errors
/// Invalid algorithm parameters; [`BuildError::ZeroParameter`] for 0 nodes or 0 keys
/// (there is no balance or movement to measure).
pub fn analyze_one(
    algorithm: Algorithm,
    nodes: usize,
    keys: usize,
    threads: usize,
) -> Result<AlgorithmReport, RingError> {
    if nodes == 0 {
        return Err(BuildError::ZeroParameter { what: "nodes" }.into());
    }
    if keys == 0 {
        return Err(BuildError::ZeroParameter { what: "keys" }.into());
    }
    let all: Vec<NodeId> = (0..=nodes).map(node_name).collect();
    let ids: HashMap<NodeId, u32> = all
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i as u32))
        .collect();
    let members: Vec<(NodeId, u32)> = all[..nodes].iter().map(|n| (n.clone(), 1)).collect();

    let (mut p, before, build_time, lookup_time) = run(algorithm, &members, &ids, keys, threads)?;
    let loads = loads_of(&before, nodes);
    let (peak_to_mean, stddev_pct) = balance(&loads);
    let memory_bytes = p.memory_bytes();
    let lookup_ns = if matches!(algorithm, Algorithm::BoundedLoads { .. }) {
        // Acquire is sequential and stateful: its pass was timed on one thread.
        lookup_time.as_nanos() as f64 / keys.max(1) as f64
    } else {
        single_thread_lookup_ns(p.as_ref(), keys)
    };

    // One node joins.
    let joining = all[nodes].clone();
    p.add_node(joining)?;
    let (after_add, _) = run_assign(algorithm, &mut p, &ids, keys, threads)?;
    let mut moved_on_add = 0u64;
    let mut moved_on_add_elsewhere = 0u64;
    for (&b, &a) in before.iter().zip(&after_add) {
        if a != b {
            moved_on_add += 1;
            if a != nodes as u32 {
                moved_on_add_elsewhere += 1;
            }
        }
    }
    p.remove_node(&all[nodes])?;

    // One node leaves: the middle one, or the last for jump hash.
    let leaving = if matches!(algorithm, Algorithm::Jump) {
        nodes - 1
    } else {
        nodes / 2
    };
    let (after_remove, moved_on_remove, moved_on_remove_extra) = if nodes > 1 {
        p.remove_node(&all[leaving])?;
        let (after, _) = run_assign(algorithm, &mut p, &ids, keys, threads)?;
        let mut moved = 0u64;
        let mut extra = 0u64;
        for (&b, &a) in before.iter().zip(&after) {
            if a != b {
                moved += 1;
                if b != leaving as u32 {
                    extra += 1;
                }
            }
        }
        (Some(after), moved, extra)
    } else {
        (None, 0, 0)
    };
    drop(after_remove);

    // Weighted shares: weights 1, 2, 3, 4 cycling.
    let weighted_deviation_pct = if algorithm.supports_weights() {
        let weighted: Vec<(NodeId, u32)> = all[..nodes]
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), 1 + (i % 4) as u32))
            .collect();
        let total_weight: u32 = weighted.iter().map(|(_, w)| w).sum();
        let (_, assignment, _, _) = run(algorithm, &weighted, &ids, keys, threads)?;
        let wl = loads_of(&assignment, nodes);
        let worst = weighted
            .iter()
            .zip(&wl)
            .map(|((_, w), &l)| {
                let expected = keys as f64 * f64::from(*w) / f64::from(total_weight);
                (l as f64 / expected - 1.0).abs()
            })
            .fold(0.0f64, f64::max);
        Some(100.0 * worst)
    } else {
        None
    };

    let cap = match algorithm {
        Algorithm::BoundedLoads { epsilon, .. } => {
            Some(((1.0 + epsilon) * keys as f64 / nodes as f64).ceil() as u64)
        }
        _ => None,
    };

    let ideal_add = keys as f64 / (nodes + 1) as f64;
    let ideal_remove = keys as f64 / nodes as f64;
    Ok(AlgorithmReport {
        algorithm: algorithm.label(),
        published: algorithm.published(),
        nodes,
        keys,
        loads,
        peak_to_mean,
        stddev_pct,
        moved_on_add,
        moved_on_add_ratio: moved_on_add as f64 / ideal_add,
        moved_on_add_elsewhere,
        moved_on_remove,
        moved_on_remove_ratio: moved_on_remove as f64 / ideal_remove,
        moved_on_remove_extra,
        lookup_ns,
        memory_bytes,
        build_time,
        weighted_deviation_pct,
        cap,
    })
}

/// Renders reports as a Markdown table (used in docs, the bench and the tour).
pub fn markdown_table(reports: &[AlgorithmReport]) -> String {
    let mut s = String::from(
        "| algorithm | N | keys | peak/mean | σ % | moved on add (×K/N) | moved elsewhere | moved on remove (×K/N) | extra moved | ns/lookup | memory | build | weighted dev % |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.2} | {:.3} | {} | {:.3} | {} | {:.1} | {} KiB | {:.2} ms | {} |\n",
            r.algorithm,
            r.nodes,
            r.keys,
            r.peak_to_mean,
            r.stddev_pct,
            r.moved_on_add_ratio,
            r.moved_on_add_elsewhere,
            r.moved_on_remove_ratio,
            r.moved_on_remove_extra,
            r.lookup_ns,
            r.memory_bytes / 1024,
            r.build_time.as_secs_f64() * 1e3,
            r.weighted_deviation_pct
                .map_or("n/a".to_string(), |d| format!("{d:.2}")),
        ));
    }
    s
}
