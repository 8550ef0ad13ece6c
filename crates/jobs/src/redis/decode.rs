//! Turning script replies (`redis::Value` trees) into records, and jobs into script
//! arguments.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::Value;

use crate::batch::{BatchCallbacks, BatchId, BatchStatus};
use crate::job::{AttemptError, FailureKind, JobRecord, NewJob, Status};
use crate::state::Events;
use crate::{FencingToken, InvalidJob, JobId, JobsError, Timestamp};

/// Largest time the scripts handle exactly (Lua numbers are doubles): 2^53 ms, year
/// 285 000. A `run_at` or deadline past it is refused.
pub(crate) const MAX_EXACT_MS: u64 = 1 << 53;

pub(crate) fn bad_reply(what: impl Into<String>) -> JobsError {
    JobsError::Storage(format!("unexpected reply from redis: {}", what.into()).into())
}

pub(crate) fn array(v: &Value) -> Result<&[Value], JobsError> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        other => Err(bad_reply(format!("expected an array, got {other:?}"))),
    }
}

pub(crate) fn bytes(v: &Value) -> Result<&[u8], JobsError> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        other => Err(bad_reply(format!("expected a string, got {other:?}"))),
    }
}

pub(crate) fn text(v: &Value) -> Result<&str, JobsError> {
    std::str::from_utf8(bytes(v)?).map_err(|_| bad_reply("a string that is not UTF-8"))
}

pub(crate) fn int(v: &Value) -> Result<u64, JobsError> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| bad_reply(format!("negative number {i}"))),
        Value::BulkString(_) | Value::SimpleString(_) => parse(text(v)?),
        other => Err(bad_reply(format!("expected a number, got {other:?}"))),
    }
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T, JobsError> {
    s.parse()
        .map_err(|_| bad_reply(format!("`{s}` is not a number")))
}

/// Splits `{events, rest...}`, returning the events and the rest.
pub(crate) fn split_events(v: &Value) -> Result<(Events, &[Value]), JobsError> {
    let items = array(v)?;
    let (first, rest) = items
        .split_first()
        .ok_or_else(|| bad_reply("empty reply"))?;
    let e = array(first)?;
    if e.len() != 11 {
        return Err(bad_reply("event counters"));
    }
    let n = |i: usize| int(&e[i]);
    let events = Events {
        enqueued: n(0)?,
        duplicates: n(1)?,
        leased: n(2)?,
        completed: n(3)?,
        failed: n(4)?,
        retried: n(5)?,
        dead: n(6)?,
        lease_recoveries: n(7)?,
        released: n(8)?,
        cancelled: n(9)?,
        stale_rejected: n(10)?,
    };
    Ok((events, rest))
}

/// A record `{hash fields, error entries}`, or `Nil` for a missing job.
pub(crate) fn record(v: &Value) -> Result<Option<JobRecord>, JobsError> {
    if matches!(v, Value::Nil) {
        return Ok(None);
    }
    let parts = array(v)?;
    if parts.len() != 2 {
        return Err(bad_reply("job record"));
    }
    let flat = array(&parts[0])?;
    let mut h: HashMap<&str, &Value> = HashMap::with_capacity(flat.len() / 2);
    for pair in flat.chunks(2) {
        if let [k, v] = pair {
            h.insert(text(k)?, v);
        }
    }
    let field = |name: &str| {
        h.get(name)
            .copied()
            .ok_or_else(|| bad_reply(format!("job field `{name}` missing")))
    };
    let num = |name: &str| -> Result<u64, JobsError> { int(field(name)?) };
    let opt_num =
        |name: &str| -> Result<Option<u64>, JobsError> { h.get(name).map(|v| int(v)).transpose() };
    let opt_text = |name: &str| -> Result<Option<String>, JobsError> {
        h.get(name).map(|v| text(v).map(str::to_owned)).transpose()
    };
    let id = JobId(num("id")?);
    let status = match text(field("st")?)? {
        "pending" => Status::Pending,
        "running" => Status::Running {
            token: FencingToken(num("tk")?),
            deadline: Timestamp(num("dl")?),
            started_at: Timestamp(num("sa")?),
        },
        "dead" => Status::Dead {
            at: Timestamp(num("at")?),
        },
        "succeeded" => Status::Succeeded {
            at: Timestamp(num("at")?),
        },
        other => return Err(bad_reply(format!("job status `{other}`"))),
    };
    let errors = array(&parts[1])?
        .iter()
        .map(|e| {
            serde_json::from_slice::<AttemptError>(bytes(e)?)
                .map_err(|e| bad_reply(format!("error entry: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(JobRecord {
        id,
        queue: text(field("q")?)?.to_owned(),
        kind: text(field("k")?)?.to_owned(),
        payload: serde_json::from_slice(bytes(field("p")?)?)
            .map_err(|e| bad_reply(format!("payload: {e}")))?,
        priority: parse(text(field("pr")?)?)?,
        attempt: parse(text(field("a")?)?)?,
        max_attempts: parse(text(field("ma")?)?)?,
        run_at: Timestamp(num("ra")?),
        enqueued_at: Timestamp(num("ea")?),
        timeout: opt_num("to")?.map(Duration::from_millis),
        unique_key: opt_text("uk")?,
        tags: serde_json::from_slice(bytes(field("tg")?)?)
            .map_err(|e| bad_reply(format!("tags: {e}")))?,
        status,
        errors,
        lease_recoveries: parse(text(field("lr")?)?)?,
        batch: opt_num("b")?.map(BatchId),
    }))
}

/// The ten script arguments of one job (see `lua/enqueue.lua`).
pub(crate) fn job_args(
    job: &NewJob,
    run_at: Timestamp,
    batch: Option<BatchId>,
) -> Result<[String; 10], JobsError> {
    if run_at.0 >= MAX_EXACT_MS {
        return Err(InvalidJob::DelayTooLong.into());
    }
    let payload =
        serde_json::to_string(&job.payload).map_err(|e| InvalidJob::Serialize(e.to_string()))?;
    let tags =
        serde_json::to_string(&job.tags).map_err(|e| InvalidJob::Serialize(e.to_string()))?;
    Ok([
        job.queue.clone(),
        job.kind.clone(),
        payload,
        job.priority.to_string(),
        job.max_attempts.to_string(),
        run_at.0.to_string(),
        job.timeout
            .map(|t| t.as_millis().to_string())
            .unwrap_or_default(),
        job.unique_key.clone().unwrap_or_default(),
        tags,
        batch.map(|b| b.0.to_string()).unwrap_or_default(),
    ])
}

/// A batch callback as the scripts store it: a JSON array of strings
/// `[queue, kind, payload, priority, max_attempts, delay_ms, timeout_ms, tags]`.
pub(crate) fn callback_spec(job: &Option<NewJob>) -> Result<String, JobsError> {
    let Some(job) = job else {
        return Ok(String::new());
    };
    let delay = job.delay.map_or(0, |d| d.as_millis());
    if delay >= u128::from(MAX_EXACT_MS) {
        return Err(InvalidJob::DelayTooLong.into());
    }
    let [
        queue,
        kind,
        payload,
        priority,
        max_attempts,
        _,
        timeout,
        _,
        tags,
        _,
    ] = job_args(job, Timestamp(0), None)?;
    let spec = [
        queue,
        kind,
        payload,
        priority,
        max_attempts,
        delay.to_string(),
        timeout,
        tags,
    ];
    serde_json::to_string(&spec).map_err(|e| InvalidJob::Serialize(e.to_string()).into())
}

/// A batch hash (`HGETALL`), or `None` when empty.
pub(crate) fn batch(id: BatchId, v: &Value) -> Result<Option<BatchStatus>, JobsError> {
    let flat = array(v)?;
    if flat.is_empty() {
        return Ok(None);
    }
    let mut h: HashMap<&str, &Value> = HashMap::new();
    for pair in flat.chunks(2) {
        if let [k, v] = pair {
            h.insert(text(k)?, v);
        }
    }
    let num = |name: &str| -> Result<u64, JobsError> {
        int(h
            .get(name)
            .ok_or_else(|| bad_reply(format!("batch field {name}")))?)
    };
    let callbacks: BatchCallbacks = serde_json::from_slice(bytes(
        h.get("cbs").ok_or_else(|| bad_reply("batch callbacks"))?,
    )?)
    .map_err(|e| bad_reply(format!("batch callbacks: {e}")))?;
    Ok(Some(BatchStatus {
        id,
        total: num("total")?,
        pending: num("pending")?,
        succeeded: num("succeeded")?,
        failed: num("failed")?,
        callbacks,
        created_at: Timestamp(num("ca")?),
    }))
}

/// The name the scripts store for a failure kind (its serde name).
pub(crate) fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Error => "Error",
        FailureKind::Panic => "Panic",
        FailureKind::Timeout => "Timeout",
        FailureKind::LeaseExpired => "LeaseExpired",
        FailureKind::UnknownKind => "UnknownKind",
        FailureKind::BadPayload => "BadPayload",
    }
}

pub(crate) fn kind_from_name(name: &str) -> Result<FailureKind, JobsError> {
    Ok(match name {
        "Error" => FailureKind::Error,
        "Panic" => FailureKind::Panic,
        "Timeout" => FailureKind::Timeout,
        "LeaseExpired" => FailureKind::LeaseExpired,
        "UnknownKind" => FailureKind::UnknownKind,
        "BadPayload" => FailureKind::BadPayload,
        other => return Err(bad_reply(format!("failure kind `{other}`"))),
    })
}
