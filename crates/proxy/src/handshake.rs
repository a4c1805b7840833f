//! The TLS handshake of HTTPS connections.
//!
//! The server config comes from the socket's [`SocketTls`]. When the socket's listeners
//! validate client certificates differently (GEP-91, listeners of several Gateways on one
//! port), the ClientHello is read first and its SNI picks the listener's config; otherwise the
//! one config serves every handshake. It does not route requests: `stack.rs` keeps a request on
//! the listener its connection's handshake selected.

use std::io;
use std::sync::Arc;

use rustls::server::Acceptor;
use snapshot::tls::SocketTls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

/// Completes the server side of a TLS handshake with the config for this connection.
pub(crate) async fn accept_https<S>(tls: &SocketTls, stream: S) -> io::Result<TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if !tls.selects_by_sni() {
        return TlsAcceptor::from(Arc::clone(&tls.config))
            .accept(stream)
            .await;
    }
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    let config = tls.config_for(start.client_hello().server_name());
    start.into_stream(config).await
}
