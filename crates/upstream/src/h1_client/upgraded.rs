//! [`UpstreamUpgraded`]: a backend connection after `101 Switching Protocols`, as a byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Buf;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Connection;

/// The backend's side of an upgraded connection (WebSocket). Reads first return what the
/// backend sent right after its `101` (already in the read buffer), then the socket's bytes.
pub struct UpstreamUpgraded {
    connection: Box<Connection>,
}

impl UpstreamUpgraded {
    pub(super) fn new(connection: Box<Connection>) -> UpstreamUpgraded {
        UpstreamUpgraded { connection }
    }
}

impl std::fmt::Debug for UpstreamUpgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamUpgraded")
            .field("buffered", &self.connection.read.len())
            .finish_non_exhaustive()
    }
}

impl AsyncRead for UpstreamUpgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let connection = &mut *self.get_mut().connection;
        if connection.read.is_empty() {
            return Pin::new(&mut connection.io).poll_read(cx, buf);
        }
        let n = buf.remaining().min(connection.read.len());
        buf.put_slice(&connection.read[..n]);
        connection.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for UpstreamUpgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().connection.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().connection.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().connection.io).poll_shutdown(cx)
    }
}
