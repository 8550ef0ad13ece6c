//! A throwaway `nats-server -js` (JetStream, file storage in a temp dir) on a free
//! 127.0.0.1 port, for the event-streaming benchmark and tests.

use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::skip::Lookup;
use crate::spawner;

/// Set to `1` to turn "nats-server not found, skipping" into a test failure (CI does).
pub const REQUIRE_NATS_ENV: &str = "KEEL_REQUIRE_NATS";

/// Overrides where the `nats-server` binary is looked up.
pub const NATS_SERVER_ENV: &str = "KEEL_NATS_SERVER";

/// How long a server may take to greet a client with `INFO`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A private `nats-server` with JetStream enabled, killed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port with its store in a temp dir, and waits until
    /// it sends its `INFO` greeting.
    ///
    /// # Errors
    /// When `nats-server` is not installed or does not become ready in 10 s.
    pub fn start() -> io::Result<Self> {
        let lookup = lookup_nats_server();
        let binary = lookup
            .found
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, lookup.not_found()))?;
        Self::start_with(&binary)
    }

    /// Starts the given binary (see [`NatsServer::start`]).
    ///
    /// # Errors
    /// As [`NatsServer::start`].
    pub fn start_with(binary: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("keel-nats-").tempdir()?;
        let mut server = Self {
            port: free_port()?,
            child: None,
            dir,
        };
        // A port reported free can be taken before the server binds it; try a few.
        let mut attempt = 1;
        loop {
            match server.launch(binary) {
                Ok(()) => return Ok(server),
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    server.port = free_port()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn launch(&mut self, binary: &Path) -> io::Result<()> {
        let log = std::fs::File::create(self.dir.path().join("nats.log"))?;
        let mut cmd = Command::new(binary);
        cmd.args(["-a", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-js")
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        self.child = Some(spawner::spawn(cmd)?);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.greets() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "nats-server on port {} exited with {status}",
                    self.port
                )));
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("nats-server on port {} did not start", self.port),
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// True when a fresh connection receives the server's `INFO` line within a second.
    pub fn greets(&self) -> bool {
        let attempt = || -> io::Result<bool> {
            let mut s = TcpStream::connect_timeout(&self.addr(), Duration::from_secs(1))?;
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf)?;
            Ok(&buf == b"INFO ")
        };
        attempt().unwrap_or(false)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Kills the server (SIGKILL) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Looks for `nats-server`: `$KEEL_NATS_SERVER` if set, else `PATH`, then the system's
/// sbin and bin folders.
pub fn lookup_nats_server() -> Lookup {
    Lookup::find("nats-server", NATS_SERVER_ENV, &[])
}

/// Finds `nats-server` (see [`lookup_nats_server`]).
pub fn find_nats_server() -> Option<PathBuf> {
    lookup_nats_server().found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_and_greets_or_skips_visibly() {
        let lookup = lookup_nats_server();
        if lookup.found.is_none() {
            crate::skip::skip_or_fail(
                "nats::starts_and_greets_or_skips_visibly",
                &lookup,
                REQUIRE_NATS_ENV,
                crate::skip::required(REQUIRE_NATS_ENV),
                "apt-get install nats-server",
            );
            return;
        }
        let mut s = NatsServer::start().expect("nats-server starts");
        assert!(s.greets());
        assert!(s.url().starts_with("nats://127.0.0.1:"));
        s.stop();
        assert!(!s.greets());
    }
}
