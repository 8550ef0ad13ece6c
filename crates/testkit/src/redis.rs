//! A throwaway `redis-server` on a free 127.0.0.1 port.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::skip::{Lookup, required, skip_or_fail};
use crate::spawner;

/// Set to `1` to turn "redis-server not found, skipping" into a test failure (CI does).
pub const REQUIRE_REDIS_ENV: &str = "KEEL_REQUIRE_REDIS";

/// Overrides where the `redis-server` binary is looked up.
pub const REDIS_SERVER_ENV: &str = "KEEL_REDIS_SERVER";

/// How long a server may take to answer its first `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A private `redis-server` process, killed when dropped.
///
/// See the [crate docs](crate) for the guarantees.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    dir: TempDir,
    /// Extra command-line arguments (e.g. `--loadmodule PATH`), kept for restarts.
    extra_args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// # Errors
    /// When `redis-server` is not installed, or does not become ready in 10 s on any of a
    /// few free ports (the error includes the tail of its log).
    pub fn start() -> io::Result<Self> {
        let lookup = lookup_redis_server();
        let binary = lookup
            .found
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, lookup.not_found()))?;
        Self::start_with(&binary)
    }

    /// Starts the given `redis-server` binary (see [`RedisServer::start`]).
    ///
    /// # Errors
    /// As [`RedisServer::start`].
    pub fn start_with(binary: &Path) -> io::Result<Self> {
        Self::launch_new(binary, Vec::new())
    }

    /// Like [`RedisServer::start`], with extra `redis-server` arguments appended to the
    /// usual ones — e.g. `["--loadmodule", "/path/to/libredis_cell.so"]` (kept for
    /// [`RedisServer::restart`]).
    ///
    /// # Errors
    /// As [`RedisServer::start`]; a module that fails to load makes the server exit, and the
    /// error carries the tail of its log.
    pub fn start_with_args<I, S>(args: I) -> io::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let lookup = lookup_redis_server();
        let binary = lookup
            .found
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, lookup.not_found()))?;
        Self::launch_new(&binary, args.into_iter().map(Into::into).collect())
    }

    fn launch_new(binary: &Path, extra_args: Vec<String>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("keel-redis-").tempdir()?;
        let mut server = Self {
            binary: binary.to_owned(),
            port: free_port()?,
            child: None,
            dir,
            extra_args,
        };
        // A port the OS just reported free can be taken by someone else before the server
        // binds it; try a few.
        let mut attempt = 1;
        loop {
            match server.launch() {
                Ok(()) => return Ok(server),
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    server.port = free_port()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn launch(&mut self) -> io::Result<()> {
        let log = std::fs::File::create(self.log_path())?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--protected-mode", "yes"])
            .args(["--logfile", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        self.child = Some(spawner::spawn(cmd)?);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.ping() {
                return Ok(());
            }
            if let Some(child) = &mut self.child {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    return Err(io::Error::other(format!(
                        "redis-server on port {} exited with {status}: {}",
                        self.port,
                        self.log_tail()
                    )));
                }
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "redis-server on port {} did not answer PING: {}",
                        self.port,
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The port, stable across [`RedisServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is alive (it may still be starting up).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `PING` over a fresh connection; true when `+PONG` comes back within a second.
    pub fn ping(&self) -> bool {
        let try_ping = || -> io::Result<bool> {
            let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            s.write_all(b"PING\r\n")?;
            let mut buf = [0u8; 7];
            s.read_exact(&mut buf)?;
            Ok(&buf == b"+PONG\r\n")
        };
        try_ping().unwrap_or(false)
    }

    /// Kills the server (SIGKILL, as a crash would) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing is persisted).
    ///
    /// # Errors
    /// If it does not answer `PING` within 10 s.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.launch()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Looks for `redis-server`: `$KEEL_REDIS_SERVER` if set, else `PATH`, then the system's
/// sbin and bin folders.
pub fn lookup_redis_server() -> Lookup {
    Lookup::find("redis-server", REDIS_SERVER_ENV, &[])
}

/// Finds `redis-server` (see [`lookup_redis_server`]).
pub fn find_redis_server() -> Option<PathBuf> {
    lookup_redis_server().found
}

/// Whether a `redis-server` binary can be found.
pub fn redis_server_available() -> bool {
    find_redis_server().is_some()
}

/// A fresh server for the test named `test`, or `None` after printing one visible skip
/// line (saying where `redis-server` was looked for) when it is not installed.
///
/// # Panics
/// When `redis-server` is missing and `KEEL_REQUIRE_REDIS=1` (so CI cannot silently skip),
/// and when it is installed but fails to start (a real failure, never a skip).
pub fn redis_or_skip(test: &str) -> Option<RedisServer> {
    redis_or_skip_with(&lookup_redis_server(), required(REQUIRE_REDIS_ENV), test)
}

pub(crate) fn redis_or_skip_with(
    lookup: &Lookup,
    required: bool,
    test: &str,
) -> Option<RedisServer> {
    match &lookup.found {
        Some(binary) => match RedisServer::start_with(binary) {
            Ok(server) => Some(server),
            Err(e) => panic!("{test}: redis-server is installed but did not start: {e}"),
        },
        None => {
            skip_or_fail(
                test,
                lookup,
                REQUIRE_REDIS_ENV,
                required,
                "apt-get install redis-server",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> Lookup {
        Lookup::find("keel-no-such-redis", "KEEL_TESTKIT_NO_SUCH_OVERRIDE", &[])
    }

    #[test]
    fn missing_binary_skips_when_not_required() {
        assert!(redis_or_skip_with(&missing(), false, "skip test").is_none());
    }

    #[test]
    #[should_panic(expected = "KEEL_REQUIRE_REDIS=1 but keel-no-such-redis not found (looked in")]
    fn missing_binary_fails_when_required() {
        redis_or_skip_with(&missing(), true, "required test");
    }

    #[test]
    #[should_panic(expected = "installed but did not start")]
    fn a_binary_that_cannot_start_is_a_failure_not_a_skip() {
        let lookup = Lookup {
            found: Some(PathBuf::from("/bin/false")),
            ..missing()
        };
        assert!(lookup.overridden_by.is_none());
        redis_or_skip_with(&lookup, false, "broken binary");
    }
}
