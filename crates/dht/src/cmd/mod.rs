//! Commands, one file per family, each with the same shape: **parse** the arguments
//! (arity and syntax errors in Redis's words), **apply** (a quorum read, or a
//! [`Mutation`](crate::mutation::Mutation) run by the key's write coordinator), **reply**.

pub(crate) mod connection;
pub(crate) mod counter;
pub(crate) mod dht;
pub(crate) mod expire;
pub(crate) mod internal;
pub(crate) mod keyspace;
pub(crate) mod server;
pub(crate) mod string;

use std::sync::Arc;

use crate::coordinator::Quorum;
use crate::mutation::Mutation;
use crate::node::Inner;
use crate::reply::{Protocol, Reply};
use crate::resp::Request;

/// Per-connection state.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) id: u64,
    pub(crate) protocol: Protocol,
    pub(crate) name: Option<Vec<u8>>,
    pub(crate) consistency: Option<Consistency>,
    pub(crate) closing: bool,
}

impl Connection {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            protocol: Protocol::Resp2,
            name: None,
            consistency: None,
            closing: false,
        }
    }
}

/// A consistency level, settable per connection with `DHT.CONSISTENCY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// R = W = 1.
    One,
    /// R = W = ⌊N/2⌋ + 1.
    Quorum,
    /// R = W = N.
    All,
}

impl Consistency {
    /// The name `DHT.CONSISTENCY` reports.
    pub fn name(self) -> &'static str {
        match self {
            Consistency::One => "ONE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
        }
    }
}

impl Inner {
    /// The R and W that apply to a request on `conn`.
    pub(crate) fn quorum(&self, conn: &Connection) -> Quorum {
        let n = self.config.n;
        match conn.consistency {
            None => Quorum {
                r: self.config.r,
                w: self.config.w,
            },
            Some(Consistency::One) => Quorum { r: 1, w: 1 },
            Some(Consistency::Quorum) => Quorum {
                r: n / 2 + 1,
                w: n / 2 + 1,
            },
            Some(Consistency::All) => Quorum { r: n, w: n },
        }
    }
}

/// Whether a request may run while earlier requests of its connection are in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Concurrency<'a> {
    /// Independent of everything else on the connection (node-to-node commands).
    Free,
    /// Touches this one key and no connection state: concurrent unless the key is in flight.
    Key(&'a [u8]),
    /// Waits for everything before it.
    Barrier,
}

/// Classifies a request for pipelined execution.
pub(crate) fn concurrency(args: &Request) -> Concurrency<'_> {
    let name = name_of(args);
    if name.starts_with("DHT.R.") {
        return Concurrency::Free;
    }
    let single_key = matches!(
        name.as_str(),
        "GET"
            | "SET"
            | "GETDEL"
            | "APPEND"
            | "STRLEN"
            | "INCR"
            | "INCRBY"
            | "DECR"
            | "DECRBY"
            | "EXPIRE"
            | "PEXPIRE"
            | "EXPIREAT"
            | "PEXPIREAT"
            | "PERSIST"
            | "TTL"
            | "PTTL"
            | "EXPIRETIME"
            | "PEXPIRETIME"
            | "TYPE"
            | "DHT.PUT"
            | "DHT.SIBLINGS"
    ) || (matches!(name.as_str(), "DEL" | "UNLINK" | "EXISTS") && args.len() == 2);
    match args.get(1) {
        Some(key) if single_key => Concurrency::Key(key),
        _ => Concurrency::Barrier,
    }
}

/// The command name, uppercased, for matching.
pub(crate) fn name_of(args: &Request) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
}

/// Runs one request.
pub(crate) async fn execute(inner: &Arc<Inner>, conn: &mut Connection, args: Request) -> Reply {
    let name = name_of(&args);
    let now = inner.clock.now_ms();
    // Single-key writes share one path: validate here, run at the write coordinator.
    if name != "DEL" || args.len() == 2 {
        if let Some(parsed) = Mutation::parse(&args, now) {
            return match parsed {
                Ok(_) => inner.mutate(args, inner.quorum(conn).w).await,
                Err(reply) => reply,
            };
        }
    }
    match name.as_str() {
        "GET" | "STRLEN" | "MGET" | "MSET" => string::execute(inner, conn, &name, args).await,
        "TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME" => {
            expire::execute_ttl(inner, conn, &name, &args).await
        }
        "DEL" | "UNLINK" | "EXISTS" | "SCAN" | "DBSIZE" | "FLUSHALL" | "FLUSHDB" | "TYPE"
        | "KEYS" => keyspace::execute(inner, conn, &name, args).await,
        "PING" | "ECHO" | "HELLO" | "CLIENT" | "SELECT" | "QUIT" | "RESET" | "AUTH" => {
            connection::execute(inner, conn, &name, &args)
        }
        "INFO" | "COMMAND" | "CONFIG" => server::execute(inner, &name, &args),
        n if n.starts_with("DHT.R.") => internal::execute(inner, n, args).await,
        n if n.starts_with("DHT.") => dht::execute(inner, conn, n, &args).await,
        _ => unknown(&args),
    }
}

/// Redis's reply to an unknown command.
pub(crate) fn unknown(args: &Request) -> Reply {
    let shown: Vec<String> = args[1..]
        .iter()
        .take(8)
        .map(|a| format!("'{}' ", String::from_utf8_lossy(a)))
        .collect();
    Reply::Error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        String::from_utf8_lossy(&args[0]),
        shown.concat()
    ))
}
