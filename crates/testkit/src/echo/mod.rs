//! An HTTP backend that speaks the Gateway API conformance echo protocol (echo-basic).
//!
//! Owns the listener, the per-connection tasks and the request log of one backend instance; the handlers
//! themselves live in `handler`. It reproduces conformance README section 4: `/health`, `/status/NNN`, the
//! `/retry/` simulator and the JSON echo with `?delay=` and `X-Echo-Set-Header`. It deliberately does not do TLS,
//! WebSocket (`/ws`), gRPC, or the `Upgrade: h2c` dance (only h2c with prior knowledge).
//!
//! Differences from echo-basic worth knowing: in [`EchoMode::H2cOnly`] the same routes are served as in
//! [`EchoMode::Http`] (echo-basic's h2c port echoes every path), response header names set through
//! `X-Echo-Set-Header` go out in lower case, and the log line has no `(<remote address>)` suffix.

mod go_duration;
mod handler;
mod query;
mod reply;
mod reset;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub use reply::EchoReply;

use crate::port::ClosedPort;
use handler::EchoState;
use reset::{ConnectionReset, ResettableStream};

/// Which protocols an [`EchoServer`] accepts on its one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// HTTP/1.x, and HTTP/2 with prior knowledge (h2c), told apart by the connection preface.
    Http,
    /// HTTP/2 with prior knowledge only, like echo-basic's h2c port: HTTP/1 requests get 400.
    H2cOnly,
}

/// How to start an [`EchoServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoConfig {
    /// Reported as `pod`; the conformance suite matches it by prefix (`<service>-<hash>-<hash>`).
    pub pod: String,
    /// Reported as `namespace`.
    pub namespace: String,
    /// Reported as `service`.
    pub service: String,
    /// Where to listen; port 0 picks a free port (read it back with [`EchoServer::addr`]).
    pub bind: SocketAddr,
    /// Which protocols to accept.
    pub mode: EchoMode,
}

impl EchoConfig {
    /// An HTTP backend on `127.0.0.1:<ephemeral>` reporting `pod` and `namespace`, with an empty service name.
    pub fn new(pod: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            pod: pod.into(),
            namespace: namespace.into(),
            service: String::new(),
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            mode: EchoMode::Http,
        }
    }
}

/// A running echo backend.
///
/// It serves until [`EchoServer::shutdown`] or drop. Both stop the accept loop and abort every open connection
/// and in-flight request; afterwards the port refuses connections (after `shutdown` returns; shortly after a
/// drop, because dropping cannot wait).
#[derive(Debug)]
pub struct EchoServer {
    /// The address actually bound.
    addr: SocketAddr,
    /// Shared with every connection.
    state: Arc<EchoState>,
    /// Owns the listener and, through a [`JoinSet`], every connection task.
    accept_task: JoinHandle<()>,
}

impl EchoServer {
    /// Binds `config.bind` and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// Fails when the address cannot be bound.
    pub async fn start(config: EchoConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding echo server {:?} to {}", config.pod, config.bind))?;
        let addr = listener
            .local_addr()
            .context("reading the echo server's bound address")?;
        let state = Arc::new(EchoState {
            pod: config.pod,
            namespace: config.namespace,
            service: config.service,
            mode: config.mode,
            port: addr.port(),
            requests: AtomicU64::new(0),
            logs: Mutex::new(Vec::new()),
            retry_attempts: tokio::sync::Mutex::new(HashMap::new()),
        });
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            addr,
            state,
            accept_task,
        })
    }

    /// The address the server listens on (the real port when `bind` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pod name this backend reports.
    pub fn pod(&self) -> &str {
        &self.state.pod
    }

    /// How many requests have arrived so far, whatever the route or outcome (RSTs included).
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// A copy of the log, one `Echoing back request made to <RequestURI> to client` line per echoed request, in
    /// arrival order. Only echoed requests are logged (not `/health`, `/status/` or failed retry attempts).
    pub fn logs(&self) -> Vec<String> {
        self.state
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether a request with exactly this RequestURI (path plus query) was echoed, as the conformance suite
    /// checks mirrors.
    pub fn has_logged(&self, request_uri: &str) -> bool {
        let wanted = format!("Echoing back request made to {request_uri} to client");
        self.state
            .logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&wanted)
    }

    /// Stops the server and waits until the listener is closed, so the port refuses connections on return.
    /// Open connections are aborted without a response.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        // Resolves once the task's future, and with it the listener and the connection set, has been dropped.
        let _cancelled = (&mut self.accept_task).await;
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// Holds a loopback port that refuses connections, for tests of unreachable backends; keep the
/// value alive for as long as the backend must stay unreachable.
#[must_use]
pub fn reserve_closed_port() -> ClosedPort {
    ClosedPort::reserve()
}

/// Accepts connections until aborted. Dropping this future drops the [`JoinSet`], which aborts every connection.
async fn accept_loop(listener: TcpListener, state: Arc<EchoState>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                // Usually a full file table; back off instead of spinning, and keep serving.
                Err(_error) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow for the lifetime of the server.
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one connection until the peer closes it, a handler requests an RST, or the task is aborted.
async fn serve_connection(stream: TcpStream, state: Arc<EchoState>) {
    // Responses are written whole; Nagle would only add latency to tests.
    let _ignored = stream.set_nodelay(true);
    let reset = Arc::new(ConnectionReset::default());
    // HTTP/2 streams run in their own tasks; they watch this sender so they end with the connection.
    let (connection_alive, connection_watch) = watch::channel(());
    let io = TokioIo::new(ResettableStream::new(stream, Arc::clone(&reset)));
    let service = {
        let reset = Arc::clone(&reset);
        service_fn(move |request| handler::handle(Arc::clone(&state), Arc::clone(&reset), request))
    };
    let mut builder = auto::Builder::new(ConnectionExecutor { connection_watch });
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection(io, service);
    tokio::select! {
        _served = connection => {}
        () = reset.requested() => {}
    }
    drop(connection_alive);
}

/// Spawns hyper's HTTP/2 stream tasks so that they end when their connection's task ends.
#[derive(Clone)]
struct ConnectionExecutor {
    /// Its sender lives in the connection task; `changed()` fails once that task is gone.
    connection_watch: watch::Receiver<()>,
}

impl<F> hyper::rt::Executor<F> for ConnectionExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        let mut connection_watch = self.connection_watch.clone();
        tokio::spawn(async move {
            tokio::select! {
                _done = future => {}
                _closed = connection_watch.changed() => {}
            }
        });
    }
}
