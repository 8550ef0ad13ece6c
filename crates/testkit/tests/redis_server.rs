//! The testkit's own tests: a real `redis-server` started, stopped, restarted, killed.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keel_testkit::{RedisServer, redis_or_skip};

/// Whether a process with this pid exists and is a redis-server (not a reused pid).
fn redis_process_alive(pid: u32) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie has an empty cmdline; it is dead, only not yet reaped.
    String::from_utf8_lossy(&cmdline).contains("redis-server")
}

/// Waits (polling, bounded) until the pid is gone; returns whether it went.
fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !redis_process_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !redis_process_alive(pid)
}

#[test]
fn starts_on_a_free_port_answers_ping_and_gives_a_url() {
    let Some(redis) = redis_or_skip("starts_on_a_free_port") else {
        return;
    };
    assert!(redis.ping());
    assert_ne!(
        redis.port(),
        6379,
        "must never be the machine's own Redis port"
    );
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    assert!(redis_process_alive(redis.pid().unwrap()));
}

#[test]
fn two_servers_get_different_ports() {
    let Some(a) = redis_or_skip("two_servers_a") else {
        return;
    };
    let b = RedisServer::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert!(a.ping() && b.ping());
}

#[test]
fn stop_then_restart_on_the_same_port() {
    let Some(mut redis) = redis_or_skip("stop_then_restart") else {
        return;
    };
    let port = redis.port();
    let first_pid = redis.pid().unwrap();
    redis.stop();
    assert!(!redis.ping(), "a stopped server must not answer");
    assert!(!redis.is_running());
    assert!(wait_gone(first_pid, Duration::from_secs(5)));
    redis.stop(); // idempotent
    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    assert!(redis.ping());
    assert_ne!(redis.pid().unwrap(), first_pid);
}

#[test]
fn drop_kills_the_server() {
    let Some(redis) = redis_or_skip("drop_kills_the_server") else {
        return;
    };
    let pid = redis.pid().unwrap();
    drop(redis);
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "redis-server {pid} outlived its handle"
    );
}

#[test]
fn a_test_that_kills_redis_midway_and_then_panics_leaves_no_process() {
    if redis_or_skip("kill_midway_then_panic").is_none() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let mut redis = RedisServer::start().unwrap();
        let mut second = RedisServer::start().unwrap();
        tx.send((redis.pid().unwrap(), second.pid().unwrap()))
            .unwrap();
        redis.stop(); // killed mid-test, as a failure test does
        redis.restart().unwrap();
        tx.send((redis.pid().unwrap(), second.pid().unwrap()))
            .unwrap();
        second.is_running();
        panic!("the test body fails while both servers run");
    })
    .join();
    assert!(result.is_err(), "the thread should have panicked");
    let pids: Vec<(u32, u32)> = rx.iter().collect();
    assert_eq!(pids.len(), 2);
    for (a, b) in pids {
        assert!(
            wait_gone(a, Duration::from_secs(5)),
            "redis-server {a} left behind"
        );
        assert!(
            wait_gone(b, Duration::from_secs(5)),
            "redis-server {b} left behind"
        );
    }
}

/// Child half of the next test: starts a server, prints its pid, then waits to be killed.
#[test]
#[ignore = "run only as the child process of killed_test_process_takes_its_server_down"]
fn child_holds_a_server_until_killed() {
    if std::env::var_os("KEEL_TESTKIT_CHILD").is_none() {
        return;
    }
    let redis = RedisServer::start().unwrap();
    println!("REDIS_PID={}", redis.pid().unwrap());
    // Park until the parent SIGKILLs this process (bounded, in case it never does).
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn killed_test_process_takes_its_server_down() {
    if redis_or_skip("killed_test_process").is_none() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe)
        .args([
            "--exact",
            "child_holds_a_server_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("KEEL_TESTKIT_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid_line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("REDIS_PID="))
        .expect("child printed its redis pid");
    let pid: u32 = pid_line.rsplit('=').next().unwrap().trim().parse().unwrap();
    assert!(redis_process_alive(pid));
    // SIGKILL: no destructor runs in the child; only the parent-death signal can clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(5)),
        "redis-server {pid} survived its killed test process"
    );
}

#[test]
fn a_missing_binary_reports_not_found() {
    let err = RedisServer::start_with(Path::new("/nonexistent/redis-server")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

/// The child half of `a_skip_is_visible_in_a_plain_cargo_test_run`: with no redis-server
/// to be found it skips, printing its line.
#[test]
fn child_skips_for_want_of_redis() {
    if std::env::var_os("KEEL_TESTKIT_SKIP_CHILD").is_none() {
        return;
    }
    assert!(keel_testkit::redis_or_skip("child_skips_for_want_of_redis").is_none());
}

#[test]
fn a_skip_is_visible_in_a_plain_cargo_test_run() {
    // Re-run this test binary on the child test, with output capture on (no --nocapture)
    // and redis-server pointed at a file that does not exist: its skip line must still
    // reach the terminal, and must say where the binary was looked for.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(&exe)
        .args([
            "--exact",
            "child_skips_for_want_of_redis",
            "--test-threads=1",
        ])
        .env("KEEL_TESTKIT_SKIP_CHILD", "1")
        .env("KEEL_REDIS_SERVER", "/nonexistent/redis-server")
        .env_remove("KEEL_REQUIRE_REDIS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped child_skips_for_want_of_redis: redis-server not found")
            && stderr.contains("looked in /nonexistent/redis-server"),
        "the skip line did not reach stderr: {stderr:?}"
    );
}
