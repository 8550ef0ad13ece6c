//! The node's injection points implemented on turmoil: its simulated TCP as the
//! [`Network`], its simulated time (plus a per-node skew) as the [`Clock`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use futures::future::BoxFuture;
use keel_dht::Clock;
use keel_dht::net::{BoxStream, Listener, Network};

/// turmoil's simulated TCP. Partitions, message loss (links that fail and repair at
/// random) and latency are the simulator's; the node sees only streams that stall, break
/// or deliver late.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimNetwork;

struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn accept(&mut self) -> BoxFuture<'_, io::Result<BoxStream>> {
        Box::pin(async move {
            let (socket, _) = self.0.accept().await?;
            Ok(Box::new(socket) as BoxStream)
        })
    }
}

impl Network for SimNetwork {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Listener>>> {
        Box::pin(async move {
            let listener = turmoil::net::TcpListener::bind(addr).await?;
            Ok(Box::new(SimListener(listener)) as Box<dyn Listener>)
        })
    }

    fn connect(&self, addr: &str) -> BoxFuture<'static, io::Result<BoxStream>> {
        let addr = addr.to_owned();
        Box::pin(async move {
            let socket = turmoil::net::TcpStream::connect(addr).await?;
            Ok(Box::new(socket) as BoxStream)
        })
    }
}

/// Simulated wall clock: the simulation's epoch plus its elapsed time plus this node's
/// skew (which may be negative). The skew is shared with the driver, which moves it when
/// the node restarts (a clock that jumped, forwards or back, while the node was down).
#[derive(Debug, Clone)]
pub(crate) struct SkewedClock {
    pub(crate) skew_ms: Arc<AtomicI64>,
}

/// 2026-01-01T00:00:00Z: TTL deadlines and version timestamps look like real ones.
pub(crate) const EPOCH_MS: u64 = 1_767_225_600_000;

impl Clock for SkewedClock {
    fn now_ms(&self) -> u64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default().as_millis() as u64;
        (EPOCH_MS + elapsed).saturating_add_signed(self.skew_ms.load(Ordering::Relaxed))
    }
}
