//! Raw RESP bytes against a node: pipelining, inline commands, Redis-format errors, and
//! hostile input that must close the connection without allocating.

mod common;

use common::{default_node, exchange};

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let send = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n";
    let want = b"+OK\r\n$2\r\nv1\r\n+PONG\r\n$2\r\nhi\r\n";
    assert_eq!(exchange(node.addr(), send, want.len()).await, want);
    node.shutdown().await;
}

#[tokio::test]
async fn errors_have_redis_format() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let send =
        b"GET\r\nNOSUCH a b\r\nSET k v BOGUS\r\nSET k v EX 0\r\nINCR k\r\nSELECT 1\r\nHELLO 4\r\n";
    let want: &[u8] = b"-ERR wrong number of arguments for 'get' command\r\n\
-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n\
-ERR syntax error\r\n\
-ERR invalid expire time in 'set' command\r\n\
:1\r\n\
-ERR DB index is out of range\r\n\
-NOPROTO unsupported protocol version\r\n";
    assert_eq!(
        String::from_utf8_lossy(&exchange(node.addr(), send, want.len()).await),
        String::from_utf8_lossy(want)
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_4gb_bulk_header_gets_an_error_and_a_closed_connection() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let got = exchange(node.addr(), b"*2\r\n$3\r\nGET\r\n$4294967296\r\n", 1 << 20).await;
    assert_eq!(got, b"-ERR Protocol error: invalid bulk length\r\n");
    let got = exchange(node.addr(), b"*99999999999\r\n", 1 << 20).await;
    assert_eq!(got, b"-ERR Protocol error: invalid multibulk length\r\n");
    let got = exchange(node.addr(), &vec![b'x'; 100_000], 1 << 20).await;
    assert_eq!(got, b"-ERR Protocol error: too big inline request\r\n");
    assert_eq!(node.stats().protocol_errors, 3);
    // The node still serves others.
    assert_eq!(exchange(node.addr(), b"PING\r\n", 7).await, b"+PONG\r\n");
    node.shutdown().await;
}

#[tokio::test]
async fn resp3_after_hello_3_uses_nulls_and_maps() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let got = exchange(node.addr(), b"HELLO 3\r\nGET missing\r\nQUIT\r\n", 1 << 16).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("%7\r\n"), "{text}");
    assert!(text.contains("$5\r\nproto\r\n:3\r\n"), "{text}");
    assert!(text.ends_with("_\r\n+OK\r\n"), "{text}");
    let got = exchange(node.addr(), b"GET missing\r\nQUIT\r\nPING\r\n", 1 << 16).await;
    assert_eq!(
        got, b"$-1\r\n+OK\r\n",
        "QUIT answers OK and closes before PING"
    );
    node.shutdown().await;
}

#[tokio::test]
async fn a_pipeline_sees_its_own_writes_in_order() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let mut send = Vec::new();
    let mut want = Vec::new();
    for i in 1..=100 {
        // Distinct keys run concurrently; the same key waits for the one in flight.
        send.extend_from_slice(
            format!("SET k{i} {i}\r\nINCR k{i}\r\nINCR c\r\nGET k{i}\r\n").as_bytes(),
        );
        want.extend_from_slice(
            format!(
                "+OK\r\n:{}\r\n:{i}\r\n${}\r\n{}\r\n",
                i + 1,
                (i + 1).to_string().len(),
                i + 1
            )
            .as_bytes(),
        );
    }
    send.extend_from_slice(b"DBSIZE\r\n");
    want.extend_from_slice(b":101\r\n");
    let got = exchange(node.addr(), &send, want.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    node.shutdown().await;
}

/// Redis 7 refuses a relative expiry whose deadline overflows a signed 64-bit millisecond
/// time; a node that stored one answered `TTL` with an arithmetic overflow.
#[tokio::test]
async fn set_px_past_i64_deadline_is_an_invalid_expire_time_and_ttl_never_overflows() {
    let _watchdog = common::watchdog();
    let (node, _dir) = default_node().await;
    let send = b"SET k v PX 9223372036854775807\r\nSET k v EX 9223372036854775\r\n\
SET k v PXAT 9223372036854775807\r\nPTTL k\r\nTTL k\r\nSELECT x\r\nDBSIZE x\r\nQUIT\r\n";
    let got = exchange(node.addr(), send, 4096).await;
    let got = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = got.split("\r\n").collect();
    assert_eq!(
        lines[0], "-ERR invalid expire time in 'set' command",
        "{got}"
    );
    assert_eq!(
        lines[1], "-ERR invalid expire time in 'set' command",
        "{got}"
    );
    assert_eq!(lines[2], "+OK", "{got}");
    let pttl: i64 = lines[3].trim_start_matches(':').parse().expect(&got);
    let ttl: i64 = lines[4].trim_start_matches(':').parse().expect(&got);
    assert!(pttl > 0 && ttl > 0 && ttl <= pttl / 1000 + 1, "{got}");
    assert_eq!(
        lines[5], "-ERR value is not an integer or out of range",
        "{got}"
    );
    assert_eq!(
        lines[6], "-ERR wrong number of arguments for 'dbsize' command",
        "{got}"
    );
    node.shutdown().await;
}
