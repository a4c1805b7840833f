//! Listening sockets: bound and unbound as snapshots change, connections served over HTTP/1.1
//! (our server for the common request, then hyper's) or HTTP/2 (our server, `h2_server`),
//! HTTP/1.1 and h2c on one port (a peek at the first bytes, or ALPN, picks the server;
//! hyper-util's auto server when neither tells), graceful drain on removal and on shutdown.
//!
//! A config change never closes a connection: sockets whose address stays keep accepting, and
//! their connections pick up the new snapshot on their next request. Only when an address
//! disappears from the config is its socket closed; its connections finish the requests in
//! flight (HTTP/1.1 closes after the current response, HTTP/2 sends GOAWAY) and close.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use snapshot::Scheme;
use snapshot::client::ClientSettings;
use snapshot::tls::SocketTls;
use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::body::{ClientStream, RequestStream};
use crate::guard::{CloseReason, ConnectionState, GuardLimits, GuardedIo, H2_PREFACE};
use crate::h1_server::{self, Served};
use crate::h2_server;
use crate::handshake;
use crate::idle::{HIBERNATE_AFTER, IdleSet, Parked};
use crate::plane::DataPlane;
use crate::prefixed::Prefixed;
use crate::proxy_protocol;
use crate::stack::{self, Connection};
use crate::udp::UdpListener;
use crate::{tcp_route, tls_route};

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

/// Counts open connections so shutdown can wait for them, and caps them process-wide.
struct ConnectionTracker {
    open: AtomicUsize,
    closed: Notify,
    /// Connections the process keeps open at most (see [`ListenerManager::with_connection_limit`]).
    limit: usize,
}

impl Default for ConnectionTracker {
    fn default() -> ConnectionTracker {
        ConnectionTracker {
            open: AtomicUsize::new(0),
            closed: Notify::new(),
            limit: usize::MAX,
        }
    }
}

/// Keeps an accepted connection counted, wherever it is (in its task or parked in the
/// [`IdleSet`]), until it closes.
pub(crate) struct ConnectionGuard {
    tracker: Arc<ConnectionTracker>,
    /// The socket's own count (ClientTrafficPolicy `connection.maxConnections`).
    socket_open: Arc<AtomicUsize>,
    pub(crate) plane: Arc<DataPlane>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.plane.metrics.downstream_connection_closed();
        self.socket_open.fetch_sub(1, Ordering::AcqRel);
        if self.tracker.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracker.closed.notify_waiters();
        }
    }
}

/// Owns the listening sockets.
pub struct ListenerManager {
    plane: Arc<DataPlane>,
    listeners: HashMap<SocketAddr, ListenerHandle>,
    /// UDP sockets (UDPRoute), apart: one may share a TCP socket's address.
    udp: HashMap<SocketAddr, UdpListener>,
    tracker: Arc<ConnectionTracker>,
    /// Where idle HTTP/1.1 connections hibernate (started with the first socket, inside the
    /// runtime; `None` before, or when the system refused an `epoll` instance: connections then
    /// wait in their tasks).
    idle: Option<Arc<IdleSet>>,
}

impl ListenerManager {
    /// A manager with no sockets yet.
    pub fn new(plane: Arc<DataPlane>) -> ListenerManager {
        ListenerManager {
            plane,
            listeners: HashMap::new(),
            udp: HashMap::new(),
            tracker: Arc::default(),
            idle: None,
        }
    }

    /// Caps the client connections of all sockets together at `limit`: beyond it new
    /// connections are closed as soon as they are accepted. Keep it below the process's file
    /// descriptor limit, so that upstream connections and the admin server still get
    /// descriptors when clients take every connection they may. Call before the first `sync`.
    pub fn with_connection_limit(mut self, limit: usize) -> ListenerManager {
        self.tracker = Arc::new(ConnectionTracker {
            limit,
            ..ConnectionTracker::default()
        });
        self
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
                // The signal first: a connection parking meanwhile sees it (`IdleSet::park`).
                let _ = handle.stop.send(true);
                if let Some(idle) = &self.idle {
                    idle.close_listener(addr);
                }
                tracing::info!(%addr, "listener closed");
            }
        }
        if self.idle.is_none() && !wanted.is_empty() {
            match IdleSet::start(resume) {
                Ok(idle) => self.idle = Some(idle),
                Err(error) => {
                    tracing::warn!(%error, "idle connections cannot hibernate: no epoll instance");
                }
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
                        self.idle.clone(),
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

    /// Makes the bound UDP sockets equal `wanted`: binds new addresses, closes removed ones
    /// (and their flows). Addresses that fail to bind are returned and retried on the next
    /// call. Must run inside a tokio runtime.
    pub fn sync_udp(&mut self, wanted: &[SocketAddr]) -> Vec<BindError> {
        let removed: Vec<SocketAddr> = self
            .udp
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in removed {
            if let Some(listener) = self.udp.remove(&addr) {
                listener.close();
                tracing::info!(%addr, "UDP listener closed");
            }
        }
        let mut errors = Vec::new();
        for &addr in wanted {
            if self.udp.contains_key(&addr) {
                continue;
            }
            match UdpListener::bind(addr, Arc::clone(&self.plane)) {
                Ok(listener) => {
                    self.udp.insert(addr, listener);
                    tracing::info!(%addr, "listening (UDP)");
                }
                Err(error) => errors.push(BindError {
                    addr,
                    error: io::Error::new(error.kind(), format!("UDP: {error}")),
                }),
            }
        }
        errors
    }

    /// The addresses currently bound (TCP).
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.listeners.keys().copied().collect()
    }

    /// The UDP addresses currently bound.
    pub fn bound_udp(&self) -> Vec<SocketAddr> {
        self.udp.keys().copied().collect()
    }

    /// Stops accepting everywhere, asks every connection to finish its in-flight requests and
    /// close, and waits for them up to `drain`. Returns how many connections were still open
    /// when the time ran out.
    pub async fn shutdown(mut self, drain: Duration) -> usize {
        for (_, handle) in self.listeners.drain() {
            handle.accept.abort();
            let _ = handle.stop.send(true);
        }
        // A datagram has no in-flight state to drain: UDP sockets close at once.
        for (_, listener) in self.udp.drain() {
            listener.close();
        }
        if let Some(idle) = &self.idle {
            idle.close();
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
    idle: Option<Arc<IdleSet>>,
    stop: watch::Receiver<bool>,
) {
    let socket_open = Arc::new(AtomicUsize::new(0));
    let mut errors = AcceptErrors::new(local);
    // One descriptor held in reserve: at the descriptor limit it is let go to accept and close
    // the waiting connection, instead of leaving it in the backlog for ever.
    let mut spare = reserve_descriptor();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                errors.record(&error);
                if is_descriptor_exhaustion(&error) {
                    shed_one(&listener, &mut spare, &plane).await;
                } else {
                    // Back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        let live = plane.live();
        let Some(socket) = live.snapshot.sockets.get(&local) else {
            continue;
        };
        if let Some(reason) = over_limit(&tracker, &socket_open, socket.client.max_connections) {
            plane.metrics.downstream_connection_refused(reason);
            errors.refused(reason);
            continue;
        }
        let _ = stream.set_nodelay(true);
        tracker.open.fetch_add(1, Ordering::AcqRel);
        socket_open.fetch_add(1, Ordering::AcqRel);
        plane.metrics.downstream_connection_opened();
        let guard = ConnectionGuard {
            tracker: Arc::clone(&tracker),
            socket_open: Arc::clone(&socket_open),
            plane: Arc::clone(&plane),
        };
        let connection = Connection {
            local,
            peer,
            sni: None,
            settings: Arc::clone(&socket.client),
            state: ConnectionState::new(),
        };
        // TLS sockets (TLSRoute) route whole connections by SNI, TCP sockets (TCPRoute) by
        // their listener alone: bytes, not HTTP requests.
        if matches!(socket.scheme, Scheme::Tls | Scheme::Tcp) {
            let (plane, live, stop) = (Arc::clone(&plane), Arc::clone(&live), stop.clone());
            if socket.scheme == Scheme::Tls {
                tokio::spawn(tls_route::serve(
                    plane, live, stream, connection, stop, guard,
                ));
            } else {
                tokio::spawn(tcp_route::serve(
                    plane, live, stream, connection, stop, guard,
                ));
            }
            continue;
        }
        // The socket's TLS settings come from the snapshot current at accept time, so a
        // certificate change applies to the next handshake without rebinding.
        let tls = socket.tls.clone();
        let proxy_protocol = socket.client.proxy_protocol;
        let plane = Arc::clone(&plane);
        let mut stop = stop.clone();
        let idle = idle.clone();
        tokio::spawn(async move {
            if !proxy_protocol {
                let wait = connection.settings.timeouts.request_header;
                let version = match tls {
                    None => sniff(&stream, wait, &mut stop).await,
                    Some(_) => None,
                };
                if let (None, Some(HttpVersion::Http1), Some(idle)) = (&tls, version, idle) {
                    let connection = Arc::new(connection);
                    return serve_plain_http1(plane, stream, connection, stop, guard, idle).await;
                }
                return serve_http(plane, stream, tls, version, connection, stop, guard).await;
            }
            let mut stream = stream;
            let limit = connection.settings.timeouts.request_header;
            match proxy_protocol::read_header(&mut stream, limit).await {
                Ok((client, rest)) => {
                    let peer = client.unwrap_or(connection.peer);
                    let connection = Connection { peer, ..connection };
                    let stream = Prefixed::new(rest, stream);
                    serve_http(plane, stream, tls, None, connection, stop, guard).await;
                }
                Err(error) => tracing::debug!(%peer, %error, "PROXY protocol header refused"),
            }
        });
    }
}

/// Serves one accepted HTTP connection: the TLS handshake on HTTPS sockets, then HTTP.
/// `version`: the plaintext connection's HTTP version when [`sniff`] found it.
async fn serve_http<S>(
    plane: Arc<DataPlane>,
    stream: S,
    tls: Option<SocketTls>,
    version: Option<HttpVersion>,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: ConnectionGuard,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    match tls {
        None => serve_connection(plane, stream, version, false, connection, stop, guard).await,
        // Boxed: the handshake and the TLS stream are large, and a plaintext connection's task
        // would otherwise be sized for them too.
        Some(tls) => Box::pin(serve_https(plane, stream, tls, connection, stop, guard)).await,
    }
}

/// The TLS handshake, then HTTP in the version ALPN chose (hyper-util decides without ALPN).
async fn serve_https<S>(
    plane: Arc<DataPlane>,
    stream: S,
    tls: SocketTls,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: ConnectionGuard,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer;
    let handshake = handshake::accept_https(&tls, stream);
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(stream)) => {
            let session = stream.get_ref().1;
            let sni = session.server_name().map(Arc::<str>::from);
            let version = match session.alpn_protocol() {
                Some(b"h2") => Some(HttpVersion::Http2),
                Some(b"http/1.1") => Some(HttpVersion::Http1),
                _ => None,
            };
            let http2 = version == Some(HttpVersion::Http2);
            let connection = Connection { sni, ..connection };
            serve_connection(plane, stream, version, http2, connection, stop, guard).await;
        }
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// The HTTP version of a connection, known before hyper reads from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpVersion {
    Http1,
    Http2,
}

/// The HTTP version a plaintext connection speaks, from a peek at its first bytes (nothing is
/// consumed): HTTP/2 when they are the connection preface (RFC 9113 §3.4), HTTP/1.1 when they
/// are not, `None` when they are only the start of the preface (hyper-util then reads on).
///
/// Deciding here rather than in hyper-util's auto server saves memory on every connection:
/// auto reads up to 24 bytes first and hands them to hyper alone, so hyper's second read of
/// the same head doubled its read buffer to 16 KiB, kept for the connection's life. A client
/// that sends nothing within `wait` (the header timeout), or closes, goes to HTTP/1.1, where
/// the connection guard closes it at once (its deadline has passed) or hyper sees the end; so
/// does one still silent when `stop` turns true (hyper then closes it, as it has no request).
async fn sniff(
    stream: &TcpStream,
    wait: Duration,
    stop: &mut watch::Receiver<bool>,
) -> Option<HttpVersion> {
    let mut head = [0u8; H2_PREFACE.len()];
    let peeked = tokio::select! {
        peeked = tokio::time::timeout(wait, stream.peek(&mut head)) => peeked,
        _ = stop.wait_for(|stopped| *stopped) => return Some(HttpVersion::Http1),
    };
    match peeked {
        Ok(Ok(n)) if n > 0 => {
            if head[..n] != H2_PREFACE[..n] {
                Some(HttpVersion::Http1)
            } else if n == H2_PREFACE.len() {
                Some(HttpVersion::Http2)
            } else {
                None
            }
        }
        _ => Some(HttpVersion::Http1),
    }
}

/// Whether a new connection would exceed the process-wide or the socket's limit (the reason
/// label of `portcullis_downstream_connections_refused_total`).
fn over_limit(
    tracker: &ConnectionTracker,
    socket_open: &AtomicUsize,
    socket_limit: Option<usize>,
) -> Option<&'static str> {
    let open = tracker.open.load(Ordering::Acquire);
    if open >= tracker.limit {
        return Some("global_limit");
    }
    if open >= descriptor_budget() {
        return Some("fd_limit");
    }
    if socket_limit.is_some_and(|limit| socket_open.load(Ordering::Acquire) >= limit) {
        return Some("listener_limit");
    }
    None
}

/// Client connections the descriptor limit leaves room for: half of the soft RLIMIT_NOFILE
/// after a reserve (a quarter of the limit, at most 256) for the admin server, config files,
/// DNS and listening sockets, because each client connection may need an upstream one. Read at
/// every accept (one `getrlimit`), so that a limit lowered at run time (`prlimit`) is obeyed
/// before the process runs out of descriptors.
fn descriptor_budget() -> usize {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return usize::MAX;
    };
    let reserve = (soft / 4).min(256);
    usize::try_from(soft.saturating_sub(reserve) / 2).unwrap_or(usize::MAX)
}

/// EMFILE / ENFILE: the process or the system has no descriptor left.
fn is_descriptor_exhaustion(error: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(error.raw_os_error(), Some(ENFILE | EMFILE))
}

fn reserve_descriptor() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// At the descriptor limit: frees the reserved descriptor, accepts one waiting connection and
/// closes it at once (the client sees its connection closed rather than hanging in the
/// backlog), then takes the reserve back.
async fn shed_one(listener: &TcpListener, spare: &mut Option<std::fs::File>, plane: &DataPlane) {
    drop(spare.take());
    if let Ok(Ok((stream, _))) =
        tokio::time::timeout(Duration::from_millis(5), listener.accept()).await
    {
        drop(stream);
        plane.metrics.downstream_connection_refused("fd_limit");
    }
    *spare = reserve_descriptor();
    if spare.is_none() {
        // Not even one descriptor came back: let connections close before trying again.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accept errors and refusals, logged at most once a second per listener with a count.
struct AcceptErrors {
    local: SocketAddr,
    /// No line before this instant; events until then are counted.
    next_line: tokio::time::Instant,
    errors: u64,
    refused: u64,
    last_error: Option<String>,
    last_refusal: &'static str,
}

impl AcceptErrors {
    fn new(local: SocketAddr) -> AcceptErrors {
        AcceptErrors {
            local,
            next_line: tokio::time::Instant::now(),
            errors: 0,
            refused: 0,
            last_error: None,
            last_refusal: "",
        }
    }

    fn record(&mut self, error: &io::Error) {
        self.errors += 1;
        self.last_error = Some(error.to_string());
        self.flush();
    }

    fn refused(&mut self, reason: &'static str) {
        self.refused += 1;
        self.last_refusal = reason;
        self.flush();
    }

    /// Writes one line with the counts if the last line is a second old.
    fn flush(&mut self) {
        let now = tokio::time::Instant::now();
        if now < self.next_line {
            return;
        }
        let local = self.local;
        if self.errors > 0 {
            let error = self.last_error.take().unwrap_or_default();
            tracing::warn!(%local, count = self.errors, %error, "accept failed");
        }
        if self.refused > 0 {
            tracing::warn!(
                %local,
                count = self.refused,
                reason = self.last_refusal,
                "connections refused at a connection limit"
            );
        }
        self.errors = 0;
        self.refused = 0;
        self.next_line = now + Duration::from_secs(1);
    }
}

/// A client that has not finished its TLS handshake by then is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// hyper's minimum read buffer.
const MIN_BUFFER: usize = 8192;

/// Applies a socket's [`ClientSettings`] to hyper's HTTP/1.1 builder (hyper's own, or the
/// auto server's, which has the same methods). The header timeout is the connection guard's
/// (`guard.rs`), which also answers 408; hyper's own is off.
macro_rules! http1_settings {
    ($builder:expr, $settings:expr) => {{
        let headers = &$settings.headers;
        $builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            // hyper answers 431 when a head does not fit its read buffer: the buffer's bound
            // is the head limit.
            .max_buf_size(MIN_BUFFER.max(headers.max_request_headers_bytes))
            .max_headers(headers.max_headers_count);
    }};
}

/// Applies a socket's [`ClientSettings`] to the auto server's HTTP/2 builder, for the
/// connections hyper serves (those whose version only reading them told); the others have our
/// server (`h2_server`), with the same settings.
macro_rules! http2_settings {
    ($builder:expr, $settings:expr) => {{
        let settings: &ClientSettings = &$settings;
        let h2 = &settings.http2;
        $builder
            .timer(TokioTimer::new())
            .max_header_list_size(h2_server::max_header_list_size(settings))
            .max_concurrent_streams(h2.max_concurrent_streams)
            .initial_stream_window_size(h2.initial_stream_window_size)
            .initial_connection_window_size(h2.initial_connection_window_size)
            .max_send_buf_size(h2_server::max_send_buffer_size(settings))
            // WebSocket over HTTP/2 (RFC 8441).
            .enable_connect_protocol();
    }};
}

/// Serves HTTP on an accepted (and TLS-terminated) connection until it ends or `stop` asks it
/// to drain. `version` picks hyper's HTTP/1.1 or HTTP/2 server; unknown, hyper-util's auto
/// server reads the first bytes. `alpn_h2`: ALPN chose HTTP/2.
async fn serve_connection<I>(
    plane: Arc<DataPlane>,
    stream: I,
    version: Option<HttpVersion>,
    alpn_h2: bool,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: ConnectionGuard,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = connection.peer;
    let settings = Arc::clone(&connection.settings);
    let io = guarded(stream, &plane, &connection, alpn_h2);
    if version == Some(HttpVersion::Http2) {
        // A task of its own, sized for HTTP/2 alone: this one (sized for the TLS handshake and
        // HTTP/1.1's states too, about 6 KB) ends here. An idle HTTP/2 connection, which
        // browsers keep by the thousand, then costs the HTTP/2 server's state and not this
        // task's too.
        tokio::spawn(serve_http2(io, plane, Arc::new(connection), stop, guard));
        return;
    }
    let _guard = guard;
    // One allocation per connection; each request takes a reference, not a copy of its fields.
    let connection = Arc::new(connection);
    // HTTP/2 and the auto server are boxed: the HTTP/1.1 connection's task, the common one,
    // is then sized for HTTP/1.1 alone.
    let result = match version {
        // Our server takes the common requests; hyper the rest of the connection from the
        // first other one (`h1_server`). Boxed: the common connection never goes there.
        Some(HttpVersion::Http1) => {
            let mut stop = stop;
            match h1_server::serve(io, &plane, &connection, &mut stop).await {
                Served::Done(result) => result.map_err(Into::into),
                Served::HandOver { io, buffered } => {
                    Box::pin(serve_handed_over(&plane, &connection, io, buffered, stop)).await
                }
                // Only plain TCP connections hibernate (`serve_plain_http1`).
                Served::Idle(_) => Ok(()),
            }
        }
        None | Some(HttpVersion::Http2) => {
            let mut builder = auto::Builder::new(TokioExecutor::new());
            http1_settings!(builder.http1(), settings);
            http2_settings!(builder.http2(), settings);
            let service = hyper_service(&plane, &connection);
            let serving = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            let shutdown = auto::UpgradeableConnection::graceful_shutdown;
            Box::pin(until_stopped(serving, shutdown, stop)).await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Our HTTP/2 server (`h2_server`) on a connection, every stream of it in this task.
async fn serve_http2<I>(
    io: GuardedIo<I>,
    plane: Arc<DataPlane>,
    connection: Arc<Connection>,
    stop: watch::Receiver<bool>,
    _guard: ConnectionGuard,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if let Err(error) = h2_server::serve(io, &plane, &connection, stop).await {
        tracing::debug!(peer = %connection.peer, %error, "connection ended with an error");
    }
}

/// The guard around a client connection's IO (`guard.rs`), counting its closes by reason.
fn guarded<I>(
    stream: I,
    plane: &Arc<DataPlane>,
    connection: &Connection,
    alpn_h2: bool,
) -> GuardedIo<I> {
    let closer = Arc::clone(plane);
    GuardedIo::new(
        stream,
        Arc::clone(&connection.state),
        GuardLimits::of(&connection.settings),
        alpn_h2,
        Box::new(move |reason: CloseReason| {
            closer
                .metrics
                .downstream_connection_closed_by_gateway(reason.as_str());
        }),
    )
}

/// A plaintext HTTP/1.1 connection: our server, hibernating while idle (`idle.rs`), hyper from
/// the first request our server does not take. Also where a parked connection resumes.
async fn serve_plain_http1(
    plane: Arc<DataPlane>,
    stream: TcpStream,
    connection: Arc<Connection>,
    mut stop: watch::Receiver<bool>,
    guard: ConnectionGuard,
    idle: Arc<IdleSet>,
) {
    let peer = connection.peer;
    let io = guarded(stream, &plane, &connection, false).hibernate_after(HIBERNATE_AFTER);
    let result = match h1_server::serve(io, &plane, &connection, &mut stop).await {
        Served::Done(result) => result.map_err(Into::into),
        Served::HandOver { io, buffered } => {
            Box::pin(serve_handed_over(&plane, &connection, io, buffered, stop)).await
        }
        Served::Idle(io) => {
            let idle_since = connection.state.idle_since();
            let parked = io
                .into_inner()
                .into_std()
                .map(|stream| Parked::of(stream, &connection, stop, guard));
            drop(connection);
            match parked.map(|parked| idle.park(parked, idle_since)) {
                Ok(Ok(())) => {}
                // The socket could not be watched: the idle connection is closed, as a client
                // of keep-alive expects it may be at any time.
                Ok(Err(_)) | Err(_) => {
                    tracing::debug!(%peer, "an idle connection could not hibernate; closed");
                }
            }
            return;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Serves a parked connection again (its client sent something): the [`IdleSet`]'s `resume`.
fn resume(parked: Parked, idle: Arc<IdleSet>) {
    let connection = Arc::new(parked.connection());
    let Parked {
        stream,
        stop,
        guard,
        ..
    } = parked;
    match TcpStream::from_std(stream) {
        Ok(stream) => {
            let plane = Arc::clone(&guard.plane);
            tokio::spawn(serve_plain_http1(
                plane, stream, connection, stop, guard, idle,
            ));
        }
        Err(error) => {
            tracing::debug!(peer = %connection.peer, %error, "a parked connection could not resume");
        }
    }
}

/// hyper's HTTP/1.1 server for the rest of a connection, from the first request our server
/// did not take (`buffered`: the bytes it had read).
async fn serve_handed_over<I>(
    plane: &Arc<DataPlane>,
    connection: &Arc<Connection>,
    io: GuardedIo<I>,
    buffered: Vec<u8>,
    stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_service(plane, connection);
    let io = TokioIo::new(Prefixed::new(buffered, io));
    let mut builder = http1::Builder::new();
    http1_settings!(builder, connection.settings);
    let serving = builder.serve_connection(io, service).with_upgrades();
    let shutdown = http1::UpgradeableConnection::graceful_shutdown;
    until_stopped(serving, shutdown, stop).await
}

/// The request stack as hyper's service, for its HTTP/1.1 and auto servers (each request's
/// future awaited in the connection's task).
fn hyper_service(
    plane: &Arc<DataPlane>,
    connection: &Arc<Connection>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<crate::ResponseBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<crate::ResponseBody>, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone {
    let plane = Arc::clone(plane);
    let connection = Arc::clone(connection);
    service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let request = request.map(|body| RequestStream::Streaming(ClientStream::Hyper(body)));
        stack::handle(Arc::clone(&plane), Arc::clone(&connection), request)
    })
}

/// Drives `serving` to its end; once `stop` turns true, asks it to finish the requests in
/// flight and close (`shutdown`: its `graceful_shutdown`), and waits for that.
fn until_stopped<C, E>(
    serving: C,
    shutdown: fn(Pin<&mut C>),
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
where
    C: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    UntilStopped {
        serving,
        stopped,
        shutdown,
        draining: false,
    }
}

pin_project_lite::pin_project! {
    /// [`until_stopped`]'s future. A struct rather than an `async` block with `select!`,
    /// which held the connection twice (once as the argument, once pinned): every connection's
    /// task is about 1 KiB smaller.
    struct UntilStopped<C, W> {
        #[pin]
        serving: C,
        #[pin]
        stopped: W,
        shutdown: fn(Pin<&mut C>),
        draining: bool,
    }
}

impl<C, W, E> Future for UntilStopped<C, W>
where
    C: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
    W: Future<Output = ()>,
{
    type Output = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.draining && this.stopped.poll(cx).is_ready() {
            *this.draining = true;
            (this.shutdown)(this.serving.as_mut());
        }
        this.serving.poll(cx).map_err(Into::into)
    }
}
