//! Aborting a served connection with a TCP RST, as echo-basic's retry simulator does.
//!
//! hyper owns the socket while it serves a connection, so a handler cannot close it directly. Instead the
//! handler raises a [`ConnectionReset`]; the connection task stops serving, which drops the
//! [`ResettableStream`], and that sets `SO_LINGER` to zero just before the socket closes, so the kernel sends
//! RST instead of FIN.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// A request, raised by a handler, to abort its connection with RST.
#[derive(Debug, Default)]
pub(crate) struct ConnectionReset {
    /// Read by [`ResettableStream`] when it is dropped.
    is_requested: AtomicBool,
    /// Wakes the connection task.
    wake: Notify,
}

impl ConnectionReset {
    /// Marks the connection for an abortive close and wakes the task serving it.
    pub(crate) fn request(&self) {
        self.is_requested.store(true, Ordering::SeqCst);
        // `notify_one` keeps a permit when the connection task is not waiting yet, so the wake-up is never lost.
        self.wake.notify_one();
    }

    /// Completes once [`ConnectionReset::request`] has been called.
    pub(crate) async fn requested(&self) {
        self.wake.notified().await;
    }
}

/// The accepted socket, which closes with RST instead of FIN when its [`ConnectionReset`] was requested.
pub(crate) struct ResettableStream {
    /// The accepted connection.
    inner: TcpStream,
    /// Shared with the handlers of this connection.
    reset: Arc<ConnectionReset>,
}

impl ResettableStream {
    /// Wraps an accepted socket.
    pub(crate) fn new(inner: TcpStream, reset: Arc<ConnectionReset>) -> Self {
        Self { inner, reset }
    }
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.is_requested.load(Ordering::SeqCst) {
            // A zero linger makes close() discard unsent data and send RST; it never blocks.
            let _ignored = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
