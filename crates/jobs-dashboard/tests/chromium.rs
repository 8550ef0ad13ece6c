//! Renders the dashboard in headless Chromium and saves screenshots under
//! `target/keel-dashboard/` (look at them). Skipped with a printed notice when Chromium is
//! not installed, unless `KEEL_REQUIRE_CHROMIUM=1`, which turns the skip into a failure.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use keel_jobs::{Failure, FailureKind, MemoryStore, NewJob, Store};
use serde_json::json;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

fn out_dir() -> PathBuf {
    // CARGO_TARGET_DIR when set (the workspace shares one), else the workspace's target/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("keel-dashboard")
}

/// Runs Chromium with a hard deadline (it is killed after 90 s).
fn screenshot(browser: &Path, url: &str, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bytes = std::fs::read(png).expect("screenshot written");
    assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        bytes.len() > 10_000,
        "a rendered page, not a blank one ({} bytes)",
        bytes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("KEEL_REQUIRE_CHROMIUM").as_deref() == Ok("1") {
            panic!("KEEL_REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        println!(
            "SKIPPED dashboard_renders_in_headless_chromium: chromium not installed (apt-get install chromium)"
        );
        return;
    };
    let store = Arc::new(MemoryStore::builder().keep_completed(true).build());
    let errors = [
        "smtp: connection refused",
        "<script>alert('payload')</script> in template",
        "timeout after 30 s",
    ];
    for (q, n) in [("emails", 40), ("thumbnails", 25), ("reports", 5)] {
        let jobs = (0..n)
            .map(|i| {
                NewJob::new(
                    q,
                    "render",
                    json!({"user": format!("user-{i}"), "html": "<script>alert(1)</script>"}),
                )
                .with_max_attempts(1)
            })
            .collect();
        store.enqueue_many(jobs).await.unwrap();
        let leases = store
            .fetch(q, n / 2, Duration::from_secs(60))
            .await
            .unwrap();
        for (i, l) in leases.into_iter().enumerate() {
            if i % 5 == 4 {
                continue; // stays running
            }
            let message = errors[i % errors.len()].to_owned();
            store
                .fail(
                    l.job.id,
                    l.token,
                    Failure {
                        kind: FailureKind::Error,
                        message,
                        retry_at: None,
                    },
                )
                .await
                .unwrap();
        }
        store
            .enqueue(NewJob::new(q, "digest", json!({})).with_delay(Duration::from_secs(600)))
            .await
            .unwrap();
    }
    store.pause("reports").await.unwrap();
    let s = Server::start(Arc::clone(&store)).await;
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let example = s.get("/api/jobs?state=dead&limit=1").await.json()["jobs"][0]["id"]
        .as_u64()
        .unwrap();
    let shots = [
        ("overview.png", "/".to_owned()),
        ("dead.png", "/jobs?state=dead".to_owned()),
        ("job.png", format!("/jobs/{example}")),
        ("failures.png", "/failures".to_owned()),
    ];
    let base = format!("http://{}", s.addr);
    for (file, path) in &shots {
        let png = dir.join(file);
        let url = format!("{base}{path}");
        let browser = browser.clone();
        tokio::task::spawn_blocking(move || screenshot(&browser, &url, &png))
            .await
            .unwrap();
        println!("screenshot of {path}: {}", dir.join(file).display());
    }
    s.stop().await;
}
