//! Extended CONNECT (RFC 8441): a stream whose DATA frames carry a WebSocket's bytes once the
//! gateway answered 2xx. The request future gets a [`ClientTunnel`] (in the request's
//! extensions, where hyper's server puts its `OnUpgrade`), which yields the stream as
//! [`AsyncRead`] + [`AsyncWrite`] once the response went out.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use h2::{Reason, RecvStream, SendStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use super::RequestBody;

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

/// The server's side: the stream's receiving half, kept out of the request (whose body is
/// empty) until the response opens the tunnel.
pub(super) struct PendingTunnel {
    recv: RecvStream,
    opened: oneshot::Sender<H2Tunnel>,
}

impl PendingTunnel {
    /// The 2xx went out on `send`: the tunnel is the client's to use.
    pub(super) fn open(self, send: SendStream<Bytes>) {
        let tunnel = H2Tunnel {
            send,
            recv: self.recv,
            read: Bytes::new(),
            shut: false,
        };
        // The request future gone (the client reset the stream): dropping the tunnel resets
        // it too.
        let _ = self.opened.send(tunnel);
    }
}

/// A CONNECT request: an extended CONNECT (`:protocol`) gets a pending tunnel and an empty
/// body; a plain CONNECT (a TCP tunnel, which the gateway does not offer) goes through the
/// stack as it is, to be refused there. A CONNECT declaring a body is reset (RFC 9113 §8.5:
/// its DATA frames are the tunnel's).
pub(super) fn accept(
    parts: &mut http::request::Parts,
    recv: RecvStream,
) -> Result<(RequestBody, Option<PendingTunnel>), Reason> {
    let Some(protocol) = parts.extensions.remove::<h2::ext::Protocol>() else {
        return Ok((RequestBody::new(recv, &parts.headers), None));
    };
    let declares_body = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|length| length != "0");
    if declares_body {
        return Err(Reason::PROTOCOL_ERROR);
    }
    // Where hyper's server put it: the stack and the upgrade code read hyper's type.
    parts
        .extensions
        .insert(hyper::ext::Protocol::from(protocol.as_str()));
    let (opened, waiting) = oneshot::channel();
    parts
        .extensions
        .insert(ClientTunnel(Arc::new(Mutex::new(Some(waiting)))));
    Ok((RequestBody::empty(), Some(PendingTunnel { recv, opened })))
}

/// An open tunnel: reads are the client's DATA frames (their window given back as they are
/// read), writes become DATA frames within the stream's flow control, shutdown ends the
/// stream.
pub(crate) struct H2Tunnel {
    send: SendStream<Bytes>,
    recv: RecvStream,
    /// The rest of the last DATA frame read.
    read: Bytes,
    /// The end of the stream was sent.
    shut: bool,
}

impl AsyncRead for H2Tunnel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        while this.read.is_empty() {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => this.read = data,
                // The client ended its side (END_STREAM, or reset with no error).
                None => return Poll::Ready(Ok(())),
                Some(Err(error)) => {
                    return Poll::Ready(match error.reason() {
                        Some(Reason::NO_ERROR | Reason::CANCEL) => Ok(()),
                        _ => Err(io_error(error)),
                    });
                }
            }
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read[..n]);
        this.read.advance(n);
        let _ = this.recv.flow_control().release_capacity(n);
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
        // At most what the windows (and h2's send buffer) take now; the rest is the
        // writer's to offer again.
        this.send.reserve_capacity(buf.len());
        let capacity = loop {
            let capacity = this.send.capacity();
            if capacity > 0 {
                break capacity;
            }
            match ready!(this.send.poll_capacity(cx)) {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(io_error(error))),
                None => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
            }
        };
        let n = capacity.min(buf.len());
        this.send
            .send_data(Bytes::copy_from_slice(&buf[..n]), false)
            .map_err(io_error)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The connection writes what the stream holds as soon as the windows allow.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            this.shut = true;
            this.send.send_data(Bytes::new(), true).map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

fn io_error(error: h2::Error) -> io::Error {
    if error.is_io() {
        error
            .into_io()
            .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())
    } else {
        io::Error::other(error)
    }
}
