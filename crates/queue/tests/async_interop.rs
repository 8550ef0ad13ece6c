//! Sync and async sides on one queue, under tokio.

mod common;

use std::collections::HashSet;
use std::thread;

use keel_queue::{PopError, PushError, Queue, bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_producers_async_consumers() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u64>(4).unwrap();
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..5_000 {
                    tx.push(p * 1_000_000 + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Ok(item) = rx.pop_async().await {
                    got.push(item);
                }
                got
            })
        })
        .collect();
    drop(rx);
    let mut all = HashSet::new();
    for c in consumers {
        for item in c.await.unwrap() {
            assert!(all.insert(item), "duplicate {item}");
        }
    }
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(all.len(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_producers_sync_consumers() {
    let _watchdog = common::watchdog();
    for (tx, rx) in [
        bounded::<u64>(2).unwrap(),
        Queue::builder().capacity(2).lifo().build::<u64>().unwrap(),
        Queue::builder().capacity(2).priority::<u64>().unwrap(),
    ] {
        let consumer = thread::spawn(move || rx.iter().collect::<Vec<_>>());
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..2_000 {
                        tx.push_async(p * 1_000_000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        for p in producers {
            p.await.unwrap();
        }
        let got = consumer.join().unwrap();
        let set: HashSet<_> = got.iter().copied().collect();
        assert_eq!(got.len(), 6_000);
        assert_eq!(set.len(), 6_000);
    }
}

#[tokio::test]
async fn async_pop_sees_close_and_async_push_gets_item_back() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(1).unwrap();
    tx.push_async(1).await.unwrap();
    let rx2 = rx.clone();
    let consumer = tokio::spawn(async move {
        let first = rx2.pop_async().await;
        let second = rx2.pop_async().await;
        (first, second)
    });
    tokio::task::yield_now().await;
    tx.push_async(2).await.unwrap();
    // Fill the queue again so a third push blocks.
    let tx2 = tx.clone();
    let (first, second) = consumer.await.unwrap();
    assert_eq!((first, second), (Ok(1), Ok(2)));
    tx.push_async(3).await.unwrap();
    let blocked_push = tokio::spawn(async move { tx2.push_async(4).await });
    tokio::task::yield_now().await;
    rx.close();
    assert_eq!(blocked_push.await.unwrap(), Err(PushError::Closed(4)));
    assert_eq!(rx.pop_async().await, Ok(3));
    assert_eq!(rx.pop_async().await, Err(PopError::Closed));
}

#[tokio::test]
async fn dropping_a_pending_pop_future_passes_no_wakeup_away() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    // A pop future that registers and is then dropped (cancelled).
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(5), rx.pop_async()).await;
    assert!(cancelled.is_err(), "nothing was pushed yet");
    let rx2 = rx.clone();
    let waiter = tokio::spawn(async move { rx2.pop_async().await });
    tokio::task::yield_now().await;
    tx.push(5).unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(5));
}
