//! The dashboard over real HTTP (raw TcpStream client): every page and API route,
//! keyset pagination, filters, CSRF and Origin/Host rejection, each action's effect on
//! the store, escaping of untrusted text, and bad input answered with 4xx, never a panic.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Server, request};
use keel_jobs::{Failure, FailureKind, JobId, JobState, MemoryStore, NewJob, Store};
use serde_json::json;

fn store() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::builder().keep_completed(true).build())
}

/// Enqueues a job and kills it with `message` on its first run.
async fn dead(
    store: &MemoryStore,
    queue: &str,
    payload: serde_json::Value,
    message: &str,
) -> JobId {
    let id = store
        .enqueue(NewJob::new(queue, "resize", payload).with_max_attempts(1))
        .await
        .unwrap()
        .id;
    let leases = store
        .fetch(queue, 100, Duration::from_secs(60))
        .await
        .unwrap();
    for l in leases {
        store
            .fail(
                l.job.id,
                l.token,
                Failure {
                    kind: FailureKind::Error,
                    message: message.to_owned(),
                    retry_at: None,
                },
            )
            .await
            .unwrap();
    }
    id
}

async fn state_of(store: &MemoryStore, id: JobId) -> Option<JobState> {
    store.get(id).await.unwrap().map(|j| j.state(store.now()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_and_api_route_answers_200() {
    let store = store();
    let pending = store
        .enqueue(NewJob::new(
            "emails",
            "send",
            json!({"to": "a@example.com"}),
        ))
        .await
        .unwrap()
        .id;
    store
        .enqueue(NewJob::new("emails", "send", json!(2)).with_delay(Duration::from_secs(3600)))
        .await
        .unwrap();
    let dead_id = dead(&store, "images", json!({"w": 64}), "disk full").await;
    store.pause("reports").await.unwrap();
    let s = Server::start(Arc::clone(&store)).await;

    let html = [
        "/".to_owned(),
        "/jobs".to_owned(),
        format!("/jobs/{pending}"),
        format!("/jobs/{dead_id}"),
        "/failures".to_owned(),
        "/failures?queue=images".to_owned(),
        "/jobs?queue=emails&kind=send".to_owned(),
    ];
    let states = [
        "scheduled",
        "available",
        "running",
        "retrying",
        "dead",
        "succeeded",
    ]
    .map(|st| format!("/jobs?state={st}"));
    for path in html.iter().chain(&states) {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}"
        );
        assert!(r.body.starts_with("<!DOCTYPE html>"), "{path}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .contains("default-src 'none'")
        );
    }
    let overview = s.get("/").await.body;
    for q in ["emails", "images", "reports"] {
        assert!(overview.contains(q), "overview lists {q}");
    }
    assert!(overview.contains("paused"), "the paused flag shows");
    assert!(
        s.get(&format!("/jobs/{dead_id}"))
            .await
            .body
            .contains("disk full")
    );
    assert!(s.get("/failures").await.body.contains("disk full"));

    let api = [
        "/api/queues".to_owned(),
        "/api/jobs".to_owned(),
        format!("/api/jobs/{dead_id}"),
        "/api/failures".to_owned(),
        "/api/csrf".to_owned(),
    ];
    for path in &api {
        let r = s.get(path).await;
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("application/json")
        );
    }
    let queues = s.get("/api/queues").await.json();
    let emails = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "emails")
        .unwrap();
    assert_eq!(
        (emails["available"].as_u64(), emails["scheduled"].as_u64()),
        (Some(1), Some(1))
    );
    let reports = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "reports")
        .unwrap();
    assert_eq!(reports["paused"], true);
    let job = s.get(&format!("/api/jobs/{dead_id}")).await.json();
    assert_eq!(job["state"], "dead");
    assert_eq!(job["payload"], json!({"w": 64}));
    assert_eq!(job["errors"][0]["message"], "disk full");
    let failures = s.get("/api/failures").await.json();
    assert_eq!(failures["groups"][0]["count"], 1);
    assert_eq!(failures["groups"][0]["example"], dead_id.0);
    assert_eq!(s.get("/api/csrf").await.json()["token"], s.token());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_walk_every_job_once_by_keyset_cursor() {
    let store = store();
    let jobs: Vec<NewJob> = (0u32..25)
        .map(|i| {
            NewJob::new(
                if i.is_multiple_of(2) { "even" } else { "odd" },
                if i.is_multiple_of(5) { "five" } else { "other" },
                json!(i),
            )
        })
        .collect();
    let ids: Vec<u64> = store
        .enqueue_many(jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.0)
        .collect();
    let s = Server::start(Arc::clone(&store)).await;

    // API: three pages of 10, 10, 5; the last has no cursor.
    let mut seen = Vec::new();
    let mut after: Option<u64> = None;
    let mut pages = 0;
    loop {
        let path = match after {
            Some(a) => format!("/api/jobs?limit=10&after={a}"),
            None => "/api/jobs?limit=10".to_owned(),
        };
        let page = s.get(&path).await.json();
        pages += 1;
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_u64().unwrap()),
        );
        match page["next_after"].as_u64() {
            Some(a) => after = Some(a),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every job once, in id order");

    // HTML: the next link carries the cursor; the last page has none.
    let first = s.get("/jobs?limit=10").await.body;
    let next = format!("after={}", ids[9]);
    assert!(first.contains(&next), "next link with {next}");
    let last = s
        .get(&format!("/jobs?limit=10&after={}", ids[19]))
        .await
        .body;
    assert!(!last.contains("Next page"));
    assert!(last.contains("First page"));

    // Filters: queue, kind, state, and their combination.
    let odd = s.get("/api/jobs?queue=odd&limit=100").await.json();
    assert_eq!(odd["jobs"].as_array().unwrap().len(), 12);
    assert!(
        odd["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["queue"] == "odd")
    );
    let five = s
        .get("/api/jobs?kind=five&queue=even&limit=100")
        .await
        .json();
    let five_ids: Vec<u64> = five["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_u64().unwrap())
        .collect();
    assert_eq!(five_ids, vec![ids[0], ids[10], ids[20]]);
    let none = s.get("/api/jobs?state=dead").await.json();
    assert!(none["jobs"].as_array().unwrap().is_empty());
    assert!(none["next_after"].is_null());
    let html = s.get("/jobs?queue=odd&kind=five").await.body;
    assert!(html.contains(&format!("href=\"/jobs/{}\"", ids[5])));
    assert!(!html.contains(&format!("href=\"/jobs/{}\"", ids[0])));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_csrf_token_and_a_same_host_origin() {
    let store = store();
    let id = dead(&store, "q", json!(1), "boom").await;
    let s = Server::start(Arc::clone(&store)).await;
    let path = format!("/jobs/{id}/retry");
    let form = |token: &str| serde_urlencoded::to_string([("csrf", token)]).unwrap();
    let ct = ("content-type", "application/x-www-form-urlencoded");

    // No token, a wrong token, the right token from a foreign origin: 403, nothing changes.
    let r = request(s.addr, "POST", &path, &[ct], b"").await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("missing CSRF token"));
    let r = request(
        s.addr,
        "POST",
        &path,
        &[ct],
        form("0".repeat(64).as_str()).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    let token = s.token();
    let r = request(
        s.addr,
        "POST",
        &path,
        &[ct, ("origin", "http://evil.example")],
        form(&token).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        s.addr,
        "POST",
        &path,
        &[ct, ("sec-fetch-site", "cross-site")],
        form(&token).as_bytes(),
    )
    .await;
    assert_eq!(r.status, 403);
    // The API needs the header; a form field does not count there... and neither does nothing.
    let r = request(s.addr, "POST", &format!("/api/jobs/{id}/retry"), &[], b"").await;
    assert_eq!(r.status, 403);
    assert!(r.json()["error"].as_str().unwrap().contains("CSRF"));
    // A rebinding attacker's Host is refused on every request, GET included.
    let r = request(
        s.addr,
        "GET",
        "/api/csrf",
        &[("host", "attacker.example:8080")],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        state_of(&store, id).await,
        Some(JobState::Dead),
        "nothing changed"
    );
    let stats = s.dashboard.stats();
    assert_eq!(
        (stats.csrf_rejected, stats.host_rejected, stats.actions),
        (5, 1, 0)
    );

    // GET never changes state (and the action paths do not answer GET).
    assert_eq!(s.get(&path).await.status, 405);
    assert_eq!(state_of(&store, id).await, Some(JobState::Dead));

    // With the token (and our own origin): 303 back, and the job is queued again.
    let r = s
        .post_form(&path, &[("next", &format!("/jobs/{id}"))])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("/jobs/{id}").as_str()));
    assert_eq!(state_of(&store, id).await, Some(JobState::Retrying));
    assert_eq!(s.dashboard.stats().actions, 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_changes_the_store() {
    let store = store();
    let s = Server::start(Arc::clone(&store)).await;

    // Retry one dead job (form) and one through the API.
    let a = dead(&store, "q", json!(1), "boom").await;
    let b = dead(&store, "q", json!(2), "boom").await;
    assert_eq!(
        s.post_form(&format!("/jobs/{a}/retry"), &[]).await.status,
        303
    );
    assert_eq!(state_of(&store, a).await, Some(JobState::Retrying));
    let r = s.post_api(&format!("/api/jobs/{b}/retry")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["ok"], true);
    assert_eq!(state_of(&store, b).await, Some(JobState::Retrying));

    // Cancel a pending job; delete (discard) another.
    assert_eq!(
        s.post_form(&format!("/jobs/{a}/cancel"), &[]).await.status,
        303
    );
    assert_eq!(state_of(&store, a).await, None);
    assert_eq!(
        s.post_api(&format!("/api/jobs/{b}/delete")).await.status,
        200
    );
    assert_eq!(state_of(&store, b).await, None);

    // A running job cannot be cancelled or deleted: 409, and it stays.
    let running = store
        .enqueue(NewJob::new("r", "k", json!(0)))
        .await
        .unwrap()
        .id;
    let lease = store.fetch("r", 1, Duration::from_secs(60)).await.unwrap();
    assert_eq!(lease[0].job.id, running);
    assert_eq!(
        s.post_api(&format!("/api/jobs/{running}/cancel"))
            .await
            .status,
        409
    );
    assert_eq!(
        s.post_form(&format!("/jobs/{running}/delete"), &[])
            .await
            .status,
        409
    );
    assert_eq!(
        s.post_api(&format!("/api/jobs/{running}/retry"))
            .await
            .status,
        409,
        "not dead"
    );
    assert_eq!(state_of(&store, running).await, Some(JobState::Running));

    // Pause and resume a queue (form and API).
    assert_eq!(
        s.post_form("/queues/pause", &[("queue", "q")]).await.status,
        303
    );
    assert!(store.counts().await.unwrap()["q"].paused);
    assert_eq!(s.post_api("/api/queues/resume?queue=q").await.status, 200);
    assert!(
        store
            .counts()
            .await
            .unwrap()
            .get("q")
            .is_none_or(|c| !c.paused)
    );
    assert_eq!(s.post_api("/api/queues/pause?queue=q").await.status, 200);
    assert!(store.counts().await.unwrap()["q"].paused);
    assert_eq!(
        s.post_form("/queues/resume", &[("queue", "q")])
            .await
            .status,
        303
    );
    assert!(
        store
            .counts()
            .await
            .unwrap()
            .get("q")
            .is_none_or(|c| !c.paused)
    );

    // Retry all dead jobs of a queue; other queues keep theirs.
    for i in 0..3 {
        dead(&store, "bulk", json!(i), "bad gateway").await;
    }
    let other = dead(&store, "other", json!(9), "bad gateway").await;
    let r = s.post_api("/api/queues/retry-dead?queue=bulk").await;
    assert_eq!(r.json()["count"], 3);
    let bulk = store.counts().await.unwrap()["bulk"];
    assert_eq!(
        (bulk.dead, bulk.retrying),
        (0, 3),
        "queued again, error history kept"
    );
    assert_eq!(state_of(&store, other).await, Some(JobState::Dead));

    // Delete all dead jobs of a queue: the form needs the confirm box.
    for i in 0..4 {
        dead(&store, "gone", json!(i), "no such file").await;
    }
    let r = s
        .post_form("/queues/delete-dead", &[("queue", "gone")])
        .await;
    assert_eq!(r.status, 400, "unconfirmed");
    assert_eq!(store.counts().await.unwrap()["gone"].dead, 4);
    let r = s
        .post_form(
            "/queues/delete-dead",
            &[("queue", "gone"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(!store.counts().await.unwrap().contains_key("gone"));
    assert_eq!(state_of(&store, other).await, Some(JobState::Dead));
    assert_eq!(
        s.post_api("/api/queues/delete-dead?queue=other")
            .await
            .json()["count"],
        1
    );
    assert_eq!(state_of(&store, other).await, None);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_text_is_escaped_everywhere() {
    let store = store();
    let queue = "<b>q</b>";
    let id = dead(
        &store,
        queue,
        json!({"html": "<script>alert(1)</script>", "quote": "\" onmouseover=\"x"}),
        "<img src=x onerror=alert(2)>",
    )
    .await;
    let s = Server::start(Arc::clone(&store)).await;
    let pages = [
        "/".to_owned(),
        format!("/jobs/{id}"),
        "/jobs?state=dead".to_owned(),
        "/failures".to_owned(),
        format!("/jobs?queue={}", "%3Cb%3Eq%3C%2Fb%3E"),
        format!("/failures?queue={}", "%3Cb%3Eq%3C%2Fb%3E"),
    ];
    for path in &pages {
        let body = s.get(path).await.body;
        for raw in ["<script>", "<img src=x", "<b>q</b>", "\" onmouseover"] {
            assert!(!body.contains(raw), "{path} contains raw {raw:?}");
        }
    }
    let detail = s.get(&format!("/jobs/{id}")).await.body;
    assert!(
        detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "payload shown escaped"
    );
    assert!(
        detail.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "error shown escaped"
    );
    assert!(
        s.get("/").await.body.contains("&lt;b&gt;q&lt;/b&gt;"),
        "queue name shown escaped"
    );
    // The queue link round-trips the name through the URL encoding.
    assert!(s.get("/").await.body.contains("queue=%3Cb%3Eq%3C%2Fb%3E"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_with_a_message_never_a_panic() {
    let store = store();
    let id = dead(&store, "q", json!(1), "boom").await;
    let s = Server::start(Arc::clone(&store)).await;
    let cases: &[(&str, u16, &str)] = &[
        ("/jobs/abc", 400, "bad job id"),
        ("/jobs/-1", 400, "bad job id"),
        ("/jobs/99999999999999999999999", 400, "bad job id"),
        ("/jobs/424242", 404, "not found"),
        ("/jobs?state=bogus", 400, "unknown state"),
        ("/jobs?limit=0", 400, "bad limit"),
        ("/jobs?limit=1000000000", 400, "bad limit"),
        ("/jobs?after=x", 400, "bad cursor"),
        ("/api/jobs?limit=100001", 400, "bad limit"),
        ("/api/jobs?state=DEADISH", 400, "unknown state"),
        ("/api/jobs/abc", 400, "bad job id"),
        ("/api/jobs/424242", 404, "not found"),
        ("/no/such/page", 404, "no page"),
        ("/api/nope", 404, "no page"),
    ];
    for (path, status, needle) in cases {
        let r = s.get(path).await;
        assert_eq!(r.status, *status, "GET {path}: {}", r.body);
        assert!(
            r.body.contains(needle),
            "GET {path}: {:?} lacks {needle:?}",
            r.body
        );
        if path.starts_with("/api/") {
            assert!(r.json()["error"].is_string());
        }
    }
    let long = "q".repeat(300);
    assert_eq!(s.get(&format!("/jobs?queue={long}")).await.status, 400);
    assert_eq!(
        s.post_api(&format!("/api/jobs/{id}/explode")).await.status,
        404
    );
    assert_eq!(s.post_api("/api/queues/explode?queue=q").await.status, 404);
    assert_eq!(
        s.post_api("/api/queues/pause").await.status,
        400,
        "queue missing"
    );
    assert_eq!(
        s.post_form("/queues/pause", &[("queue", "")]).await.status,
        400
    );
    assert_eq!(s.post_api("/api/jobs/abc/retry").await.status, 400);
    assert_eq!(s.post_api("/api/jobs/424242/retry").await.status, 404);
    // A next= pointing off-site is ignored: the redirect stays on this dashboard.
    let r = s
        .post_form(
            &format!("/jobs/{id}/retry"),
            &[("next", "//evil.example/x")],
        )
        .await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with('/'));
    assert!(!r.header("location").unwrap().starts_with("//"));
    // Still serving.
    assert_eq!(s.get("/").await.status, 200);
    s.stop().await;
}
