//! kill -9 of a producing process under fsync-every-batch with acks = durable: after a
//! restart every acknowledged record is there, in order per partition, with no duplicates.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keel_stream::Stream;

fn rounds() -> usize {
    std::env::var("KEEL_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn every_acknowledged_record_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(u32, i64, String)> = Vec::new();
    for round in 0..rounds() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keel-stream-crash-producer"))
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Let it acknowledge a round-dependent number of records, then kill it mid-stream.
        let target = 300 + round * 250;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut this_round = 0;
        while this_round < target {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("child produced no acks in time");
            if let Some(rest) = line.strip_prefix("ack ") {
                let mut it = rest.split(' ');
                let p = it.next().unwrap().parse().unwrap();
                let o = it.next().unwrap().parse().unwrap();
                acked.push((p, o, it.next().unwrap().to_string()));
                this_round += 1;
            }
        }
        // SIGKILL: no destructors, no flush.
        child.kill().unwrap();
        child.wait().unwrap();
        // Acks printed before the kill are acknowledged too.
        reader.join().unwrap();
        while let Ok(line) = rx.try_recv() {
            if let Some(rest) = line.strip_prefix("ack ") {
                let mut it = rest.split(' ');
                let p = it.next().unwrap().parse().unwrap();
                let o = it.next().unwrap().parse().unwrap();
                acked.push((p, o, it.next().unwrap().to_string()));
            }
        }
    }
    let stream = Stream::builder().dir(dir.path()).build().unwrap();
    let mut found: HashMap<(u32, i64), String> = HashMap::new();
    let mut values = HashSet::new();
    let mut duplicates = 0;
    let mut total = 0;
    for p in 0..3 {
        let mut at = 0;
        let mut last_per_key: HashMap<String, String> = HashMap::new();
        loop {
            let f = stream.fetch("crash", p, at, 1 << 20).unwrap();
            if f.is_empty() {
                break;
            }
            for r in f.records().unwrap() {
                let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                let k = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                // Values are "<producer id>:<sequence>": per key and producer, strictly increasing.
                let (pid, _) = v.split_once(':').unwrap();
                if let Some(prev) = last_per_key.insert(format!("{k}/{pid}"), v.clone()) {
                    assert!(v > prev, "{k}: {v} after {prev}");
                }
                duplicates += usize::from(!values.insert(v.clone()));
                found.insert((p, r.offset), v);
                total += 1;
            }
            at = f.next_offset();
        }
    }
    let mut lost = 0;
    for (p, o, v) in &acked {
        if found.get(&(*p, *o)) != Some(v) {
            lost += 1;
        }
    }
    let truncated = stream.stats().recovered_truncated_bytes;
    eprintln!(
        "kill -9: {} rounds, acknowledged {}, recovered {total} records in the log ({} acked found), lost {lost}, \
         duplicates {duplicates}, torn bytes truncated on the last open {truncated}",
        rounds(),
        acked.len(),
        acked.len() - lost
    );
    assert_eq!(lost, 0, "an acknowledged record was lost");
    assert_eq!(duplicates, 0);
    assert!(acked.len() >= 300);
}
