//! kcat (librdkafka) against the broker binary: 10,000 keyed messages produced and consumed
//! back (content and per-key order compared), and `kcat -L` metadata. Skips with a visible
//! line when kcat is absent, unless `KEEL_REQUIRE_KCAT=1`.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::BrokerProcess;
use keel_testkit::{Lookup, skip_or_fail};

fn kcat() -> Option<std::path::PathBuf> {
    let lookup = Lookup::find("kcat", "KEEL_KCAT", &[]);
    if lookup.found.is_none() {
        let required = keel_testkit::skip::required("KEEL_REQUIRE_KCAT");
        skip_or_fail(
            "kcat tests",
            &lookup,
            "KEEL_REQUIRE_KCAT",
            required,
            "apt-get install -y kcat",
        );
    }
    lookup.found
}

/// Runs kcat with a hard timeout; returns stdout.
fn run(kcat: &std::path::Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new(kcat);
    cmd.args(args);
    let (ok, out, err) = common::run_bounded(cmd, stdin, Duration::from_secs(120));
    assert!(ok, "kcat {args:?} failed: {err}");
    out
}

#[test]
fn kcat_produces_and_consumes_10000_keyed_messages_in_per_key_order() {
    let Some(kcat) = kcat() else { return };
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(dir.path(), &["--auto-create-topics", "--partitions", "4"]);
    let b = broker.addr.to_string();
    let mut input = String::new();
    for i in 0..10_000 {
        input.push_str(&format!("key{}:value-{i}\n", i % 37));
    }
    run(
        &kcat,
        &["-b", &b, "-P", "-t", "orders", "-K:", "-X", "acks=all"],
        Some(input.as_bytes()),
    );
    let out = run(
        &kcat,
        &[
            "-b",
            &b,
            "-C",
            "-t",
            "orders",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p %k %s\n",
        ],
        None,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10_000, "every message comes back exactly once");
    let mut per_key: HashMap<&str, Vec<u32>> = HashMap::new();
    let mut partition_of: HashMap<&str, &str> = HashMap::new();
    for l in &lines {
        let mut it = l.splitn(3, ' ');
        let (p, k, v) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert_eq!(
            *partition_of.entry(k).or_insert(p),
            p,
            "a key stays on one partition"
        );
        per_key
            .entry(k)
            .or_default()
            .push(v.trim_start_matches("value-").parse().unwrap());
    }
    assert_eq!(per_key.len(), 37);
    for (k, vs) in &per_key {
        assert!(
            vs.windows(2).all(|w| w[0] < w[1]),
            "per-key order held for {k}"
        );
        let n: usize = k.trim_start_matches("key").parse().unwrap();
        assert_eq!(vs.len(), (0..10_000).filter(|i| i % 37 == n).count());
    }
    let partitions: std::collections::HashSet<&str> = partition_of.values().copied().collect();
    assert!(partitions.len() > 1, "keys spread over the partitions");
    println!(
        "kcat: produced 10000, consumed {} over {} partitions, {} keys in order",
        lines.len(),
        partitions.len(),
        per_key.len()
    );
    let md = run(&kcat, &["-b", &b, "-L", "-t", "orders"], None);
    assert!(md.contains("topic \"orders\" with 4 partitions"), "{md}");
    assert!(md.contains(&format!("broker 0 at {b}")), "{md}");
}
