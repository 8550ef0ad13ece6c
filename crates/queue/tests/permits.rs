//! Permits on every flavor: an unsent permit is a promised slot, not an item,
//! and `DropOldest` cannot evict a slot a permit holds.

mod common;

use std::time::Duration;

use common::join_within;
use keel_queue::{Backpressure, PushError, Queue, Receiver, ReserveError, Sender};

fn three_flavors(
    cap: usize,
    policy: Backpressure,
) -> Vec<(&'static str, Sender<u32>, Receiver<u32>)> {
    let builder = || Queue::builder().capacity(cap).backpressure(policy);
    let (ftx, frx) = builder().build().unwrap();
    let (ltx, lrx) = builder().lifo().build().unwrap();
    let (ptx, prx) = builder().priority().unwrap();
    vec![
        ("fifo", ftx, frx),
        ("lifo", ltx, lrx),
        ("priority", ptx, prx),
    ]
}

/// Regression (issue 10, item 8): the FIFO ring counted a claimed but unsent
/// permit as an item (`len() == 1`, `pushed == 1`); the docs say "items in
/// the queue", which is what LIFO and priority report.
#[test]
fn an_unsent_permit_is_not_an_item_on_any_flavor() {
    let _watchdog = common::watchdog();
    for (name, tx, rx) in three_flavors(2, Backpressure::Block) {
        let permit = tx.try_reserve().unwrap();
        assert_eq!((tx.len(), tx.is_empty()), (0, true), "{name}");
        let stats = rx.stats();
        assert_eq!((stats.len, stats.pushed), (0, 0), "{name}");
        permit.send(5);
        assert_eq!((rx.len(), rx.stats().pushed), (1, 1), "{name}");
        // A permit dropped unused never becomes an item either.
        drop(tx.try_reserve().unwrap());
        let stats = rx.stats();
        assert_eq!((stats.len, stats.pushed), (1, 1), "{name}");
        assert_eq!(rx.try_pop(), Ok(5), "{name}");
        let stats = rx.stats();
        assert_eq!((stats.len, stats.pushed, stats.popped), (0, 1, 1), "{name}");
    }
}

/// Regression (issue 10, item 7): under `DropOldest` the FIFO ring spun
/// forever trying to evict a head slot held by a permit. Every flavor now
/// answers `Full(item)` (nothing evictable), counted as rejected.
#[test]
fn drop_oldest_returns_full_while_a_permit_holds_the_head_slot() {
    let _watchdog = common::watchdog();
    for (name, tx, rx) in three_flavors(1, Backpressure::DropOldest) {
        let permit = tx.try_reserve().unwrap();
        let mut attempt = Some({
            let tx = tx.clone();
            std::thread::spawn(move || {
                (
                    tx.try_push(7),
                    tx.push(8),
                    tx.try_reserve().map(drop),
                    tx.reserve().map(drop),
                )
            })
        });
        let outcome = join_within(&mut attempt, Duration::from_secs(10));
        // Unblock a stuck attempt (the permit's slot frees up) before failing.
        drop(permit);
        attempt.take().map(std::thread::JoinHandle::join);
        assert_eq!(
            outcome,
            Some((
                Err(PushError::Full(7)),
                Err(PushError::Full(8)),
                Err(ReserveError::Full),
                Err(ReserveError::Full),
            )),
            "{name}"
        );
        assert_eq!(tx.stats().rejected, 4, "{name}");
        // Once the permit is gone, eviction works again.
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert_eq!(rx.try_pop(), Ok(2), "{name}");
        assert_eq!(rx.stats().dropped, 1, "{name}");
    }
}

/// With an item at the head and a permit behind it, `DropOldest` still
/// evicts the item on every flavor.
#[test]
fn drop_oldest_evicts_an_item_ahead_of_a_permit() {
    let _watchdog = common::watchdog();
    for (name, tx, rx) in three_flavors(2, Backpressure::DropOldest) {
        tx.push(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        assert_eq!(tx.try_push(3), Ok(()), "{name}");
        permit.send(2);
        let mut left = rx.drain();
        left.sort();
        assert_eq!(left, vec![2, 3], "{name}");
        assert_eq!(rx.stats().dropped, 1, "{name}");
    }
}
