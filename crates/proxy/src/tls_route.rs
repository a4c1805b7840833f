//! Connections on TLS sockets (Gateway listeners with `protocol: TLS`, TLSRoute), in order:
//!
//! 1. read the ClientHello without answering it (`client_hello.rs`), within
//!    [`CLIENT_HELLO_TIMEOUT`] and [`client_hello::MAX_BUFFERED`] bytes
//! 2. SNI → listener of this socket (most specific listener hostname: listener isolation)
//! 3. SNI → TLSRoute of that listener (most specific route hostname)
//! 4. weighted backendRef choice, an endpoint, admission and the connection: the L4 path
//!    shared with TCPRoute (`l4.rs`: the backend's balancer, breaker and connector, PROXY
//!    protocol header)
//! 5. `Passthrough`: connect, replay the buffered ClientHello, then copy bytes both ways, so
//!    the client's TLS session is with the backend. `Terminate`: complete the handshake with
//!    the socket's certificates (the buffered bytes are replayed into rustls), connect, then
//!    copy the decrypted bytes both ways (`l4::relay`: half-close, the listener's
//!    `timeout.tcp.idleTimeout`, drain), over TLS again to a backend a BackendTLSPolicy
//!    targets.
//!
//! A connection that cannot be routed (not TLS, no listener or route for its SNI, no usable
//! backend or endpoint, connect failure) is closed: TCP has no error response. Each outcome is
//! counted in `portcullis_tls_connections_total{route,result}` and logged at debug; a forwarded
//! one's bytes and duration in `portcullis_stream_bytes_total` and
//! `portcullis_stream_duration_seconds`.
//!
//! It does not speak HTTP. In passthrough the bytes are the client's; in termination they are
//! forwarded in clear, or over TLS to a backend a BackendTLSPolicy targets (Gateway API v1.6:
//! `TLSRoute` terminate with re-encryption).

use std::sync::Arc;
use std::time::{Duration, Instant};

use snapshot::tls::SocketTls;
use snapshot::tls_route::TlsMode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, server};
use upstream::StreamTls;

use crate::client_hello::{self, Scan};
use crate::l4::{self, L4Error};
use crate::plane::{DataPlane, Live};
use crate::prefixed::Prefixed;
use crate::stack::Connection;

#[cfg(test)]
mod tests;

/// A client that has not sent its whole ClientHello by then is dropped.
const CLIENT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that has not finished a terminated handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS connection was not forwarded.
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
    /// Client: the terminated TLS handshake failed or timed out.
    #[error("TLS handshake: {0}")]
    Handshake(String),
    /// The backend side (shared with TCPRoute): no usable backend or endpoint, overload,
    /// connect failure.
    #[error(transparent)]
    Upstream(#[from] L4Error),
}

impl TunnelError {
    /// The `result` label of `portcullis_tls_connections_total`.
    fn result(&self) -> &'static str {
        match self {
            TunnelError::ClientHello(_) | TunnelError::ClientRead(_) => "invalid_client_hello",
            TunnelError::NoRoute(_) => "no_route",
            TunnelError::Handshake(_) => "handshake_failed",
            TunnelError::Upstream(error) => error.result(),
        }
    }
}

/// Serves one connection of a TLS socket to its end, with the config `live` loaded at accept.
/// `guard` is dropped when the connection ends (the accept loop's connection count). `stop`
/// turning true closes a forwarded connection after the drain grace.
pub(crate) async fn serve<G: Send + 'static>(
    plane: Arc<DataPlane>,
    live: Arc<Live>,
    stream: TcpStream,
    connection: Connection,
    stop: watch::Receiver<bool>,
    guard: G,
) {
    let started = Instant::now();
    let mut route: Option<Arc<str>> = None;
    let result = route_and_forward(&plane, &live, stream, &connection, stop, &mut route).await;
    let route = route.as_deref().unwrap_or("");
    let peer = connection.peer;
    match result {
        Ok(relayed) => {
            let result = if relayed.idle {
                "idle_timeout"
            } else {
                "forwarded"
            };
            plane.metrics.tls_connection_finished(route, result);
            let seconds = started.elapsed().as_secs_f64();
            let metrics = &plane.metrics.l4;
            metrics.stream_finished(route, relayed.to_backend, relayed.to_client, seconds);
        }
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
) -> Result<l4::Relayed, TunnelError> {
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
    let target = l4::pick(live, forward, connection.peer.ip())?;
    let idle = connection.settings.stream_idle;
    let addresses = (connection.peer, connection.local);

    // 5. forward
    let relayed = match listener.mode {
        TlsMode::Passthrough => {
            // The client's own TLS session goes to the backend: never TLS in TLS.
            let tls = StreamTls::PassThrough;
            let mut upstream = l4::connect(plane, &target, addresses, tls).await?;
            if let Err(error) = upstream.stream.write_all(&hello).await {
                target.endpoint.record_failure();
                let error = L4Error::Connect(target.endpoint.addr(), error.to_string());
                return Err(error.into());
            }
            l4::relay(&mut stream, &mut upstream.stream, idle, stop).await
        }
        TlsMode::Terminate => {
            let mut client = terminate(socket.tls.as_ref(), hello, stream).await?;
            // Decrypted here: TLS again to a backend with a BackendTLSPolicy, else clear.
            let tls = StreamTls::Originate;
            let mut upstream = l4::connect(plane, &target, addresses, tls).await?;
            l4::relay(&mut client, &mut upstream.stream, idle, stop).await
        }
    };
    Ok(relayed)
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
