//! Loom model of GCRA's compare-and-swap loop: every interleaving of the threads below
//! is explored; a lost update would allow more than the burst.
#![cfg(loom)]

use std::time::Duration;

use keel_ratelimit::{Algorithm, Gcra, Quota};
use loom::sync::Arc;
use loom::thread;

fn gcra(burst: u32) -> Gcra {
    Gcra::from_quota(
        Quota::new(10, Duration::from_secs(1))
            .unwrap()
            .with_burst(burst)
            .unwrap(),
    )
}

/// Three threads race for a burst of 2 at the same instant: exactly two win.
#[test]
fn three_threads_burst_two_exactly_two_allowed() {
    loom::model(|| {
        let g = gcra(2);
        let state = Arc::new(g.new_state(0));
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let state = state.clone();
                thread::spawn(move || g.check(&state, 0, 1).allowed)
            })
            .collect();
        let allowed = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|&a| a)
            .count();
        assert_eq!(allowed, 2);
        // The state reflects exactly the two allowed requests.
        assert!(!g.check(&state, 0, 1).allowed);
    });
}

/// Costs 2 and 1 against a burst of 2: whichever goes first wins, never both.
#[test]
fn weighted_requests_never_both_fit() {
    loom::model(|| {
        let g = gcra(2);
        let state = Arc::new(g.new_state(0));
        let s1 = state.clone();
        let a = thread::spawn(move || g.check(&s1, 0, 2).allowed);
        let s2 = state.clone();
        let b = thread::spawn(move || g.check(&s2, 0, 1).allowed);
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        assert!(a ^ b, "exactly one of the two fits (a={a}, b={b})");
    });
}
