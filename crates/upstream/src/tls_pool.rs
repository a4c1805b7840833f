//! Upstream TLS connections (BackendTLSPolicy): HTTP/1.1 over TLS through an [`Http1Pool`],
//! HTTP/2 over TLS through a map of multiplexed connections.
//!
//! The pools live in the backend's runtime ([`BackendTls`]), one per client certificate a
//! listener may present, not in [`Pools`]: pools key connections by endpoint address, so two
//! backends with different TLS settings on one endpoint must never share a pool. The registry keeps a runtime (and so its connections) across reloads only while its
//! [`UpstreamTls`] stays equal. This module does not decide what to verify; `tls` does.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwapOption;

use http::uri::Scheme;
use http::{Request, Response, Uri};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use crate::backend_pool::OwnPools;
use crate::h1_client::{Http1Request, UpstreamBody, UpstreamIo};
use crate::http1_pool::{Connect, Http1Pool};
use crate::pool::{
    BoxError, CountingConnector, PoolSettings, Pools, RequestBody, UpstreamError, error_chain,
};
use snapshot::backend::tls::{ClientCertificate, UpstreamTls};

/// The TLS connections of one backend, by client certificate variant.
pub(crate) struct BackendTls {
    spec: Arc<UpstreamTls>,
    /// The pools under the backend's current connection settings; replaced when they change.
    current: ArcSwapOption<TlsPools>,
    build: Mutex<()>,
}

/// The TLS pools of one set of connection settings: an HTTP/1.1 pool and an h2 map per client
/// certificate variant, over the connector of those settings.
struct TlsPools {
    /// The backend's own cleartext pools whose connector and settings these share (`None`:
    /// the shared defaults). Held so that identity comparison stays sound.
    own: Option<Arc<OwnPools>>,
    connector: CountingConnector,
    settings: PoolSettings,
    http1: Vec<OnceLock<Http1Pool<TlsConnector>>>,
    h2: Mutex<HashMap<(usize, SocketAddr), H2Connection>>,
}

/// An h2 connection's request sender and when it was opened.
type H2Connection = (http2::SendRequest<RequestBody>, Instant);

impl fmt::Debug for BackendTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendTls")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl BackendTls {
    pub(crate) fn new(spec: Arc<UpstreamTls>) -> BackendTls {
        BackendTls {
            spec,
            current: ArcSwapOption::empty(),
            build: Mutex::new(()),
        }
    }

    /// The settings these connections were made with.
    pub(crate) fn spec(&self) -> &Arc<UpstreamTls> {
        &self.spec
    }

    /// Sends one HTTP/2 request over TLS: the request is addressed as for h2c (`Pools::send`);
    /// the connection presents `client` when the backend was built for it. `own`: the
    /// backend's own cleartext pools when its connection settings differ from the defaults;
    /// their connector (connect timeout, `maxConnections`) and settings (idle timeout,
    /// `maxConnectionDuration`) apply to its TLS connections too.
    pub(crate) async fn send_h2(
        &self,
        pools: &Pools,
        own: Option<Arc<OwnPools>>,
        client: Option<&ClientCertificate>,
        endpoint: SocketAddr,
        request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let variant = self.spec.variant(client);
        let tls_pools = self.pools(pools, own);
        self.send_h2_on(&tls_pools, variant, endpoint, request)
            .await
    }

    /// Sends one request already written out for HTTP/1.1 over TLS (as [`TlsState::send_h2`]).
    pub(crate) async fn send_http1(
        &self,
        pools: &Pools,
        own: Option<Arc<OwnPools>>,
        client: Option<&ClientCertificate>,
        endpoint: SocketAddr,
        request: Http1Request,
    ) -> Result<Response<UpstreamBody>, UpstreamError> {
        let variant = self.spec.variant(client);
        let tls_pools = self.pools(pools, own);
        self.http1_pool(&tls_pools, variant)
            .send_http1(endpoint, request)
            .await
    }

    /// The connector of a forwarded byte stream (TCPRoute, a terminated TLSRoute) to this
    /// backend: TCP by the pools' connector (connect timeout, `maxConnections`), then TLS with
    /// the backend's settings and no client certificate.
    pub(crate) fn stream_connector(
        &self,
        shared: &Pools,
        own: Option<Arc<OwnPools>>,
    ) -> TlsConnector {
        let pools = self.pools(shared, own);
        self.connector(&pools, self.spec.variant(None))
    }

    /// The pools for the current settings, built (again) when they changed.
    fn pools(&self, shared: &Pools, own: Option<Arc<OwnPools>>) -> Arc<TlsPools> {
        let current_fits = |current: &TlsPools| match (&current.own, &own) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        if let Some(current) = self.current.load_full()
            && current_fits(&current)
        {
            return current;
        }
        let _building = self.build.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = self.current.load_full()
            && current_fits(&current)
        {
            return current;
        }
        let (connector, settings) = match &own {
            Some(own) => (own.connector().clone(), own.pool_settings().clone()),
            None => (shared.connector().clone(), shared.settings().clone()),
        };
        let built = Arc::new(TlsPools {
            own,
            connector,
            settings,
            http1: (0..self.spec.variant_count())
                .map(|_| OnceLock::new())
                .collect(),
            h2: Mutex::new(HashMap::new()),
        });
        self.current.store(Some(Arc::clone(&built)));
        built
    }

    fn http1_pool<'a>(&self, pools: &'a TlsPools, variant: usize) -> &'a Http1Pool<TlsConnector> {
        let slot = pools.http1.get(variant).unwrap_or(&pools.http1[0]);
        slot.get_or_init(|| {
            Http1Pool::new(self.connector(pools, variant), pools.settings.lifetimes())
        })
    }

    fn connector(&self, pools: &TlsPools, variant: usize) -> TlsConnector {
        TlsConnector {
            tcp: pools.connector.clone(),
            config: Arc::clone(self.spec.config(variant)),
            server_name: self.spec.server_name().clone(),
            handshake_timeout: pools.settings.connect_timeout,
        }
    }

    async fn send_h2_on(
        &self,
        pools: &TlsPools,
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
        let mut sender = match Self::ready_h2(pools, variant, endpoint) {
            Some(sender) => sender,
            None => Box::pin(self.connect_h2(pools, variant, endpoint)).await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| UpstreamError::after_connect(&error))?;
        Ok(response.map(UpstreamBody::h2))
    }

    /// A ready connection younger than `maxConnectionDuration`, if there is one.
    fn ready_h2(
        pools: &TlsPools,
        variant: usize,
        endpoint: SocketAddr,
    ) -> Option<http2::SendRequest<RequestBody>> {
        let max_lifetime = pools.settings.max_connection_lifetime;
        let connections = pools.h2.lock().unwrap_or_else(|p| p.into_inner());
        connections
            .get(&(variant, endpoint))
            .filter(|(sender, born)| {
                sender.is_ready() && max_lifetime.is_none_or(|max| born.elapsed() < max)
            })
            .map(|(sender, _)| sender.clone())
    }

    async fn connect_h2(
        &self,
        pools: &TlsPools,
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
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| UpstreamError::Connect(error_chain(&error)))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%endpoint, %error, "h2 upstream TLS connection ended");
            }
        });
        let mut connections = pools.h2.lock().unwrap_or_else(|p| p.into_inner());
        connections.insert((variant, endpoint), (sender.clone(), Instant::now()));
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
    fn connect(
        &self,
        endpoint: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = Result<UpstreamIo, BoxError>> + Send + 'static>> {
        let connecting = self.tcp.connect_tcp(endpoint);
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let server_name = self.server_name.clone();
        let limit = self.handshake_timeout;
        Box::pin(async move {
            let tcp = connecting.await?;
            let name = server_name.to_str().into_owned();
            let handshake = connector.connect(server_name, tcp);
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
            Ok(UpstreamIo::Tls(Box::new(stream)))
        })
    }
}
