//! A blocked consumer must park, not spin: after its brief spin it sleeps in
//! the kernel (state `S`), and its CPU time stays flat while it waits.

mod common;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use keel_queue::bounded;

/// The scheduler state letter and utime+stime (clock ticks) of a thread of this process.
fn thread_state(tid: i32) -> (char, u64) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    // The command name may contain spaces; fields after ')' are fixed.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields[0].chars().next().unwrap();
    let utime: u64 = fields[11].parse().unwrap();
    let stime: u64 = fields[12].parse().unwrap();
    (state, utime + stime)
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a rusage struct.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0);
    let user = Duration::new(
        usage.ru_utime.tv_sec as u64,
        usage.ru_utime.tv_usec as u32 * 1000,
    );
    let system = Duration::new(
        usage.ru_stime.tv_sec as u64,
        usage.ru_stime.tv_usec as u32 * 1000,
    );
    user + system
}

#[test]
fn blocked_consumer_parks_instead_of_spinning() {
    let _watchdog = common::watchdog();
    let (tx, rx) = bounded::<u32>(4).unwrap();
    let (tid_tx, tid_rx) = mpsc::channel();
    let consumer = thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        let before = thread_cpu_time();
        let item = rx.pop();
        (item, thread_cpu_time() - before)
    });
    let tid = tid_rx.recv().unwrap();
    // The consumer must reach a sleeping state. (Polling here only decides how
    // long we look, never the verdict: a spinning thread is never in `S`
    // for long... so we require several consecutive sleeping observations.)
    let mut consecutive = 0;
    for _ in 0..10_000 {
        let (state, _) = thread_state(tid);
        consecutive = if state == 'S' { consecutive + 1 } else { 0 };
        if consecutive >= 20 {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert!(
        consecutive >= 20,
        "the blocked consumer never settled into sleep"
    );
    // While it sleeps, its CPU time does not grow.
    let (_, ticks_before) = thread_state(tid);
    thread::sleep(Duration::from_millis(200));
    let (state, ticks_after) = thread_state(tid);
    assert_eq!(state, 'S');
    assert!(
        ticks_after - ticks_before <= 1,
        "CPU time grew by {} ticks while parked",
        ticks_after - ticks_before
    );
    tx.push(1).unwrap();
    let (item, cpu) = consumer.join().unwrap();
    assert_eq!(item, Ok(1));
    eprintln!("CPU time of a ~0.2 s idle wait: {cpu:?}");
}
