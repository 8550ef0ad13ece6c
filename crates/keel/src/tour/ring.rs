//! Tour scenario for `keel-ring`: every placement algorithm on the same nodes and keys,
//! what moves when a node joins and leaves, and a Zipf workload with a hot key that is
//! detected and then spread.
//!
//! Parts: the placement comparison (analysis harness), single-thread lookups, hot-key
//! detection, spreading hot reads over replicas, and bounded loads. The last three share
//! the workload ([`traffic`]) and the detector through [`Shared`].

mod traffic;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use keel_ring::analysis::{self, Algorithm, AlgorithmReport, AnalysisConfig};
use keel_ring::{BoundedLoads, HotKeyDetector, NodeId, Placement, ReadSpreader, Ring, RingKey};

use super::{Chart, SummaryRow, SystemReport, Table, Tour, latency_histogram};
use crate::report::charts::{Series, bar_chart};
use traffic::{HOT_KEY, HOT_SHARE};

/// Keys at or above this share of traffic have their reads spread.
const SPREAD_THRESHOLD: f64 = 0.01;
/// Nodes of the hot-key cache cluster.
const CLUSTER_NODES: usize = 8;

pub(crate) fn run(tour: &Tour) -> anyhow::Result<SystemReport> {
    let mut report = SystemReport::for_system(
        "ring",
        "Seven placements (ring with 100 and 1000 virtual nodes, jump, rendezvous, Maglev, \
         multi-probe, bounded loads) place the same keys on 8, 64 and 512 nodes; one node \
         joins and one leaves. Then a cache cluster of 8 nodes serves Zipf traffic in which \
         one key takes 10 % of the requests: the hot-key detector finds it, and spreading its \
         reads over 3 replicas or routing with bounded loads flattens the load.",
    );
    tour.run_parts(
        &mut report,
        &mut Shared::default(),
        &[
            ("compare placements", compare_placements),
            ("lookups", lookups),
            ("detect the hot key", detect_hot_key),
            ("spread hot reads", spread_hot_reads),
            ("bounded loads", bounded_loads),
        ],
    )?;
    Ok(report)
}

/// What the hot-key parts share: the cluster, the requests and what each routing did.
#[derive(Debug, Default)]
struct Shared {
    hot: Option<HotKeys>,
}

#[derive(Debug)]
struct HotKeys {
    nodes: Vec<NodeId>,
    ring: Ring,
    traffic: Vec<u64>,
    detector: HotKeyDetector<u64>,
    /// Per-node share of requests (%), primary routing.
    before: Vec<f64>,
    /// Per-node share of requests (%), hot reads spread over 3 replicas.
    spread: Vec<f64>,
}

impl Shared {
    fn hot(&mut self) -> anyhow::Result<&mut HotKeys> {
        self.hot
            .as_mut()
            .context("needs the \"detect the hot key\" part to have run")
    }
}

fn compare_placements(
    tour: &Tour,
    _: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = AnalysisConfig {
        keys: tour.size(200_000, 1_000_000),
        threads,
        ..AnalysisConfig::full()
    };
    if tour.quick() {
        report.notes.push(format!(
            "quick run: {} keys instead of 1,000,000 (σ includes more sampling noise)",
            config.keys
        ));
    }
    comparison(tour, &config, report)
}

fn comparison(
    tour: &Tour,
    config: &AnalysisConfig,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let steps = (config.algorithms.len() * config.node_counts.len()) as u64;
    let bar = tour.progress("ring: compare placements", steps);
    let reports = analysis::analyze(config, |r| {
        bar.set_message(format!("{} N={}", r.algorithm, r.nodes));
        bar.inc(1);
    })?;
    bar.finish_and_clear();

    let mut table = Table::new(
        format!(
            "Placement compared ({} keys; moved ×K/N: 1.0 is optimal; extra = keys moved between \
             surviving nodes)",
            config.keys
        ),
        &[
            "algorithm",
            "N",
            "peak/mean",
            "σ %",
            "join moved ×K/N",
            "join moved elsewhere",
            "leave moved ×K/N",
            "leave extra",
            "ns/lookup",
            "memory",
            "build",
            "weighted dev %",
            "published",
        ],
    );
    for r in &reports {
        table.row(vec![
            r.algorithm.clone(),
            r.nodes.to_string(),
            format!("{:.3}", r.peak_to_mean),
            format!("{:.2}", r.stddev_pct),
            format!("{:.3}", r.moved_on_add_ratio),
            r.moved_on_add_elsewhere.to_string(),
            format!("{:.3}", r.moved_on_remove_ratio),
            r.moved_on_remove_extra.to_string(),
            format!("{:.1}", r.lookup_ns),
            format!("{} KiB", r.memory_bytes.div_ceil(1024)),
            format!("{:.2} ms", r.build_time.as_secs_f64() * 1e3),
            r.weighted_deviation_pct
                .map_or_else(|| "n/a".to_string(), |d| format!("{d:.1}")),
            r.published.to_string(),
        ]);
    }
    report.tables.push(table);

    // Chart: load per node at N = 8, one series per algorithm.
    let at = |n: usize| reports.iter().filter(move |r| r.nodes == n);
    let categories: Vec<String> = (0..8).map(|i| format!("node-{i}")).collect();
    let series: Vec<Series> = at(8)
        .map(|r| Series::bars(r.algorithm.clone(), r.loads.iter().map(|&l| l as f64)))
        .collect();
    report.charts.push(Chart::new(
        "Keys per node, 8 nodes",
        format!(
            "{} keys on 8 nodes. The ring with 100 virtual nodes is visibly uneven (σ ≈ 1/√100); \
             1000 virtual nodes, jump, rendezvous and Maglev are flat; multi-probe starves a node \
             whose single point sits just after another's.",
            config.keys
        ),
        bar_chart("Keys per node (N = 8)", "keys", &categories, &series)?,
    ));

    // Chart: keys moved on join and leave at N = 64.
    let n_moved = 64;
    let algos: Vec<&AlgorithmReport> = at(n_moved).collect();
    let categories: Vec<String> = algos.iter().map(|r| r.algorithm.clone()).collect();
    let ideal_join = config.keys as f64 / (n_moved + 1) as f64;
    let ideal_leave = config.keys as f64 / n_moved as f64;
    let series = vec![
        Series::bars(
            "join: moved to the new node",
            algos
                .iter()
                .map(|r| (r.moved_on_add - r.moved_on_add_elsewhere) as f64),
        ),
        Series::bars(
            "join: moved elsewhere",
            algos.iter().map(|r| r.moved_on_add_elsewhere as f64),
        ),
        Series::bars(
            "leave: the leaver's keys",
            algos
                .iter()
                .map(|r| (r.moved_on_remove - r.moved_on_remove_extra) as f64),
        ),
        Series::bars(
            "leave: extra",
            algos.iter().map(|r| r.moved_on_remove_extra as f64),
        ),
    ];
    report.charts.push(Chart::new(
        "Keys moved when a node joins and when one leaves (N = 64)",
        format!(
            "Ideal: K/(N+1) ≈ {ideal_join:.0} keys move to a joining node and K/N ≈ {ideal_leave:.0} \
             keys (the leaver's) move on a leave; nothing else. Maglev and bounded loads move some \
             keys between surviving nodes (the \"elsewhere\"/\"extra\" bars)."
        ),
        bar_chart("Keys moved (N = 64)", "keys", &categories, &series)?,
    ));

    // Checks from what was measured.
    let minimal = [
        "ring-100",
        "ring-1000",
        "jump",
        "rendezvous",
        "multi-probe-21",
    ];
    let violations: Vec<String> = reports
        .iter()
        .filter(|r| minimal.contains(&r.algorithm.as_str()))
        .filter(|r| r.moved_on_add_elsewhere + r.moved_on_remove_extra > 0)
        .map(|r| format!("{} N={}", r.algorithm, r.nodes))
        .collect();
    report.check(
        "minimal disruption (ring, jump at the tail, rendezvous, multi-probe)",
        violations.is_empty(),
        if violations.is_empty() {
            "0 keys moved between surviving nodes on any join or leave".to_string()
        } else {
            format!("extra movement in {}", violations.join(", "))
        },
    );
    let maglev_worst = reports
        .iter()
        .filter(|r| r.algorithm.starts_with("maglev"))
        .map(|r| r.moved_on_remove_extra as f64 / r.keys as f64)
        .fold(0.0f64, f64::max);
    report.check(
        "Maglev extra movement within its documented bound",
        maglev_worst <= keel_ring::maglev::EXTRA_MOVEMENT_BOUND,
        format!(
            "worst {:.2} % of keys moved between surviving nodes on a leave (bound {:.0} %)",
            100.0 * maglev_worst,
            100.0 * keel_ring::maglev::EXTRA_MOVEMENT_BOUND
        ),
    );
    let bounded: Vec<&AlgorithmReport> = reports.iter().filter(|r| r.cap.is_some()).collect();
    let over = bounded
        .iter()
        .filter(|r| r.loads.iter().max().copied().unwrap_or(0) > r.cap.unwrap_or(0))
        .count();
    report.check(
        "bounded loads: peak ≤ ⌈(1+ε)·avg⌉",
        over == 0,
        bounded
            .iter()
            .map(|r| {
                format!(
                    "N={}: peak {} ≤ cap {}",
                    r.nodes,
                    r.loads.iter().max().copied().unwrap_or(0),
                    r.cap.unwrap_or(0)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    );
    // σ of a ring = virtual-node noise (1/√v) combined with key sampling noise (√(N/K)).
    let ring_ok: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            let v: f64 = r.algorithm.strip_prefix("ring-")?.parse().ok()?;
            let predicted = 100.0 * (1.0 / v + r.nodes as f64 / r.keys as f64).sqrt();
            Some((r, predicted))
        })
        .filter(|(r, predicted)| r.stddev_pct > 1.6 * predicted || r.stddev_pct < predicted / 1.6)
        .map(|(r, p)| {
            format!(
                "{} N={}: {:.2} vs {:.2}",
                r.algorithm, r.nodes, r.stddev_pct, p
            )
        })
        .collect();
    report.check(
        "ring σ matches 1/√vnodes (plus sampling noise) within a factor 1.6",
        ring_ok.is_empty(),
        if ring_ok.is_empty() {
            at(64)
                .filter(|r| r.algorithm.starts_with("ring-"))
                .map(|r| format!("{} N=64: σ {:.2} %", r.algorithm, r.stddev_pct))
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            ring_ok.join("; ")
        },
    );
    Ok(())
}

/// Single-thread lookups/s per algorithm at 64 nodes, with sampled latency.
fn lookups(tour: &Tour, _: &mut Shared, report: &mut SystemReport) -> anyhow::Result<()> {
    let duration = tour.size(Duration::from_millis(60), Duration::from_millis(250));
    let members: Vec<(NodeId, u32)> = (0..64).map(|i| (analysis::node_name(i), 1)).collect();
    for algorithm in Algorithm::standard() {
        if matches!(algorithm, Algorithm::BoundedLoads { .. }) {
            continue; // stateful; its acquire cost is in the comparison table
        }
        let mut p = algorithm.build()?;
        p.add_weighted_nodes(&members)?;
        let m = keel_bench::harness::run_threads(1, duration, |_| {
            let p = &p;
            move |i: u64| {
                std::hint::black_box(p.index_for_hash(i.ring_hash()));
            }
        });
        report.summary.push(SummaryRow::from_histogram(
            format!("{} lookup, 64 nodes, 1 thread", algorithm.label()),
            "lookups/s",
            m.ops,
            m.elapsed,
            &m.latency,
        ));
    }
    Ok(())
}

/// Per-node share of requests, in node order.
fn shares(counts: &BTreeMap<NodeId, u64>, nodes: &[NodeId]) -> Vec<f64> {
    let total: u64 = counts.values().sum::<u64>().max(1);
    nodes
        .iter()
        .map(|n| 100.0 * counts.get(n).copied().unwrap_or(0) as f64 / total as f64)
        .collect()
}

/// Phase 1: every read goes to its primary on a 100-vnode ring; the detector watches.
fn detect_hot_key(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let requests: u64 = tour.size(200_000, 1_000_000);
    let nodes: Vec<NodeId> = (0..CLUSTER_NODES).map(analysis::node_name).collect();
    let mut ring = Ring::new(100)?;
    let members: Vec<(NodeId, u32)> = nodes.iter().map(|n| (n.clone(), 1)).collect();
    ring.add_weighted_nodes(&members)?;
    // Simulated time: 20,000 requests per second of mock clock.
    let (clock, mock) = keel_ring::quanta::Clock::mock();
    let mut detector = HotKeyDetector::builder()
        .capacity(128)
        .half_life(Duration::from_secs(5))
        .clock(clock)
        .build()?;
    let traffic = traffic::zipf_with_hot_key(requests)?;

    let bar = tour.progress("ring: detect hot keys", requests);
    let mut before: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut latency = latency_histogram();
    let start = Instant::now();
    for (i, key) in traffic.iter().enumerate() {
        let node = ring
            .node_for(key)
            .ok_or_else(|| anyhow::anyhow!("empty ring"))?;
        *before.entry(node.clone()).or_default() += 1;
        if i % 64 == 0 {
            let t = Instant::now();
            detector.observe(key, node);
            keel_bench::harness::record(&mut latency, t.elapsed());
        } else {
            detector.observe(key, node);
        }
        mock.increment(Duration::from_micros(50));
        if i % 65_536 == 0 {
            bar.set_position(i as u64);
        }
    }
    let detect_elapsed = start.elapsed();
    bar.finish_and_clear();
    report.summary.push(SummaryRow::from_histogram(
        "hot-key detector: route + observe",
        "requests/s",
        requests,
        detect_elapsed,
        &latency,
    ));
    let top = detector.top(5);
    let hot: Vec<u64> = detector.hot_keys(0.05).iter().map(|h| h.key).collect();
    let mut table = Table::new(
        "Hottest keys seen by the detector (Space-Saving, k = 128, half-life 5 s)",
        &["key", "estimated share %", "error bound %", "primary node"],
    );
    for h in &top {
        table.row(vec![
            if h.key == HOT_KEY {
                format!("{} (planted)", h.key)
            } else {
                h.key.to_string()
            },
            format!("{:.2}", 100.0 * h.share),
            format!(
                "{:.3}",
                100.0 * h.error / detector.total().max(f64::MIN_POSITIVE)
            ),
            ring.node_for(&h.key)
                .map_or_else(String::new, ToString::to_string),
        ]);
    }
    report.tables.push(table);
    let mut share_table = Table::new(
        "Per-node load share reported by the detector (primary routing)",
        &["node", "share %"],
    );
    for (node, share) in detector.node_shares() {
        share_table.row(vec![node.to_string(), format!("{:.2}", 100.0 * share)]);
    }
    report.tables.push(share_table);
    let hot_share = detector.share_of(&HOT_KEY);
    report.check(
        "planted hot key detected",
        top.first().is_some_and(|h| h.key == HOT_KEY) && hot.contains(&HOT_KEY),
        format!(
            "key {HOT_KEY} is #1 with an estimated {:.1} % of traffic (planted {:.0} %)",
            100.0 * hot_share,
            100.0 * HOT_SHARE
        ),
    );
    let before = shares(&before, &nodes);
    shared.hot = Some(HotKeys {
        nodes,
        ring,
        traffic,
        detector,
        before,
        spread: Vec::new(),
    });
    Ok(())
}

/// Phase 2: reads of keys the detector flags rotate over 3 replicas. The threshold (1 %)
/// is above 1/k = 0.78 %, where Space-Saving guarantees no false negatives.
fn spread_hot_reads(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let hot = shared.hot()?;
    let spreader = ReadSpreader::new(3)?;
    let bar = tour.spinner("ring: spread hot reads");
    let mut spread: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut spread_routed = 0u64;
    for key in &hot.traffic {
        let is_hot = hot.detector.is_hot(key, SPREAD_THRESHOLD);
        let node = spreader
            .route(&hot.ring, key, is_hot)
            .ok_or_else(|| anyhow::anyhow!("empty ring"))?;
        spread_routed += u64::from(is_hot);
        *spread.entry(node.clone()).or_default() += 1;
    }
    bar.finish_and_clear();
    hot.spread = shares(&spread, &hot.nodes);
    report.check(
        "every flagged read went over the replica list",
        spreader.stats().spread_reads == spread_routed,
        format!(
            "{} of {} reads spread over 3 replicas (keys above {:.0} % of traffic)",
            spreader.stats().spread_reads,
            hot.traffic.len(),
            100.0 * SPREAD_THRESHOLD
        ),
    );
    Ok(())
}

/// Phase 3: bounded loads, 2,000 requests in flight (each released when it completes),
/// then the three routings side by side.
fn bounded_loads(
    tour: &Tour,
    shared: &mut Shared,
    report: &mut SystemReport,
) -> anyhow::Result<()> {
    let hot = shared.hot()?;
    let mut bounded = BoundedLoads::builder().vnodes(100).epsilon(0.25).build()?;
    let members: Vec<(NodeId, u32)> = hot.nodes.iter().map(|n| (n.clone(), 1)).collect();
    bounded.add_weighted_nodes(&members)?;
    let bar = tour.spinner("ring: bounded loads");
    let mut in_flight = std::collections::VecDeque::with_capacity(2_000);
    let mut capped: BTreeMap<NodeId, u64> = BTreeMap::new();
    let mut cap_violations = 0u64;
    for key in &hot.traffic {
        if in_flight.len() == 2_000 {
            if let Some(done) = in_flight.pop_front() {
                bounded.release(&done)?;
            }
        }
        let node = bounded.acquire(key)?;
        let cap = ((1.25 * bounded.total_load() as f64) / CLUSTER_NODES as f64).ceil() as u64;
        if bounded.load(&node).unwrap_or(0) > cap {
            cap_violations += 1;
        }
        *capped.entry(node.clone()).or_default() += 1;
        in_flight.push_back(node);
    }
    bar.finish_and_clear();

    let requests = hot.traffic.len();
    let capped_s = shares(&capped, &hot.nodes);
    let peak = |v: &[f64]| v.iter().copied().fold(0.0f64, f64::max);
    let categories: Vec<String> = hot.nodes.iter().map(|n| n.to_string()).collect();
    report.charts.push(Chart::new(
        "Hot key: load per node before and after mitigation",
        format!(
            "{requests} requests, Zipf({}) over 100k keys plus one key with {:.0} % of all \
             requests, {CLUSTER_NODES} nodes (ring, 100 vnodes). Fair share is 12.5 %. Before: \
             the hot key's primary carries {:.1} %. Spreading the reads of every detected key \
             above 1 % over 3 replicas: peak {:.1} % (what remains is the ring's own \
             imbalance). Bounded loads (ε = 0.25, 2,000 in flight): peak {:.1} %.",
            traffic::ZIPF_EXPONENT,
            100.0 * HOT_SHARE,
            peak(&hot.before),
            peak(&hot.spread),
            peak(&capped_s)
        ),
        bar_chart(
            "Share of requests per node (%)",
            "% of requests",
            &categories,
            &[
                Series::bars("before: primary only", hot.before.clone()),
                Series::bars("after: hot reads over 3 replicas", hot.spread.clone()),
                Series::bars("after: bounded loads ε=0.25", capped_s.clone()),
            ],
        )?,
    ));
    report.check(
        "mitigation lowers the hottest node's share",
        !hot.spread.is_empty()
            && peak(&hot.spread) < peak(&hot.before)
            && peak(&capped_s) < peak(&hot.before),
        format!(
            "peak {:.1} % → {:.1} % (spread reads), {:.1} % (bounded loads)",
            peak(&hot.before),
            peak(&hot.spread),
            peak(&capped_s)
        ),
    );
    report.check(
        "bounded loads never above its cap while routing",
        cap_violations == 0,
        format!(
            "{cap_violations} acquisitions above ⌈1.25 × in-flight / {CLUSTER_NODES}⌉; {} forwarded past a full node",
            bounded.stats().forwarded
        ),
    );
    Ok(())
}
