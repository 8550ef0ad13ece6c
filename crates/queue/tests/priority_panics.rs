//! A priority order that panics (a comparator, a key fn, an `Ord` impl, or
//! `partial_cmp().unwrap()` on NaN) must not lose or corrupt anything: every
//! item stays in the queue or reaches a caller, the heap stays valid, and the
//! counters add up. The panic itself reaches the caller whose call ran it.

mod common;

use std::cmp::Ordering;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use keel_queue::{Backpressure, Queue, QueueStats, Receiver, Sender};

/// A comparator that panics on its `n`-th call once armed with `n`, then works.
#[derive(Clone, Default)]
struct Flaky(Arc<AtomicUsize>);

impl Flaky {
    fn arm(&self, nth_call: usize) {
        self.0.store(nth_call, AtomicOrdering::SeqCst);
    }

    fn compare(&self, a: &u32, b: &u32) -> Ordering {
        let left = self.0.load(AtomicOrdering::SeqCst);
        if left > 0 {
            self.0.store(left - 1, AtomicOrdering::SeqCst);
            if left == 1 {
                panic!("comparator failed");
            }
        }
        a.cmp(b)
    }
}

fn queue(cap: usize, policy: Backpressure) -> (Flaky, Sender<u32>, Receiver<u32>) {
    let flaky = Flaky::default();
    let order = flaky.clone();
    let (tx, rx) = Queue::builder()
        .capacity(cap)
        .backpressure(policy)
        .priority_by(move |a: &u32, b: &u32| order.compare(a, b))
        .unwrap();
    (flaky, tx, rx)
}

const ITEMS: [u32; 8] = [5, 1, 7, 3, 8, 2, 6, 4];

fn identity_holds(stats: &QueueStats) -> bool {
    stats.pushed == stats.popped + stats.len as u64 + stats.dropped
}

/// Regression (issue 10, item 3): 8 items, the comparator panics once during
/// `pop`: before the fix the top item was gone, later order was wrong and
/// `pushed` was off by one.
#[test]
fn a_comparator_panic_in_pop_keeps_every_item_and_the_heap_valid() {
    let _watchdog = common::watchdog();
    let (flaky, tx, rx) = queue(16, Backpressure::Block);
    for item in ITEMS {
        tx.push(item).unwrap();
    }
    flaky.arm(1);
    assert!(catch_unwind(AssertUnwindSafe(|| rx.pop())).is_err());
    assert_eq!(rx.len(), 8, "the top item is still queued");
    let order: Vec<u32> = std::iter::from_fn(|| rx.try_pop().ok()).collect();
    assert_eq!(order, vec![8, 7, 6, 5, 4, 3, 2, 1]);
    let stats = rx.stats();
    assert_eq!((stats.pushed, stats.popped, stats.len), (8, 8, 0));
}

/// A panic while pushing: the new item is not enqueued (it is dropped with
/// the unwinding push) and not counted; everything queued before is intact.
#[test]
fn a_comparator_panic_in_push_leaves_the_queue_as_it_was() {
    let _watchdog = common::watchdog();
    let (flaky, tx, rx) = queue(16, Backpressure::Block);
    for item in ITEMS {
        tx.push(item).unwrap();
    }
    flaky.arm(1);
    assert!(catch_unwind(AssertUnwindSafe(|| tx.push(9))).is_err());
    let stats = rx.stats();
    assert_eq!((stats.pushed, stats.len), (8, 8));
    let order: Vec<u32> = std::iter::from_fn(|| rx.try_pop().ok()).collect();
    assert_eq!(order, vec![8, 7, 6, 5, 4, 3, 2, 1]);
}

/// `partial_cmp().unwrap()` on a NaN key panics on every comparison with it.
#[test]
fn a_nan_key_is_refused_by_panicking_and_the_queue_stays_valid() {
    let _watchdog = common::watchdog();
    let (tx, rx) = Queue::builder()
        .capacity(8)
        .priority_by(|a: &f64, b: &f64| a.partial_cmp(b).unwrap())
        .unwrap();
    for x in [1.0, 3.0, 2.0] {
        tx.push(x).unwrap();
    }
    assert!(catch_unwind(AssertUnwindSafe(|| tx.push(f64::NAN))).is_err());
    assert_eq!(rx.stats().pushed, 3);
    assert_eq!(rx.drain(), vec![3.0, 2.0, 1.0]);
}

/// The sweep: a panic on the n-th comparison of every operation that orders
/// items (pop, batch, drain, shutdown, try_push, DropOldest eviction, a
/// permit's send, a DropOldest reservation). Whatever the operation handed
/// out plus what is left equals what went in, what is left leaves in order,
/// and the counters add up.
#[test]
fn a_comparator_panic_anywhere_loses_nothing() {
    let _watchdog = common::watchdog();
    type Op = fn(&Sender<u32>, &Receiver<u32>) -> Vec<u32>;
    let ops: [(&str, Backpressure, Op); 8] = [
        ("pop", Backpressure::Block, |_, rx| vec![rx.pop().unwrap()]),
        ("pop_batch", Backpressure::Block, |_, rx| {
            rx.pop_batch(5).unwrap()
        }),
        ("drain", Backpressure::Block, |_, rx| rx.drain()),
        ("shutdown", Backpressure::Block, |tx, _| {
            tx.shutdown(Duration::ZERO)
        }),
        ("try_push", Backpressure::Block, |tx, _| {
            tx.try_push(10).unwrap();
            vec![]
        }),
        ("evicting push", Backpressure::DropOldest, |tx, _| {
            tx.push(10).unwrap();
            tx.push(11).unwrap();
            vec![]
        }),
        ("permit send", Backpressure::Block, |tx, _| {
            tx.reserve().unwrap().send(10);
            vec![]
        }),
        ("evicting reserve", Backpressure::DropOldest, |tx, _| {
            tx.push(10).unwrap(); // full now
            tx.reserve().unwrap().send(11);
            vec![]
        }),
    ];
    for (name, policy, op) in ops {
        for nth in 1..=24 {
            let (flaky, tx, rx) = queue(9, policy);
            for item in ITEMS {
                tx.push(item).unwrap();
            }
            flaky.arm(nth);
            let handed_out = catch_unwind(AssertUnwindSafe(|| op(&tx, &rx))).unwrap_or_default();
            flaky.arm(0);
            let left: Vec<u32> = std::iter::from_fn(|| rx.try_pop().ok()).collect();
            let mut sorted = left.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(
                left, sorted,
                "{name}, panic at call {nth}: heap order broken"
            );
            let stats = rx.stats();
            assert!(identity_holds(&stats), "{name}, call {nth}: {stats:?}");
            let accounted = handed_out.len() as u64 + left.len() as u64 + stats.dropped;
            assert_eq!(
                accounted, stats.pushed,
                "{name}, call {nth}: an item went missing"
            );
            for item in ITEMS {
                let seen = handed_out.contains(&item) || left.contains(&item);
                assert!(
                    seen || stats.dropped > 0,
                    "{name}, call {nth}: item {item} lost without being counted as dropped"
                );
            }
        }
    }
}
