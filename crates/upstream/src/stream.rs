//! Connections for byte-stream forwarding (TCPRoute, TLSRoute): one TCP connection per client
//! connection, never pooled, made by the same connector as the backend's HTTP pools, so the
//! backend's connect timeout and `maxConnections` hold for them too, and they are counted in
//! `portcullis_upstream_connections_active` like pooled ones. A backend with TLS settings
//! (BackendTLSPolicy) is reached over TLS when the caller originates it (TCPRoute, a
//! terminated TLSRoute), never in clear; a passed-through TLS session is the client's own.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use snapshot::backend::policy::BackendPolicy;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::h1_client::UpstreamIo;
use crate::http1_pool::Connect;
use crate::pool::{ConnectionLimitError, Pools, error_chain};
use crate::registry::BackendRuntime;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub enum StreamConnectError {
    /// The backend has `maxConnections` connections open: the backend's limit, not the
    /// endpoint's fault.
    #[error("the backend's maxConnections ({0}) are open")]
    ConnectionLimit(usize),
    /// The connect failed or timed out: the endpoint's fault (outlier detection counts it).
    #[error("{0}")]
    Connect(String),
}

/// An open upstream connection (TCP with `TCP_NODELAY`, or TLS over it), counted while it
/// lives.
pub struct UpstreamStream(UpstreamIo);

/// Whether the gateway speaks TLS to the backend itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamTls {
    /// The bytes are already what the backend expects (a passed-through TLS session): plain
    /// TCP whatever the backend's TLS settings.
    PassThrough,
    /// TLS when the backend has TLS settings (BackendTLSPolicy), else plain TCP.
    Originate,
}

impl Pools {
    /// Connects to `endpoint` of `backend` with the connector of the pools that serve the
    /// backend under `policy`: its own (connect timeout, `maxConnections`) when its connection
    /// settings differ from the defaults, else the shared one; over TLS when `tls` says to
    /// originate it and the backend has TLS settings.
    pub async fn connect_stream(
        &self,
        backend: &BackendRuntime,
        policy: &BackendPolicy,
        endpoint: SocketAddr,
        tls: StreamTls,
    ) -> Result<UpstreamStream, StreamConnectError> {
        let own = backend.own_pools(policy, self);
        let connecting = match (tls, backend.tls_state()) {
            (StreamTls::Originate, Some(backend_tls)) => {
                backend_tls.stream_connector(self, own).connect(endpoint)
            }
            _ => {
                let tcp = match &own {
                    Some(own) => own.connector().connect_tcp(endpoint),
                    None => self.connector().connect_tcp(endpoint),
                };
                Box::pin(async move { Ok(UpstreamIo::Plain(tcp.await?)) })
            }
        };
        match connecting.await {
            Ok(stream) => Ok(UpstreamStream(stream)),
            Err(error) => match error.downcast::<ConnectionLimitError>() {
                Ok(limit) => Err(StreamConnectError::ConnectionLimit(limit.0)),
                Err(error) => Err(StreamConnectError::Connect(error_chain(&*error))),
            },
        }
    }
}

impl AsyncRead for UpstreamStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpstreamStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}
