//! The JSON API behind the pages: the same reads and actions, as JSON.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/queues` | counts by state per queue, paused flag, throughput |
//! | GET | `/api/jobs?state=&queue=&kind=&after=&limit=` | a page of jobs (ascending id) and `next_after`, the cursor of the next page (`null` on the last) |
//! | GET | `/api/jobs/{id}` | one job with payload and error history |
//! | GET | `/api/failures?queue=` | dead jobs grouped by last error |
//! | GET | `/api/csrf` | `{"token": …}` for scripts (same-origin only: no CORS) |
//! | POST | `/api/jobs/{id}/{retry\|delete\|cancel}` | an action on one job |
//! | POST | `/api/queues/{pause\|resume\|retry-dead\|delete-dead}?queue=` | an action on a queue |
//!
//! POSTs need the header `X-Keel-Csrf: <token>`. Errors are `{"error": "…"}` with status
//! 400 (bad input), 403 (token, origin or host), 404 (no such job), 409 (action does not
//! apply) or 500 (store failure).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use keel_jobs::{JobId, JobRecord, ListFilter, Store};
use serde_json::{Value, json};

use crate::actions::{self, JobAction, QueueAction};
use crate::dashboard::Inner;
use crate::error::RequestError;
use crate::guard;
use crate::query::{self, state_name};

type Shared<S> = State<Arc<Inner<S>>>;

/// An error as JSON.
pub(crate) struct ApiError(pub(crate) RequestError);

impl<E: Into<RequestError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0.status(),
            Json(json!({ "error": self.0.to_string() })),
        )
            .into_response()
    }
}

/// A page of jobs and the cursor of the next one.
pub(crate) struct Page {
    pub(crate) jobs: Vec<JobRecord>,
    pub(crate) next_after: Option<JobId>,
}

/// One keyset page: asks the store for one job more than the page to learn whether a
/// next page exists (no count, no OFFSET).
pub(crate) async fn page<S: Store>(store: &S, filter: &ListFilter) -> Result<Page, RequestError> {
    let mut ask = filter.clone();
    ask.limit = filter.limit + 1;
    let mut jobs = store.list(ask).await?;
    let more = jobs.len() > filter.limit;
    jobs.truncate(filter.limit);
    let next_after = if more {
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(Page { jobs, next_after })
}

fn job_json(job: &JobRecord, now: keel_jobs::Timestamp) -> Value {
    let mut v = serde_json::to_value(job).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert("state".into(), state_name(job.state(now)).into());
    }
    v
}

/// `GET /api/queues`
pub(crate) async fn queues<S: Store>(State(d): Shared<S>) -> Result<Json<Value>, ApiError> {
    let (counts, throughput) = d.counts().await?;
    let queues: Vec<Value> = counts
        .iter()
        .map(|(name, c)| {
            json!({
                "name": name,
                "scheduled": c.scheduled,
                "available": c.available,
                "running": c.running,
                "retrying": c.retrying,
                "dead": c.dead,
                "succeeded": c.succeeded,
                "paused": c.paused,
                "finished_per_sec": d.finished_per_sec(name),
            })
        })
        .collect();
    Ok(Json(json!({
        "now": d.store.now().0,
        "queues": queues,
        "throughput": throughput,
    })))
}

/// `GET /api/jobs`
pub(crate) async fn jobs<S: Store>(
    State(d): Shared<S>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let filter = query::list_filter(&pairs, d.page_size)?;
    let page = page(&*d.store, &filter).await?;
    let now = d.store.now();
    Ok(Json(json!({
        "jobs": page.jobs.iter().map(|j| job_json(j, now)).collect::<Vec<_>>(),
        "next_after": page.next_after.map(|id| id.0),
    })))
}

/// `GET /api/jobs/{id}`
pub(crate) async fn job<S: Store>(
    State(d): Shared<S>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = query::parse_id(&id)?;
    let job = d
        .store
        .get(id)
        .await?
        .ok_or_else(|| RequestError::NotFound(format!("job {id} not found")))?;
    Ok(Json(job_json(&job, d.store.now())))
}

/// `GET /api/failures`
pub(crate) async fn failures<S: Store>(
    State(d): Shared<S>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let queue = query::name("queue", query::field(&pairs, "queue"))?;
    let groups = d.store.dead_by_error(queue.as_deref()).await?;
    let groups: Vec<Value> = groups
        .iter()
        .map(|g| {
            json!({
                "kind": g.kind,
                "message": g.message,
                "count": g.count,
                "latest": g.latest.0,
                "example": g.example.0,
            })
        })
        .collect();
    Ok(Json(json!({ "groups": groups })))
}

/// `GET /api/csrf`
pub(crate) async fn csrf<S: Store>(State(d): Shared<S>) -> Json<Value> {
    Json(json!({ "token": d.csrf.as_str(), "header": "X-Keel-Csrf" }))
}

fn check<S>(d: &Inner<S>, headers: &HeaderMap) -> Result<(), ApiError> {
    guard::check_post(&d.csrf, headers, None).map_err(|e| {
        d.counters.csrf_rejected();
        ApiError(e)
    })
}

/// `POST /api/jobs/{id}/{action}`
pub(crate) async fn job_action<S: Store>(
    State(d): Shared<S>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check(&d, &headers)?;
    let action = JobAction::parse(&action)?;
    let id = query::parse_id(&id)?;
    let done = actions::on_job(&*d.store, id, action).await?;
    d.counters.action();
    Ok(Json(
        json!({ "ok": true, "message": done.message, "count": done.count }),
    ))
}

/// `POST /api/queues/{action}?queue=`
pub(crate) async fn queue_action<S: Store>(
    State(d): Shared<S>,
    Path(action): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    check(&d, &headers)?;
    let action = QueueAction::parse(&action)?;
    let pairs = query::pairs(raw.unwrap_or_default().as_bytes())?;
    let queue = query::required_queue(&pairs)?;
    let done = actions::on_queue(&*d.store, &queue, action).await?;
    d.counters.action();
    Ok(Json(
        json!({ "ok": true, "message": done.message, "count": done.count }),
    ))
}
