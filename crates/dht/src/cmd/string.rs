//! `GET`, `SET`, `GETDEL`, `APPEND`, `STRLEN`, `MGET`, `MSET`.

use std::sync::Arc;

use super::Connection;
use crate::mutation::{Condition, Expiry, Mutation, Write, parse_i64};
use crate::node::Inner;
use crate::reply::Reply;
use crate::resp::Request;
use crate::version::Sibling;

/// Parses `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]`.
pub(crate) fn parse_set(args: &Request, now_ms: u64) -> Result<Mutation, Reply> {
    if args.len() < 3 {
        return Err(Reply::wrong_arity("set"));
    }
    let mut condition = Condition::Always;
    let mut expiry = Expiry::Clear;
    let mut get = false;
    let mut expiry_set = false;
    let mut i = 3;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        match opt.as_slice() {
            b"NX" if condition == Condition::Always => condition = Condition::IfAbsent,
            b"XX" if condition == Condition::Always => condition = Condition::IfPresent,
            b"GET" => get = true,
            b"KEEPTTL" if !expiry_set => {
                expiry = Expiry::Keep;
                expiry_set = true;
            }
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if !expiry_set => {
                let n = args.get(i + 1).ok_or_else(Reply::syntax)?;
                let n = parse_i64(n).ok_or_else(Reply::not_integer)?;
                let invalid = || Reply::err("invalid expire time in 'set' command");
                if n <= 0 {
                    return Err(invalid());
                }
                let n = n as u64; // n > 0
                let at = match opt.as_slice() {
                    b"EX" => n.checked_mul(1000).and_then(|ms| now_ms.checked_add(ms)),
                    b"PX" => now_ms.checked_add(n),
                    b"EXAT" => n.checked_mul(1000),
                    _ => Some(n),
                }
                // Deadlines are signed 64-bit milliseconds, as in Redis.
                .filter(|&t| i64::try_from(t).is_ok());
                expiry = Expiry::At(at.ok_or_else(invalid)?);
                expiry_set = true;
                i += 1;
            }
            _ => return Err(Reply::syntax()),
        }
        i += 1;
    }
    Ok(Mutation::Set {
        value: args[2].clone(),
        expiry,
        condition,
        get,
    })
}

/// Parses `GETDEL key`.
pub(crate) fn parse_getdel(args: &Request) -> Result<Mutation, Reply> {
    if args.len() != 2 {
        return Err(Reply::wrong_arity("getdel"));
    }
    Ok(Mutation::GetDelete)
}

/// Parses `APPEND key value`.
pub(crate) fn parse_append(args: &Request) -> Result<Mutation, Reply> {
    if args.len() != 3 {
        return Err(Reply::wrong_arity("append"));
    }
    Ok(Mutation::Append(args[2].clone()))
}

/// Applies `SET`, `GETDEL` and `APPEND` to the current value.
pub(crate) fn apply(m: &Mutation, current: Option<&Sibling>) -> (Reply, Option<Write>) {
    let old = current.and_then(|s| s.value.clone());
    let old_reply = || old.clone().map_or(Reply::Nil, Reply::Bulk);
    match m {
        Mutation::Set {
            value,
            expiry,
            condition,
            get,
        } => {
            let blocked = match condition {
                Condition::Always => false,
                Condition::IfAbsent => old.is_some(),
                Condition::IfPresent => old.is_none(),
            };
            let reply = if *get {
                old_reply()
            } else if blocked {
                Reply::Nil
            } else {
                Reply::ok()
            };
            if blocked {
                return (reply, None);
            }
            let expires_at_ms = match expiry {
                Expiry::Clear => None,
                Expiry::Keep => current.and_then(|s| s.expires_at_ms),
                Expiry::At(t) => Some(*t),
            };
            (
                reply,
                Some(Write {
                    value: Some(value.clone()),
                    expires_at_ms,
                }),
            )
        }
        Mutation::GetDelete => match old {
            Some(_) => (
                old_reply(),
                Some(Write {
                    value: None,
                    expires_at_ms: None,
                }),
            ),
            None => (Reply::Nil, None),
        },
        Mutation::Append(suffix) => {
            let mut v = old.unwrap_or_default();
            v.extend_from_slice(suffix);
            let len = i64::try_from(v.len()).unwrap_or(i64::MAX);
            let expires_at_ms = current.and_then(|s| s.expires_at_ms);
            (
                Reply::Integer(len),
                Some(Write {
                    value: Some(v),
                    expires_at_ms,
                }),
            )
        }
        _ => (Reply::err("dht: not a string command"), None),
    }
}

/// Runs the read-side commands and `MSET`.
pub(crate) async fn execute(
    inner: &Arc<Inner>,
    conn: &Connection,
    name: &str,
    args: Request,
) -> Reply {
    let q = inner.quorum(conn);
    let now = || inner.clock.now_ms();
    match name {
        "GET" | "STRLEN" => {
            if args.len() != 2 {
                return Reply::wrong_arity(name);
            }
            match inner.read(&args[1], q.r).await {
                Ok(set) => match set.current(now()).and_then(|s| s.value.as_ref()) {
                    Some(v) if name == "GET" => Reply::Bulk(v.clone()),
                    Some(v) => Reply::Integer(i64::try_from(v.len()).unwrap_or(i64::MAX)),
                    None if name == "GET" => Reply::Nil,
                    None => Reply::Integer(0),
                },
                Err(e) => e,
            }
        }
        "MGET" => {
            if args.len() < 2 {
                return Reply::wrong_arity("mget");
            }
            let mut out = Vec::with_capacity(args.len() - 1);
            for key in &args[1..] {
                out.push(match inner.read(key, q.r).await {
                    Ok(set) => set
                        .current(now())
                        .and_then(|s| s.value.clone())
                        .map_or(Reply::Nil, Reply::Bulk),
                    Err(e) => return e,
                });
            }
            Reply::Array(out)
        }
        _ => {
            // MSET: one SET per pair, each its own quorum write (not atomic).
            if args.len() < 3 || args.len() % 2 == 0 {
                return Reply::wrong_arity("mset");
            }
            for pair in args[1..].chunks(2) {
                let set = vec![b"SET".to_vec(), pair[0].clone(), pair[1].clone()];
                if let e @ Reply::Error(_) = inner.mutate(set, q.w).await {
                    return e;
                }
            }
            Reply::ok()
        }
    }
}
