//! Bad input gets a typed error or a documented meaning, never a panic or a
//! hang: `Duration::MAX` timeouts, huge capacities and thread counts.

mod common;

use std::thread;
use std::time::Duration;

use keel_queue::{BuildError, Pool, PopError, Queue, Receiver, Sender};

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

/// Regression (issue 10, item 14): the largest capacity the builder used to
/// accept (`isize::MAX / 4`) panicked while allocating the FIFO ring up
/// front, and `1 << 34` aborted the process. The builder now refuses any
/// capacity above `Queue::MAX_CAPACITY` with a typed error, on every flavor.
#[test]
fn capacities_above_the_documented_bound_are_typed_errors() {
    let _watchdog = common::watchdog();
    for capacity in [
        Queue::MAX_CAPACITY + 1,
        1 << 34,
        isize::MAX as usize / 4,
        usize::MAX,
    ] {
        let builder = || Queue::builder().capacity(capacity);
        assert_eq!(
            builder().build::<u8>().unwrap_err(),
            BuildError::CapacityTooLarge(capacity)
        );
        assert_eq!(
            builder().lifo().build::<u8>().unwrap_err(),
            BuildError::CapacityTooLarge(capacity)
        );
        assert_eq!(
            builder().priority::<u8>().unwrap_err(),
            BuildError::CapacityTooLarge(capacity)
        );
    }
    // The bound itself is accepted where nothing is allocated up front.
    assert!(
        Queue::builder()
            .capacity(Queue::MAX_CAPACITY)
            .lifo()
            .build::<u8>()
            .is_ok()
    );
    assert!(
        Queue::builder()
            .capacity(Queue::MAX_CAPACITY)
            .priority::<u8>()
            .is_ok()
    );
}

/// A FIFO ring whose slots cannot fit the address space is a typed error,
/// not an abort (the ring allocates `capacity` slots up front).
#[test]
fn a_fifo_ring_too_big_to_allocate_is_a_typed_error() {
    let _watchdog = common::watchdog();
    type Huge = [u8; 1 << 40];
    assert!(matches!(
        Queue::builder().capacity(1 << 24).build::<Huge>(),
        Err(BuildError::OutOfMemory { .. })
    ));
}

/// Regression (issue 10, item 14): `Pool::new(usize::MAX)` panicked, and a
/// pool of 100,000 started thousands of threads before failing.
#[test]
fn thread_counts_above_the_documented_bound_are_typed_errors() {
    let _watchdog = common::watchdog();
    for threads in [Pool::MAX_THREADS + 1, 100_000, usize::MAX] {
        assert_eq!(
            Pool::new(threads).unwrap_err(),
            BuildError::TooManyThreads(threads)
        );
        assert_eq!(
            Pool::builder().threads(threads).build().unwrap_err(),
            BuildError::TooManyThreads(threads)
        );
    }
}
