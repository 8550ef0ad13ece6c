//! Fixed key → node vectors: placement must be identical on every machine and every
//! build. `tests/vectors/placement.tsv` is checked in; regenerate only on a deliberate
//! format change with `KEEL_RING_WRITE_VECTORS=1 cargo test -p keel-ring --test vectors`.

mod common;

use common::node;
use keel_ring::{Jump, Maglev, MultiProbe, Placement, Rendezvous, Ring, RingKey};

fn placements() -> Vec<(&'static str, Box<dyn Placement>, bool)> {
    vec![
        ("ring-100", Box::new(Ring::new(100).unwrap()), false),
        ("ring-100-weighted", Box::new(Ring::new(100).unwrap()), true),
        ("jump", Box::new(Jump::new()), false),
        ("rendezvous", Box::new(Rendezvous::new()), false),
        ("rendezvous-weighted", Box::new(Rendezvous::new()), true),
        (
            "maglev-65537",
            Box::new(Maglev::new(65_537).unwrap()),
            false,
        ),
        (
            "maglev-65537-weighted",
            Box::new(Maglev::new(65_537).unwrap()),
            true,
        ),
        (
            "multi-probe-21",
            Box::new(MultiProbe::new(21).unwrap()),
            false,
        ),
    ]
}

fn compute() -> String {
    let mut out = String::from("# algorithm\tkey\tnode\treplicas(3)\n");
    // Also pin the key hash itself.
    for key in ["", "a", "user:42"] {
        out.push_str(&format!("hash\t{key}\t{:016x}\t-\n", key.ring_hash()));
    }
    out.push_str(&format!("hash\tu64:7\t{:016x}\t-\n", 7u64.ring_hash()));
    for (name, mut p, weighted) in placements() {
        for i in 0..10 {
            let w = if weighted { 1 + (i % 3) as u32 } else { 1 };
            p.add_weighted_node(node(i), w).unwrap();
        }
        let mut reps = Vec::new();
        for k in 0..40 {
            let key = format!("key-{k}");
            let owner = p.node_for_hash(key.ring_hash()).unwrap();
            p.replica_indices_for_hash(key.ring_hash(), 3, &mut reps);
            let names: Vec<&str> = reps.iter().map(|&i| p.nodes()[i].as_str()).collect();
            out.push_str(&format!("{name}\t{key}\t{owner}\t{}\n", names.join(",")));
        }
    }
    out
}

#[test]
fn fixed_vectors_match() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/placement.tsv");
    let actual = compute();
    if std::env::var_os("KEEL_RING_WRITE_VECTORS").is_some() {
        std::fs::write(path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(path).expect("checked-in vector file");
    for (line, (e, a)) in expected.lines().zip(actual.lines()).enumerate() {
        assert_eq!(e, a, "vector line {} differs", line + 1);
    }
    assert_eq!(expected.lines().count(), actual.lines().count());
}
