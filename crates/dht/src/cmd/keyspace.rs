//! `DEL`, `EXISTS`, `TYPE`, `SCAN`, `KEYS`, `DBSIZE`, `FLUSHALL`, and `DHT.PUT` (a write
//! with a causal context).

use std::sync::Arc;

use super::Connection;
use crate::mutation::{Mutation, Write};
use crate::node::Inner;
use crate::reply::Reply;
use crate::resp::Request;
use crate::version::{Sibling, SiblingSet, VersionVector};

/// A delete writes a tombstone that supersedes every version the coordinator holds, so a
/// replica that missed it cannot bring the value back through read repair or handoff.
/// Nothing is written when no version exists at all. Replies 1 if a live value existed.
pub(crate) fn apply_delete(set: &SiblingSet, current: Option<&Sibling>) -> (Reply, Option<Write>) {
    let tombstone = Some(Write {
        value: None,
        expires_at_ms: None,
    });
    match current {
        Some(_) => (Reply::Integer(1), tombstone),
        None if set.siblings().iter().any(|s| s.value.is_some()) => (Reply::Integer(0), tombstone),
        None => (Reply::Integer(0), None),
    }
}

/// Parses `DHT.PUT key value context` where context is the text form `DHT.SIBLINGS` prints
/// (`node=counter,node=counter`, empty for none).
pub(crate) fn parse_put_with_context(args: &Request) -> Result<Mutation, Reply> {
    if args.len() != 4 {
        return Err(Reply::wrong_arity("dht.put"));
    }
    let text = std::str::from_utf8(&args[3]).map_err(|_| Reply::err("invalid context"))?;
    let mut context = VersionVector::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (node, n) = part
            .rsplit_once('=')
            .ok_or_else(|| Reply::err("invalid context"))?;
        let n: u64 = n.parse().map_err(|_| Reply::err("invalid context"))?;
        context.merge(&VersionVector::from_entries([(node.to_owned(), n)]));
    }
    Ok(Mutation::PutWithContext {
        value: args[2].clone(),
        context,
    })
}

/// Redis-style glob (`*`, `?`, `[abc]`, `[a-z]`, `\x`).
pub(crate) fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while i < s.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some(p);
                    mark = i;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some(end) = pattern[p..].iter().position(|&c| c == b']').map(|e| p + e) {
                        let class = &pattern[p + 1..end];
                        let (neg, class) = match class.first() {
                            Some(b'^') => (true, &class[1..]),
                            _ => (false, class),
                        };
                        let mut hit = false;
                        let mut k = 0;
                        while k < class.len() {
                            if k + 2 < class.len() && class[k + 1] == b'-' {
                                hit |= class[k] <= s[i] && s[i] <= class[k + 2];
                                k += 3;
                            } else {
                                hit |= class[k] == s[i];
                                k += 1;
                            }
                        }
                        if hit != neg {
                            p = end + 1;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == s[i] => {
                    p += 2;
                    i += 1;
                    continue;
                }
                c if c == s[i] => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some(sp) => {
                p = sp + 1;
                mark += 1;
                i = mark;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Runs the keyspace commands.
pub(crate) async fn execute(
    inner: &Arc<Inner>,
    conn: &Connection,
    name: &str,
    args: Request,
) -> Reply {
    let q = inner.quorum(conn);
    match name {
        "DEL" | "UNLINK" => {
            if args.len() < 2 {
                return Reply::wrong_arity(name);
            }
            let mut deleted = 0;
            for key in &args[1..] {
                match inner.mutate(vec![b"DEL".to_vec(), key.clone()], q.w).await {
                    Reply::Integer(n) => deleted += n,
                    e => return e,
                }
            }
            Reply::Integer(deleted)
        }
        "EXISTS" | "TYPE" => {
            if args.len() < 2 || (name == "TYPE" && args.len() != 2) {
                return Reply::wrong_arity(name);
            }
            let mut n = 0;
            for key in &args[1..] {
                match inner.read(key, q.r).await {
                    Ok(set) => n += i64::from(set.current(inner.clock.now_ms()).is_some()),
                    Err(e) => return e,
                }
            }
            if name == "TYPE" {
                return Reply::Simple(if n > 0 { "string" } else { "none" }.into());
            }
            Reply::Integer(n)
        }
        "SCAN" => scan(inner, &args).await,
        "KEYS" => {
            if args.len() != 2 {
                return Reply::wrong_arity("keys");
            }
            let mut out = Vec::new();
            for p in 0..inner.cluster.partitions() {
                match inner.keys_of_partition(p as u16).await {
                    Ok(keys) => out.extend(
                        keys.into_iter()
                            .filter(|k| glob(&args[1], k))
                            .map(Reply::Bulk),
                    ),
                    Err(e) => return e,
                }
            }
            Reply::Array(out)
        }
        "DBSIZE" if args.len() != 1 => Reply::wrong_arity("dbsize"),
        "DBSIZE" => {
            let mut n = 0i64;
            for p in 0..inner.cluster.partitions() {
                match inner.keys_of_partition(p as u16).await {
                    Ok(keys) => n += keys.len() as i64,
                    Err(e) => return e,
                }
            }
            Reply::Integer(n)
        }
        _ => {
            // FLUSHALL / FLUSHDB: every node must answer, or the cluster is left half-flushed.
            for node in &inner.cluster.members() {
                let ok = if *node == inner.cluster.me {
                    inner.store.flush().await.is_ok()
                } else {
                    match inner.cluster.peer(node) {
                        Some(peer) => peer.call(&redis::cmd("DHT.R.FLUSH")).await.is_ok(),
                        None => false,
                    }
                };
                if !ok {
                    return Reply::err(format!("dht: flush failed on {node}"));
                }
            }
            Reply::ok()
        }
    }
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`: the cursor is the next partition
/// to visit; each call returns the live keys of whole partitions until COUNT is reached.
/// Keys come from each partition's first reachable owner, so a scan under failures may
/// miss keys that only other replicas hold (eventually consistent).
async fn scan(inner: &Arc<Inner>, args: &Request) -> Reply {
    if args.len() < 2 {
        return Reply::wrong_arity("scan");
    }
    let Some(mut cursor) = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    else {
        return Reply::err("invalid cursor");
    };
    let mut pattern: Option<&[u8]> = None;
    let mut count = 10usize;
    let mut only_strings = true;
    let mut i = 2;
    while i < args.len() {
        let opt = args[i].to_ascii_uppercase();
        let Some(val) = args.get(i + 1) else {
            return Reply::syntax();
        };
        match opt.as_slice() {
            b"MATCH" => pattern = Some(val),
            b"COUNT" => match std::str::from_utf8(val)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
            {
                Some(n) if n > 0 => count = n,
                _ => return Reply::syntax(),
            },
            b"TYPE" => only_strings = val.eq_ignore_ascii_case(b"string"),
            _ => return Reply::syntax(),
        }
        i += 2;
    }
    let partitions = inner.cluster.partitions();
    let mut keys = Vec::new();
    while cursor < partitions && keys.len() < count {
        match inner.keys_of_partition(cursor as u16).await {
            Ok(found) => keys.extend(
                found
                    .into_iter()
                    .filter(|k| only_strings && pattern.is_none_or(|p| glob(p, k)))
                    .map(Reply::Bulk),
            ),
            Err(e) => return e,
        }
        cursor += 1;
    }
    let next = if cursor >= partitions { 0 } else { cursor };
    Reply::Array(vec![Reply::text(next.to_string()), Reply::Array(keys)])
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_redis() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"user:*", b"user:42"));
        assert!(!glob(b"user:*", b"order:1"));
        assert!(glob(b"h?llo", b"hello"));
        assert!(glob(b"h[ae]llo", b"hallo"));
        assert!(!glob(b"h[^e]llo", b"hello"));
        assert!(glob(b"k[0-9]", b"k7"));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
    }
}
