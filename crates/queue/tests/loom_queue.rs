//! Loom models of the blocking/wake-up protocol: every interleaving of the
//! threads below is explored; a lost wake-up shows up as a deadlock, a lost
//! or duplicated item as a failed assertion.
//!
//! Under loom a blocked push or pop takes two spinning retries (the burst
//! gate, the quick probe) before its exact retry and the register/re-check/
//! park protocol, so those paths are explored too. Checked by sabotage: the
//! models fail (deadlock) without the ring push's consumer wake or without the
//! registration fence, and fail (wrong result) if a quick probe's
//! "unpublished" is taken for "closed".
#![cfg(loom)]

use keel_queue::{PopError, PushError, Queue, bounded};
use loom::thread;

/// Explores interleavings with at most `bound` preemptions (the loom default
/// is unbounded, which is exhaustive but takes minutes for these models).
fn model<F: Fn() + Sync + Send + 'static>(bound: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.check(f);
}

/// Capacity 1, two producers, one consumer: both producers must block and be
/// woken in turn; the consumer gets both items exactly once.
#[test]
fn capacity_one_two_producers_one_consumer() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let tx2 = tx.clone();
        let p1 = thread::spawn(move || tx.push(1).unwrap());
        let p2 = thread::spawn(move || tx2.push(2).unwrap());
        let a = rx.pop().unwrap();
        let b = rx.pop().unwrap();
        p1.join().unwrap();
        p2.join().unwrap();
        let mut got = [a, b];
        got.sort();
        assert_eq!(got, [1, 2]);
        // Both senders dropped: the queue is closed and drained.
        assert_eq!(rx.pop(), Err(PopError::Closed));
    });
}

/// A consumer blocked on an empty queue is woken by a single push.
#[test]
fn blocked_consumer_is_woken_by_push() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let consumer = thread::spawn(move || rx.pop());
        tx.push(7).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(7));
    });
}

/// Close racing a blocked pop: the consumer either gets the item pushed
/// before close or sees `Closed`, and never hangs.
#[test]
fn close_races_pop() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let consumer = thread::spawn(move || {
            let first = rx.pop();
            let second = rx.pop();
            (first, second)
        });
        let pushed = tx.push(5).is_ok();
        tx.close();
        let (first, second) = consumer.join().unwrap();
        assert!(pushed);
        assert_eq!(first, Ok(5));
        assert_eq!(second, Err(PopError::Closed));
    });
}

/// Close racing a blocked push: the producer gets its item back.
#[test]
fn close_wakes_blocked_producer() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        tx.push(1).unwrap();
        let producer = thread::spawn(move || tx.push(2));
        rx.close();
        let outcome = producer.join().unwrap();
        // Either it got in before close (impossible: full and nobody pops)
        // or it was handed back.
        assert_eq!(outcome, Err(PushError::Closed(2)));
        assert_eq!(rx.pop(), Ok(1));
        assert_eq!(rx.pop(), Err(PopError::Closed));
    });
}

/// A permit dropped unused leaves a tombstone that a parked consumer must
/// get past (it is notified, not left waiting on the cancelled slot).
#[test]
fn cancelled_permit_does_not_strand_consumer() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let consumer = thread::spawn(move || rx.pop());
        let permit = tx.reserve().unwrap();
        drop(permit);
        tx.push(9).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(9));
    });
}

/// A consumer that reaches a slot held by a permit waits there and is woken
/// when the permit is sent; the queue never counts the unsent permit.
#[test]
fn sent_permit_wakes_consumer_waiting_on_its_slot() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let consumer = thread::spawn(move || rx.pop());
        let permit = tx.reserve().unwrap();
        assert_eq!(tx.len(), 0);
        permit.send(4);
        assert_eq!(consumer.join().unwrap(), Ok(4));
    });
}

/// The lock-based (priority) storage uses the same parking layer.
#[test]
fn priority_blocked_consumer_is_woken() {
    model(2, || {
        let (tx, rx) = Queue::builder().capacity(1).priority::<u32>().unwrap();
        let consumer = thread::spawn(move || (rx.pop(), rx.pop()));
        tx.push(3).unwrap();
        tx.push(4).unwrap();
        drop(tx);
        let (a, b) = consumer.join().unwrap();
        assert_eq!((a, b), (Ok(3), Ok(4)));
    });
}

/// An async consumer (a task's waker in the same wait list) is woken by a
/// blocking producer.
#[test]
fn async_pop_is_woken_by_sync_push() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let producer = thread::spawn(move || tx.push(3).unwrap());
        assert_eq!(loom::future::block_on(rx.pop_async()), Ok(3));
        producer.join().unwrap();
    });
}

/// An async producer blocked on a full queue is woken by a blocking consumer.
#[test]
fn async_push_is_woken_by_sync_pop() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        tx.push(1).unwrap();
        let consumer = thread::spawn(move || (rx.pop(), rx.pop()));
        loom::future::block_on(tx.push_async(2)).unwrap();
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (Ok(1), Ok(2)));
    });
}

/// The 1→2 shape: two consumers parked on an empty queue, one producer. Each
/// push wakes one waiter (or a consumer's re-check sees it); both consumers
/// get exactly one item and neither is left parked (a lost wake-up would be a
/// deadlock here).
#[test]
fn one_producer_wakes_two_parked_consumers() {
    // Three threads whose brief parks are loom yields: more branches than
    // the default budget, so one preemption and a larger branch budget.
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(1);
    builder.max_branches = 20_000;
    builder.check(|| {
        let (tx, rx) = bounded::<u32>(2).unwrap();
        let rx2 = rx.clone();
        let c1 = thread::spawn(move || rx.pop());
        let c2 = thread::spawn(move || rx2.pop());
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        let mut got = [c1.join().unwrap().unwrap(), c2.join().unwrap().unwrap()];
        got.sort();
        assert_eq!(got, [1, 2]);
    });
}

/// Capacity 1, so one slot is reused lap after lap: a tombstone (a dropped
/// permit) is skipped and its mark cleared before the slot is freed, so the
/// item a producer writes there on the next lap is read, never mistaken for a
/// tombstone (the marks live apart from the slot, ordered by its stamp).
#[test]
fn tombstone_mark_is_cleared_before_the_slot_is_reused() {
    model(2, || {
        let (tx, rx) = bounded::<u32>(1).unwrap();
        let consumer = thread::spawn(move || (rx.pop(), rx.pop()));
        drop(tx.reserve().unwrap());
        tx.push(5).unwrap();
        tx.push(6).unwrap();
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (Ok(5), Ok(6)));
    });
}
