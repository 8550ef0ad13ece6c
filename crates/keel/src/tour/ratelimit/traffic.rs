//! The tour's simulated API traffic: well-behaved Poisson clients, abusive bursty ones and
//! a steady scraper, sorted by time.

use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Exp};

#[derive(Debug, Clone, Copy)]
pub(super) struct Event {
    /// Simulated time of the request.
    pub(super) at_ns: u64,
    /// The client (the limiter's key).
    pub(super) client: u32,
    /// Whether the client is one of the abusive ones (bursts, the scraper).
    pub(super) abusive: bool,
}

/// Well-behaved clients send Poisson traffic at 0.8 req/s (under the 2 req/s limit);
/// abusive clients stay quiet for 2–6 s, then fire 40–80 requests within half a second;
/// one scraper sends a steady 10 req/s.
pub(super) fn traffic(normal: u32, abusive: u32, seconds: u64, seed: u64) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let end = seconds * 1_000_000_000;
    let mut events = Vec::new();
    let gap = Exp::new(0.8).expect("positive rate");
    for client in 0..normal {
        let mut t = (gap.sample(&mut rng) * 1e9) as u64;
        while t < end {
            events.push(Event {
                at_ns: t,
                client,
                abusive: false,
            });
            t += (gap.sample(&mut rng) * 1e9) as u64;
        }
    }
    for i in 0..abusive {
        let client = normal + i;
        let mut t = rng.random_range(0..3_000_000_000u64);
        while t < end {
            let burst = rng.random_range(40..=80u64);
            for k in 0..burst {
                let at = t + k * 500_000_000 / burst;
                if at < end {
                    events.push(Event {
                        at_ns: at,
                        client,
                        abusive: true,
                    });
                }
            }
            t += rng.random_range(2_500_000_000..6_500_000_000u64);
        }
    }
    let scraper = normal + abusive;
    for k in 0..seconds * 10 {
        events.push(Event {
            at_ns: k * 100_000_000 + 7,
            client: scraper,
            abusive: true,
        });
    }
    events.sort_by_key(|e| (e.at_ns, e.client));
    events
}
