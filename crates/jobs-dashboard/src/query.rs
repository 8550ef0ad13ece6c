//! Parsing and validating what a request asks for: states, ids, list filters and form
//! fields. Everything here is untrusted; every refusal is a
//! [`RequestError::BadRequest`] with a message that says what was wrong.

use keel_jobs::{JobId, JobState, ListFilter};

use crate::error::RequestError;

/// The largest page a request may ask for.
pub const MAX_LIMIT: usize = 1_000;
/// Longest queue or kind name accepted in a filter (the store's own limit).
const MAX_NAME_LEN: usize = keel_jobs::job::MAX_NAME_LEN;

/// Parses an `application/x-www-form-urlencoded` query or body into pairs.
pub(crate) fn pairs(raw: &[u8]) -> Result<Vec<(String, String)>, RequestError> {
    serde_urlencoded::from_bytes(raw)
        .map_err(|e| RequestError::BadRequest(format!("malformed form or query: {e}")))
}

/// The last value of `key`, if given.
pub(crate) fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A state's name in URLs, the API and the pages.
pub fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Scheduled => "scheduled",
        JobState::Available => "available",
        JobState::Running => "running",
        JobState::Retrying => "retrying",
        JobState::Dead => "dead",
        JobState::Succeeded => "succeeded",
    }
}

/// Parses a state name (case-insensitive).
pub fn parse_state(s: &str) -> Result<JobState, RequestError> {
    JobState::ALL
        .into_iter()
        .find(|&st| state_name(st).eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            RequestError::BadRequest(format!(
                "unknown state {s:?}; expected one of scheduled, available, running, retrying, dead, succeeded"
            ))
        })
}

/// Parses a job id.
pub fn parse_id(s: &str) -> Result<JobId, RequestError> {
    s.parse::<u64>()
        .map(JobId)
        .map_err(|_| RequestError::BadRequest(format!("bad job id {s:?}: expected a number")))
}

/// A queue or kind name from a filter or form: empty means "none".
pub(crate) fn name(what: &str, value: Option<&str>) -> Result<Option<String>, RequestError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.len() > MAX_NAME_LEN => Err(RequestError::BadRequest(format!(
            "{what} is longer than {MAX_NAME_LEN} bytes"
        ))),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// A queue name a queue action requires.
pub(crate) fn required_queue(pairs: &[(String, String)]) -> Result<String, RequestError> {
    name("queue", field(pairs, "queue"))?
        .ok_or_else(|| RequestError::BadRequest("missing field: queue".to_owned()))
}

/// A job list request: the store's [`ListFilter`] plus the page size asked for.
pub(crate) fn list_filter(
    pairs: &[(String, String)],
    default_limit: usize,
) -> Result<ListFilter, RequestError> {
    let state = match field(pairs, "state") {
        None | Some("") | Some("all") => None,
        Some(s) => Some(parse_state(s)?),
    };
    let after = match field(pairs, "after") {
        None | Some("") => None,
        Some(s) => Some(parse_id(s).map_err(|_| {
            RequestError::BadRequest(format!("bad cursor after={s:?}: expected a job id"))
        })?),
    };
    let limit = match field(pairs, "limit") {
        None | Some("") => default_limit,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(RequestError::BadRequest(format!(
                    "bad limit {s:?}: expected 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    Ok(ListFilter {
        queue: name("queue", field(pairs, "queue"))?,
        state,
        kind: name("kind", field(pairs, "kind"))?,
        after,
        limit,
    })
}

/// A local path to go back to after a form action: must start with one `/` (no
/// `//host` or `/\host`, which browsers treat as another site).
pub(crate) fn local_path(next: Option<&str>) -> Option<&str> {
    let n = next?;
    let ok = n.starts_with('/')
        && !n.starts_with("//")
        && !n.starts_with("/\\")
        && n.len() <= 2048
        && !n.chars().any(|c| c.is_control());
    ok.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_inputs_are_refused_with_a_message() {
        let p = |s: &str| pairs(s.as_bytes()).unwrap();
        assert!(list_filter(&p("state=bogus"), 50).is_err());
        assert!(list_filter(&p("limit=0"), 50).is_err());
        assert!(list_filter(&p("limit=1001"), 50).is_err());
        assert!(list_filter(&p("limit=99999999999999999999999"), 50).is_err());
        assert!(list_filter(&p("after=-1"), 50).is_err());
        assert!(parse_id("12abc").is_err());
        let f = list_filter(&p("state=DEAD&queue=q&kind=&after=7&limit=3"), 50).unwrap();
        assert_eq!(f.state, Some(JobState::Dead));
        assert_eq!(f.queue.as_deref(), Some("q"));
        assert_eq!(f.kind, None);
        assert_eq!(f.after, Some(JobId(7)));
        assert_eq!(f.limit, 3);
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(
            local_path(Some("/jobs?state=dead")),
            Some("/jobs?state=dead")
        );
        assert_eq!(local_path(Some("//evil.example")), None);
        assert_eq!(local_path(Some("/\\evil.example")), None);
        assert_eq!(local_path(Some("https://evil.example")), None);
        assert_eq!(local_path(Some("/a\r\nSet-Cookie: x")), None);
    }
}
