//! Deterministic simulation: whole keel-dht clusters in one test, under a seed.
//!
//! Every node runs the real node code (`keel_dht::Node`) on turmoil's simulated network
//! and time: [`net::SimNetwork`] is the node's [`keel_dht::Network`], [`net::SkewedClock`]
//! its wall clock (with a per-node skew), a [`keel_dht::MemoryDisk`] its disk (kept across
//! crashes; a crash loses what was not synced). The seed decides everything the simulator
//! does: the fault schedule below, turmoil's random link failures and message latencies,
//! and the clients' choice of keys, nodes and stale contexts.
//!
//! # One run (simulated time)
//! 1. `n1..n3` start (N/R/W = 3/2/2, each with a clock skew of up to ±2 s); two clients
//!    start writing at 1 s.
//! 2. **Faults, 1 s – 11 s**, while both clients run read-modify-write cycles on 6 shared
//!    keys (`DHT.SIBLINGS` then `DHT.PUT` with that context, sometimes with an older,
//!    stale context, so siblings appear) and, one step in four, a plain `SET` (a blind
//!    write, sometimes read back with `GET`) on 3 other keys: a node crashes and restarts
//!    with its clock jumped by 0.5–5 s forwards or back, a network partition (one node cut
//!    off, or one link cut), a window of message loss (links failing and repairing at
//!    random), a window of high latency, a 4th node **joins**, and one of the first three
//!    **leaves** (`DHT.LEAVE`) — both while the writes go on.
//! 3. **Heal, 11 s – 19 s**: every fault is repaired; hints, read repair and anti-entropy
//!    run; the failure detectors see everyone up again.
//! 4. **Fresh, 19 s – 22 s**: each client runs sequential write/read cycles on fresh keys
//!    (the write a `DHT.PUT` with the read's context or a plain `SET`, half each), each
//!    step through a random node — reads that property 2 of the checker judges.
//! 5. **Final**: every key is read at consistency `ALL`; the history checker
//!    ([`history`]) asserts that every acknowledged write survived and that fresh reads
//!    saw the latest acknowledged write.
//!
//! # Seeds
//! `cargo test -p keel-dht --test sim` runs [`DEFAULT_SEEDS`] seeds; `KEEL_SIM_SEEDS=200`
//! runs more (CI), `KEEL_SIM_SEED=1234` runs one. A failing seed is printed with the
//! command that reruns it.
//!
//! # Determinism
//! turmoil runs every host on one thread in simulated time, and its random choices come
//! from the seed; the node's storage writer runs as a task on the host's runtime (not a
//! thread) for the same reason. `the_same_seed_gives_the_same_history` checks it; it is
//! ignored while a retried node start can still reorder a replay (see the crate docs).

mod history;
mod net;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use history::{History, Ms, Read, Write};
use keel_dht::{MemoryDisk, Node};
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo, Value};

/// Seeds run by a plain `cargo test` (more with `KEEL_SIM_SEEDS`).
const DEFAULT_SEEDS: u64 = 8;
const PORT: u16 = 7000;
const FIRST_NODES: [&str; 3] = ["n1", "n2", "n3"];
const JOINER: &str = "n4";
const CLIENTS: [&str; 2] = ["c1", "c2"];
const SHARED_KEYS: usize = 6;
/// Keys the clients write with plain `SET` (and read with `GET`) during the faults.
const SET_KEYS: usize = 3;
const FRESH_KEYS: usize = 3;

const OPS_START: Ms = 1_000;
const FAULTS_END: Ms = 11_000;
const FRESH_START: Ms = 19_000;
const FRESH_END: Ms = 22_000;
static CONNECTION_INFO: std::sync::LazyLock<RedisConnectionInfo> =
    std::sync::LazyLock::new(RedisConnectionInfo::default);
const OP_TIMEOUT: Duration = Duration::from_millis(1_500);

fn node_name(host: &str) -> String {
    format!("{host}:{PORT}")
}

fn now_ms() -> Ms {
    turmoil::sim_elapsed().unwrap_or_default().as_millis() as Ms
}

/// SplitMix64: small, seedable, good enough to draw a schedule.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// What the simulator does to the cluster, and when.
#[derive(Debug, Clone)]
enum Fault {
    Crash(&'static str),
    Restart(&'static str),
    /// Cuts every link between the two groups.
    Partition(Vec<&'static str>, Vec<&'static str>),
    Repair,
    /// Links fail at random (dropping what is in flight) and repair at random.
    Loss(f64),
    /// Messages take up to this many milliseconds.
    Latency(u64),
    /// The 4th node starts and joins through `n1`.
    Join,
}

/// The schedule a seed draws.
#[derive(Debug, Clone)]
struct Plan {
    skews_ms: BTreeMap<&'static str, i64>,
    faults: Vec<(Ms, Fault)>,
    leave: (Ms, &'static str),
    /// How far the crashed node's clock jumps while it is down (either way, ≥ 500 ms).
    restart_jump_ms: i64,
}

impl Plan {
    fn draw(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let mut skews_ms = BTreeMap::new();
        for host in FIRST_NODES.iter().chain([&JOINER]) {
            skews_ms.insert(*host, rng.range(0, 4_001) as i64 - 2_000);
        }
        let mut faults = Vec::new();
        let crashed = *rng.pick(&FIRST_NODES);
        let at = rng.range(1_500, 7_000);
        faults.push((at, Fault::Crash(crashed)));
        faults.push((at + rng.range(300, 3_000), Fault::Restart(crashed)));
        let at = rng.range(1_500, 8_000);
        let cut = *rng.pick(&FIRST_NODES);
        let rest: Vec<_> = FIRST_NODES.iter().copied().filter(|h| *h != cut).collect();
        let other = if rng.below(2) == 0 {
            rest.clone()
        } else {
            vec![*rng.pick(&rest)]
        };
        let mut minority = vec![cut];
        if rng.below(2) == 0 {
            minority.extend(CLIENTS.first()); // a client on the minority side
        }
        faults.push((at, Fault::Partition(minority, other)));
        faults.push((at + rng.range(500, 3_000), Fault::Repair));
        let at = rng.range(1_500, 8_000);
        faults.push((at, Fault::Loss(0.0005 * rng.range(1, 5) as f64)));
        faults.push((at + rng.range(500, 2_000), Fault::Loss(0.0)));
        let at = rng.range(1_500, 8_000);
        faults.push((at, Fault::Latency(rng.range(50, 400))));
        faults.push((at + rng.range(500, 2_000), Fault::Latency(10)));
        faults.push((rng.range(2_000, 5_000), Fault::Join));
        faults.sort_by_key(|(t, _)| *t);
        let leave = (rng.range(6_000, 9_000), *rng.pick(&FIRST_NODES));
        let jump = rng.range(500, 5_001) as i64;
        let restart_jump_ms = if rng.below(2) == 0 { jump } else { -jump };
        Plan {
            skews_ms,
            faults,
            leave,
            restart_jump_ms,
        }
    }
}

/// Hosts the clients may send requests to (the driver adds the joiner, the leaving
/// client removes the leaver).
type Members = Arc<Mutex<Vec<&'static str>>>;

fn start_node(
    sim: &mut turmoil::Sim<'_>,
    host: &'static str,
    seeds: Vec<String>,
    skew_ms: Arc<AtomicI64>,
    disk: MemoryDisk,
    dirs: &tempfile::TempDir,
) {
    let dir = dirs.path().join(host);
    sim.host(host, move || {
        let (seeds, disk, dir, skew_ms) = (
            seeds.clone(),
            disk.clone(),
            dir.clone(),
            Arc::clone(&skew_ms),
        );
        async move {
            // Retry the start: a join can fail while the cluster is partitioned.
            loop {
                let node = Node::builder()
                    .listen((std::net::Ipv4Addr::UNSPECIFIED, PORT).into())
                    .name(node_name(host))
                    .data_dir(&dir)
                    .seeds(seeds.clone())
                    .partitions(32)
                    .vnodes(16)
                    .rpc_timeout(Duration::from_millis(500))
                    .retry_after(Duration::from_millis(500))
                    .handoff_interval(Duration::from_millis(200))
                    .anti_entropy_interval(Duration::from_millis(250))
                    .gossip_interval(Duration::from_millis(100))
                    .fail_after(Duration::from_millis(1_000))
                    .clock(net::SkewedClock {
                        skew_ms: Arc::clone(&skew_ms),
                    })
                    .network(net::SimNetwork)
                    .memory_disk(disk.clone())
                    .build()?;
                match node.start().await {
                    Ok(handle) => {
                        handle.stopped().await;
                        return Ok(());
                    }
                    Err(e) => {
                        if std::env::var("KEEL_SIM_DEBUG").is_ok() {
                            println!("{host}: start failed at {} ms: {e}", now_ms());
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await
                    }
                }
            }
        }
    });
}

/// A client's connections, one per node, re-made after any failure.
#[derive(Default)]
struct Conns(BTreeMap<&'static str, MultiplexedConnection>);

impl Conns {
    async fn call(&mut self, host: &'static str, cmd: &redis::Cmd) -> Result<Value, String> {
        let conn = match self.0.get(host) {
            Some(c) => c.clone(),
            None => {
                let connect = async {
                    let stream = turmoil::net::TcpStream::connect(node_name(host))
                        .await
                        .map_err(|e| e.to_string())?;
                    let config =
                        AsyncConnectionConfig::new().set_response_timeout(Some(OP_TIMEOUT));
                    MultiplexedConnection::new_with_config(&CONNECTION_INFO, stream, config)
                        .await
                        .map_err(|e| e.to_string())
                };
                let (conn, driver) = tokio::time::timeout(OP_TIMEOUT, connect)
                    .await
                    .map_err(|_| "connect timed out".to_owned())??;
                tokio::spawn(driver);
                self.0.insert(host, conn.clone());
                conn
            }
        };
        let mut conn = conn;
        let result = tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<Value>(&mut conn))
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(e) = &result {
            // Error replies leave the connection usable; anything else drops it.
            if !e.contains("ERR") {
                self.0.remove(host);
            }
        }
        result
    }
}

/// A `DHT.SIBLINGS` reply: the context and the live values.
fn parse_siblings(v: &Value) -> Option<(String, Vec<String>)> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s.clone()),
            _ => None,
        }
    }
    fn pairs(v: &Value) -> Option<Vec<(String, &Value)>> {
        match v {
            Value::Map(m) => m.iter().map(|(k, v)| Some((text(k)?, v))).collect(),
            Value::Array(a) if a.len() % 2 == 0 => {
                a.chunks(2).map(|c| Some((text(&c[0])?, &c[1]))).collect()
            }
            _ => None,
        }
    }
    let top = pairs(v)?;
    let context = text(top.iter().find(|(k, _)| k == "context")?.1)?;
    let Value::Array(siblings) = top.iter().find(|(k, _)| k == "siblings")?.1 else {
        return None;
    };
    let mut values = Vec::new();
    for s in siblings {
        let fields = pairs(s)?;
        let live = fields
            .iter()
            .any(|(k, v)| k == "live" && matches!(v, Value::Int(1)));
        if let Some((_, v)) = fields.iter().find(|(k, _)| k == "value") {
            if live {
                values.push(text(v)?);
            }
        }
    }
    values.sort();
    Some((context, values))
}

fn siblings_cmd(key: &str) -> redis::Cmd {
    let mut c = redis::cmd("DHT.SIBLINGS");
    c.arg(key);
    c
}

fn put_cmd(key: &str, value: &str, context: &str) -> redis::Cmd {
    let mut c = redis::cmd("DHT.PUT");
    c.arg(key).arg(value).arg(context);
    c
}

fn set_cmd(key: &str, value: &str) -> redis::Cmd {
    let mut c = redis::cmd("SET");
    c.arg(key).arg(value);
    c
}

/// A `GET` reply as the values it returned (none or one).
fn get_values(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::BulkString(b) => Some(vec![String::from_utf8_lossy(b).into_owned()]),
        Value::Nil => Some(vec![]),
        _ => None,
    }
}

#[derive(Debug, Default)]
struct Counters {
    failed_ops: u64,
    leave_ok: bool,
    final_node: &'static str,
}

/// One client: faults-phase cycles on the shared keys, then fresh cycles on its own keys,
/// and (client `c1`) the leave and the final reads.
#[allow(clippy::too_many_arguments)]
async fn client(
    me: &'static str,
    seed: u64,
    members: Members,
    history: Arc<Mutex<History>>,
    counters: Arc<Mutex<Counters>>,
    leave: (Ms, &'static str),
) -> turmoil::Result {
    let mut rng = Rng(seed ^ xxhash_rust::xxh3::xxh3_64(me.as_bytes()));
    let mut conns = Conns::default();
    let mut seen: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let mut written = 0u64;
    let mut next_value = |key: &str| {
        written += 1;
        format!("{key}/{me}/{written}")
    };
    tokio::time::sleep(Duration::from_millis(OPS_START)).await;
    let mut left = false;
    while now_ms() < FAULTS_END {
        if me == CLIENTS[0] && !left && now_ms() >= leave.0 {
            left = true;
            members.lock().retain(|h| *h != leave.1);
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                conns.call(leave.1, &redis::cmd("DHT.LEAVE")),
            )
            .await;
            counters.lock().leave_ok = matches!(r, Ok(Ok(_)));
            continue;
        }
        if rng.below(4) == 0 {
            // A plain SET (a blind write), sometimes read back with GET.
            let key = format!("s{}", rng.below(SET_KEYS as u64));
            let value = next_value(&key);
            let host = *rng.pick(&members.lock());
            let invoked = now_ms();
            let r = conns.call(host, &set_cmd(&key, &value)).await;
            if r.is_err() {
                counters.lock().failed_ops += 1;
            }
            history.lock().writes.push(Write {
                key: key.clone(),
                value,
                saw: Vec::new(),
                blind: true,
                invoked,
                acked: r.is_ok().then(now_ms),
            });
            if rng.below(2) == 0 {
                let host = *rng.pick(&members.lock());
                let invoked = now_ms();
                match conns.call(host, redis::cmd("GET").arg(&key)).await {
                    Ok(v) => history.lock().reads.push(Read {
                        key,
                        values: get_values(&v).ok_or("bad GET reply")?,
                        invoked,
                        completed: now_ms(),
                        fresh: false,
                    }),
                    Err(_) => counters.lock().failed_ops += 1,
                }
            }
            tokio::time::sleep(Duration::from_millis(rng.range(5, 60))).await;
            continue;
        }
        let key = format!("k{}", rng.below(SHARED_KEYS as u64));
        let host = *rng.pick(&members.lock());
        // Read (mostly) or reuse a context seen earlier, possibly a stale one.
        let contexts = seen.entry(key.clone()).or_default();
        if contexts.is_empty() || rng.below(4) != 0 {
            let invoked = now_ms();
            match conns.call(host, &siblings_cmd(&key)).await {
                Ok(v) => {
                    let (context, values) = parse_siblings(&v).ok_or("bad DHT.SIBLINGS reply")?;
                    history.lock().reads.push(Read {
                        key: key.clone(),
                        values: values.clone(),
                        invoked,
                        completed: now_ms(),
                        fresh: false,
                    });
                    contexts.push((context, values));
                    if contexts.len() > 4 {
                        contexts.remove(0);
                    }
                }
                Err(_) => counters.lock().failed_ops += 1,
            }
        }
        if let Some((context, saw)) = (!contexts.is_empty())
            .then(|| contexts[rng.below(contexts.len() as u64) as usize].clone())
        {
            let value = next_value(&key);
            let host = *rng.pick(&members.lock());
            let invoked = now_ms();
            let r = conns.call(host, &put_cmd(&key, &value, &context)).await;
            if r.is_err() {
                counters.lock().failed_ops += 1;
            }
            history.lock().writes.push(Write {
                key,
                value,
                saw,
                blind: false,
                invoked,
                acked: r.is_ok().then(now_ms),
            });
        }
        tokio::time::sleep(Duration::from_millis(rng.range(5, 60))).await;
    }

    tokio::time::sleep(Duration::from_millis(FRESH_START.saturating_sub(now_ms()))).await;
    let fresh_keys: Vec<String> = (0..FRESH_KEYS).map(|i| format!("f{i}/{me}")).collect();
    while now_ms() < FRESH_END {
        for key in &fresh_keys {
            let read = |values: Vec<String>, invoked| Read {
                key: key.clone(),
                values,
                invoked,
                completed: now_ms(),
                fresh: true,
            };
            let host = *rng.pick(&members.lock());
            let invoked = now_ms();
            let Ok(v) = conns.call(host, &siblings_cmd(key)).await else {
                counters.lock().failed_ops += 1;
                continue;
            };
            let (context, saw) = parse_siblings(&v).ok_or("bad DHT.SIBLINGS reply")?;
            history.lock().reads.push(read(saw.clone(), invoked));
            let value = next_value(key);
            let host = *rng.pick(&members.lock());
            // Half the cycles write with a plain SET instead of the read's context.
            let blind = rng.below(2) == 0;
            let cmd = if blind {
                set_cmd(key, &value)
            } else {
                put_cmd(key, &value, &context)
            };
            let invoked = now_ms();
            let r = conns.call(host, &cmd).await;
            if r.is_err() {
                counters.lock().failed_ops += 1;
            }
            history.lock().writes.push(Write {
                key: key.clone(),
                value,
                saw: if blind { Vec::new() } else { saw },
                blind,
                invoked,
                acked: r.is_ok().then(now_ms),
            });
            let host = *rng.pick(&members.lock());
            let invoked = now_ms();
            match conns.call(host, redis::cmd("GET").arg(key)).await {
                Ok(v) => {
                    let values = get_values(&v).ok_or("bad GET reply")?;
                    history.lock().reads.push(read(values, invoked));
                }
                Err(_) => counters.lock().failed_ops += 1,
            }
        }
    }

    if me != CLIENTS[0] {
        return Ok(());
    }
    // Final reads at ALL, after the other client is done.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let host = *rng.pick(&members.lock());
    counters.lock().final_node = host;
    let mut conns = Conns::default();
    conns
        .call(host, redis::cmd("DHT.CONSISTENCY").arg("ALL"))
        .await
        .map_err(|e| format!("DHT.CONSISTENCY ALL: {e}"))?;
    let mut keys: Vec<String> = (0..SHARED_KEYS).map(|i| format!("k{i}")).collect();
    keys.extend((0..SET_KEYS).map(|i| format!("s{i}")));
    for c in CLIENTS {
        keys.extend((0..FRESH_KEYS).map(|i| format!("f{i}/{c}")));
    }
    for key in keys {
        for _attempt in 0..5 {
            if let Ok(v) = conns.call(host, &siblings_cmd(&key)).await {
                let (_, values) = parse_siblings(&v).ok_or("bad DHT.SIBLINGS reply")?;
                history.lock().finals.insert(key.clone(), values);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if !conns.0.contains_key(host) {
                conns
                    .call(host, redis::cmd("DHT.CONSISTENCY").arg("ALL"))
                    .await
                    .ok();
            }
        }
    }
    Ok(())
}

/// The result of one seed.
#[derive(Debug)]
struct Outcome {
    history: History,
    counters: Counters,
    plan: Plan,
}

fn run_seed(seed: u64) -> Result<Outcome, String> {
    let plan = Plan::draw(seed);
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(Duration::from_secs(60))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(10))
        .repair_rate(0.05)
        .build();
    let dirs = tempfile::tempdir().map_err(|e| e.to_string())?;
    let disks: BTreeMap<&str, MemoryDisk> = FIRST_NODES
        .iter()
        .chain([&JOINER])
        .map(|h| (*h, MemoryDisk::new()))
        .collect();
    let skews: BTreeMap<&str, Arc<AtomicI64>> = plan
        .skews_ms
        .iter()
        .map(|(h, s)| (*h, Arc::new(AtomicI64::new(*s))))
        .collect();
    // A restart comes with a clock jump (the node's clock was reset while it was down).
    let restart = |sim: &mut turmoil::Sim<'_>, h: &'static str| {
        skews[h].fetch_add(plan.restart_jump_ms, Ordering::Relaxed);
        sim.bounce(h);
    };
    let all_seeds: Vec<String> = FIRST_NODES.iter().map(|h| node_name(h)).collect();
    for host in FIRST_NODES {
        start_node(
            &mut sim,
            host,
            all_seeds.clone(),
            Arc::clone(&skews[host]),
            disks[host].clone(),
            &dirs,
        );
    }
    let members: Members = Arc::new(Mutex::new(FIRST_NODES.to_vec()));
    let history = Arc::new(Mutex::new(History::default()));
    let counters = Arc::new(Mutex::new(Counters::default()));
    for me in CLIENTS {
        let (members, history, counters) = (
            Arc::clone(&members),
            Arc::clone(&history),
            Arc::clone(&counters),
        );
        let leave = plan.leave;
        sim.client(me, client(me, seed, members, history, counters, leave));
    }

    let mut faults = plan.faults.clone().into_iter().peekable();
    let mut crashed: Option<&'static str> = None;
    let mut fail_rate = 0.0;
    let (mut joined, mut healed) = (false, false);
    // Links cut by the current partition fault.
    let mut cut: Vec<(&'static str, &'static str)> = Vec::new();
    loop {
        let now = sim.elapsed().as_millis() as Ms;
        while let Some((_, fault)) = faults.next_if(|(t, _)| *t <= now) {
            match fault {
                Fault::Crash(h) => {
                    // A silent crash (a machine losing power): its links are cut while
                    // its runtime is dropped, so no FIN/RST escapes. Besides being the
                    // harsher failure, this keeps runs reproducible: tokio drops a
                    // runtime's tasks in an order that depends on process-global task
                    // ids, and the resets would reach the other nodes in that order.
                    let others = hosts(joined);
                    for o in others.iter().filter(|o| **o != h) {
                        sim.partition(h, *o);
                    }
                    disks[h].crash();
                    // The crash drops the host's sockets in an order that depends on
                    // process-global task ids, and whether a socket sends a FIN, a RST or
                    // both depends on that order; with message loss on, each of those
                    // sends draws from turmoil's random source. Loss is paused for the
                    // instant of the crash so the draws cannot shift.
                    sim.set_fail_rate(0.0);
                    sim.crash(h);
                    sim.set_fail_rate(fail_rate);
                    for o in others.iter().filter(|o| **o != h) {
                        if !cut
                            .iter()
                            .any(|&(a, b)| (a, b) == (h, *o) || (b, a) == (h, *o))
                        {
                            sim.repair(h, *o);
                        }
                    }
                    crashed = Some(h);
                }
                Fault::Restart(h) => {
                    restart(&mut sim, h);
                    crashed = None;
                }
                Fault::Partition(a, b) => {
                    for x in &a {
                        for y in &b {
                            sim.partition(*x, *y);
                            cut.push((*x, *y));
                        }
                    }
                }
                Fault::Repair => {
                    repair_all(&sim, joined);
                    cut.clear();
                }
                Fault::Loss(p) => {
                    fail_rate = p;
                    sim.set_fail_rate(p);
                }
                Fault::Latency(ms) => sim.set_max_message_latency(Duration::from_millis(ms)),
                Fault::Join => {
                    start_node(
                        &mut sim,
                        JOINER,
                        vec![node_name("n1")],
                        Arc::clone(&skews[JOINER]),
                        disks[JOINER].clone(),
                        &dirs,
                    );
                    members.lock().push(JOINER);
                    joined = true;
                }
            }
        }
        if now >= FAULTS_END && !healed {
            // Heal whatever is still broken.
            healed = true;
            if let Some(h) = crashed.take() {
                restart(&mut sim, h);
            }
            repair_all(&sim, joined);
            cut.clear();
            sim.set_fail_rate(0.0);
            sim.set_max_message_latency(Duration::from_millis(10));
        }
        if sim.step().map_err(|e| e.to_string())? {
            break;
        }
    }
    drop(sim);
    let history = std::mem::take(&mut *history.lock());
    let counters = std::mem::take(&mut *counters.lock());
    Ok(Outcome {
        history,
        counters,
        plan,
    })
}

/// Every host registered so far.
fn hosts(joined: bool) -> Vec<&'static str> {
    let mut hosts: Vec<&'static str> = FIRST_NODES.iter().chain(&CLIENTS).copied().collect();
    if joined {
        hosts.push(JOINER);
    }
    hosts
}

fn repair_all(sim: &turmoil::Sim<'_>, joined: bool) {
    let hosts = hosts(joined);
    for a in &hosts {
        for b in &hosts {
            if a < b {
                sim.repair(*a, *b);
            }
        }
    }
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("KEEL_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("KEEL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    (1..=count).collect()
}

#[test]
fn every_acknowledged_write_survives_and_fresh_reads_see_the_latest() {
    let mut failures = Vec::new();
    let (mut acked, mut superseded, mut sibling_keys, mut fresh) = (0, 0, 0, 0);
    let (mut indeterminate, mut failed_ops, mut leaves) = (0, 0, 0);
    let seeds = seeds();
    for &seed in &seeds {
        let outcome = match run_seed(seed) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("seed {seed}: simulation error: {e}"));
                continue;
            }
        };
        match outcome.history.check() {
            Ok(s) => {
                assert!(s.acked_writes > 0, "seed {seed}: no write was acknowledged");
                assert!(s.fresh_reads > 0, "seed {seed}: no fresh read ran");
                acked += s.acked_writes;
                indeterminate += s.indeterminate_writes;
                failed_ops += outcome.counters.failed_ops;
                leaves += u64::from(outcome.counters.leave_ok);
                superseded += s.superseded;
                sibling_keys += s.keys_with_siblings;
                fresh += s.fresh_reads;
            }
            Err(violations) => {
                let mut msg = format!(
                    "seed {seed}: {} violation(s); rerun: KEEL_SIM_SEED={seed} cargo test -p \
                     keel-dht --test sim every_acknowledged -- --nocapture\n  plan: {:?}\n  \
                     {:?}",
                    violations.len(),
                    outcome.plan,
                    outcome.counters
                );
                for v in violations.iter().take(10) {
                    msg.push_str(&format!("\n  {v}"));
                }
                failures.push(msg);
            }
        }
    }
    println!(
        "{} seeds: {acked} acknowledged writes checked ({superseded} superseded by a causally \
         later write), {indeterminate} indeterminate writes, {failed_ops} failed or timed-out \
         requests, {leaves} leaves completed, {sibling_keys} keys ended with siblings, {fresh} \
         fresh reads",
        seeds.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two runs of one seed produce the same history. Ignored for now: runs agree until a
/// node's start fails and is retried, and may then drift by a few milliseconds — the
/// failed start's shutdown wakes the node's tasks in an order tokio picks with its
/// unseeded RNG (see the crate docs; `KEEL_SIM_DEBUG=1` prints failed starts).
#[test]
#[ignore = "replay can drift after a node restart; see the crate docs"]
fn the_same_seed_gives_the_same_history() {
    let seed = std::env::var("KEEL_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let a = run_seed(seed).unwrap();
    let b = run_seed(seed).unwrap();
    println!(
        "digest a {:x} b {:x}",
        xxhash_rust::xxh3::xxh3_64(format!("{:?}", a.history).as_bytes()),
        xxhash_rust::xxh3::xxh3_64(format!("{:?}", b.history).as_bytes())
    );
    assert!(!a.history.writes.is_empty());
    let first_difference = a
        .history
        .writes
        .iter()
        .zip(&b.history.writes)
        .position(|(x, y)| format!("{x:?}") != format!("{y:?}"));
    if let Some(i) = first_difference {
        println!("plan: {:?}", a.plan);
        for w in &a.history.writes[i.saturating_sub(6)..=i] {
            println!("a {w:?}");
        }
        for w in &b.history.writes[i.saturating_sub(6)..=i] {
            println!("b {w:?}");
        }
        panic!(
            "seed {seed}: write {i} differs between two runs:\n  {:?}\n  {:?}",
            a.history.writes[i], b.history.writes[i]
        );
    }
    assert_eq!(format!("{:?}", a.history), format!("{:?}", b.history));
}
