//! `INCR`, `INCRBY`, `DECR`, `DECRBY`.
//!
//! # Semantics under concurrency
//!
//! An increment is a [`Mutation`] run by the key's *write coordinator* (the first owner of
//! the key that the receiving node does not believe down): it reads the coordinator's
//! **local** set, adds, creates a version whose context is everything it read, and
//! replicates it like any write (acknowledged after W durable owners). Precisely:
//!
//! - **Stable coordinator** (every node routes the key to the same live owner): each
//!   increment is applied exactly once, in arrival order at the coordinator, atomically
//!   (one storage job; the writer thread serialises all jobs). Concurrent `INCR`s through
//!   any nodes never lose an update and the replies are distinct consecutive values —
//!   per-key linearizable, as on one Redis.
//! - **Coordinator change** (the first owner is down, partitioned, or believed down by
//!   some nodes only): the next owner coordinates from *its* local copy, which may lack
//!   increments acknowledged by the old coordinator with a different W quorum. Its version
//!   then does not descend from those, so both survive as **siblings**, and a plain `GET`
//!   returns one of them by the read rule. The next blind write (including the next
//!   `INCR`) at a coordinator holding both supersedes both: the increments of the other
//!   branch are **lost** from the value (never silently: `DHT.SIBLINGS` shows the branches
//!   until then, and the replies already given were distinct values per branch only).
//! - **Timeouts**: a node whose forwarded `INCR` times out retries it at the next owner,
//!   while the first may still have applied it: an increment can be applied **twice**
//!   (at-least-once, not exactly-once). A client's own retry after an error does the same.
//! - An increment that fails with a quorum error may still have been applied on some
//!   replicas (no rollback, as for every write).
//!
//! So counters are exact while membership and the failure detector are quiet, and may
//! both lose and double-count increments around failures. Counters that must be exact
//! under failures need a CRDT (a PN-counter: one entry per coordinator, merged by maximum),
//! which this command set does not provide.

use super::super::mutation::{Mutation, Write, parse_i64};
use crate::reply::Reply;
use crate::version::Sibling;

/// Parses the four counter commands.
pub(crate) fn parse(name: &[u8], args: &[Vec<u8>]) -> Result<Mutation, Reply> {
    let by = match name {
        b"INCR" | b"DECR" => {
            if args.len() != 2 {
                return Err(Reply::wrong_arity(&String::from_utf8_lossy(name)));
            }
            1
        }
        _ => {
            if args.len() != 3 {
                return Err(Reply::wrong_arity(&String::from_utf8_lossy(name)));
            }
            parse_i64(&args[2]).ok_or_else(Reply::not_integer)?
        }
    };
    if name.starts_with(b"DECR") {
        return by
            .checked_neg()
            .map(Mutation::IncrBy)
            .ok_or_else(|| Reply::err("decrement would overflow"));
    }
    Ok(Mutation::IncrBy(by))
}

/// Adds `by` to the current value (absent = 0); keeps the TTL, as Redis does.
pub(crate) fn apply(by: i64, current: Option<&Sibling>) -> (Reply, Option<Write>) {
    let old = match current.and_then(|s| s.value.as_deref()) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return (Reply::not_integer(), None),
        },
    };
    match old.checked_add(by) {
        Some(n) => (
            Reply::Integer(n),
            Some(Write {
                value: Some(n.to_string().into_bytes()),
                expires_at_ms: current.and_then(|s| s.expires_at_ms),
            }),
        ),
        None => (Reply::err("increment or decrement would overflow"), None),
    }
}
