//! `keel-bench ring`: lookups/s per placement algorithm at 8 and 512 nodes, Keel against
//! the same algorithm in `hash-rings` (ring, jump, rendezvous, weighted rendezvous,
//! Maglev, multi-probe) and `hashring` (ring).
//!
//! Every contender looks up the same 65,536 uniformly random `u64` keys, cycling. Keel
//! hashes a key with xxh3 (portable, fixed seed); the peers hash with their defaults
//! (`hash-rings`: SipHash-1-3 via `RandomState`, SipHash-2-4 fixed keys in Maglev and
//! multi-probe; `hashring`: SipHash-2-4). To separate the algorithm from the hash, the
//! ring, jump and rendezvous scenarios also run `hash-rings` with Keel's own xxh3 key hash
//! plugged in as its `BuildHasher` (`…+xxh3`).

use std::hash::{BuildHasher, Hasher};
use std::hint::black_box;

use keel_ring::{Jump, Maglev, MultiProbe, NodeId, Placement, Rendezvous, Ring};

use crate::harness::{Contender, run_threads};
use crate::workload::uniform_keys;
use crate::{Config, Report};

const KEYS: usize = 1 << 16;
const VNODES: usize = 100;
const PROBES: u32 = 21;
/// The algorithms compared, as named in the scenarios (`lookup <algorithm> N=<n>`).
const ALGORITHMS: [&str; 6] = [
    "ring-100",
    "jump",
    "rendezvous",
    "weighted rendezvous",
    "maglev-65537",
    "multi-probe-21",
];

/// A `BuildHasher` that hashes exactly like Keel: xxh3 over the value's bytes with Keel's
/// key seed, so `hash-rings` with this hasher hashes a `u64` key to the same 64-bit value.
#[derive(Debug, Clone, Copy, Default)]
struct KeelHash;

/// Buffers up to 32 bytes, then hashes them at `finish`.
#[derive(Debug, Default)]
struct KeelHasher {
    buf: [u8; 32],
    len: usize,
    overflow: u64,
}

impl Hasher for KeelHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == self.buf.len() {
                self.overflow = self.overflow.rotate_left(5) ^ keel_ring::hash_bytes(&self.buf);
                self.len = 0;
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn finish(&self) -> u64 {
        keel_ring::hash_bytes(&self.buf[..self.len]) ^ self.overflow
    }
}

impl BuildHasher for KeelHash {
    type Hasher = KeelHasher;
    fn build_hasher(&self) -> KeelHasher {
        KeelHasher::default()
    }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("node-{i:04}")).collect()
}

fn ids(n: usize) -> anyhow::Result<Vec<NodeId>> {
    names(n)
        .into_iter()
        .map(|s| NodeId::new(s).map_err(anyhow::Error::from))
        .collect()
}

/// A closed loop of lookups over the shared key array.
fn lookups<'a, F>(
    keys: &'a [u64],
    lookup: F,
) -> impl FnMut(usize, std::time::Duration) -> crate::Measurement + 'a
where
    F: Fn(u64) -> usize + Sync + Copy + 'a,
{
    move |threads, duration| {
        run_threads(threads, duration, |t| {
            let offset = t * 7919;
            move |i: u64| {
                let key = keys[(i as usize + offset) & (KEYS - 1)];
                black_box(lookup(black_box(key)));
            }
        })
    }
}

/// A Keel lookup that ends where the peers' does: the peers hand back the node's name
/// (`&String`, whose length the closures read), so Keel reads its `NodeId`'s name too
/// instead of stopping at the member index (one load cheaper).
fn keel_placement(p: &dyn Placement) -> impl Fn(u64) -> usize + Sync + Copy + '_ {
    move |k: u64| {
        p.node_for_hash(keel_ring::RingKey::ring_hash(&k))
            .map_or(0, |node| node.as_str().len())
    }
}

/// Jump hash: both sides return a bucket number, so Keel stops at the index as well.
fn keel_index(p: &dyn Placement) -> impl Fn(u64) -> usize + Sync + Copy + '_ {
    move |k: u64| {
        p.index_for_hash(keel_ring::RingKey::ring_hash(&k))
            .unwrap_or(0)
    }
}

/// Runs the ring benchmark.
pub fn run(cfg: &Config, report: &mut Report) -> anyhow::Result<()> {
    let keys = uniform_keys(u64::MAX, KEYS, 0x51ed);
    let keys = &keys[..];
    for &n in &[8usize, 512] {
        let scenario = |alg: &str| format!("lookup {alg} N={n}");
        // Building 512-node peers takes a moment: skip a node count no scenario wants.
        if !ALGORITHMS.iter().any(|alg| cfg.selected(&scenario(alg))) {
            continue;
        }
        let node_names = names(n);
        let node_ids = ids(n)?;
        let unit: Vec<(NodeId, u32)> = node_ids.iter().map(|i| (i.clone(), 1)).collect();
        let weighted: Vec<(NodeId, u32)> = node_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), 1 + (i % 4) as u32))
            .collect();

        // Keel placements, looked up through `&dyn Placement` (one indirect call each).
        let mut ring = Ring::new(VNODES as u32)?;
        ring.add_weighted_nodes(&unit)?;
        let mut jump = Jump::new();
        jump.add_weighted_nodes(&unit)?;
        let mut hrw = Rendezvous::new();
        hrw.add_weighted_nodes(&unit)?;
        let mut whrw = Rendezvous::new();
        whrw.add_weighted_nodes(&weighted)?;
        let mut maglev = Maglev::new(Maglev::DEFAULT_TABLE_SIZE)?;
        maglev.add_weighted_nodes(&unit)?;
        let mut mp = MultiProbe::new(PROBES)?;
        mp.add_weighted_nodes(&unit)?;

        // Peers.
        let mut hr_ring = hash_rings::consistent::Ring::new();
        let mut hr_ring_x = hash_rings::consistent::Ring::with_hasher(KeelHash);
        let mut hr_hrw = hash_rings::rendezvous::Ring::new();
        let mut hr_hrw_x = hash_rings::rendezvous::Ring::with_hasher(KeelHash);
        let mut hr_whrw = hash_rings::weighted_rendezvous::Ring::new();
        let mut hr_mp = hash_rings::mpc::Ring::new(u64::from(PROBES));
        for (i, name) in node_names.iter().enumerate() {
            hr_ring.insert_node(name, VNODES);
            hr_ring_x.insert_node(name, VNODES);
            hr_hrw.insert_node(name, 1);
            hr_hrw_x.insert_node(name, 1);
            hr_whrw.insert_node(name, f64::from(1 + (i % 4) as u32));
            hr_mp.insert_node(name);
        }
        let hr_jump = hash_rings::jump::Ring::new(n as u32);
        let hr_jump_x = hash_rings::jump::Ring::with_hasher(KeelHash, n as u32);
        let hr_maglev = hash_rings::maglev::Ring::with_capacity_hint(
            node_names.iter().collect(),
            Maglev::DEFAULT_TABLE_SIZE as usize,
        );
        let mut hashring = hashring::HashRing::new();
        hashring.batch_add(
            node_names
                .iter()
                .flat_map(|name| (0..VNODES).map(move |v| (name.as_str(), v)))
                .collect(),
        );

        // Every closure returns something derived from the answer so nothing is elided.
        let len = |s: &String| s.len();
        for &threads in &cfg.threads {
            report.compare(
                cfg,
                &scenario("ring-100"),
                threads,
                &mut [
                    Contender::keel("keel-ring", lookups(keys, keel_placement(&ring))),
                    Contender::peer("hash-rings", lookups(keys, |k| len(hr_ring.get_node(&k)))),
                    Contender::peer(
                        "hash-rings+xxh3",
                        lookups(keys, |k| len(hr_ring_x.get_node(&k))),
                    ),
                    Contender::peer(
                        "hashring",
                        lookups(keys, |k| hashring.get(&k).map_or(0, |(_, v)| *v)),
                    ),
                ],
            );
            report.compare(
                cfg,
                &scenario("jump"),
                threads,
                &mut [
                    Contender::keel("keel-jump", lookups(keys, keel_index(&jump))),
                    Contender::peer(
                        "hash-rings",
                        lookups(keys, |k| hr_jump.get_node(&k) as usize),
                    ),
                    Contender::peer(
                        "hash-rings+xxh3",
                        lookups(keys, |k| hr_jump_x.get_node(&k) as usize),
                    ),
                ],
            );
            report.compare(
                cfg,
                &scenario("rendezvous"),
                threads,
                &mut [
                    Contender::keel("keel-rendezvous", lookups(keys, keel_placement(&hrw))),
                    Contender::peer("hash-rings", lookups(keys, |k| len(hr_hrw.get_node(&k)))),
                    Contender::peer(
                        "hash-rings+xxh3",
                        lookups(keys, |k| len(hr_hrw_x.get_node(&k))),
                    ),
                ],
            );
            report.compare(
                cfg,
                &scenario("weighted rendezvous"),
                threads,
                &mut [
                    Contender::keel(
                        "keel-rendezvous-weighted",
                        lookups(keys, keel_placement(&whrw)),
                    ),
                    Contender::peer(
                        "hash-rings-weighted",
                        lookups(keys, |k| len(hr_whrw.get_node(&k))),
                    ),
                ],
            );
            report.compare(
                cfg,
                &scenario("maglev-65537"),
                threads,
                &mut [
                    Contender::keel("keel-maglev", lookups(keys, keel_placement(&maglev))),
                    Contender::peer("hash-rings", lookups(keys, |k| len(hr_maglev.get_node(&k)))),
                ],
            );
            report.compare(
                cfg,
                &scenario("multi-probe-21"),
                threads,
                &mut [
                    Contender::keel("keel-multi-probe", lookups(keys, keel_placement(&mp))),
                    Contender::peer("hash-rings", lookups(keys, |k| len(hr_mp.get_node(&k)))),
                ],
            );
        }
    }
    report.note(
        "keys: 65,536 uniform u64, cycled; Keel hashes with xxh3, hash-rings/hashring with \
         SipHash (their defaults); `+xxh3` rows give hash-rings Keel's exact key hash",
    );
    report.note(format!(
        "ring: {VNODES} vnodes per node in all three crates (hashring: {VNODES} (node, i) entries \
         per node); maglev: table size {} for both; multi-probe: {PROBES} probes for both",
        Maglev::DEFAULT_TABLE_SIZE
    ));
    Ok(())
}
