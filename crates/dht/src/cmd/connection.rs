//! `PING`, `ECHO`, `HELLO`, `CLIENT`, `SELECT`, `QUIT`, `RESET`, `AUTH`.

use std::sync::Arc;

use super::Connection;
use crate::node::Inner;
use crate::reply::{Protocol, Reply};

/// The Redis version reported to clients (`HELLO`, `INFO`): the command set we follow.
pub(crate) const REDIS_VERSION: &str = "7.2.0";

/// Runs the connection commands.
pub(crate) fn execute(
    inner: &Arc<Inner>,
    conn: &mut Connection,
    name: &str,
    args: &[Vec<u8>],
) -> Reply {
    match name {
        "PING" => match args.len() {
            1 => Reply::Simple("PONG".into()),
            2 => Reply::Bulk(args[1].clone()),
            _ => Reply::wrong_arity("ping"),
        },
        "ECHO" if args.len() == 2 => Reply::Bulk(args[1].clone()),
        "ECHO" => Reply::wrong_arity("echo"),
        "SELECT" if args.len() != 2 => Reply::wrong_arity("select"),
        "SELECT" if args[1] == b"0" => Reply::ok(),
        "SELECT" if crate::mutation::parse_i64(&args[1]).is_none() => Reply::not_integer(),
        "SELECT" => Reply::err("DB index is out of range"),
        "QUIT" => {
            conn.closing = true;
            Reply::ok()
        }
        "RESET" => {
            *conn = Connection::new(conn.id);
            Reply::Simple("RESET".into())
        }
        "AUTH" => Reply::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        "HELLO" => hello(inner, conn, args),
        _ => client(conn, args),
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello(inner: &Arc<Inner>, conn: &mut Connection, args: &[Vec<u8>]) -> Reply {
    let mut i = 1;
    if let Some(v) = args.get(1) {
        conn.protocol = match v.as_slice() {
            b"2" => Protocol::Resp2,
            b"3" => Protocol::Resp3,
            _ if std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .is_some() =>
            {
                return Reply::Error("NOPROTO unsupported protocol version".into());
            }
            _ => return Reply::err("Protocol version is not an integer or out of range"),
        };
        i = 2;
    }
    // Options are checked before anything changes, as Redis does.
    let mut name = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        match args[i].to_ascii_uppercase().as_slice() {
            // No password is configured: the `default` user accepts any password, and
            // there is no other user.
            b"AUTH" if more >= 2 => {
                if args[i + 1] != b"default" {
                    return Reply::Error(
                        "WRONGPASS invalid username-password pair or user is disabled.".into(),
                    );
                }
                i += 3;
            }
            b"SETNAME" if more >= 1 => {
                if !valid_client_name(&args[i + 1]) {
                    return bad_client_name();
                }
                name = Some(args[i + 1].clone());
                i += 2;
            }
            _ => {
                return Reply::err(format!(
                    "Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ));
            }
        }
    }
    if let Some(name) = name {
        conn.name = (!name.is_empty()).then_some(name);
    }
    let proto = match conn.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    let _ = inner;
    Reply::Map(vec![
        (Reply::text("server"), Reply::text("redis")),
        (Reply::text("version"), Reply::text(REDIS_VERSION)),
        (Reply::text("proto"), Reply::Integer(proto)),
        (
            Reply::text("id"),
            Reply::Integer(i64::try_from(conn.id).unwrap_or(i64::MAX)),
        ),
        // "standalone": any node coordinates any key, so clients must not switch to
        // Redis Cluster routing (no MOVED, no slots).
        (Reply::text("mode"), Reply::text("standalone")),
        (Reply::text("role"), Reply::text("master")),
        (Reply::text("modules"), Reply::Array(vec![])),
    ])
}

/// `CLIENT SETNAME|GETNAME|ID|SETINFO|INFO`.
fn client(conn: &mut Connection, args: &[Vec<u8>]) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::wrong_arity("client");
    };
    match sub.to_ascii_uppercase().as_slice() {
        b"SETNAME" if args.len() == 3 => {
            if !valid_client_name(&args[2]) {
                return bad_client_name();
            }
            conn.name = (!args[2].is_empty()).then(|| args[2].clone());
            Reply::ok()
        }
        b"GETNAME" if args.len() == 2 => conn.name.clone().map_or(Reply::Nil, Reply::Bulk),
        b"ID" if args.len() == 2 => Reply::Integer(i64::try_from(conn.id).unwrap_or(i64::MAX)),
        // Client libraries announce themselves; accepted and ignored.
        b"SETINFO" if args.len() == 4 => Reply::ok(),
        b"INFO" if args.len() == 2 => Reply::text(format!(
            "id={} name={} db=0\n",
            conn.id,
            conn.name
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
        )),
        b"SETNAME" | b"GETNAME" | b"ID" | b"SETINFO" | b"INFO" => Reply::Error(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        )),
        _ => Reply::err(format!(
            "unknown subcommand '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )),
    }
}

fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| b > b' ' && b <= b'~')
}

fn bad_client_name() -> Reply {
    Reply::err("Client names cannot contain spaces, newlines or special characters.")
}
