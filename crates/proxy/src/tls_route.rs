//! Connections on TLS sockets (Gateway listeners with `protocol: TLS`, TLSRoute), in order:
//!
//! 1. read the ClientHello without answering it (`client_hello.rs`), within
//!    [`CLIENT_HELLO_TIMEOUT`] and [`client_hello::MAX_BUFFERED`] bytes
//! 2. SNI → listener of this socket (most specific listener hostname: listener isolation)
//! 3. SNI → TLSRoute of that listener (most specific route hostname)
//! 4. weighted backendRef choice, then an endpoint (`upstream`'s balancer)
//! 5. `Passthrough`: connect, replay the buffered ClientHello, then copy bytes both ways, so
//!    the client's TLS session is with the backend. `Terminate`: complete the handshake with
//!    the socket's certificates (the buffered bytes are replayed into rustls), connect, then
//!    copy the decrypted bytes both ways.
//!
//! A connection that cannot be routed (not TLS, no listener or route for its SNI, no usable
//! backend or endpoint, connect failure) is closed: TCP has no error response. Each outcome is
//! counted in `portcullis_tls_connections_total{route,result}` and logged at debug.
//!
//! It does not speak HTTP and does not originate TLS to backends: in passthrough the bytes are
//! the client's, in termination they are forwarded in clear as the Gateway API specifies.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use snapshot::BackendTarget;
use snapshot::tls::SocketTls;
use snapshot::tls_route::{TlsForward, TlsMode};
use telemetry::LabelValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, server};
use upstream::EndpointRuntime;

use crate::client_hello::{self, Scan};
use crate::plane::{DataPlane, Live};
use crate::prefixed::Prefixed;
use crate::stack::Connection;

#[cfg(test)]
mod tests;

/// A client that has not sent its whole ClientHello by then is dropped.
const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that has not finished a terminated handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP connect timeout to an endpoint (the upstream pools' default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a forwarded connection may run on once its socket is closed (address removed
/// from the config, or shutdown). A byte stream has no in-band way to ask the peers to finish,
/// so it gets this long and is then closed. On shutdown the process's `--drain-timeout` (15 s
/// by default) ends it first when shorter.
const DRAIN_GRACE: Duration = Duration::from_secs(15);

/// Why a TLS connection was not forwarded, or how forwarding ended.
#[derive(Debug, thiserror::Error)]
enum TunnelError {
    /// Client: the first bytes are not a usable TLS ClientHello.
    #[error("not a usable TLS ClientHello: {0}")]
    ClientHello(&'static str),
    /// Client: the ClientHello did not arrive in time, or the connection failed meanwhile.
    #[error("reading the ClientHello: {0}")]
    ClientRead(String),
    /// Client/config: no listener or TLSRoute of this socket serves the SNI.
    #[error("no TLS listener or TLSRoute for SNI {0:?}")]
    NoRoute(String),
    /// Config: the route's backendRef cannot be used (or it has none).
    #[error("TLSRoute backend unusable: {0}")]
    InvalidBackend(String),
    /// Upstream: the backend has no endpoint that can take traffic.
    #[error("no endpoint can take traffic")]
    NoEndpoints,
    /// Client: the terminated TLS handshake failed or timed out.
    #[error("TLS handshake: {0}")]
    Handshake(String),
    /// Upstream: no connection could be made to the endpoint (retryable on another one; not
    /// retried: the client may already be talking).
    #[error("connect to {0}: {1}")]
    Connect(SocketAddr, String),
}

impl TunnelError {
    /// The `result` label of `portcullis_tls_connections_total`.
    fn result(&self) -> &'static str {
        match self {
            TunnelError::ClientHello(_) | TunnelError::ClientRead(_) => "invalid_client_hello",
            TunnelError::NoRoute(_) => "no_route",
            TunnelError::InvalidBackend(_) => "invalid_backend",
            TunnelError::NoEndpoints => "no_endpoints",
            TunnelError::Handshake(_) => "handshake_failed",
            TunnelError::Connect(..) => "connect_failed",
        }
    }
}

/// Serves one connection of a TLS socket to its end, with the config `live` loaded at accept.
/// `guard` is dropped when the connection ends (the accept loop's connection count). `stop`
/// turning true closes a forwarded connection after [`DRAIN_GRACE`].
pub(crate) async fn serve<G: Send + 'static>(
    plane: Arc<DataPlane>,
    live: Arc<Live>,
    stream: TcpStream,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: G,
) {
    let mut route: Option<Arc<str>> = None;
    let result = route_and_forward(&plane, &live, stream, &connection, stop, &mut route).await;
    let route = route.as_deref().unwrap_or("");
    let peer = connection.peer;
    match result {
        Ok(()) => plane.metrics.tls_connection_finished(route, "forwarded"),
        Err(error) => {
            tracing::debug!(%peer, route, %error, "TLS connection closed");
            plane.metrics.tls_connection_finished(route, error.result());
        }
    }
    drop(guard);
}

async fn route_and_forward(
    plane: &DataPlane,
    live: &Live,
    mut stream: TcpStream,
    connection: &Connection,
    stop: watch::Receiver<bool>,
    route: &mut Option<Arc<str>>,
) -> Result<(), TunnelError> {
    // 1. ClientHello
    let (hello, sni) = tokio::time::timeout(CLIENT_HELLO_TIMEOUT, read_client_hello(&mut stream))
        .await
        .map_err(|_| TunnelError::ClientRead("timed out".to_owned()))??;
    let sni_text = sni.as_deref().unwrap_or("");

    // 2.–3. listener, then route, by SNI
    let socket = live.snapshot.sockets.get(&connection.local);
    let listener = socket.and_then(|s| s.tls_listeners.most_specific(sni_text));
    let Some((socket, listener)) = socket.zip(listener) else {
        return Err(TunnelError::NoRoute(sni_text.to_owned()));
    };
    let Some(forward) = listener.routes.most_specific(sni_text) else {
        return Err(TunnelError::NoRoute(sni_text.to_owned()));
    };
    *route = Some(Arc::clone(&forward.name));

    // 4. backend and endpoint
    let (endpoint_label, endpoint) = pick_endpoint(live, forward, connection.peer.ip())?;

    // 5. forward
    match listener.mode {
        TlsMode::Passthrough => {
            let mut upstream = connect(plane, &endpoint, &endpoint_label).await?;
            let in_flight = endpoint.start_request();
            let replayed = upstream.stream.write_all(&hello).await;
            if let Err(error) = replayed {
                endpoint.record_failure();
                return Err(TunnelError::Connect(endpoint.addr(), error.to_string()));
            }
            copy_until_drained(&mut stream, &mut upstream.stream, stop).await;
            drop(in_flight);
        }
        TlsMode::Terminate => {
            let mut client = terminate(socket.tls.as_ref(), hello, stream).await?;
            let mut upstream = connect(plane, &endpoint, &endpoint_label).await?;
            let in_flight = endpoint.start_request();
            copy_until_drained(&mut client, &mut upstream.stream, stop).await;
            drop(in_flight);
        }
    }
    Ok(())
}

/// Completes the TLS handshake with the socket's certificates, rustls reading the buffered
/// ClientHello first.
async fn terminate(
    tls: Option<&SocketTls>,
    hello: Vec<u8>,
    stream: TcpStream,
) -> Result<server::TlsStream<Prefixed<TcpStream>>, TunnelError> {
    let Some(tls) = tls else {
        return Err(TunnelError::Handshake(
            "no certificate on this socket".to_owned(),
        ));
    };
    let acceptor = TlsAcceptor::from(Arc::clone(&tls.config));
    let handshake = acceptor.accept(Prefixed::new(hello, stream));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(TunnelError::Handshake(error.to_string())),
        Err(_) => Err(TunnelError::Handshake("timed out".to_owned())),
    }
}

/// Reads until the buffered bytes hold a whole ClientHello; returns them (to replay) and the
/// SNI.
async fn read_client_hello<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Vec<u8>, Option<String>), TunnelError> {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        if buffer.len() >= client_hello::MAX_BUFFERED {
            return Err(TunnelError::ClientHello("ClientHello too large"));
        }
        // Never read past the bound: `take` limits this read to what is left of it.
        let room = client_hello::MAX_BUFFERED - buffer.len();
        let read = (&mut *stream)
            .take(u64::try_from(room).unwrap_or(u64::MAX))
            .read_buf(&mut buffer)
            .await
            .map_err(|error| TunnelError::ClientRead(error.to_string()))?;
        if read == 0 {
            return Err(TunnelError::ClientRead(
                "connection closed before the ClientHello was complete".to_owned(),
            ));
        }
        match client_hello::scan(&buffer) {
            Scan::Incomplete => continue,
            Scan::Complete(sni) => return Ok((buffer, sni)),
            Scan::Invalid(why) => return Err(TunnelError::ClientHello(why)),
        }
    }
}

/// The weighted backendRef choice of the route, then an endpoint of that backend (picked for
/// `client`), with the endpoint's metrics label (its address, as the upstream pools label
/// their connections).
fn pick_endpoint(
    live: &Live,
    forward: &TlsForward,
    client: std::net::IpAddr,
) -> Result<(LabelValue, Arc<EndpointRuntime>), TunnelError> {
    let Some(choice) = forward.backends.as_ref().filter(|c| c.total_weight > 0) else {
        return Err(TunnelError::InvalidBackend(format!(
            "{} has no backendRef with a weight",
            forward.name
        )));
    };
    let ticket = rand::rng().random_range(0..choice.total_weight);
    let index = match choice.pick(ticket).map(|candidate| &candidate.target) {
        Some(BackendTarget::Backend(index)) => *index,
        Some(BackendTarget::Invalid(refused)) => {
            let why = String::from_utf8_lossy(&refused.body).into_owned();
            return Err(TunnelError::InvalidBackend(why));
        }
        None => return Err(TunnelError::InvalidBackend(forward.name.to_string())),
    };
    let backend = live.backends.get(index).ok_or(TunnelError::NoEndpoints)?;
    // A TLS stream has no headers: header and cookie hash keys fall back to the client IP.
    let headers = http::HeaderMap::new();
    let context = upstream::PickContext {
        headers: &headers,
        client,
        now: std::time::Instant::now(),
    };
    let endpoint = backend.pick(&context).ok_or(TunnelError::NoEndpoints)?;
    let label = LabelValue::from(endpoint.authority().as_str());
    Ok((label, endpoint))
}

/// An upstream TCP connection, counted in `portcullis_upstream_connections_active` while it
/// lives.
struct Upstream<'a> {
    stream: TcpStream,
    plane: &'a DataPlane,
    label: &'a LabelValue,
}

impl Drop for Upstream<'_> {
    fn drop(&mut self) {
        self.plane.metrics.upstream_connection_closed(self.label);
    }
}

async fn connect<'a>(
    plane: &'a DataPlane,
    endpoint: &EndpointRuntime,
    label: &'a LabelValue,
) -> Result<Upstream<'a>, TunnelError> {
    let addr = endpoint.addr();
    let connected = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("timed out after {CONNECT_TIMEOUT:?}")),
    };
    let stream = connected.map_err(|error| {
        endpoint.record_failure();
        TunnelError::Connect(addr, error)
    })?;
    let _ = stream.set_nodelay(true);
    plane.metrics.upstream_connection_opened(label);
    Ok(Upstream {
        stream,
        plane,
        label,
    })
}

/// Copies bytes both ways until both sides are done (a half-close is passed on), or until
/// [`DRAIN_GRACE`] after `stop` turns true. I/O errors just end the connection: a reset on
/// either side is how TCP connections end too.
async fn copy_until_drained<C, U>(client: &mut C, upstream: &mut U, mut stop: watch::Receiver<bool>)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let drained = async {
        // A dropped sender means the socket is gone too: drain as for a stop.
        let _ = stop.wait_for(|stopped| *stopped).await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    tokio::select! {
        copied = tokio::io::copy_bidirectional(client, upstream) => {
            if let Err(error) = copied {
                tracing::debug!(%error, "TLS connection ended with an error");
            }
        }
        () = drained => {
            let _ = client.shutdown().await;
            let _ = upstream.shutdown().await;
        }
    }
}
