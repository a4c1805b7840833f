//! Upstream connection pools: one keep-alive pool for HTTP/1.1 (`http1_pool`) and one map of
//! multiplexed connections for h2c, both keyed by endpoint address, over one TCP connector.
//! Backends with TLS (BackendTLSPolicy) keep their own pools in their runtime (`tls_pool`), so
//! TLS settings never mix with cleartext or with each other; backends with connection settings
//! of their own keep their own cleartext pools (`backend_pool`).
//!
//! Connections are counted in metrics when they open and close.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::Either;
use http::{Request, Response};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use telemetry::{LabelValue, Metrics};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::h1_client::{Http1Request, UpstreamBody, UpstreamIo};
use crate::http1_pool::{Connect, Http1Pool, Lifetimes};
use crate::registry::BackendRuntime;
use snapshot::backend::AppProtocol;
use snapshot::backend::policy::BackendPolicy;
use snapshot::backend::tls::ClientCertificate;
use snapshot::fast_hash::FastHashBuilder;

/// A boxed upstream exchange (the paths off the common one).
type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + 'a>>;

/// Error type of request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::request_body::RequestBody;

/// Why an upstream exchange failed. The proxy maps these to statuses in one place.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (refused, unreachable, connect timeout). Safe to retry:
    /// the request never left the gateway.
    #[error("upstream connect error: {0}")]
    Connect(String),
    /// The connection was reset or closed before a response head arrived (the request may
    /// have been sent).
    #[error("upstream connection reset before the response: {0}")]
    Reset(String),
    /// The upstream answered something that is not valid HTTP.
    #[error("upstream protocol error: {0}")]
    Protocol(String),
    /// No connection was attempted: the backend already has `maxConnections` open
    /// (BackendTrafficPolicy `circuitBreaker.maxConnections`). Overload of our own making, not
    /// a backend failure.
    #[error("{0}")]
    ConnectionLimit(ConnectionLimitError),
    /// The client's request body failed while it was being sent (malformed chunked encoding,
    /// the client went away): the client's fault, not the backend's.
    #[error("client request body failed: {0}")]
    ClientBody(String),
}

/// Wraps an error of a client's request body, so that an exchange that fails because of it is
/// told apart from a backend failure ([`UpstreamError::ClientBody`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBodyError(#[source] BoxError);

impl ClientBodyError {
    /// Boxes `error` as a client body error.
    pub fn boxed(error: impl Into<BoxError>) -> BoxError {
        Box::new(ClientBodyError(error.into()))
    }
}

impl UpstreamError {
    /// Classifies an error of a connector (TCP connect, TLS handshake, connection limit).
    pub(crate) fn connecting(error: BoxError) -> UpstreamError {
        match error.downcast::<ConnectionLimitError>() {
            Ok(limit) => UpstreamError::ConnectionLimit(*limit),
            Err(error) => UpstreamError::Connect(error_chain(&*error)),
        }
    }

    /// Classifies a failed exchange after connecting.
    pub(crate) fn after_connect(error: &(dyn std::error::Error + 'static)) -> UpstreamError {
        let detail = error_chain(error);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = cause {
            if current.is::<ClientBodyError>() {
                return UpstreamError::ClientBody(detail);
            }
            if let Some(hyper_error) = current.downcast_ref::<hyper::Error>()
                && hyper_error.is_parse()
            {
                return UpstreamError::Protocol(detail);
            }
            cause = current.source();
        }
        UpstreamError::Reset(detail)
    }
}

/// Settings of the pools.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept per endpoint.
    pub max_idle_per_endpoint: usize,
    /// A connection is not used for new requests once this old (`maxConnectionDuration`).
    pub max_connection_lifetime: Option<Duration>,
}

impl PoolSettings {
    pub(crate) fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            idle_timeout: self.idle_timeout,
            max_idle_per_endpoint: self.max_idle_per_endpoint,
            max_lifetime: self.max_connection_lifetime,
        }
    }
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_endpoint: 1024,
            max_connection_lifetime: None,
        }
    }
}

/// The shared upstream connection pools.
#[derive(Clone, Debug)]
pub struct Pools {
    plain: PlainPools,
    /// TCP connections for the TLS pools of backends (`tls_pool`), built on demand.
    connector: CountingConnector,
    settings: PoolSettings,
}

impl Pools {
    /// Builds the pools.
    pub fn new(metrics: Arc<Metrics>, settings: &PoolSettings) -> Pools {
        let connector = CountingConnector::new(metrics, settings.connect_timeout, None);
        Pools {
            plain: PlainPools::new(&connector, settings),
            connector,
            settings: settings.clone(),
        }
    }

    /// Sends one request to `endpoint` of `backend` (the connection is chosen by `endpoint`,
    /// never by the URI). For HTTP/1.1 the URI is sent in origin form and the Host header
    /// carries the virtual host. For h2c the URI's authority becomes `:authority`, so it must
    /// be the virtual host.
    ///
    /// A backend with TLS settings is only ever reached over TLS, through its own pools,
    /// presenting `client` (the listener's Gateway client certificate) when it has one.
    pub fn send<'a>(
        &'a self,
        backend: &'a BackendRuntime,
        policy: &BackendPolicy,
        client: Option<&'a ClientCertificate>,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + 'a {
        // HTTP/1.1 goes the way of a request written out already: one path for both.
        if backend.protocol() != AppProtocol::H2c {
            let request = Http1Request::from_request(request);
            return Either::Left(self.send_http1(backend, policy, client, endpoint, request));
        }
        // h2c. TLS and own pools are boxed: request futures are moved on every request, so
        // their size matters.
        if let Some(tls) = backend.tls_state() {
            let own = backend.own_pools(policy, self);
            let sending: SendFuture<'a> =
                Box::pin(tls.send_h2(self, own, client, endpoint, request));
            return Either::Right(Either::Left(sending));
        }
        match backend.own_pools(policy, self) {
            Some(own) => {
                let sending: SendFuture<'a> =
                    Box::pin(async move { own.h2c.send(endpoint, request).await });
                Either::Right(Either::Left(sending))
            }
            None => Either::Right(Either::Right(self.plain.h2c.send(endpoint, request))),
        }
    }

    /// Sends one request already written out for HTTP/1.1 ([`Http1Request`]) to `endpoint` of
    /// `backend`, which must speak HTTP/1.1 (its protocol is not h2c), as [`Pools::send`] does.
    /// Nothing of the request's header map travels with it: the common exchange carries a
    /// buffer, and its future is a third the size.
    pub fn send_http1<'a>(
        &'a self,
        backend: &'a BackendRuntime,
        policy: &BackendPolicy,
        client: Option<&'a ClientCertificate>,
        endpoint: SocketAddr,
        request: Http1Request,
    ) -> impl Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send + 'a {
        // The common case (shared cleartext pools) returns the pool's own future, with no
        // layer of ours around it; TLS and own pools are boxed.
        if let Some(tls) = backend.tls_state() {
            let own = backend.own_pools(policy, self);
            let sending: SendFuture<'a> =
                Box::pin(tls.send_http1(self, own, client, endpoint, request));
            return Either::Left(sending);
        }
        match backend.own_pools(policy, self) {
            Some(own) => {
                let sending: SendFuture<'a> =
                    Box::pin(async move { own.http1.send_http1(endpoint, request).await });
                Either::Left(sending)
            }
            None => Either::Right(self.plain.http1.send_http1(endpoint, request)),
        }
    }

    /// The TCP connector every pool shares (connect timeout, metrics).
    pub(crate) fn connector(&self) -> &CountingConnector {
        &self.connector
    }

    /// Pool settings.
    pub(crate) fn settings(&self) -> &PoolSettings {
        &self.settings
    }
}

/// Cleartext pools: an HTTP/1.1 pool and an h2c map over one connector. [`Pools`] holds the
/// shared pair; a backend whose connection settings differ from the defaults keeps its own
/// (`backend_pool`).
#[derive(Clone, Debug)]
pub(crate) struct PlainPools {
    http1: Http1Pool<CountingConnector>,
    h2c: Arc<H2Pool>,
}

impl PlainPools {
    pub(crate) fn new(connector: &CountingConnector, settings: &PoolSettings) -> PlainPools {
        PlainPools {
            http1: Http1Pool::new(connector.clone(), settings.lifetimes()),
            h2c: Arc::new(H2Pool {
                connector: connector.clone(),
                max_lifetime: settings.max_connection_lifetime,
                connections: Mutex::new(HashMap::default()),
            }),
        }
    }
}

/// HTTP/2 cleartext connections, one multiplexed connection per endpoint.
///
/// The request's URI authority is the virtual host the backend must see (`:authority`), so
/// connections are keyed by endpoint address. A connection older than `max_lifetime` gets no
/// new streams: the next request opens its successor, and it closes when its streams end.
#[derive(Debug)]
struct H2Pool {
    connector: CountingConnector,
    max_lifetime: Option<Duration>,
    connections:
        Mutex<HashMap<SocketAddr, (http2::SendRequest<RequestBody>, Instant), FastHashBuilder>>,
}

impl H2Pool {
    async fn send(
        &self,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let mut sender = match self.ready_connection(endpoint) {
            Some(sender) => sender,
            None => Box::pin(self.connect(endpoint)).await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::after_connect(&error))?;
        Ok(response.map(UpstreamBody::h2))
    }

    fn ready_connection(&self, endpoint: SocketAddr) -> Option<http2::SendRequest<RequestBody>> {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections
            .get(&endpoint)
            .filter(|(sender, born)| {
                sender.is_ready() && self.max_lifetime.is_none_or(|max| born.elapsed() < max)
            })
            .map(|(sender, _)| sender.clone())
    }

    async fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        let stream = self
            .connector
            .connect(endpoint)
            .await
            .map_err(UpstreamError::connecting)?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "h2c upstream connection ended");
            }
        });
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.insert(endpoint, (sender.clone(), Instant::now()));
        Ok(sender)
    }
}

/// The innermost cause is the useful part ("Connection refused (os error 111)").
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// Per-backend connection limits of a connector (`backend_pool`).
#[derive(Clone, Debug)]
pub(crate) struct ConnectionLimits {
    /// Open connections of the backend (shared by every stream and connector of it).
    pub(crate) open: Arc<AtomicUsize>,
    /// At most this many open connections (`None` = unlimited).
    pub(crate) max_connections: Option<usize>,
}

/// A new connection was refused because the backend has `maxConnections` open.
#[derive(Debug, thiserror::Error)]
#[error("connection limit reached: the backend has {0} open connections (maxConnections)")]
pub struct ConnectionLimitError(pub usize);

/// The TCP connector of the pools: connect timeout, `TCP_NODELAY`, connections counted in
/// metrics (and, for a backend with its own pools, its connection limits enforced).
#[derive(Clone, Debug)]
pub(crate) struct CountingConnector {
    connect_timeout: Duration,
    metrics: Arc<Metrics>,
    limits: Option<ConnectionLimits>,
}

impl CountingConnector {
    pub(crate) fn new(
        metrics: Arc<Metrics>,
        connect_timeout: Duration,
        limits: Option<ConnectionLimits>,
    ) -> CountingConnector {
        CountingConnector {
            connect_timeout,
            metrics,
            limits,
        }
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Gives back a reserved connection slot when dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP connect that did not finish within the connect timeout.
#[derive(Debug, thiserror::Error)]
#[error("connect to {endpoint} timed out after {limit:?}")]
pub struct ConnectTimeout {
    endpoint: SocketAddr,
    limit: Duration,
}

impl CountingConnector {
    /// Connects to `endpoint` over TCP (`TCP_NODELAY`), counted in metrics and against the
    /// backend's connection limit.
    pub(crate) fn connect_tcp(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<CountedStream, BoxError>> + Send + 'static>> {
        let metrics = Arc::clone(&self.metrics);
        // Reserve a slot before connecting, so concurrent connects count against the limit.
        let slot = self.limits.as_ref().map(|limits| {
            let open = limits.open.fetch_add(1, Ordering::Relaxed) + 1;
            (
                OpenSlot(Arc::clone(&limits.open)),
                open,
                limits.max_connections,
            )
        });
        if let Some((_, open, Some(max))) = &slot
            && *open > *max
        {
            let max = *max;
            return Box::pin(async move { Err(Box::new(ConnectionLimitError(max)) as BoxError) });
        }
        let slot = slot.map(|(slot, _, _)| slot);
        let limit = self.connect_timeout;
        Box::pin(async move {
            let stream = match tokio::time::timeout(limit, TcpStream::connect(endpoint)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(Box::new(error) as BoxError),
                Err(_) => return Err(Box::new(ConnectTimeout { endpoint, limit }) as BoxError),
            };
            stream.set_nodelay(true)?;
            let label = LabelValue::from(endpoint.to_string());
            metrics.upstream_connection_opened(&label);
            Ok(CountedStream {
                inner: stream,
                metrics,
                label,
                _slot: slot,
            })
        })
    }
}

impl Connect for CountingConnector {
    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<UpstreamIo, BoxError>> + Send + 'static>> {
        let connecting = self.connect_tcp(endpoint);
        Box::pin(async move { Ok(UpstreamIo::Plain(connecting.await?)) })
    }
}

/// A pooled TCP stream that decrements the open-connection gauge when dropped.
pub(crate) struct CountedStream {
    inner: TcpStream,
    metrics: Arc<Metrics>,
    label: LabelValue,
    _slot: Option<OpenSlot>,
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.metrics.upstream_connection_closed(&self.label);
    }
}

impl CountedStream {
    /// Whether the runtime saw the socket become readable (`Pending`: nothing to read).
    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
