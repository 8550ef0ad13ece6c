//! The Lua code as one Redis 7 function library, loaded once, each call one `FCALL`.
//!
//! The library is `common.lua` (helpers and the per-call state) followed by one
//! registered function per entry file. Its name carries the SHA-1 of the code
//! (`keel_jobs_<16 hex>`), so stores of different Keel versions sharing a server each
//! keep their own library and never replace each other's. A server that lost the
//! library (restart without persistence, `FUNCTION FLUSH`, failover to a replica that
//! never had it) answers `Function not found`; the call then loads it and is sent again.
//!
//! Why functions and not `EVALSHA` scripts: a script runs its whole chunk on every call
//! (here: `common.lua`'s ~40 local helpers are created anew each time) in a fresh
//! environment with `KEYS`/`ARGV` globals, after a SHA-1 lookup; a function was
//! defined once at load and is found by name.

use ::redis::aio::ConnectionManager;
use ::redis::{Cmd, ErrorKind, RedisResult, Script, ServerErrorKind, Value};

const COMMON: &str = include_str!("lua/common.lua");

/// The library's functions (the index into [`Library::names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Function {
    Enqueue,
    Fetch,
    Complete,
    Settle,
    Reap,
    Admin,
    Read,
}

const BODIES: [(&str, &str); 7] = [
    ("enqueue", include_str!("lua/enqueue.lua")),
    ("fetch", include_str!("lua/fetch.lua")),
    ("complete", include_str!("lua/complete.lua")),
    ("settle", include_str!("lua/settle.lua")),
    ("reap", include_str!("lua/reap.lua")),
    ("admin", include_str!("lua/admin.lua")),
    ("read", include_str!("lua/read.lua")),
];

/// The library's source and its function names.
#[derive(Debug)]
pub(super) struct Library {
    source: String,
    names: [String; 7],
}

impl Library {
    pub(super) fn new() -> Self {
        let body = |name: &str, code: &str, lib: &str| {
            format!(
                "redis.register_function('{lib}_{name}', function(KEYS, ARGV)\nbegin(ARGV)\n\
                 local function main()\n{code}\nend\nlocal result = main()\nflush_wake()\n\
                 return result\nend)\n"
            )
        };
        let mut code = COMMON.to_owned();
        for (name, text) in BODIES {
            code.push_str(&body(name, text, "LIB"));
        }
        let hash = Script::new(&code).get_hash().to_owned();
        let lib = format!("keel_jobs_{}", &hash[..16]);
        let mut source = format!("#!lua name={lib}\n{COMMON}");
        for (name, text) in BODIES {
            source.push_str(&body(name, text, &lib));
        }
        Self {
            source,
            names: BODIES.map(|(name, _)| format!("{lib}_{name}")),
        }
    }

    /// `FCALL <function> 0` — the caller appends the arguments.
    pub(super) fn command(&self, f: Function) -> Cmd {
        let mut cmd = ::redis::cmd("FCALL");
        cmd.arg(self.names[f as usize].as_str()).arg(0);
        cmd
    }

    /// `FUNCTION LOAD REPLACE` of the library (idempotent).
    pub(super) fn load(&self) -> Cmd {
        let mut cmd = ::redis::cmd("FUNCTION");
        cmd.arg("LOAD").arg("REPLACE").arg(self.source.as_str());
        cmd
    }

    /// Sends `cmd`; when the server lost the library, loads it and sends `cmd` again.
    pub(super) async fn call(&self, conn: &mut ConnectionManager, cmd: &Cmd) -> RedisResult<Value> {
        match cmd.query_async(conn).await {
            Err(e) if is_function_missing(&e) => {
                let _: Value = self.load().query_async(conn).await?;
                cmd.query_async(conn).await
            }
            other => other,
        }
    }
}

fn is_function_missing(error: &::redis::RedisError) -> bool {
    error.kind() == ErrorKind::Server(ServerErrorKind::ResponseError)
        && error
            .detail()
            .is_some_and(|d| d.starts_with("Function not found"))
}
