//! A throwaway Postgres cluster: `initdb` into a temporary folder, `postgres` on a free
//! 127.0.0.1 port (never 5432), trust authentication on loopback, killed when dropped.
//!
//! Postgres refuses to run as root, so when the test runs as root the cluster folder is
//! handed to the `postgres` user and `initdb`/`postgres` run under its uid (set by the
//! kernel between fork and exec, so the server is still our direct child and still gets
//! the parent-death signal). Debian keeps the server binaries outside `PATH`
//! (`/usr/lib/postgresql/<version>/bin`); [`lookup_postgres`] looks there, in
//! `pg_config --bindir`, and in `$KEEL_POSTGRES_BINDIR` when set.

use std::ffi::CString;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::skip::{Lookup, required, skip_or_fail};
use crate::spawner;

/// Set to `1` to turn "postgres not found, skipping" into a test failure (CI does).
pub const REQUIRE_POSTGRES_ENV: &str = "KEEL_REQUIRE_POSTGRES";

/// Overrides the folder holding `postgres`, `initdb` and `psql`.
pub const POSTGRES_BINDIR_ENV: &str = "KEEL_POSTGRES_BINDIR";

/// How long a server may take to accept its first connection.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

/// A private Postgres cluster and its server process, killed when dropped.
///
/// The superuser is `postgres`, authentication is `trust` on 127.0.0.1 only, the Unix
/// socket lives in the cluster's temporary folder, and `fsync` is off unless
/// [`PostgresServer::start_with_settings`] turns it on (a crash of the *server* is not
/// what these tests simulate; [`stop`](PostgresServer::stop) is a clean fast shutdown).
#[derive(Debug)]
pub struct PostgresServer {
    bindir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Unix user to run as (`Some` when we are root).
    run_as: Option<(u32, u32)>,
    settings: Vec<(String, String)>,
    dir: TempDir,
}

impl PostgresServer {
    /// Creates a cluster and starts its server on a free port; returns once it accepts
    /// connections.
    ///
    /// # Errors
    /// When the binaries are missing, `initdb` fails, or the server does not accept
    /// connections within 30 s (the error carries the tail of its log).
    pub fn start() -> io::Result<Self> {
        Self::start_with_settings::<&str, &str>([])
    }

    /// Like [`start`](PostgresServer::start), with extra `-c name=value` settings (kept for
    /// restarts), e.g. `[("fsync", "on"), ("max_connections", "400")]`.
    ///
    /// # Errors
    /// As [`start`](PostgresServer::start).
    pub fn start_with_settings<K: Into<String>, V: Into<String>>(
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> io::Result<Self> {
        let lookup = lookup_postgres();
        let postgres = lookup
            .found
            .clone()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, lookup.not_found()))?;
        Self::start_in(
            &bindir_of(&postgres),
            settings
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    fn start_in(bindir: &Path, settings: Vec<(String, String)>) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keel-postgres-")
            .tempdir()?;
        let run_as = if unsafe_geteuid() == 0 {
            let ids = postgres_user_ids()?;
            chown(dir.path(), ids)?;
            Some(ids)
        } else {
            None
        };
        let mut server = Self {
            bindir: bindir.to_owned(),
            port: free_port()?,
            child: None,
            run_as,
            settings,
            dir,
        };
        server.initdb()?;
        // A port the OS just reported free can be taken before the server binds it.
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

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    fn command(&self, binary: &str) -> Command {
        use std::os::unix::process::CommandExt as _;
        let path = self.bindir.join(binary);
        // psql may live elsewhere (a client package) than the server binaries.
        let path = if path.is_file() {
            path
        } else {
            PathBuf::from(binary)
        };
        let mut cmd = Command::new(path);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
            // Postgres' tools read $HOME and refuse some root-owned paths.
            cmd.env("HOME", self.dir.path());
        }
        cmd.env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        cmd.stdin(Stdio::null());
        cmd
    }

    fn initdb(&self) -> io::Result<()> {
        let log = std::fs::File::create(self.dir.path().join("initdb.log"))?;
        if let Some(ids) = self.run_as {
            chown(&self.dir.path().join("initdb.log"), ids)?;
        }
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        let mut child = spawner::spawn(cmd)?;
        let status = wait_bounded(&mut child, INITDB_TIMEOUT)?;
        if !status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("initdb.log")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "initdb failed ({status}): {}",
                tail(&log, 8)
            )));
        }
        Ok(())
    }

    fn launch(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        if let Some(ids) = self.run_as {
            chown(&self.log_path(), ids)?;
        }
        let mut cmd = self.command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300", "-c", "shared_buffers=64MB"]);
        for (k, v) in &self.settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        cmd.stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        self.child = Some(spawner::spawn(cmd)?);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.accepts_connections() {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "postgres on port {} exited with {status}: {}",
                    self.port,
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "postgres on port {} did not accept connections: {}",
                        self.port,
                        self.log_tail()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        tail(
            &std::fs::read_to_string(self.log_path()).unwrap_or_default(),
            5,
        )
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port, stable across [`stop`](PostgresServer::stop) / [`start_again`](PostgresServer::start_again).
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

    /// Runs one SQL command with `psql` as the superuser (e.g. `CREATE DATABASE t1`).
    ///
    /// # Errors
    /// When `psql` fails; the error carries its output.
    pub fn psql(&self, database: &str, sql: &str) -> io::Result<String> {
        let mut cmd = self.command("psql");
        cmd.args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .args(["-U", "postgres", "-d", database, "-c", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Creates an empty database and returns its URL (one per test keeps tests apart on a
    /// shared server).
    ///
    /// # Errors
    /// When `CREATE DATABASE` fails (bad name, already exists, server down).
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("database name `{name}` must be [A-Za-z0-9_]+"),
            ));
        }
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.database_url(name))
    }

    /// Whether a fresh connection gets past authentication (the server is up and not
    /// starting or shutting down).
    pub fn accepts_connections(&self) -> bool {
        startup_ok(self.addr()).unwrap_or(false)
    }

    /// Whether the process is alive.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the server cleanly (SIGINT: Postgres' *fast* shutdown — open transactions are
    /// rolled back, connections closed, committed data kept) and waits for it to exit
    /// (SIGKILL after 30 s). Idempotent. The cluster stays for [`start_again`](PostgresServer::start_again).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe {
                    libc::kill(pid, libc::SIGINT);
                }
            }
            if wait_bounded(&mut child, Duration::from_secs(30)).is_err() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }

    /// Kills the server outright (SIGKILL, a crash). Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again: same cluster (data kept), same port.
    ///
    /// # Errors
    /// When it does not accept connections within 30 s.
    pub fn start_again(&mut self) -> io::Result<()> {
        self.stop();
        self.launch()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // A killed postmaster leaves its backends to notice and exit; a fast shutdown is
        // clean and quick, so prefer it.
        self.stop();
    }
}

/// The folder of the real binary: `/usr/local/bin/postgres` is often a symlink into
/// `/usr/lib/postgresql/<v>/bin`, which is where `psql` and friends live too.
fn bindir_of(binary: &Path) -> PathBuf {
    let real = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_owned());
    real.parent().map(Path::to_owned).unwrap_or_default()
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn wait_bounded(child: &mut Child, bound: Duration) -> io::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "child did not exit",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends a protocol-3.0 StartupMessage as `postgres` and reads the first reply: `R`
/// (authentication request; with trust, AuthenticationOk) means ready, `E` means starting
/// up, shutting down or refusing.
fn startup_ok(addr: SocketAddr) -> io::Result<bool> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut body = Vec::new();
    body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    for part in ["user", "postgres", "database", "postgres", ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let len = u32::try_from(body.len() + 4).map_err(io::Error::other)?;
    s.write_all(&len.to_be_bytes())?;
    s.write_all(&body)?;
    let mut tag = [0u8; 1];
    s.read_exact(&mut tag)?;
    let ok = tag[0] == b'R';
    // Terminate politely.
    let _ = s.write_all(&[b'X', 0, 0, 0, 4]);
    Ok(ok)
}

fn free_port() -> io::Result<u16> {
    loop {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = l.local_addr()?.port();
        if port != 5432 {
            return Ok(port);
        }
    }
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// The uid and gid of the `postgres` user.
fn postgres_user_ids() -> io::Result<(u32, u32)> {
    let name = CString::new("postgres").map_err(io::Error::other)?;
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy the two ids
    // out at once. Tests call it rarely; the shared buffer's non-reentrancy is harmless here
    // because nothing else in the process reads the passwd database concurrently.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(io::Error::other(
            "running as root but there is no `postgres` user to run the server as \
             (Postgres refuses root); create one, e.g. `useradd -r postgres`",
        ));
    }
    // SAFETY: non-null pointer from getpwnam, read immediately.
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// Looks for the `postgres` server binary: `$KEEL_POSTGRES_BINDIR/postgres` if set, else
/// `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/<version>/bin` (newest first), then
/// the system's sbin and bin folders. `initdb` and `psql` are taken from the same folder.
pub fn lookup_postgres() -> Lookup {
    let mut extra = Vec::new();
    if let Ok(out) = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !dir.is_empty() {
            extra.push(PathBuf::from(dir));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                Some((v, e.path().join("bin")))
            })
            .collect();
        versions.sort_by_key(|v| std::cmp::Reverse(v.0));
        extra.extend(versions.into_iter().map(|(_, p)| p));
    }
    if let Some(dir) = std::env::var_os(POSTGRES_BINDIR_ENV) {
        let path = PathBuf::from(dir).join("postgres");
        return Lookup {
            binary: "postgres".into(),
            found: path.is_file().then(|| path.clone()),
            tried: vec![path],
            overridden_by: Some(POSTGRES_BINDIR_ENV.into()),
        };
    }
    let mut lookup = Lookup::find("postgres", "KEEL_POSTGRES_SERVER", &extra);
    // Only a folder that also has initdb is usable.
    if let Some(found) = &lookup.found
        && !found.with_file_name("initdb").is_file()
    {
        lookup.found = lookup
            .tried
            .iter()
            .find(|p| p.is_file() && p.with_file_name("initdb").is_file())
            .cloned();
    }
    lookup
}

/// Whether a usable Postgres (server + initdb) can be found.
pub fn postgres_available() -> bool {
    lookup_postgres().found.is_some()
}

/// A fresh server for the test named `test`, or `None` after printing one visible skip
/// line (saying where `postgres` was looked for) when it is not installed.
///
/// # Panics
/// When Postgres is missing and `KEEL_REQUIRE_POSTGRES=1` (so CI cannot silently skip),
/// and when it is installed but fails to start (a real failure, never a skip).
pub fn postgres_or_skip(test: &str) -> Option<PostgresServer> {
    postgres_or_skip_with(&lookup_postgres(), required(REQUIRE_POSTGRES_ENV), test)
}

pub(crate) fn postgres_or_skip_with(
    lookup: &Lookup,
    required: bool,
    test: &str,
) -> Option<PostgresServer> {
    match &lookup.found {
        Some(binary) => match PostgresServer::start_in(&bindir_of(binary), Vec::new()) {
            Ok(server) => Some(server),
            Err(e) => panic!("{test}: postgres is installed but did not start: {e}"),
        },
        None => {
            skip_or_fail(
                test,
                lookup,
                REQUIRE_POSTGRES_ENV,
                required,
                "apt-get install postgresql",
            );
            None
        }
    }
}

/// One server shared by every test of this process (started on first use), with a fresh
/// database per call: returns the new database's URL, or `None` after the skip line.
///
/// Creating a cluster costs a second or two; a database costs tens of milliseconds. The
/// shared server is stopped and its folder removed when the process exits normally
/// (an `atexit` hook); if the process is killed, the kernel kills the server (parent-death
/// signal) and only the temporary folder is left behind.
///
/// # Panics
/// As [`postgres_or_skip`], and when the database cannot be created.
pub fn shared_postgres_database_or_skip(test: &str) -> Option<String> {
    static SHARED: Mutex<Option<PostgresServer>> = Mutex::new(None);
    static NEXT_DB: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let lookup = lookup_postgres();
        if lookup.found.is_none() {
            drop(guard);
            skip_or_fail(
                test,
                &lookup,
                REQUIRE_POSTGRES_ENV,
                required(REQUIRE_POSTGRES_ENV),
                "apt-get install postgresql",
            );
            return None;
        }
        *guard = postgres_or_skip_with(&lookup, true, test);
        extern "C" fn stop_shared() {
            let taken = SHARED.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(taken);
        }
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe {
            libc::atexit(stop_shared);
        }
    }
    let Some(server) = guard.as_ref() else {
        unreachable!("started above (a failed start panics)")
    };
    let n = NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("keel_test_{}_{n}", std::process::id());
    match server.create_database(&name) {
        Ok(url) => Some(url),
        Err(e) => panic!("{test}: cannot create database {name}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing() -> Lookup {
        Lookup::find(
            "keel-no-such-postgres",
            "KEEL_TESTKIT_NO_SUCH_OVERRIDE",
            &[],
        )
    }

    #[test]
    fn missing_binary_skips_when_not_required() {
        assert!(postgres_or_skip_with(&missing(), false, "skip test").is_none());
    }

    #[test]
    #[should_panic(expected = "KEEL_REQUIRE_POSTGRES=1 but keel-no-such-postgres not found")]
    fn missing_binary_fails_when_required() {
        postgres_or_skip_with(&missing(), true, "required test");
    }

    #[test]
    fn a_private_server_starts_stops_and_starts_again_with_its_data() {
        let Some(mut pg) = postgres_or_skip("testkit postgres lifecycle") else {
            return;
        };
        assert_ne!(pg.port(), 5432);
        assert!(pg.accepts_connections());
        let url = pg.create_database("lifecycle").unwrap();
        assert!(url.ends_with(&format!(":{}/lifecycle", pg.port())), "{url}");
        pg.psql(
            "lifecycle",
            "CREATE TABLE t (x int); INSERT INTO t VALUES (42)",
        )
        .unwrap();
        let pid = pg.pid().unwrap();
        pg.stop();
        assert!(!pg.accepts_connections(), "stopped means refused");
        assert!(pg.psql("lifecycle", "SELECT 1").is_err());
        pg.start_again().unwrap();
        assert_ne!(pg.pid(), Some(pid));
        assert_eq!(pg.psql("lifecycle", "SELECT x FROM t").unwrap(), "42");
        let dir = pg.dir.path().to_owned();
        let pid = pg.pid().unwrap();
        drop(pg);
        assert!(!dir.exists(), "the cluster folder is removed");
        // SAFETY: kill(pid, 0) only checks whether the process exists.
        let alive = unsafe { libc::kill(pid as i32, 0) } == 0;
        assert!(!alive, "the server is gone after drop");
    }

    #[test]
    fn shared_servers_hand_out_separate_databases() {
        let Some(a) = shared_postgres_database_or_skip("testkit shared postgres") else {
            return;
        };
        let b = shared_postgres_database_or_skip("testkit shared postgres").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn the_lookup_looks_in_debians_server_folder() {
        let lookup = lookup_postgres();
        if std::path::Path::new("/usr/lib/postgresql").is_dir() && lookup.found.is_none() {
            let msg = lookup.not_found();
            assert!(msg.contains("/usr/lib/postgresql"), "{msg}");
        }
    }
}
