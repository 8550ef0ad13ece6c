//! `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`, `PERSIST`, `TTL`, `PTTL`,
//! `EXPIRETIME`, `PEXPIRETIME`.
//!
//! A TTL is an absolute deadline (ms since the epoch) stored with the version, so every
//! replica expires the key at the same wall-clock instant. Expired versions read as
//! absent; they stay on disk until overwritten (no active expiry cycle yet). `EXPIRE`
//! and `PEXPIRE` take Redis 7's `NX | XX | GT | LT` (a key without a TTL counts as an
//! infinite TTL for `GT`/`LT`; `NX` with any other flag, or `GT` with `LT`, is an error).

use std::sync::Arc;

use super::Connection;
use crate::mutation::{Mutation, Write, parse_i64};
use crate::node::Inner;
use crate::reply::Reply;
use crate::version::Sibling;

/// `EXPIRE`'s `NX | XX | GT | LT` (Redis 7): when the new deadline applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExpireCondition {
    /// Only when the key has no TTL.
    nx: bool,
    /// Only when the key has a TTL.
    xx: bool,
    /// Only when the new deadline is later (no TTL counts as infinite: never later).
    gt: bool,
    /// Only when the new deadline is earlier (no TTL counts as infinite: always earlier).
    lt: bool,
}

impl ExpireCondition {
    /// Parses the options after the time, with Redis's errors for unknown and
    /// incompatible ones.
    fn parse(opts: &[Vec<u8>]) -> Result<Self, Reply> {
        let mut c = Self::default();
        for opt in opts {
            match opt.to_ascii_uppercase().as_slice() {
                b"NX" => c.nx = true,
                b"XX" => c.xx = true,
                b"GT" => c.gt = true,
                b"LT" => c.lt = true,
                _ => {
                    return Err(Reply::err(format!(
                        "Unsupported option {}",
                        String::from_utf8_lossy(opt)
                    )));
                }
            }
        }
        if c.nx && (c.xx || c.gt || c.lt) {
            return Err(Reply::err(
                "NX and XX, GT or LT options at the same time are not compatible",
            ));
        }
        if c.gt && c.lt {
            return Err(Reply::err(
                "GT and LT options at the same time are not compatible",
            ));
        }
        Ok(c)
    }

    /// Whether deadline `at` may replace the key's current deadline `current`.
    fn allows(self, at: u64, current: Option<u64>) -> bool {
        !(self.nx && current.is_some()
            || self.xx && current.is_none()
            || self.gt && current.is_none_or(|c| at <= c)
            || self.lt && current.is_some_and(|c| at >= c))
    }
}

/// Parses the TTL-setting commands into an absolute deadline.
pub(crate) fn parse(name: &[u8], args: &[Vec<u8>], now_ms: u64) -> Result<Mutation, Reply> {
    let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
    if name == b"PERSIST" {
        return if args.len() == 2 {
            Ok(Mutation::ExpireAt(None, ExpireCondition::default()))
        } else {
            Err(Reply::wrong_arity(&lname))
        };
    }
    if args.len() < 3 {
        return Err(Reply::wrong_arity(&lname));
    }
    // Redis checks the options before the number.
    let condition = ExpireCondition::parse(&args[3..])?;
    let n = parse_i64(&args[2]).ok_or_else(Reply::not_integer)?;
    let invalid = || Reply::err(format!("invalid expire time in '{lname}' command"));
    let at = match name {
        b"EXPIRE" => n
            .checked_mul(1000)
            .and_then(|ms| (now_ms as i64).checked_add(ms)),
        b"PEXPIRE" => (now_ms as i64).checked_add(n),
        b"EXPIREAT" => n.checked_mul(1000),
        _ => Some(n),
    }
    .ok_or_else(invalid)?;
    // A deadline in the past deletes the key (Redis semantics): clamp to "now".
    Ok(Mutation::ExpireAt(
        Some(u64::try_from(at).unwrap_or(0)),
        condition,
    ))
}

/// Sets or clears the TTL of a live key. Replies 1 when it changed something, else 0.
pub(crate) fn apply(
    at: Option<u64>,
    condition: ExpireCondition,
    current: Option<&Sibling>,
    now_ms: u64,
) -> (Reply, Option<Write>) {
    let Some(cur) = current else {
        return (Reply::Integer(0), None);
    };
    match at {
        None if cur.expires_at_ms.is_none() => (Reply::Integer(0), None),
        None => (
            Reply::Integer(1),
            Some(Write {
                value: cur.value.clone(),
                expires_at_ms: None,
            }),
        ),
        Some(t) if !condition.allows(t, cur.expires_at_ms) => (Reply::Integer(0), None),
        Some(t) if t <= now_ms => (
            Reply::Integer(1),
            Some(Write {
                value: None,
                expires_at_ms: None,
            }),
        ),
        Some(t) => (
            Reply::Integer(1),
            Some(Write {
                value: cur.value.clone(),
                expires_at_ms: Some(t),
            }),
        ),
    }
}

/// `TTL`/`PTTL` (remaining) and `EXPIRETIME`/`PEXPIRETIME` (deadline): -2 absent, -1 no TTL.
pub(crate) async fn execute_ttl(
    inner: &Arc<Inner>,
    conn: &Connection,
    name: &str,
    args: &[Vec<u8>],
) -> Reply {
    if args.len() != 2 {
        return Reply::wrong_arity(name);
    }
    let set = match inner.read(&args[1], inner.quorum(conn).r).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    let now = inner.clock.now_ms();
    let Some(cur) = set.current(now) else {
        return Reply::Integer(-2);
    };
    let Some(at) = cur.expires_at_ms else {
        return Reply::Integer(-1);
    };
    let ms = i64::try_from(at.saturating_sub(now)).unwrap_or(i64::MAX);
    let at = i64::try_from(at).unwrap_or(i64::MAX);
    Reply::Integer(match name {
        // Redis rounds to the nearest second.
        "TTL" => ms.saturating_add(500) / 1000,
        "PTTL" => ms,
        "EXPIRETIME" => at / 1000,
        _ => at,
    })
}
