//! Upstream connection pools: one keep-alive pool for HTTP/1.1 and one for h2c, keyed by
//! endpoint address (hyper-util's pool keys connections by scheme and authority, and we always
//! address an endpoint by `ip:port`). Backends with TLS (BackendTLSPolicy) keep their own pools
//! in their runtime (`tls_pool`), so TLS settings never mix with cleartext or with each other.
//!
//! Connections are counted in metrics when they open and close.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use telemetry::{LabelValue, Metrics};
use tokio::net::TcpStream;

use crate::backend::AppProtocol;
use crate::registry::BackendRuntime;
use crate::tls::ClientCertificate;

/// Error type of request bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type the pools send upstream.
pub type RequestBody = UnsyncBoxBody<Bytes, BoxError>;

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
}

impl UpstreamError {
    /// Classifies a failed exchange after connecting.
    pub(crate) fn after_connect(error: &(dyn std::error::Error + 'static)) -> UpstreamError {
        let detail = error_chain(error);
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(current) = cause {
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
}

impl Default for PoolSettings {
    fn default() -> PoolSettings {
        PoolSettings {
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_endpoint: 1024,
        }
    }
}

/// The shared upstream connection pools.
#[derive(Clone, Debug)]
pub struct Pools {
    http1: Client<CountingConnector, RequestBody>,
    h2c: Arc<H2Pool>,
    /// TCP connections for the TLS pools of backends (`tls_pool`), built on demand.
    connector: CountingConnector,
    settings: PoolSettings,
}

impl Pools {
    /// Builds the pools.
    pub fn new(metrics: Arc<Metrics>, settings: &PoolSettings) -> Pools {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.enforce_http(true);
        let connector = CountingConnector {
            inner: http,
            metrics,
        };
        let http1 = client_builder(settings).build(connector.clone());
        let h2c = Arc::new(H2Pool {
            connector: connector.clone(),
            connections: Mutex::new(HashMap::new()),
        });
        Pools {
            http1,
            h2c,
            connector,
            settings: settings.clone(),
        }
    }

    /// Sends one request to `endpoint` of `backend`. For HTTP/1.1 the URI must be absolute
    /// with the endpoint as authority (`http://ip:port/path?query`) and the Host header carries
    /// the virtual host. For h2c the URI's authority becomes `:authority`, so it must be the
    /// virtual host; the connection is chosen by `endpoint`.
    ///
    /// A backend with TLS settings is only ever reached over TLS, through its own pools,
    /// presenting `client` (the listener's Gateway client certificate) when it has one.
    pub async fn send(
        &self,
        backend: &BackendRuntime,
        client: Option<&ClientCertificate>,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        if let Some(tls) = backend.tls_state() {
            return tls
                .send(self, client, backend.protocol(), endpoint, request)
                .await;
        }
        match backend.protocol() {
            AppProtocol::H2c => self.h2c.send(endpoint, request).await,
            AppProtocol::Http1 | AppProtocol::WebSocket => {
                self.http1.request(request).await.map_err(|error| {
                    if error.is_connect() {
                        UpstreamError::Connect(error_chain(&error))
                    } else {
                        UpstreamError::after_connect(&error)
                    }
                })
            }
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

/// The HTTP/1.1 client settings every pooled client shares.
pub(crate) fn client_builder(settings: &PoolSettings) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(settings.idle_timeout)
        .pool_max_idle_per_host(settings.max_idle_per_endpoint)
        .pool_timer(hyper_util::rt::TokioTimer::new())
        // We forward the Host header as the client sent it (Gateway API requires it unless
        // a filter rewrites it), so the client must not derive one from the endpoint URI.
        .set_host(false);
    builder
}

/// HTTP/2 cleartext connections, one multiplexed connection per endpoint.
///
/// hyper-util's pool keys connections by the URI authority, but for HTTP/2 the authority is the
/// virtual host the backend must see, so h2c keeps its own map keyed by endpoint address.
#[derive(Debug)]
struct H2Pool {
    connector: CountingConnector,
    connections: Mutex<HashMap<SocketAddr, http2::SendRequest<RequestBody>>>,
}

impl H2Pool {
    async fn send(
        &self,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let mut sender = match self.ready_connection(endpoint) {
            Some(sender) => sender,
            None => self.connect(endpoint).await?,
        };
        sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::after_connect(&error))
    }

    fn ready_connection(&self, endpoint: SocketAddr) -> Option<http2::SendRequest<RequestBody>> {
        let connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.get(&endpoint).filter(|s| s.is_ready()).cloned()
    }

    async fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        let uri: Uri = format!("http://{endpoint}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| UpstreamError::Connect(e.to_string()))?;
        let stream = tower_service::Service::call(&mut self.connector.clone(), uri)
            .await
            .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .handshake(stream)
            .await
            .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "h2c upstream connection ended");
            }
        });
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.insert(endpoint, sender.clone());
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

/// `HttpConnector` that counts connections in metrics.
#[derive(Clone, Debug)]
pub(crate) struct CountingConnector {
    inner: HttpConnector,
    metrics: Arc<Metrics>,
}

impl tower_service::Service<Uri> for CountingConnector {
    type Response = CountedStream;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<CountedStream, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let metrics = Arc::clone(&self.metrics);
        let label = LabelValue::from(uri.authority().map_or("", |a| a.as_str()));
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let stream = connecting.await?;
            metrics.upstream_connection_opened(&label);
            Ok(CountedStream {
                inner: stream,
                metrics,
                label,
            })
        })
    }
}

pin_project_lite::pin_project! {
    /// A pooled TCP stream that decrements the open-connection gauge when dropped.
    pub(crate) struct CountedStream {
        #[pin]
        inner: TokioIo<TcpStream>,
        metrics: Arc<Metrics>,
        label: LabelValue,
    }

    impl PinnedDrop for CountedStream {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            this.metrics.upstream_connection_closed(this.label);
        }
    }
}

impl Connection for CountedStream {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

impl Read for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl Write for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
}
