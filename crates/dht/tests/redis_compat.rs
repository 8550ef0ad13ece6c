//! The same command script against a private `redis-server` and a Keel node: every reply
//! (values, integers, nils and error messages) must be the same. Covers the commands whose
//! behaviour one node shows on its own: string options, counters, TTLs and their
//! `NX|XX|GT|LT` flags, arity and syntax errors, integer parsing, connection commands.

mod common;

use common::{client, default_node};
use redis::Value;

/// One command, as words.
fn words(line: &str) -> Vec<&str> {
    line.split(' ').filter(|w| !w.is_empty()).collect()
}

/// Replies normalised for comparison: the value, or the server's error text.
async fn run(c: &mut redis::aio::MultiplexedConnection, line: &str) -> String {
    let w = words(line);
    let mut cmd = redis::cmd(w[0]);
    for a in &w[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async::<Value>(c).await {
        Ok(Value::Okay) => "OK".into(),
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {e}"),
    }
}

const SCRIPT: &[&str] = &[
    "FLUSHALL",
    // SET and its options.
    "SET k v",
    "GET k",
    "SET k",
    "GET",
    "GET k extra",
    "SET k v2 NX",
    "SET k v2 XX GET",
    "SET nk v XX",
    "SET nk v NX GET",
    "SET k v NX XX",
    "SET k v EX 0",
    "SET k v EX -5",
    "SET k v EX abc",
    "SET k v EX 05",
    "SET k v EX",
    "SET k v PX 100000 EX 100",
    "SET k v KEEPTTL EX 100",
    "SET k v BOGUS",
    "SET k v EX 1000",
    "TTL k",
    "SET k v3 KEEPTTL",
    "TTL k",
    "SET k v4",
    "TTL k",
    "SET k v PXAT 99999999999999",
    "PEXPIRETIME k",
    "SET k v EXAT 99999999999",
    "EXPIRETIME k",
    "SET k v EX 9223372036854775807",
    "GET k",
    // GETDEL, APPEND, STRLEN.
    "GETDEL k",
    "GETDEL k",
    "GETDEL",
    "APPEND a xy",
    "APPEND a z",
    "APPEND a",
    "STRLEN a",
    "STRLEN nope",
    "STRLEN",
    // Counters and integer parsing.
    "INCR c",
    "INCRBY c 10",
    "DECRBY c 3",
    "DECR c",
    "INCRBY c +5",
    "INCRBY c 05",
    "INCRBY c -0",
    "INCRBY c 1.5",
    "INCRBY c 9223372036854775807",
    "INCR a",
    "SET big 9223372036854775807",
    "INCR big",
    "DECRBY c -9223372036854775808",
    "INCR",
    "INCRBY c",
    "GET c",
    // TTLs and EXPIRE's flags (Redis 7).
    "SET t v",
    "TTL t",
    "PTTL nope",
    "TTL nope",
    "EXPIRE t 100 XX",
    "EXPIRE t 100 GT",
    "EXPIRE t 100 NX",
    "EXPIRE t 200 NX",
    "TTL t",
    "EXPIRE t 50 GT",
    "EXPIRE t 500 GT",
    "TTL t",
    "EXPIRE t 1000 LT",
    "EXPIRE t 300 LT",
    "TTL t",
    "EXPIRE t 400 XX",
    "TTL t",
    "PEXPIRE t 100000 lt",
    "TTL t",
    "EXPIRE t 10 NX XX",
    "EXPIRE t 10 NX GT",
    "EXPIRE t 10 GT LT",
    "EXPIRE t 10 XX GT",
    "TTL t",
    "EXPIRE t 10 FOO",
    "EXPIRE t abc",
    "EXPIRE t abc FOO",
    "EXPIRE t",
    "EXPIRE nope 10",
    "EXPIREAT t 99999999999 GT",
    "EXPIRETIME t",
    "PERSIST t",
    "PERSIST t",
    "TTL t",
    "SET u v",
    "EXPIRE u 10 LT",
    "TTL u",
    "EXPIRE t 9223372036854775807",
    "EXPIRE t -10",
    "GET t",
    "EXISTS t",
    "PERSIST",
    // Keyspace.
    "SET x 1",
    "EXISTS x x nope",
    "TYPE x",
    "TYPE nope",
    "DEL x nope",
    "DEL",
    "EXISTS",
    "DBSIZE",
    "DBSIZE extra",
    // Connection and errors.
    "PING",
    "PING hi",
    "PING a b",
    "ECHO hey",
    "ECHO",
    "SELECT 0",
    "SELECT x",
    "CLIENT SETNAME cmp",
    "CLIENT GETNAME",
    "CLIENT SETNAME",
    "CLIENT NOSUCH",
    "FOO bar baz",
    "HELLO 2 AUTH foo bar",
    "HELLO 2 AUTH default",
    "HELLO 2 SETNAME",
    "HELLO 2 SETNAME a b",
    "HELLO 2 FOO",
    "CLIENT ID x",
    "CLIENT GETNAME x",
    "SCAN x",
    "SCAN 0 COUNT 0",
    "SCAN 0 MATCH",
    "SCAN 0 FOO 1",
    "HELLO 4",
    "HELLO x",
    "AUTH pw",
    "FLUSHALL",
    "DBSIZE",
];

#[tokio::test]
async fn replies_match_redis_server_command_for_command() {
    let _watchdog = common::watchdog();
    let Some(redis) = keel_testkit::redis_or_skip("replies_match_redis_server_command_for_command")
    else {
        return;
    };
    let (node, _dir) = default_node().await;
    let mut theirs = client(redis.addr()).await;
    let mut ours = client(node.addr()).await;
    let mut diffs = Vec::new();
    for line in SCRIPT {
        let want = run(&mut theirs, line).await;
        let got = run(&mut ours, line).await;
        if want != got {
            diffs.push(format!("{line}\n  redis: {want}\n  keel:  {got}"));
        }
    }
    // Keel keeps one database: `SELECT` of any other is an error, not a switch.
    assert!(
        run(&mut ours, "SELECT 1")
            .await
            .contains("DB index is out of range")
    );
    node.shutdown().await;
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
