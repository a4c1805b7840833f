//! Upstream TLS connections (BackendTLSPolicy): HTTP/1.1 over TLS through an [`Http1Pool`],
//! HTTP/2 over TLS through a map of multiplexed connections.
//!
//! The pools live in the backend's runtime ([`BackendTls`]), one per client certificate a
//! listener may present, not in [`Pools`]: pools key connections by endpoint address, so two
//! backends with different TLS settings on one endpoint must never share a pool. The registry keeps a runtime (and so its connections) across reloads only while its
//! [`UpstreamTls`] stays equal. This module does not decide what to verify; `tls` does.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use http::uri::Scheme;
use http::{Request, Response, Uri};
use hyper::client::conn::http2;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio_rustls::client::TlsStream;

use crate::backend::AppProtocol;
use crate::http1_pool::{Connect, Http1Pool};
use crate::pool::{
    BoxError, CountedStream, CountingConnector, Pools, RequestBody, UpstreamError, error_chain,
};
use crate::response_body::UpstreamBody;
use crate::tls::{ClientCertificate, UpstreamTls};

/// The TLS connections of one backend, by client certificate variant.
pub(crate) struct BackendTls {
    spec: Arc<UpstreamTls>,
    /// HTTP/1.1 clients, one per variant of `spec`, created on first use.
    http1: Vec<OnceLock<Http1Pool<TlsConnector>>>,
    /// HTTP/2 connections by (variant, endpoint).
    h2: Mutex<HashMap<(usize, SocketAddr), http2::SendRequest<RequestBody>>>,
}

impl fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendTls")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl BackendTls {
    pub(crate) fn new(spec: Arc<UpstreamTls>) -> BackendTls {
        let http1 = (0..spec.variant_count()).map(|_| OnceLock::new()).collect();
        BackendTls {
            spec,
            http1,
            h2: Mutex::new(HashMap::new()),
        }
    }

    /// The settings these connections were made with.
    pub(crate) fn spec(&self) -> &Arc<UpstreamTls> {
        &self.spec
    }

    /// Sends one request over TLS: the request is addressed as for the cleartext pools
    /// (`Pools::send`); the connection presents `client` when the backend was built for it.
    pub(crate) async fn send(
        &self,
        pools: &Pools,
        client: Option<&ClientCertificate>,
        protocol: AppProtocol,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let variant = self.spec.variant(client);
        match protocol {
            AppProtocol::H2c => self.send_h2(pools, variant, endpoint, request).await,
            AppProtocol::Http1 | AppProtocol::WebSocket => {
                self.http1_pool(pools, variant)
                    .send(endpoint, request)
                    .await
            }
        }
    }

    fn http1_pool(&self, pools: &Pools, variant: usize) -> &Http1Pool<TlsConnector> {
        let slot = self.http1.get(variant).unwrap_or(&self.http1[0]);
        slot.get_or_init(|| {
            Http1Pool::new(self.connector(pools, variant), pools.settings().lifetimes())
        })
    }

    fn connector(&self, pools: &Pools, variant: usize) -> TlsConnector {
        TlsConnector {
            tcp: pools.connector().clone(),
            config: Arc::clone(self.spec.config(variant)),
            server_name: self.spec.server_name().clone(),
            handshake_timeout: pools.settings().connect_timeout,
        }
    }

    async fn send_h2(
        &self,
        pools: &Pools,
        variant: usize,
        endpoint: SocketAddr,
        mut request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        // The h2c request carries `:scheme http`; over TLS it is `https` (RFC 9113 §8.3.1).
        let mut parts = request.uri().clone().into_parts();
        parts.scheme = Some(Scheme::HTTPS);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        let mut sender = match self.ready_h2(variant, endpoint) {
            Some(sender) => sender,
            None => Box::pin(self.connect_h2(pools, variant, endpoint)).await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::after_connect(&error))?;
        Ok(response.map(UpstreamBody::unpooled))
    }

    fn ready_h2(
        &self,
        variant: usize,
        endpoint: SocketAddr,
    ) -> Option<http2::SendRequest<RequestBody>> {
        let connections = self.h2.lock().unwrap_or_else(|p| p.into_inner());
        connections
            .get(&(variant, endpoint))
            .filter(|s| s.is_ready())
            .cloned()
    }

    async fn connect_h2(
        &self,
        pools: &Pools,
        variant: usize,
        endpoint: SocketAddr,
    ) -> Result<http2::SendRequest<RequestBody>, UpstreamError> {
        let stream = self
            .connector(pools, variant)
            .connect(endpoint)
            .await
            .map_err(UpstreamError::connecting)?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(stream)
            .await
            .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "h2 upstream TLS connection ended");
            }
        });
        let mut connections = self.h2.lock().unwrap_or_else(|p| p.into_inner());
        connections.insert((variant, endpoint), sender.clone());
        Ok(sender)
    }
}

/// Connects over TCP (counted in metrics), then completes a TLS handshake with the backend's
/// config and server name. The URI only says where: its scheme is ignored.
#[derive(Clone)]
pub(crate) struct TlsConnector {
    tcp: CountingConnector,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    handshake_timeout: std::time::Duration,
}

/// Why a TLS connection could not be made: a plain message naming the endpoint and the server
/// name, so the client's 503 says which certificate check failed.
#[derive(Debug)]
struct TlsConnectError(String);

impl fmt::Display for TlsConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConnectError {}

impl Connect for TlsConnector {
    type Io = TlsIo;

    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<TlsIo, BoxError>> + Send + 'static>> {
        let connecting = self.tcp.connect(endpoint);
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let server_name = self.server_name.clone();
        let limit = self.handshake_timeout;
        Box::pin(async move {
            let tcp = connecting.await?;
            let name = server_name.to_str().into_owned();
            let handshake = connector.connect(server_name, TokioIo::new(tcp));
            let stream = match tokio::time::timeout(limit, handshake).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    return Err(Box::new(TlsConnectError(format!(
                        "TLS handshake with {endpoint} (server name {name}) failed: {error}"
                    ))) as BoxError);
                }
                Err(_) => {
                    return Err(Box::new(TlsConnectError(format!(
                        "TLS handshake with {endpoint} (server name {name}) timed out"
                    ))) as BoxError);
                }
            };
            Ok(TlsIo {
                inner: TokioIo::new(stream),
            })
        })
    }
}

/// A TLS connection to a backend, in hyper's IO traits.
pub(crate) struct TlsIo {
    inner: TokioIo<TlsStream<TokioIo<CountedStream>>>,
}

impl Read for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl Write for TlsIo {
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
