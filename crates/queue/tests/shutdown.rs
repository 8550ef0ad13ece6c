//! Close, drain, disconnection, shutdown with a deadline, timeouts and permits.

use std::thread;
use std::time::Duration;

mod common;

use common::{advance_until_done, join_within};
use keel_queue::{Backpressure, BuildError, PopError, PushError, Queue, ReserveError, bounded};

#[test]
fn zero_capacity_is_a_typed_error() {
    let _watchdog = common::watchdog();
    assert_eq!(bounded::<u8>(0).unwrap_err(), BuildError::ZeroCapacity);
    assert_eq!(
        Queue::builder().capacity(0).priority::<u8>().unwrap_err(),
        BuildError::ZeroCapacity
    );
    assert!(matches!(
        Queue::builder().capacity(usize::MAX).build::<u8>(),
        Err(BuildError::CapacityTooLarge(_))
    ));
}

#[test]
fn close_hands_items_back_and_consumers_drain_then_see_closed() {
    let _watchdog = common::watchdog();
    for (tx, rx) in [
        Queue::builder().capacity(4).build::<u32>().unwrap(),
        Queue::builder().capacity(4).lifo().build::<u32>().unwrap(),
        Queue::builder().capacity(4).priority::<u32>().unwrap(),
    ] {
        tx.push(1).unwrap();
        tx.push(2).unwrap();
        assert!(tx.close());
        assert!(!rx.close(), "second close reports it was already closed");
        assert!(tx.is_closed() && rx.is_closed());
        assert_eq!(tx.try_push(3), Err(PushError::Closed(3)));
        assert_eq!(tx.push(4), Err(PushError::Closed(4)));
        assert_eq!(tx.reserve().unwrap_err(), ReserveError::Closed);
        let mut drained = vec![rx.pop().unwrap(), rx.pop().unwrap()];
        drained.sort();
        assert_eq!(drained, vec![1, 2]);
        assert_eq!(rx.pop(), Err(PopError::Closed));
        assert_eq!(rx.try_pop(), Err(PopError::Closed));
        assert_eq!(rx.pop_batch(8), Err(PopError::Closed));
    }
}

#[test]
fn close_wakes_blocked_producers_with_their_items() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(1).unwrap();
    tx.push(0).unwrap();
    let blocked: Vec<_> = (1..=3)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || tx.push(i))
        })
        .collect();
    // Wait (without timing assumptions) until all three are parked or spinning:
    // closing at any point must hand every item back.
    rx.close();
    let mut back: Vec<u32> = blocked
        .into_iter()
        .map(|t| match t.join().unwrap() {
            Err(PushError::Closed(i)) => i,
            other => panic!("expected Closed, got {other:?}"),
        })
        .collect();
    back.sort();
    assert_eq!(back, vec![1, 2, 3]);
    assert_eq!(rx.pop(), Ok(0));
}

#[test]
fn close_wakes_blocked_consumers() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || rx.pop())
        })
        .collect();
    tx.close();
    for c in consumers {
        assert_eq!(c.join().unwrap(), Err(PopError::Closed));
    }
}

#[test]
fn dropping_last_sender_disconnects_receivers() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let tx2 = tx.clone();
    tx.push(1).unwrap();
    drop(tx);
    assert!(!rx.is_closed(), "one sender is still alive");
    tx2.push(2).unwrap();
    drop(tx2);
    assert!(rx.is_closed());
    assert_eq!(rx.iter().collect::<Vec<_>>(), vec![1, 2]);
}

#[test]
fn dropping_last_receiver_fails_pushes() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    tx.push(1).unwrap();
    drop(rx2);
    assert_eq!(tx.push(2), Err(PushError::Closed(2)));
}

#[test]
fn shutdown_returns_leftovers_after_the_deadline_on_a_mock_clock() {
    let _watchdog = common::watchdog();
    let (clock, mock) = quanta::Clock::mock();
    let (tx, rx) = Queue::builder()
        .capacity(8)
        .clock(clock)
        .build::<u32>()
        .unwrap();
    for i in 0..5 {
        tx.push(i).unwrap();
    }
    // One consumer takes two items, then stalls; shutdown waits on the
    // (mock) deadline, which the test moves until shutdown returns.
    assert_eq!(rx.pop(), Ok(0));
    assert_eq!(rx.pop(), Ok(1));
    let shutdown = thread::spawn(move || tx.shutdown(Duration::from_secs(30)));
    let leftovers = advance_until_done(&mock, shutdown);
    assert_eq!(leftovers, vec![2, 3, 4]);
    assert_eq!(rx.pop(), Err(PopError::Closed));
    let stats = rx.stats();
    assert_eq!(stats.pushed, stats.popped + stats.len as u64);
}

/// Regression (issue 10, item 18): the grace period starts when `shutdown`
/// is called, so once the queue reports closed the deadline is fixed and one
/// jump of the clock past it must end the shutdown. Before the fix the
/// deadline was read after closing, and a jump landing in between was lost:
/// the shutdown waited for a deadline that never came.
#[test]
fn shutdown_deadline_is_fixed_before_the_queue_reports_closed() {
    let _watchdog = common::watchdog();
    for round in 0..200 {
        let (clock, mock) = quanta::Clock::mock();
        let (tx, rx) = Queue::builder()
            .capacity(4)
            .clock(clock)
            .build::<u32>()
            .unwrap();
        tx.push(round).unwrap();
        let mut shutdown = Some(thread::spawn(move || tx.shutdown(Duration::from_secs(30))));
        while !rx.is_closed() {
            thread::yield_now();
        }
        mock.increment(Duration::from_secs(31));
        let finished = join_within(&mut shutdown, Duration::from_secs(10));
        if finished.is_none() {
            // Unblock the stuck thread before failing.
            mock.increment(Duration::from_secs(3600));
            shutdown.take().map(thread::JoinHandle::join);
        }
        assert_eq!(
            finished,
            Some(vec![round]),
            "round {round}: one jump past the deadline did not end the shutdown"
        );
    }
}

#[test]
fn shutdown_returns_nothing_when_consumers_drain_in_time() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(64).unwrap();
    for i in 0..50 {
        tx.push(i).unwrap();
    }
    let consumer = thread::spawn(move || rx.iter().count());
    let leftovers = tx.shutdown(Duration::from_secs(60));
    assert!(leftovers.is_empty());
    assert_eq!(consumer.join().unwrap(), 50);
}

#[test]
fn timeouts_hand_the_item_back_with_a_mock_clock() {
    let _watchdog = common::watchdog();
    let (clock, mock) = quanta::Clock::mock();
    for (tx, rx) in [
        Queue::builder()
            .capacity(1)
            .clock(clock.clone())
            .build::<&str>()
            .unwrap(),
        Queue::builder()
            .capacity(1)
            .clock(clock.clone())
            .lifo()
            .build::<&str>()
            .unwrap(),
        Queue::builder()
            .capacity(1)
            .clock(clock.clone())
            .priority::<&str>()
            .unwrap(),
    ] {
        tx.push("a").unwrap();
        let waiter = {
            let tx = tx.clone();
            thread::spawn(move || tx.push_timeout("b", Duration::from_secs(5)))
        };
        assert_eq!(
            advance_until_done(&mock, waiter),
            Err(PushError::Timeout("b"))
        );
        assert_eq!(tx.stats().rejected, 1);
        assert_eq!(rx.pop(), Ok("a"));
        let waiter = {
            let rx = rx.clone();
            thread::spawn(move || rx.pop_timeout(Duration::from_secs(5)))
        };
        assert_eq!(advance_until_done(&mock, waiter), Err(PopError::Timeout));
    }
}

#[test]
fn timed_operations_succeed_when_the_other_side_acts() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(1).unwrap();
    let consumer = thread::spawn(move || rx.pop_timeout(Duration::from_secs(600)));
    tx.push_timeout(7, Duration::from_secs(600)).unwrap();
    assert_eq!(consumer.join().unwrap(), Ok(7));
}

#[test]
fn permits_secure_a_slot_and_give_it_back_when_dropped() {
    let _watchdog = common::watchdog();
    for (tx, rx) in [
        Queue::builder().capacity(2).build::<u32>().unwrap(),
        Queue::builder().capacity(2).lifo().build::<u32>().unwrap(),
        Queue::builder().capacity(2).priority::<u32>().unwrap(),
    ] {
        let permit = tx.reserve().unwrap();
        tx.push(1).unwrap();
        assert_eq!(
            tx.try_push(2),
            Err(PushError::Full(2)),
            "the permit holds the second slot"
        );
        assert_eq!(tx.try_reserve().unwrap_err(), ReserveError::Full);
        permit.send(3);
        let mut got = vec![rx.pop().unwrap(), rx.pop().unwrap()];
        got.sort();
        assert_eq!(got, vec![1, 3]);
        // A dropped permit frees its slot.
        drop(tx.reserve().unwrap());
        tx.push(4).unwrap();
        tx.push(5).unwrap();
        assert_eq!(rx.len(), 2);
    }
}

#[test]
fn a_permit_survives_close_and_its_item_is_drained() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(2).unwrap();
    let permit = tx.reserve().unwrap();
    tx.close();
    permit.send(9);
    assert_eq!(rx.pop(), Ok(9));
    assert_eq!(rx.pop(), Err(PopError::Closed));
}

#[test]
fn blocked_reserve_waits_for_space() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(1).unwrap();
    tx.push(1).unwrap();
    let reserver = {
        let tx = tx.clone();
        thread::spawn(move || {
            let permit = tx.reserve().unwrap();
            permit.send(2);
        })
    };
    assert_eq!(rx.pop(), Ok(1));
    reserver.join().unwrap();
    assert_eq!(rx.pop(), Ok(2));
}

#[test]
fn reject_policy_never_blocks_a_blocking_push() {
    let _watchdog = common::watchdog();
    let (tx, _rx) = Queue::builder()
        .capacity(1)
        .backpressure(Backpressure::Reject)
        .build::<u32>()
        .unwrap();
    tx.push(1).unwrap();
    assert_eq!(tx.push(2), Err(PushError::Full(2)));
    assert_eq!(tx.stats().rejected, 1);
}
