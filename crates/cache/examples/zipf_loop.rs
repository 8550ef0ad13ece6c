//! A closed loop of cache-aside reads and writes on skewed keys, for
//! profiling (`perf record`) the concurrent cache's hot path.
//!
//! `cargo run --release -p keel-cache --example zipf_loop -- [lru|sieve] [ops]`

use keel_cache::{Cache, Policy};

fn main() {
    let mut args = std::env::args().skip(1);
    let policy = match args.next().as_deref() {
        Some("sieve") => Policy::Sieve,
        _ => Policy::Lru,
    };
    let ops: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000);
    let capacity = 20_000u64;
    // Cheap skew without extra dependencies: squaring a uniform draw
    // concentrates keys near zero (not Zipf, but hot-and-cold enough).
    let key_space = capacity * 10;
    let cache: Cache<u64, u64> = match Cache::builder()
        .max_capacity(capacity)
        .policy(policy)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut hits = 0u64;
    let start = std::time::Instant::now();
    for i in 0..ops {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        let key = (u * u * u * key_space as f64) as u64;
        if i % 10 == 9 {
            cache.insert(key, key + 1);
        } else if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{policy:?}: {:.2}M ops/s, hit ratio {:.3}",
        ops as f64 / secs / 1e6,
        hits as f64 / (ops - ops / 10) as f64
    );
}
