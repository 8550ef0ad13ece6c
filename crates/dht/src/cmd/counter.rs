//! `INCR`, `INCRBY`, `DECR`, `DECRBY`.
//!
//! # Semantics under concurrency
//! The key's write coordinator reads, adds and writes in one storage job, so increments
//! through any nodes are serialised there and none is lost **while the coordinator stays
//! the same**. When it changes (the first owner is down and the next one coordinates with
//! a stale copy), two increments can be concurrent: they become siblings and a plain read
//! returns one of them by the read rule — an increment can then be lost. Counters that
//! must never lose an increment need a CRDT (a PN-counter), which is future work.

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
