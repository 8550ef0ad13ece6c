//! The accept loop and one task per connection.
//!
//! A connection is two halves: a reader that cuts frames (length checked before anything
//! is allocated, an idle timeout on every read) and hands them through a bounded channel
//! of `max_in_flight` slots, and the connection task that decodes, handles and answers them
//! strictly in order. When the channel is full the reader stops reading, so a client that
//! pipelines faster than the broker answers is held back by TCP flow control, not buffered
//! without limit. A bad frame ends only its own connection, with a log line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::api;
use crate::broker::State;
use crate::codec::{self, DecodedRequest};
use crate::error::FrameError;
use crate::metrics::count;

pub(crate) async fn run(
    state: Arc<State>,
    listener: TcpListener,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let ticker = tokio::spawn(housekeeping(state.clone(), stop.clone()));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                log::warn!("accept failed: {e}");
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            count!(state.counters, connections_refused, 1);
            log::warn!(
                "refusing connection from {peer}: {} connections open",
                state.config.max_connections
            );
            drop(stream);
            continue;
        };
        count!(state.counters, connections_accepted, 1);
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            state
                .counters
                .connections_open
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection(&state, stream, peer, stop).await;
            state
                .counters
                .connections_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
    ticker.abort();
}

async fn housekeeping(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(state.config.tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        state.groups.tick();
        n += 1;
        // Retention and interval fsyncs are file-system work: every ~50 ticks, off the runtime.
        if n % 50 == 0 {
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || s.topics.housekeeping()).await;
        }
    }
}

enum ReadEnd {
    Closed,
    Idle,
    Bad(FrameError),
    Io(std::io::Error),
}

async fn read_frames(state: Arc<State>, mut rd: OwnedReadHalf, tx: mpsc::Sender<Bytes>) -> ReadEnd {
    let max = state.config.max_request_bytes;
    let idle = state.config.idle_timeout;
    loop {
        let mut prefix = [0u8; 4];
        match tokio::time::timeout(idle, rd.read_exact(&mut prefix)).await {
            Err(_) => return ReadEnd::Idle,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Closed,
            Ok(Err(e)) => return ReadEnd::Io(e),
            Ok(Ok(_)) => {}
        }
        let len = match codec::check_length(prefix, max) {
            Ok(n) => n,
            Err(e) => return ReadEnd::Bad(e),
        };
        let mut buf = vec![0u8; len];
        match tokio::time::timeout(idle, rd.read_exact(&mut buf)).await {
            Err(_) => return ReadEnd::Idle,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return ReadEnd::Closed,
            Ok(Err(e)) => return ReadEnd::Io(e),
            Ok(Ok(_)) => {}
        }
        if tx.send(Bytes::from(buf)).await.is_err() {
            return ReadEnd::Closed;
        }
    }
}

async fn connection(
    state: &Arc<State>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(state.config.max_in_flight);
    let mut reader = tokio::spawn(read_frames(state.clone(), rd, tx));
    let mut wr = BufWriter::new(wr);
    loop {
        let frame = tokio::select! {
            f = rx.recv() => f,
            _ = stop.changed() => break,
        };
        let Some(frame) = frame else { break };
        let started = Instant::now();
        let reply = match codec::decode_request(frame) {
            Ok(DecodedRequest::ApiVersionsFallback { correlation_id }) => {
                api::api_versions_fallback(correlation_id)
            }
            Ok(DecodedRequest::Request {
                header,
                api_key,
                body,
            }) => {
                let name = codec::api_name(api_key);
                let r = api::handle(state, &header, api_key, *body, peer).await;
                crate::metrics::record_latency(name, started.elapsed().as_secs_f64());
                r
            }
            Err(e) => {
                count!(state.counters, frames_rejected, 1);
                log::warn!("closing connection from {peer}: {e}");
                break;
            }
        };
        count!(state.counters, requests, 1);
        match reply {
            Ok(Some(bytes)) => {
                if let Err(e) = wr.write_all(&bytes).await {
                    log::debug!("connection from {peer} lost: {e}");
                    break;
                }
                if rx.is_empty()
                    && let Err(e) = wr.flush().await
                {
                    log::debug!("connection from {peer} lost: {e}");
                    break;
                }
            }
            Ok(None) => {} // acks = 0: Kafka sends no response
            Err(e) => {
                log::error!("closing connection from {peer}: cannot encode a response: {e}");
                break;
            }
        }
    }
    let _ = wr.flush().await;
    reader.abort();
    if let Ok(end) = (&mut reader).await {
        match end {
            ReadEnd::Bad(e) => {
                count!(state.counters, frames_rejected, 1);
                log::warn!("closing connection from {peer}: {e}");
            }
            ReadEnd::Idle => log::info!("closing idle connection from {peer}"),
            ReadEnd::Io(e) => log::debug!("connection from {peer} failed: {e}"),
            ReadEnd::Closed => {}
        }
    }
}
