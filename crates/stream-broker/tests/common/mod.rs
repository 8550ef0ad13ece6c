//! Shared test helpers: a tiny Kafka client built from `kafka-protocol` messages, and the
//! broker binary as a child process.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// A blocking Kafka client: one request at a time, every read bounded by a timeout.
pub struct Client {
    stream: TcpStream,
    correlation: i32,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Self {
            stream,
            correlation: 0,
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends `req` at `version` and reads its response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        self.correlation += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("keel-test")));
        header.encode(&mut buf, R::header_version(version)).unwrap();
        req.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).unwrap();
        let mut frame = self.read_frame().expect("a response");
        let h = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(h.correlation_id, self.correlation);
        R::Response::decode(&mut frame, version).unwrap()
    }

    /// Like [`call`](Self::call), but a lost connection is `None` instead of a panic.
    pub fn try_call<R: Request>(&mut self, req: &R, version: i16) -> Option<R::Response> {
        self.correlation += 1;
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation);
        header.encode(&mut buf, R::header_version(version)).ok()?;
        req.encode(&mut buf, version).ok()?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf).ok()?;
        let mut frame = self.read_frame()?;
        ResponseHeader::decode(&mut frame, R::Response::header_version(version)).ok()?;
        R::Response::decode(&mut frame, version).ok()
    }

    /// Reads one frame; `None` when the broker closed the connection.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut buf).ok()?;
        Some(Bytes::from(buf))
    }

    /// Whether the broker closed the connection (EOF within the read timeout).
    pub fn closed_by_broker(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0)) || self.stream.read(&mut b).is_err()
    }
}

/// Reads the correlation-less v0 ApiVersions response of a raw frame.
pub fn correlation_of(frame: &mut Bytes) -> i32 {
    frame.get_i32()
}

/// The broker binary as a child process on a free port; killed on drop.
pub struct BrokerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl BrokerProcess {
    pub fn start(data: &Path, extra: &[&str]) -> Self {
        Self::start_on("127.0.0.1:0", data, extra)
    }

    pub fn start_on(listen: &str, data: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keel-stream-broker"))
            .args(["--listen", listen, "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the broker printed its address");
        let addr = line.trim_start_matches("listening on ").parse().unwrap();
        Self { child, addr }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `cmd` to completion with a hard timeout (the child is killed past it).
/// Returns `(success, stdout, stderr)`.
pub fn run_bounded(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> (bool, String, String) {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output().unwrap();
        let _ = tx.send(());
        out
    });
    if rx.recv_timeout(timeout).is_err() {
        // Kill our own child (by its pid); the waiter then returns.
        let _ = Command::new("kill").args(["-9", &id.to_string()]).status();
        let _ = waiter.join();
        panic!("{cmd:?} did not finish in {timeout:?}");
    }
    let out = waiter.join().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
