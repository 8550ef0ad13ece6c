//! Bad input gets a typed error or a documented meaning, never a panic or a
//! hang: `Duration::MAX` timeouts, huge capacities and thread counts.

mod common;

use std::thread;
use std::time::Duration;

use keel_queue::{PopError, Queue, Receiver, Sender};

fn three_flavors(cap: usize) -> Vec<(&'static str, Sender<u32>, Receiver<u32>)> {
    let (ftx, frx) = Queue::builder().capacity(cap).build().unwrap();
    let (ltx, lrx) = Queue::builder().capacity(cap).lifo().build().unwrap();
    let (ptx, prx) = Queue::builder().capacity(cap).priority().unwrap();
    vec![
        ("fifo", ftx, frx),
        ("lifo", ltx, lrx),
        ("priority", ptx, prx),
    ]
}

/// Regression (issue 10, item 13): `Duration::MAX` is "wait forever"; it used
/// to overflow the deadline's instant and panic.
#[test]
fn duration_max_timeouts_wait_forever_instead_of_panicking() {
    let _watchdog = common::watchdog();
    for (name, tx, rx) in three_flavors(1) {
        assert_eq!(tx.push_timeout(1, Duration::MAX), Ok(()), "{name}");
        assert_eq!(rx.pop_timeout(Duration::MAX), Ok(1), "{name}");
        // Blocked with an unbounded timeout, woken by the other side.
        let consumer = {
            let rx = rx.clone();
            thread::spawn(move || rx.pop_timeout(Duration::MAX))
        };
        tx.push(2).unwrap();
        assert_eq!(consumer.join().unwrap(), Ok(2), "{name}");
        tx.push(3).unwrap();
        let producer = {
            let tx = tx.clone();
            thread::spawn(move || tx.push_timeout(4, Duration::MAX))
        };
        assert_eq!(rx.pop(), Ok(3), "{name}");
        assert_eq!(producer.join().unwrap(), Ok(()), "{name}");
        // Shutdown with an unbounded grace waits for the consumers to drain.
        let drainer = {
            let rx = rx.clone();
            thread::spawn(move || rx.iter().collect::<Vec<_>>())
        };
        assert_eq!(tx.shutdown(Duration::MAX), Vec::<u32>::new(), "{name}");
        assert_eq!(drainer.join().unwrap(), vec![4], "{name}");
        assert_eq!(
            rx.pop_timeout(Duration::MAX),
            Err(PopError::Closed),
            "{name}"
        );
    }
}

/// The same on a mock clock that has already run far ahead.
#[test]
fn duration_max_on_a_late_mock_clock_does_not_overflow() {
    let _watchdog = common::watchdog();
    let (clock, mock) = quanta::Clock::mock();
    mock.increment(Duration::from_secs(u64::MAX / 4));
    let (tx, rx) = Queue::builder()
        .capacity(2)
        .clock(clock)
        .build::<u32>()
        .unwrap();
    assert_eq!(tx.push_timeout(1, Duration::MAX), Ok(()));
    assert_eq!(rx.pop_timeout(Duration::MAX), Ok(1));
    assert_eq!(tx.shutdown(Duration::MAX), Vec::<u32>::new());
}
