//! Listening sockets: bound and unbound as snapshots change, connections served with
//! hyper-util's auto server (HTTP/1.1 and h2c on one port), graceful drain on removal and on
//! shutdown.
//!
//! A config change never closes a connection: sockets whose address stays keep accepting, and
//! their connections pick up the new snapshot on their next request. Only when an address
//! disappears from the config is its socket closed; its connections finish the requests in
//! flight (HTTP/1.1 closes after the current response, HTTP/2 sends GOAWAY) and close.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use snapshot::Scheme;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::handshake;
use crate::plane::DataPlane;
use crate::stack::{self, Connection};
use crate::tls_route;

/// A socket that could not be bound.
#[derive(Debug)]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub error: io::Error,
}

struct ListenerHandle {
    accept: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

/// Counts open connections so shutdown can wait for them.
#[derive(Default)]
struct ConnectionTracker {
    open: AtomicUsize,
    closed: Notify,
}

struct ConnectionGuard {
    tracker: Arc<ConnectionTracker>,
    plane: Arc<DataPlane>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.plane.metrics.downstream_connection_closed();
        if self.tracker.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.closed.notify_waiters();
        }
    }
}

/// Owns the listening sockets.
pub struct ListenerManager {
    plane: Arc<DataPlane>,
    listeners: HashMap<SocketAddr, ListenerHandle>,
    tracker: Arc<ConnectionTracker>,
}

impl ListenerManager {
    /// A manager with no sockets yet.
    pub fn new(plane: Arc<DataPlane>) -> ListenerManager {
        ListenerManager {
            plane,
            listeners: HashMap::new(),
            tracker: Arc::default(),
        }
    }

    /// Makes the bound sockets equal `wanted`: binds new addresses, closes removed ones
    /// (draining their connections). Addresses that fail to bind are returned and retried on
    /// the next call. Must run inside a tokio runtime.
    pub fn sync(&mut self, wanted: &[SocketAddr]) -> Vec<BindError> {
        let removed: Vec<SocketAddr> = self
            .listeners
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in removed {
            if let Some(handle) = self.listeners.remove(&addr) {
                handle.accept.abort();
                let _ = handle.stop.send(true);
                tracing::info!(%addr, "listener closed");
            }
        }
        let mut errors = Vec::new();
        for &addr in wanted {
            if self.listeners.contains_key(&addr) {
                continue;
            }
            match bind(addr) {
                Ok(listener) => {
                    let (stop, stop_rx) = watch::channel(false);
                    let accept = tokio::spawn(accept_loop(
                        listener,
                        addr,
                        Arc::clone(&self.plane),
                        Arc::clone(&self.tracker),
                        stop_rx,
                    ));
                    self.listeners.insert(addr, ListenerHandle { accept, stop });
                    tracing::info!(%addr, "listening");
                }
                Err(error) => errors.push(BindError { addr, error }),
            }
        }
        errors
    }

    /// The addresses currently bound.
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.listeners.keys().copied().collect()
    }

    /// Stops accepting everywhere, asks every connection to finish its in-flight requests and
    /// close, and waits for them up to `drain`. Returns how many connections were still open
    /// when the time ran out.
    pub async fn shutdown(mut self, drain: Duration) -> usize {
        for (_, handle) in self.listeners.drain() {
            handle.accept.abort();
            let _ = handle.stop.send(true);
        }
        let deadline = tokio::time::Instant::now() + drain;
        loop {
            let notified = self.tracker.closed.notified();
            let open = self.tracker.open.load(Ordering::Acquire);
            if open == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.tracker.open.load(Ordering::Acquire);
            }
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `::` must not also claim the IPv4 wildcard: `0.0.0.0` is bound separately.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    listener: TcpListener,
    local: SocketAddr,
    plane: Arc<DataPlane>,
    tracker: Arc<ConnectionTracker>,
    stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%local, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracker.open.fetch_add(1, Ordering::AcqRel);
        plane.metrics.downstream_connection_opened();
        let guard = ConnectionGuard {
            tracker: Arc::clone(&tracker),
            plane: Arc::clone(&plane),
        };
        let connection = Connection {
            local,
            peer,
            sni: None,
        };
        // TLS sockets (TLSRoute) route whole connections by SNI, not HTTP requests.
        let live = plane.live();
        if live
            .snapshot
            .sockets
            .get(&local)
            .is_some_and(|s| s.scheme == Scheme::Tls)
        {
            let serving = tls_route::serve(
                Arc::clone(&plane),
                live,
                stream,
                connection,
                stop.clone(),
                guard,
            );
            tokio::spawn(serving);
            continue;
        }
        // The socket's TLS settings come from the snapshot current at accept time, so a
        // certificate change applies to the next handshake without rebinding.
        let tls = plane
            .live()
            .snapshot
            .sockets
            .get(&local)
            .and_then(|s| s.tls.clone());
        let plane = Arc::clone(&plane);
        let stop = stop.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(plane, stream, connection, stop, guard).await,
                Some(tls) => {
                    let handshake = handshake::accept_https(&tls, stream);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => {
                            let sni = stream.get_ref().1.server_name().map(Arc::<str>::from);
                            let connection = Connection { sni, ..connection };
                            serve_connection(plane, stream, connection, stop, guard).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_connection<I>(
    plane: Arc<DataPlane>,
    stream: I,
    connection: Connection,
    mut stop: watch::Receiver<bool>,
    _guard: ConnectionGuard,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer;
    let service =
        service_fn(move |request| stack::handle(Arc::clone(&plane), connection.clone(), request));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder.http2().timer(TokioTimer::new());
    let serving = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(serving);
    let result = tokio::select! {
        result = serving.as_mut() => result,
        () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
            serving.as_mut().graceful_shutdown();
            serving.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}
