//! The node's network, behind a small trait so a test can swap the transport.
//!
//! A node needs two things from the network: a listener for clients and other nodes, and
//! outgoing byte streams to other nodes (each wrapped in a `redis` multiplexed connection,
//! see `peer`). [`Network`] is exactly that; [`TcpNetwork`] (the default) is tokio's TCP.
//!
//! # Why a trait object and not a generic parameter
//! The stream type would otherwise spread through `Node`, `Inner`, `Cluster` and `Peer`
//! as a type parameter for the sake of tests alone. Connections are set up rarely (once
//! per peer, once per client) and the per-byte path is the stream's own `poll_read` /
//! `poll_write` behind one `Box`, so the dynamic dispatch costs nothing measurable.
//!
//! The deterministic simulation (`tests/sim/`) implements it on turmoil's simulated TCP,
//! which lets whole clusters run in one test under a seed with partitions, message loss
//! and delay injected by the simulator.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream (a client or a peer connection).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// A bound listener.
pub trait Listener: Send + 'static {
    /// The address it is bound to.
    ///
    /// # Errors
    /// The transport's error.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Waits for the next connection.
    ///
    /// # Errors
    /// The transport's error; the accept loop skips it and goes on.
    ///
    /// # Cancel safety
    /// Must be cancel safe (the accept loop `select!`s it against the stop signal).
    fn accept(&mut self) -> BoxFuture<'_, io::Result<BoxStream>>;
}

/// How a node listens and connects.
pub trait Network: fmt::Debug + Send + Sync + 'static {
    /// Binds a listener on `addr`.
    ///
    /// # Errors
    /// The transport's error (address in use, …).
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>>;

    /// Connects to `addr` (a node name: `host:port`).
    ///
    /// # Errors
    /// The transport's error (refused, unreachable, …). Callers bound it with a timeout.
    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxStream>>;
}

/// tokio's TCP, with `TCP_NODELAY` on every connection (requests are small and pipelined).
#[derive(Debug, Default, Clone, Copy)]
pub struct TcpNetwork;

struct TcpListener(tokio::net::TcpListener);

impl Listener for TcpListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            let (socket, _) = self.0.accept().await?;
            let _ = socket.set_nodelay(true);
            Ok(Box::new(socket) as BoxStream)
        })
    }
}

impl Network for TcpNetwork {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Box::new(TcpListener(listener)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxStream>> {
        let addr = addr.to_owned();
        Box::pin(async move {
            let socket = tokio::net::TcpStream::connect(addr).await?;
            let _ = socket.set_nodelay(true);
            Ok(Box::new(socket) as BoxStream)
        })
    }
}
