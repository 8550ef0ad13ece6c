//! `INFO`, `COMMAND`, `CONFIG GET`: what clients and tools probe on connect.

use std::sync::Arc;

use super::connection::REDIS_VERSION;
use crate::node::Inner;
use crate::reply::Reply;

/// `(name, arity, flags, first key, last key, step)` in `COMMAND`'s format.
type CommandSpec = (&'static str, i64, &'static [&'static str], i64, i64, i64);

const COMMANDS: &[CommandSpec] = &[
    ("get", 2, &["readonly", "fast"], 1, 1, 1),
    ("set", -3, &["write", "denyoom"], 1, 1, 1),
    ("getdel", 2, &["write", "fast"], 1, 1, 1),
    ("append", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("strlen", 2, &["readonly", "fast"], 1, 1, 1),
    ("mget", -2, &["readonly", "fast"], 1, -1, 1),
    ("mset", -3, &["write", "denyoom"], 1, -1, 2),
    ("del", -2, &["write"], 1, -1, 1),
    ("unlink", -2, &["write", "fast"], 1, -1, 1),
    ("exists", -2, &["readonly", "fast"], 1, -1, 1),
    ("type", 2, &["readonly", "fast"], 1, 1, 1),
    ("incr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("incrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("decr", 2, &["write", "denyoom", "fast"], 1, 1, 1),
    ("decrby", 3, &["write", "denyoom", "fast"], 1, 1, 1),
    ("expire", -3, &["write", "fast"], 1, 1, 1),
    ("pexpire", -3, &["write", "fast"], 1, 1, 1),
    ("expireat", -3, &["write", "fast"], 1, 1, 1),
    ("pexpireat", -3, &["write", "fast"], 1, 1, 1),
    ("persist", 2, &["write", "fast"], 1, 1, 1),
    ("ttl", 2, &["readonly", "fast"], 1, 1, 1),
    ("pttl", 2, &["readonly", "fast"], 1, 1, 1),
    ("expiretime", 2, &["readonly", "fast"], 1, 1, 1),
    ("pexpiretime", 2, &["readonly", "fast"], 1, 1, 1),
    ("scan", -2, &["readonly"], 0, 0, 0),
    ("keys", 2, &["readonly"], 0, 0, 0),
    ("dbsize", 1, &["readonly", "fast"], 0, 0, 0),
    ("flushall", -1, &["write"], 0, 0, 0),
    ("flushdb", -1, &["write"], 0, 0, 0),
    ("ping", -1, &["fast"], 0, 0, 0),
    ("echo", 2, &["fast"], 0, 0, 0),
    (
        "hello",
        -1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("client", -2, &["noscript", "loading", "stale"], 0, 0, 0),
    ("select", 2, &["loading", "stale", "fast"], 0, 0, 0),
    (
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    (
        "reset",
        1,
        &["noscript", "loading", "stale", "fast"],
        0,
        0,
        0,
    ),
    ("info", -1, &["loading", "stale"], 0, 0, 0),
    ("command", -1, &["loading", "stale"], 0, 0, 0),
    (
        "config",
        -2,
        &["admin", "noscript", "loading", "stale"],
        0,
        0,
        0,
    ),
];

fn command_info(c: &CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::text(c.0),
        Reply::Integer(c.1),
        Reply::Array(c.2.iter().map(|f| Reply::Simple((*f).into())).collect()),
        Reply::Integer(c.3),
        Reply::Integer(c.4),
        Reply::Integer(c.5),
    ])
}

/// Runs `INFO`, `COMMAND`, `CONFIG`.
pub(crate) fn execute(inner: &Arc<Inner>, name: &str, args: &[Vec<u8>]) -> Reply {
    match name {
        "INFO" => info(inner),
        "COMMAND" => match args.get(1).map(|a| a.to_ascii_uppercase()) {
            None => Reply::Array(COMMANDS.iter().map(command_info).collect()),
            Some(s) if s == b"COUNT" => Reply::Integer(COMMANDS.len() as i64),
            // Documentation is optional for clients (redis-cli uses it for hints only).
            Some(s) if s == b"DOCS" => Reply::Map(vec![]),
            Some(s) if s == b"INFO" => Reply::Array(
                args[2..]
                    .iter()
                    .map(|n| {
                        let n = String::from_utf8_lossy(n).to_ascii_lowercase();
                        COMMANDS
                            .iter()
                            .find(|c| c.0 == n)
                            .map_or(Reply::Nil, command_info)
                    })
                    .collect(),
            ),
            Some(s) => Reply::err(format!(
                "unknown subcommand '{}'. Try COMMAND HELP.",
                String::from_utf8_lossy(&s)
            )),
        },
        // CONFIG GET answers "nothing configured" (redis-benchmark asks for `save` and
        // `appendonly`); CONFIG SET is refused.
        _ => match args.get(1).map(|a| a.to_ascii_uppercase()) {
            Some(s) if s == b"GET" => Reply::Map(
                args[2..]
                    .iter()
                    .map(|p| {
                        let v = if p.eq_ignore_ascii_case(b"appendonly") {
                            "no"
                        } else {
                            ""
                        };
                        (Reply::Bulk(p.clone()), Reply::text(v))
                    })
                    .collect(),
            ),
            _ => Reply::err("dht: CONFIG supports GET only"),
        },
    }
}

fn info(inner: &Arc<Inner>) -> Reply {
    let s = inner.stats();
    let c = &inner.cluster;
    let text = format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nkeel_dht_version:{}\r\ntcp_port:{}\r\n\r\n\
# Keel\r\nnode:{}\r\nmembers:{}\r\nlayout_epoch:{}\r\npartitions:{}\r\nvnodes:{}\r\nn:{}\r\nr:{}\r\nw:{}\r\n\r\n\
# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nkeel_reads:{}\r\nkeel_writes:{}\r\n\
keel_forwarded:{}\r\nkeel_quorum_failures:{}\r\nkeel_read_repairs:{}\r\nkeel_hints_stored:{}\r\nkeel_hints_delivered:{}\r\n\
keel_hints_pending:{}\r\nkeel_storage_commits:{}\r\nkeel_storage_jobs:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        inner.addr.port(),
        c.me,
        c.members().len(),
        c.layout().epoch,
        c.partitions(),
        c.vnodes(),
        inner.config.n,
        inner.config.r,
        inner.config.w,
        s.connections,
        s.commands,
        s.reads,
        s.writes,
        s.forwarded,
        s.quorum_failures,
        s.read_repairs,
        s.hints_stored,
        s.hints_delivered,
        s.hints_pending,
        s.storage_commits,
        s.storage_jobs,
    );
    Reply::Bulk(text.into_bytes())
}
