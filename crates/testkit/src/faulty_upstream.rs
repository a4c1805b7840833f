//! An HTTP/1.1 upstream that misbehaves on purpose: it answers with errors or slowly, resets connections,
//! hangs, closes in the middle of a body, or dies under load, for tests of retries, breakers, outlier
//! detection and balancing.
//!
//! Owns a listener on 127.0.0.1, its connection tasks, and counters of what it received. It speaks just enough
//! HTTP/1.1 over real sockets to be a backend: it reads request heads and `Content-Length` bodies (no chunked
//! bodies), keeps connections alive, and answers with its name as a `text/plain` body. What it does with each
//! request ([`UpstreamBehaviour`]) can change while it runs. It deliberately does not speak HTTP/2 or echo
//! requests back; [`crate::EchoServer`] does that.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What a [`FaultyUpstream`] does with each request once it has read it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamBehaviour {
    /// Waits `delay`, then answers `status` with the upstream's name as the body, and keeps the connection.
    Answer {
        /// The response status.
        status: StatusCode,
        /// How long each request is held before the answer is written.
        delay: Duration,
    },
    /// Aborts the connection with a TCP RST (zero linger) without answering.
    Reset,
    /// Never answers; the connection stays open until the peer closes it or the upstream stops.
    Hang,
    /// Writes a 200 head announcing twice the body it then writes, and closes the connection (FIN).
    CloseMidBody,
}

impl UpstreamBehaviour {
    /// Answers `status` at once.
    pub fn answer(status: StatusCode) -> Self {
        Self::Answer {
            status,
            delay: Duration::ZERO,
        }
    }

    /// Answers 200 after `delay`.
    pub fn slow(delay: Duration) -> Self {
        Self::Answer {
            status: StatusCode::OK,
            delay,
        }
    }
}

/// State shared by the handle and every connection task.
#[derive(Debug)]
struct UpstreamState {
    /// The response body.
    name: String,
    /// Read by each request as it arrives, so a change applies from the next request on.
    behaviour: Mutex<UpstreamBehaviour>,
    /// Requests read whole, whatever happened to them.
    requests: AtomicU64,
    /// Requests read and not yet answered (or reset, or closed on).
    in_flight: AtomicU64,
    /// The highest `in_flight` seen.
    max_in_flight: AtomicU64,
}

/// A running misbehaving upstream on 127.0.0.1.
///
/// It serves until [`FaultyUpstream::kill`] or drop; both close the listener and abort every open connection
/// without an answer.
#[derive(Debug)]
pub struct FaultyUpstream {
    /// The address bound.
    addr: SocketAddr,
    /// Shared with the connection tasks.
    state: Arc<UpstreamState>,
    /// Owns the listener.
    accept_task: JoinHandle<()>,
    /// Every connection task, so they can be aborted together.
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl FaultyUpstream {
    /// Binds an ephemeral port on 127.0.0.1 and serves with `behaviour` on the current tokio runtime. `name` is
    /// the body of every answer, so a test can tell upstreams apart by it.
    ///
    /// # Errors
    ///
    /// Fails when no loopback port can be bound.
    pub async fn start(name: &str, behaviour: UpstreamBehaviour) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .with_context(|| format!("binding faulty upstream {name:?}"))?;
        let addr = listener
            .local_addr()
            .context("reading the upstream's bound address")?;
        let state = Arc::new(UpstreamState {
            name: name.to_owned(),
            behaviour: Mutex::new(behaviour),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
        });
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept_task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&state),
            Arc::clone(&connections),
        ));
        Ok(Self {
            addr,
            state,
            accept_task,
            connections,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The name it answers with.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// How many requests it has read whole so far, whatever it then did with them.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The requests it holds now (read, not yet answered, nor given up by the peer).
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests it has held at once (read, not yet answered).
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Changes what it does with requests that arrive from now on; requests already held keep their behaviour.
    pub fn set_behaviour(&self, behaviour: UpstreamBehaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = behaviour;
    }

    /// Kills it as a crashed process would die: on return the port refuses connections, and every open
    /// connection has been aborted (the peer sees it closed, without an answer to a request in flight).
    pub async fn kill(&self) {
        self.accept_task.abort();
        // The listener is closed once the aborted task has been dropped, which `is_finished` reports.
        while !self.accept_task.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.abort_connections();
    }

    /// Aborts every connection task, which drops (closes) its socket.
    fn abort_connections(&self) {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }
}

impl Drop for FaultyUpstream {
    fn drop(&mut self) {
        self.accept_task.abort();
        self.abort_connections();
    }
}

/// Accepts connections until aborted.
async fn accept_loop(
    listener: TcpListener,
    state: Arc<UpstreamState>,
    connections: Arc<Mutex<JoinSet<()>>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let mut connections = connections.lock().unwrap_or_else(PoisonError::into_inner);
                // Reap finished connection tasks so the set does not grow with every connection.
                while connections.try_join_next().is_some() {}
                connections.spawn(serve_connection(stream, Arc::clone(&state)));
            }
            // Usually a full file table; back off instead of spinning, and keep serving.
            Err(_error) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves requests on one connection until the peer closes it or a behaviour ends it.
async fn serve_connection(mut stream: TcpStream, state: Arc<UpstreamState>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(length) = whole_request_length(&buffer) {
            buffer.drain(..length);
            state.requests.fetch_add(1, Ordering::SeqCst);
            let behaviour = *state
                .behaviour
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let in_flight = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
            let keeps_connection = respond(&mut stream, &state.name, behaviour).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            if !keeps_connection {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

/// Does what `behaviour` says with one request; returns whether the connection can serve another.
async fn respond(stream: &mut TcpStream, name: &str, behaviour: UpstreamBehaviour) -> bool {
    match behaviour {
        UpstreamBehaviour::Answer { status, delay } => {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let reason = status.canonical_reason().unwrap_or("Unknown");
            let response = format!(
                "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{name}",
                status.as_u16(),
                name.len()
            );
            stream.write_all(response.as_bytes()).await.is_ok()
        }
        UpstreamBehaviour::Reset => {
            // A zero linger makes the close that follows (the caller drops the stream) send RST, not FIN.
            let _ignored = stream.set_zero_linger();
            false
        }
        UpstreamBehaviour::Hang => {
            // Read and discard until the peer gives up; pipelined requests are never answered either.
            let mut sink = [0u8; 4096];
            while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {}
            false
        }
        UpstreamBehaviour::CloseMidBody => {
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{name}",
                name.len() * 2
            );
            let _ignored = stream.write_all(response.as_bytes()).await;
            let _ignored = stream.shutdown().await;
            false
        }
    }
}

/// The length of the first request in `buffer` (head and `Content-Length` body), once all of it has arrived.
fn whole_request_length(buffer: &[u8]) -> Option<usize> {
    let head_end = buffer.windows(4).position(|window| window == b"\r\n\r\n")? + 4;
    let total = head_end + content_length(&buffer[..head_end]);
    (buffer.len() >= total).then_some(total)
}

/// The `Content-Length` announced by a request head, 0 when there is none (or it is not a number).
fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
