//! The HTML pages (maud: every `(value)` splice is HTML-escaped; nothing untrusted is
//! ever inserted with `PreEscaped`) and the form actions behind them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use keel_jobs::{FailureGroup, JobRecord, JobState, QueueCounts, Status, Store, Timestamp};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::actions::{self, JobAction, QueueAction};
use crate::dashboard::Inner;
use crate::error::RequestError;
use crate::guard::{self, CSRF_FIELD};
use crate::query::{self, state_name};
use crate::throughput::Throughput;

type Shared<S> = State<Arc<Inner<S>>>;

/// An error shown as a page.
pub(crate) struct PageError(pub(crate) RequestError);

impl<E: Into<RequestError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let title = status.canonical_reason().unwrap_or("Error");
        let body = layout(
            title,
            "",
            html! {
                h1 { (status.as_u16()) " " (title) }
                p.error { (self.0.to_string()) }
                p { a href="/" { "Back to the queues" } }
            },
        );
        (status, body).into_response()
    }
}

const CSS: &str = r#"
:root{--fg:#1d2330;--muted:#667085;--line:#e4e7ec;--bg:#f7f8fa;--accent:#2f5bd3;--dead:#b42318;--warn:#b54708;--ok:#067647}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;align-items:center;gap:24px;padding:10px 24px;background:#141a2a;color:#fff}
header a{color:#c9d4f5;text-decoration:none}header a:hover{color:#fff}.brand{font-weight:700;color:#fff!important;font-size:16px}
nav{display:flex;gap:16px}main{padding:20px 24px;max-width:1400px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:24px 0 8px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#eef1f6;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#475467}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}a{color:var(--accent)}
.zero{color:#b0b7c3}.dead a,.dead{color:var(--dead);font-weight:600}.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;background:#eef1f6}
.b-dead{background:#fee4e2;color:var(--dead)}.b-running{background:#d1e9ff;color:#175cd3}.b-retrying{background:#fef0c7;color:var(--warn)}
.b-succeeded{background:#dcfae6;color:var(--ok)}.b-paused{background:#fef0c7;color:var(--warn)}.b-active{background:#dcfae6;color:var(--ok)}
form.inline{display:inline;margin:0}button{font:inherit;font-size:12px;padding:2px 8px;border:1px solid #c4cad4;border-radius:4px;background:#fff;cursor:pointer}
button:hover{background:#eef1f6}button.danger{border-color:#f3b4ae;color:var(--dead)}
.filters{display:flex;gap:8px;align-items:end;margin:0 0 12px;flex-wrap:wrap}.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
input,select{font:inherit;padding:3px 6px;border:1px solid #c4cad4;border-radius:4px}
.tabs{display:flex;gap:4px;margin:0 0 10px}.tabs a{padding:3px 10px;border-radius:4px;text-decoration:none;background:#fff;border:1px solid var(--line)}
.tabs a.on{background:var(--accent);color:#fff;border-color:var(--accent)}
.pager{margin:10px 0;display:flex;gap:16px}.stat{display:inline-block;margin-right:24px}.stat b{font-size:18px}
pre{background:#fff;border:1px solid var(--line);padding:10px;overflow:auto;max-height:480px;white-space:pre-wrap;word-break:break-word}
dl{display:grid;grid-template-columns:160px 1fr;gap:4px 12px;background:#fff;border:1px solid var(--line);padding:10px}dt{color:var(--muted)}dd{margin:0}
.err{max-width:520px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}.error{color:var(--dead)}
.notice{background:#dcfae6;border:1px solid #75e0a7;padding:6px 10px;margin:0 0 12px}
label.confirm{font-size:12px;color:var(--muted)}
"#;

fn layout(title: &str, active: &str, body: Markup) -> Markup {
    let tab = |href: &str, key: &str, label: &str| {
        html! { a href=(href) style=[(active == key).then_some("color:#fff;font-weight:600")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · keel-jobs" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a.brand href="/" { "keel-jobs" }
                    nav {
                        (tab("/", "queues", "Queues"))
                        (tab("/jobs", "jobs", "Jobs"))
                        (tab("/jobs?state=dead", "dead", "Dead"))
                        (tab("/failures", "failures", "Failures"))
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `key=value&…`, URL-encoded.
fn qs(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

fn jobs_url(queue: Option<&str>, state: Option<JobState>) -> String {
    let mut p = Vec::new();
    if let Some(s) = state {
        p.push(("state", state_name(s)));
    }
    if let Some(q) = queue {
        p.push(("queue", q));
    }
    if p.is_empty() {
        "/jobs".to_owned()
    } else {
        format!("/jobs?{}", qs(&p))
    }
}

pub(crate) fn fmt_time(ts: Timestamp) -> String {
    i64::try_from(ts.0)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || format!("{} ms", ts.0),
            |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// "3 min ago" / "in 5 s".
fn relative(ts: Timestamp, now: Timestamp) -> String {
    let (d, past) = if ts <= now {
        (now.0 - ts.0, true)
    } else {
        (ts.0 - now.0, false)
    };
    let secs = d / 1000;
    let amount = match secs {
        0 => return "now".to_owned(),
        1..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    };
    if past {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

fn time_cell(ts: Timestamp, now: Timestamp) -> Markup {
    html! { span title=(fmt_time(ts)) { (relative(ts, now)) } }
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{r:.1}/s"))
}

fn badge(state: JobState) -> Markup {
    let name = state_name(state);
    html! { span class={ "badge b-" (name) } { (name) } }
}

/// A POST form with the token, a button, and where to go back to.
fn action_form(
    csrf: &str,
    action: &str,
    fields: &[(&str, &str)],
    next: &str,
    label: &str,
    danger: bool,
    confirm: bool,
) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name=(CSRF_FIELD) value=(csrf);
            input type="hidden" name="next" value=(next);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            @if confirm {
                label.confirm { input type="checkbox" name="confirm" value="yes" required; " sure" }
                " "
            }
            button class=[danger.then_some("danger")] type="submit" { (label) }
        }
    }
}

fn job_actions(csrf: &str, job: &JobRecord, now: Timestamp, next: &str) -> Markup {
    let state = job.state(now);
    let base = format!("/jobs/{}", job.id);
    html! {
        @if state == JobState::Dead {
            (action_form(csrf, &format!("{base}/retry"), &[], next, "Retry", false, false)) " "
        }
        @if matches!(state, JobState::Scheduled | JobState::Available | JobState::Retrying) {
            (action_form(csrf, &format!("{base}/cancel"), &[], next, "Cancel", true, false)) " "
        }
        @if state != JobState::Running {
            (action_form(csrf, &format!("{base}/delete"), &[], next, "Delete", true, false))
        }
    }
}

fn notice(pairs: &[(String, String)]) -> Markup {
    // Only fixed sentences: a link cannot make the page say something of its choosing.
    let text = match query::field(pairs, "done") {
        Some("job") => "Done: the job was updated.",
        Some("queue") => "Done: the queue was updated.",
        _ => return html! {},
    };
    html! { p.notice { (text) } }
}

fn counts_cell(queue: &str, state: JobState, n: u64) -> Markup {
    let class = match (n, state) {
        (0, _) => Some("n zero"),
        (_, JobState::Dead) => Some("n dead"),
        _ => Some("n"),
    };
    html! { td class=[class] { a href=(jobs_url(Some(queue), Some(state))) { (n) } } }
}

/// `GET /` — queues with counts by state, throughput and actions.
pub(crate) async fn overview<S: Store>(
    State(d): Shared<S>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let (counts, tp) = d.counts().await?;
    let csrf = d.csrf.as_str();
    let mut total = QueueCounts::default();
    for c in counts.values() {
        total.scheduled += c.scheduled;
        total.available += c.available;
        total.running += c.running;
        total.retrying += c.retrying;
        total.dead += c.dead;
        total.succeeded += c.succeeded;
    }
    Ok(layout(
        "Queues",
        "queues",
        html! {
            (notice(&pairs))
            h1 { "Queues" }
            (throughput_strip(&tp, &total))
            @if counts.is_empty() {
                p.muted { "No queues yet: the store holds no job and no paused queue." }
            } @else {
                table {
                    thead { tr {
                        th { "Queue" }
                        @for s in JobState::ALL { th.n { (state_name(s)) } }
                        th.n { "Finished/s" } th { "Status" } th { "Actions" }
                    } }
                    tbody {
                        @for (name, c) in &counts {
                            tr {
                                td { a href=(jobs_url(Some(name), None)) { (name) } }
                                (counts_cell(name, JobState::Scheduled, c.scheduled))
                                (counts_cell(name, JobState::Available, c.available))
                                (counts_cell(name, JobState::Running, c.running))
                                (counts_cell(name, JobState::Retrying, c.retrying))
                                (counts_cell(name, JobState::Dead, c.dead))
                                (counts_cell(name, JobState::Succeeded, c.succeeded))
                                td.n { (rate(d.finished_per_sec(name))) }
                                td { @if c.paused { span.badge.b-paused { "paused" } } @else { span.badge.b-active { "active" } } }
                                td {
                                    @if c.paused {
                                        (action_form(csrf, "/queues/resume", &[("queue", name)], "/?done=queue", "Resume", false, false))
                                    } @else {
                                        (action_form(csrf, "/queues/pause", &[("queue", name)], "/?done=queue", "Pause", false, false))
                                    }
                                    @if c.dead > 0 {
                                        " " (action_form(csrf, "/queues/retry-dead", &[("queue", name)], "/?done=queue", "Retry dead", false, false))
                                        " " (action_form(csrf, "/queues/delete-dead", &[("queue", name)], "/?done=queue", "Delete dead", true, true))
                                    }
                                }
                            }
                        }
                        tr {
                            th { "all queues" }
                            @for n in [total.scheduled, total.available, total.running, total.retrying, total.dead, total.succeeded] {
                                th.n { (n) }
                            }
                            th {} th {} th {}
                        }
                    }
                }
                p.muted { "Finished/s counts jobs that died or succeeded and were retained (stores that keep completed jobs), over the last minute of samples." }
            }
        },
    ))
}

fn throughput_strip(tp: &Throughput, total: &QueueCounts) -> Markup {
    html! {
        p {
            span.stat { b { (total.unfinished()) } " unfinished" }
            span.stat.dead { b { (total.dead) } " dead" }
            span.stat { b { (rate(tp.completed_per_sec)) } " completed" }
            span.stat { b { (rate(tp.failed_per_sec)) } " failed" }
            span.stat { b { (rate(tp.enqueued_per_sec)) } " enqueued" }
            span.muted {
                @if tp.window_secs > 0.0 { "rates over the last " (format!("{:.0}", tp.window_secs)) " s, as seen by this process's store handle" }
                @else { "rates appear after a second sample (reload, or wait a few seconds)" }
            }
        }
    }
}

fn last_error(job: &JobRecord) -> String {
    job.errors.last().map_or_else(String::new, |e| {
        let mut m = e.message.clone();
        if m.len() > 160 {
            let mut cut = 160;
            while !m.is_char_boundary(cut) {
                cut -= 1;
            }
            m.truncate(cut);
            m.push('…');
        }
        m
    })
}

/// `GET /jobs?state=&queue=&kind=&after=&limit=` — a page of jobs, keyset-paginated by id.
pub(crate) async fn jobs<S: Store>(
    State(d): Shared<S>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let raw = raw.unwrap_or_default();
    let pairs = query::pairs(raw.as_bytes())?;
    let filter = query::list_filter(&pairs, d.page_size)?;
    let page = crate::api::page(&*d.store, &filter).await?;
    let now = d.store.now();
    let csrf = d.csrf.as_str();
    let here = if raw.is_empty() {
        "/jobs".to_owned()
    } else {
        format!("/jobs?{raw}")
    };
    // Links keep every filter but the cursor.
    let mut keep: Vec<(&str, &str)> = Vec::new();
    if let Some(q) = &filter.queue {
        keep.push(("queue", q));
    }
    if let Some(k) = &filter.kind {
        keep.push(("kind", k));
    }
    let limit = filter.limit.to_string();
    if filter.limit != d.page_size {
        keep.push(("limit", &limit));
    }
    let with_state = |s: Option<JobState>| {
        let mut p = keep.clone();
        if let Some(s) = s {
            p.insert(0, ("state", state_name(s)));
        }
        if p.is_empty() {
            "/jobs".to_owned()
        } else {
            format!("/jobs?{}", qs(&p))
        }
    };
    let mut cursor = keep.clone();
    if let Some(s) = filter.state {
        cursor.insert(0, ("state", state_name(s)));
    }
    let first = if cursor.is_empty() {
        "/jobs".to_owned()
    } else {
        format!("/jobs?{}", qs(&cursor))
    };
    let next = page.next_after.map(|after| {
        let a = after.to_string();
        let mut p = cursor.clone();
        p.push(("after", &a));
        format!("/jobs?{}", qs(&p))
    });
    let title = match filter.state {
        Some(s) => {
            let name = state_name(s);
            format!("{}{} jobs", name[..1].to_ascii_uppercase(), &name[1..])
        }
        None => "Jobs".to_owned(),
    };
    Ok(layout(
        &title,
        if filter.state == Some(JobState::Dead) {
            "dead"
        } else {
            "jobs"
        },
        html! {
            (notice(&pairs))
            h1 { (title) @if let Some(q) = &filter.queue { " in " code { (q) } } }
            div.tabs {
                a.on[filter.state.is_none()] href=(with_state(None)) { "all" }
                @for s in JobState::ALL {
                    a.on[filter.state == Some(s)] href=(with_state(Some(s))) { (state_name(s)) }
                }
            }
            form.filters method="get" action="/jobs" {
                @if let Some(s) = filter.state { input type="hidden" name="state" value=(state_name(s)); }
                label { "queue" input name="queue" value=(filter.queue.as_deref().unwrap_or("")) placeholder="any"; }
                label { "kind" input name="kind" value=(filter.kind.as_deref().unwrap_or("")) placeholder="any"; }
                label { "per page" input name="limit" type="number" min="1" max=(query::MAX_LIMIT) value=(filter.limit); }
                button type="submit" { "Filter" }
            }
            @if page.jobs.is_empty() {
                p.muted { "No jobs match." }
            } @else {
                table {
                    thead { tr {
                        th.n { "ID" } th { "Queue" } th { "Kind" } th { "State" } th.n { "Attempt" } th.n { "Priority" }
                        th { "Run at" } th { "Enqueued" } th { "Last error" } th { "Actions" }
                    } }
                    tbody {
                        @for job in &page.jobs {
                            tr {
                                td.n { a href={ "/jobs/" (job.id) } { (job.id) } }
                                td { (job.queue) }
                                td { (job.kind) }
                                td { (badge(job.state(now))) }
                                td.n { (job.attempt) "/" (job.max_attempts) }
                                td.n { (job.priority) }
                                td { (time_cell(job.run_at, now)) }
                                td { (time_cell(job.enqueued_at, now)) }
                                td.err.error title=(last_error(job)) { (last_error(job)) }
                                td { (job_actions(csrf, job, now, &here)) }
                            }
                        }
                    }
                }
            }
            div.pager {
                @if filter.after.is_some() { a href=(first) { "« First page" } }
                @if let Some(next) = &next { a href=(next) { "Next page »" } }
                span.muted { (page.jobs.len()) " shown" @if let Some(a) = filter.after { ", ids after " (a) } }
            }
        },
    ))
}

/// `GET /jobs/{id}` — one job: fields, payload, error history, actions.
pub(crate) async fn job<S: Store>(
    State(d): Shared<S>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let id = query::parse_id(&id)?;
    let job = d
        .store
        .get(id)
        .await?
        .ok_or_else(|| RequestError::NotFound(format!("job {id} not found")))?;
    let now = d.store.now();
    let state = job.state(now);
    let payload = serde_json::to_string_pretty(&job.payload).unwrap_or_default();
    let here = format!("/jobs/{id}");
    Ok(layout(
        &format!("Job {id}"),
        "",
        html! {
            (notice(&pairs))
            h1 { "Job " (id) " " (badge(state)) }
            p { (job_actions(d.csrf.as_str(), &job, now, &format!("{here}?done=job"))) }
            dl {
                dt { "Queue" } dd { a href=(jobs_url(Some(&job.queue), None)) { (job.queue) } }
                dt { "Kind" } dd { (job.kind) }
                dt { "State" } dd { (state_name(state)) }
                dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
                dt { "Priority" } dd { (job.priority) }
                dt { "Enqueued" } dd { (fmt_time(job.enqueued_at)) " (" (relative(job.enqueued_at, now)) ")" }
                dt { "Run at" } dd { (fmt_time(job.run_at)) " (" (relative(job.run_at, now)) ")" }
                @match job.status {
                    Status::Running { token, deadline, started_at } => {
                        dt { "Running since" } dd { (fmt_time(started_at)) }
                        dt { "Lease" } dd { "token " (token) ", until " (fmt_time(deadline)) }
                    }
                    Status::Dead { at } => { dt { "Died" } dd { (fmt_time(at)) " (" (relative(at, now)) ")" } }
                    Status::Succeeded { at } => { dt { "Succeeded" } dd { (fmt_time(at)) } }
                    Status::Pending => {}
                }
                dt { "Timeout" } dd { @if let Some(t) = job.timeout { (format!("{t:?}")) } @else { span.muted { "pool default" } } }
                dt { "Unique key" } dd { @if let Some(k) = &job.unique_key { code { (k) } } @else { span.muted { "none" } } }
                dt { "Tags" } dd { @if job.tags.is_empty() { span.muted { "none" } } @for t in &job.tags { span.badge { (t) } " " } }
                dt { "Lease recoveries" } dd { (job.lease_recoveries) }
                @if let Some(b) = job.batch { dt { "Batch" } dd { (b.0) } }
            }
            h2 { "Payload" }
            pre { (payload) }
            h2 { "Error history" }
            @if job.errors.is_empty() {
                p.muted { "No failures." }
            } @else {
                table {
                    thead { tr { th.n { "Attempt" } th { "Time" } th { "Kind" } th { "Message" } } }
                    tbody {
                        @for e in job.errors.iter().rev() {
                            tr {
                                td.n { (e.attempt) }
                                td { (fmt_time(e.at)) }
                                td { (format!("{:?}", e.kind)) }
                                td.error { pre style="margin:0;border:0;padding:0;background:none" { (e.message) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `GET /failures?queue=` — dead jobs grouped by their last error.
pub(crate) async fn failures<S: Store>(
    State(d): Shared<S>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let queue = query::name("queue", query::field(&pairs, "queue"))?;
    let groups: Vec<FailureGroup> = d.store.dead_by_error(queue.as_deref()).await?;
    let now = d.store.now();
    let csrf = d.csrf.as_str();
    let total: u64 = groups.iter().map(|g| g.count).sum();
    Ok(layout(
        "Failures",
        "failures",
        html! {
            (notice(&pairs))
            h1 { "Failures by error" @if let Some(q) = &queue { " in " code { (q) } } }
            form.filters method="get" action="/failures" {
                label { "queue" input name="queue" value=(queue.as_deref().unwrap_or("")) placeholder="any"; }
                button type="submit" { "Filter" }
            }
            p { span.stat.dead { b { (total) } " dead jobs" } span.stat { b { (groups.len()) } " distinct errors" } }
            @if let Some(q) = &queue {
                @if total > 0 {
                    p {
                        (action_form(csrf, "/queues/retry-dead", &[("queue", q)], "/failures?done=queue", "Retry all dead jobs of this queue", false, false))
                        " "
                        (action_form(csrf, "/queues/delete-dead", &[("queue", q)], "/failures?done=queue", "Delete all dead jobs of this queue", true, true))
                    }
                }
            }
            @if groups.is_empty() {
                p.muted { "No dead jobs." }
            } @else {
                table {
                    thead { tr { th.n { "Jobs" } th { "Kind" } th { "Error" } th { "Latest" } th.n { "Latest job" } } }
                    tbody {
                        @for g in &groups {
                            tr {
                                td.n.dead { (g.count) }
                                td { (format!("{:?}", g.kind)) }
                                td.error { (g.message) }
                                td { (time_cell(g.latest, now)) }
                                td.n { a href={ "/jobs/" (g.example) } { (g.example) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `POST /jobs/{id}/{retry|delete|cancel}` — a form action; 303 back to `next`.
pub(crate) async fn job_action<S: Store>(
    State(d): Shared<S>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let pairs = query::pairs(&body)?;
    check(&d, &headers, &pairs)?;
    let action = JobAction::parse(&action)?;
    let id = query::parse_id(&id)?;
    actions::on_job(&*d.store, id, action).await?;
    d.counters.action();
    let fallback = if action == JobAction::Retry {
        format!("/jobs/{id}?done=job")
    } else {
        "/jobs?done=job".to_owned()
    };
    Ok(back(query::field(&pairs, "next"), &fallback))
}

/// `POST /queues/{pause|resume|retry-dead|delete-dead}` with form field `queue`.
pub(crate) async fn queue_action<S: Store>(
    State(d): Shared<S>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let pairs = query::pairs(&body)?;
    check(&d, &headers, &pairs)?;
    let action = QueueAction::parse(&action)?;
    let queue = query::required_queue(&pairs)?;
    if action == QueueAction::DeleteDead && query::field(&pairs, "confirm") != Some("yes") {
        return Err(RequestError::BadRequest(
            "deleting all dead jobs needs the confirm box ticked (confirm=yes)".to_owned(),
        )
        .into());
    }
    actions::on_queue(&*d.store, &queue, action).await?;
    d.counters.action();
    Ok(back(query::field(&pairs, "next"), "/?done=queue"))
}

fn check<S>(
    d: &Inner<S>,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<(), PageError> {
    guard::check_post(&d.csrf, headers, query::field(pairs, CSRF_FIELD)).map_err(|e| {
        d.counters.csrf_rejected();
        PageError(e)
    })
}

fn back(next: Option<&str>, fallback: &str) -> Response {
    Redirect::to(query::local_path(next).unwrap_or(fallback)).into_response()
}

/// Any other path: 404 (JSON under `/api/`).
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    let e = RequestError::NotFound(format!("no page at {}", uri.path()));
    if uri.path().starts_with("/api/") {
        crate::api::ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}
