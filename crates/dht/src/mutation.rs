//! Writes as values: every command that changes a key becomes a [`Mutation`], applied
//! atomically by the key's write coordinator to its stored set.
//!
//! The coordinator is the first live node of the key's preference list. Routing every
//! write of a key through one node serialises them there (so `INCR` and `SET NX` are
//! atomic while that node is up) and gives each version a unique dot. A node that is not
//! the coordinator forwards the client's original arguments (`DHT.R.MUTATE`); relative
//! TTLs are turned into deadlines by the coordinator's clock.

use crate::cmd::{counter, expire, keyspace, string};
use crate::reply::Reply;
use crate::resp::Request;
use crate::version::{Sibling, SiblingSet, VersionVector};

/// How a `SET` treats an existing TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// No TTL (plain `SET`).
    Clear,
    /// `KEEPTTL`.
    Keep,
    /// Absolute deadline in ms.
    At(u64),
}

/// `SET`'s `NX` / `XX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    Always,
    IfAbsent,
    IfPresent,
}

/// A change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mutation {
    Set {
        value: Vec<u8>,
        expiry: Expiry,
        condition: Condition,
        get: bool,
    },
    /// `DHT.PUT key value context`: supersedes exactly the siblings the context saw.
    PutWithContext {
        value: Vec<u8>,
        context: VersionVector,
    },
    Delete,
    GetDelete,
    IncrBy(i64),
    Append(Vec<u8>),
    /// `None` removes the TTL (`PERSIST`); the condition is `EXPIRE`'s `NX|XX|GT|LT`.
    ExpireAt(Option<u64>, expire::ExpireCondition),
}

/// What applying a mutation does: the new value (`Some(None)` is a delete) and its TTL.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) expires_at_ms: Option<u64>,
}

impl Mutation {
    /// Parses a client command into a mutation on `args[1]`. `Ok(None)` means the command
    /// is not a single-key write.
    pub(crate) fn parse(args: &Request, now_ms: u64) -> Option<Result<Mutation, Reply>> {
        let name = args.first()?.to_ascii_uppercase();
        Some(match name.as_slice() {
            b"SET" => string::parse_set(args, now_ms),
            b"GETDEL" => string::parse_getdel(args),
            b"APPEND" => string::parse_append(args),
            b"DEL" | b"UNLINK" if args.len() == 2 => Ok(Mutation::Delete),
            b"DHT.PUT" => keyspace::parse_put_with_context(args),
            b"INCR" | b"DECR" | b"INCRBY" | b"DECRBY" => counter::parse(&name, args),
            b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" | b"PERSIST" => {
                expire::parse(&name, args, now_ms)
            }
            _ => return None,
        })
    }

    /// Applies the mutation to the coordinator's stored set: the reply, and the write to
    /// make (if any).
    pub(crate) fn apply(&self, set: &SiblingSet, now_ms: u64) -> (Reply, Option<Write>) {
        let current = set.current(now_ms);
        match self {
            Mutation::Set { .. } | Mutation::GetDelete | Mutation::Append(_) => {
                string::apply(self, current)
            }
            Mutation::PutWithContext { value, .. } => (
                Reply::ok(),
                Some(Write {
                    value: Some(value.clone()),
                    expires_at_ms: None,
                }),
            ),
            Mutation::Delete => keyspace::apply_delete(set, current),
            Mutation::IncrBy(by) => counter::apply(*by, current),
            Mutation::ExpireAt(at, condition) => expire::apply(*at, *condition, current, now_ms),
        }
    }

    /// The causal context the new version claims to have seen.
    pub(crate) fn context(&self, set: &SiblingSet) -> VersionVector {
        match self {
            Mutation::PutWithContext { context, .. } => context.clone(),
            // A blind write (plain Redis command) supersedes everything its coordinator has.
            _ => set.context(),
        }
    }

    /// Builds the new version for `write`, coordinated by `node`, with a dot counter of
    /// at least `dot_floor` (the store's node-wide floor). The dot names the node's *run*
    /// ([`run_actor`]), not the node.
    pub(crate) fn version(
        &self,
        node: &str,
        dot_floor: u64,
        set: &SiblingSet,
        write: Write,
        now_ms: u64,
    ) -> Sibling {
        Sibling::new_write_with_floor(
            &run_actor(node, dot_floor),
            dot_floor,
            &self.context(set),
            set,
            write.value,
            write.expires_at_ms,
            now_ms,
        )
    }
}

/// The actor a node's dots are issued under in one run of its store: `node~incarnation`
/// (the store's floor is `incarnation << 32` plus the dots issued so far).
///
/// # Why not the node name
/// A context entry `a = c` claims "saw every dot of `a` up to `c`". That holds while `a`
/// issues its dots one after another on a store that still has the earlier ones, and
/// fails when a node lost some: a node killed after replicas acknowledged its write `x`
/// but before its own fsync comes back without `x`, and its next dot jumps to the new
/// run's floor. A client reading that node alone (`ONE`) got a context `a = floor + 1`
/// that covered `x`, which it never saw, and its write then superseded `x` on every
/// replica — an acknowledged write dropped. A new actor per run makes the restarted
/// node's dots say nothing about its previous runs' (as Riak's vnode epochs do). The
/// cost: a key's version vectors carry one entry per node run that wrote it.
pub(crate) fn run_actor(node: &str, dot_floor: u64) -> String {
    format!("{node}~{}", dot_floor >> 32)
}

/// Encodes a (non-array) reply for the trip back from the coordinator.
pub(crate) fn encode_reply(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match reply {
        Reply::Simple(s) => {
            out.push(b'+');
            out.extend_from_slice(s.as_bytes());
        }
        Reply::Error(s) => {
            out.push(b'-');
            out.extend_from_slice(s.as_bytes());
        }
        Reply::Integer(n) => {
            out.push(b':');
            out.extend_from_slice(&n.to_le_bytes());
        }
        Reply::Bulk(b) => {
            out.push(b'$');
            out.extend_from_slice(b);
        }
        _ => out.push(b'_'),
    }
    out
}

/// Decodes [`encode_reply`]'s output; garbage becomes an error reply.
pub(crate) fn decode_reply(bytes: &[u8]) -> Reply {
    let bad = || Reply::err("dht: malformed reply from coordinator");
    let Some((&tag, rest)) = bytes.split_first() else {
        return bad();
    };
    match tag {
        b'+' => String::from_utf8(rest.to_vec()).map_or_else(|_| bad(), Reply::Simple),
        b'-' => String::from_utf8(rest.to_vec()).map_or_else(|_| bad(), Reply::Error),
        b':' => <[u8; 8]>::try_from(rest)
            .map_or_else(|_| bad(), |b| Reply::Integer(i64::from_le_bytes(b))),
        b'$' => Reply::Bulk(rest.to_vec()),
        b'_' => Reply::Nil,
        _ => bad(),
    }
}

/// Parses a decimal `i64` argument as strictly as Redis's `string2ll`: an optional `-`,
/// then digits without leading zeros (`0` alone is fine); no `+`, no `-0`, no spaces.
pub(crate) fn parse_i64(arg: &[u8]) -> Option<i64> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    match digits {
        [] | [b'0', _, ..] => return None,
        [b'0'] if digits.len() != arg.len() => return None,
        _ => {}
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_strictly_as_redis() {
        for ok in [
            "0",
            "5",
            "-5",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(parse_i64(ok.as_bytes()), ok.parse().ok(), "{ok}");
        }
        for bad in [
            "",
            "-",
            "+5",
            "05",
            "-0",
            "-05",
            " 5",
            "5 ",
            "1e3",
            "9223372036854775808",
        ] {
            assert_eq!(parse_i64(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn replies_round_trip_and_garbage_is_an_error() {
        for r in [
            Reply::ok(),
            Reply::Nil,
            Reply::Integer(-7),
            Reply::Bulk(b"x\r\n".to_vec()),
            Reply::err("boom"),
        ] {
            assert_eq!(decode_reply(&encode_reply(&r)), r);
        }
        assert!(matches!(decode_reply(b""), Reply::Error(_)));
        assert!(matches!(decode_reply(b":12"), Reply::Error(_)));
    }
}
