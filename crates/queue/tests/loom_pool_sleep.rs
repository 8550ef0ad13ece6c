//! Loom model of the pool's sleep/wake protocol: a worker that finds no work
//! and goes to sleep must be woken by a spawner that publishes work.
#![cfg(loom)]

use keel_queue::__loom::Sleep;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

#[test]
fn published_work_wakes_sleeper() {
    loom::model(|| {
        let sleep = Arc::new(Sleep::new());
        let work = Arc::new(AtomicBool::new(false));
        let worker = {
            let (sleep, work) = (sleep.clone(), work.clone());
            thread::spawn(move || {
                // The worker loop: look for work, sleep if none.
                while !work.load(Ordering::SeqCst) {
                    sleep.sleep(|| work.load(Ordering::SeqCst));
                }
            })
        };
        work.store(true, Ordering::SeqCst);
        sleep.wake_one();
        worker.join().unwrap();
    });
}
