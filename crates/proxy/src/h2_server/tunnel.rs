//! Extended CONNECT (RFC 8441): a stream whose DATA frames carry a WebSocket's bytes once the
//! gateway answered 2xx. The request future gets a [`ClientTunnel`] (in the request's
//! extensions, where hyper's server puts its `OnUpgrade`), which yields the stream as
//! [`AsyncRead`] + [`AsyncWrite`] once the response went out.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::frame::ErrorCode;
use super::shared::StreamShared;

/// The client's side of a tunnel, in the request's extensions until the request future takes
/// it (`upgrade::ClientUpgrade`). Extensions must be `Clone`: clones share the one receiver,
/// as hyper's `OnUpgrade` does, and the first to wait takes it.
#[derive(Clone)]
pub(crate) struct ClientTunnel(Arc<Mutex<Option<oneshot::Receiver<H2Tunnel>>>>);

impl ClientTunnel {
    /// The tunnel, once the stream's 2xx went out; an error when the answer was another, the
    /// stream ended first, or a clone took it.
    pub(crate) async fn opened(self) -> io::Result<H2Tunnel> {
        let waiting = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let not_opened =
            || io::Error::new(io::ErrorKind::NotConnected, "the tunnel was not opened");
        waiting
            .ok_or_else(not_opened)?
            .await
            .map_err(|_| not_opened())
    }
}

/// The server's side: kept by the connection until the response opens the tunnel.
pub(super) struct PendingTunnel {
    opened: oneshot::Sender<H2Tunnel>,
}

impl PendingTunnel {
    /// A pending tunnel, and the client's side to put in the request's extensions.
    pub(super) fn new() -> (PendingTunnel, ClientTunnel) {
        let (opened, waiting) = oneshot::channel();
        let client = ClientTunnel(Arc::new(Mutex::new(Some(waiting))));
        (PendingTunnel { opened }, client)
    }

    /// The 2xx went out: the stream's bytes are the tunnel's. `false`: nobody waits for it
    /// (the request future is gone).
    pub(super) fn open(self, shared: Arc<StreamShared>, max_buffered: usize) -> bool {
        let tunnel = H2Tunnel {
            shared,
            read: Bytes::new(),
            max_buffered,
        };
        self.opened.send(tunnel).is_ok()
    }
}

/// An open tunnel: reads are the client's DATA frames (their window given back as they are
/// read), writes become DATA frames within the stream's flow control (at most `max_buffered`
/// bytes wait for window), shutdown ends the stream.
pub(crate) struct H2Tunnel {
    shared: Arc<StreamShared>,
    /// The rest of the last DATA frame read.
    read: Bytes,
    max_buffered: usize,
}

impl AsyncRead for H2Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            let mut state = this.shared.lock();
            match state.received.pop_front() {
                Some(data) => this.read = data,
                None => {
                    if let Some(code) = state.failed {
                        return Poll::Ready(match code {
                            ErrorCode::NO_ERROR | ErrorCode::CANCEL => Ok(()),
                            code => Err(io::Error::new(
                                io::ErrorKind::ConnectionReset,
                                format!("the client reset the tunnel's stream ({code})"),
                            )),
                        });
                    }
                    // The client ended its side.
                    if state.received_end {
                        return Poll::Ready(Ok(()));
                    }
                    state.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read[..n]);
        this.read.advance(n);
        let mut state = this.shared.lock();
        state.released += n;
        state.stream.wake_by_ref();
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for H2Tunnel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = this.shared.lock();
        if state.failed.is_some() || state.outgoing_end {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        // At most what fits under the limit now; the rest is the writer's to offer again.
        let room = this.max_buffered.saturating_sub(state.outgoing_len);
        if room == 0 {
            state.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        state.outgoing.push_back(Bytes::copy_from_slice(&buf[..n]));
        state.outgoing_len += n;
        state.stream.wake_by_ref();
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection writes what the stream holds as soon as the windows allow.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if !state.outgoing_end {
            state.outgoing_end = true;
            state.stream.wake_by_ref();
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for H2Tunnel {
    fn drop(&mut self) {
        // Both halves gone: the stream ends (reset when it did not end well, by the
        // connection, which sees the reader gone).
        let mut state = self.shared.lock();
        state.reader_gone = true;
        let buffered: usize = state.received.drain(..).map(|data| data.len()).sum();
        state.released += buffered + self.read.len();
        state.outgoing_end = true;
        state.stream.wake_by_ref();
    }
}
