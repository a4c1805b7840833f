//! Our HTTP/1.1 server for the common request; hyper serves the rest.
//!
//! Most requests a gateway sees are keep-alive requests without a body (GET, HEAD, DELETE, …)
//! on HTTP/1.1. For them hyper's server is general machinery: a dispatcher state machine,
//! a service future, a read buffer reallocated whenever the request's headers outlive it, and
//! a response encoder that handles every framing. This server reads the head with `httparse`
//! (as hyper does), builds the request from one copy of it, runs the request's phases in the
//! connection's own task, and writes the response head and a small body in one write.
//!
//! The first request it does not take (a body, an upgrade, `Expect`, HTTP/1.0, CONNECT, a head
//! too large or malformed: see `parse.rs`) and everything after it on that connection go to
//! hyper ([`Served::HandOver`], with the bytes already read), so the strictness that the
//! request-smuggling corpus checks stays hyper's where it matters: body framing and errors.
//! The connection guard (`guard.rs`) sits below both and times heads, idleness and writes.

pub(crate) mod date;
mod parse;
mod response;

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use snapshot::client::HeaderLimits;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use upstream::header_names::NameCache;

use crate::guard::{self, GuardedIo};
use crate::plane::DataPlane;
use crate::stack::{self, Connection};
use parse::Parsed;

/// The read buffer of a connection; it grows up to the head limit.
const READ_BUFFER: usize = 4 * 1024;

/// How a connection left our server.
pub(crate) enum Served<I> {
    /// It is over (closed by either side, or drained at shutdown).
    Done(Result<(), std::io::Error>),
    /// A request for hyper arrived: serve the connection with it from here, reading `buffered`
    /// first.
    HandOver { io: GuardedIo<I>, buffered: Vec<u8> },
    /// The connection has been idle for the guard's hibernation delay, with nothing buffered:
    /// park it (`idle.rs`) and serve it again when the client sends something.
    Idle(GuardedIo<I>),
}

/// Serves requests on `io` until the connection ends, `stop` turns true between requests, a
/// request for hyper arrives, or the guard tells the idle connection to hibernate.
pub(crate) async fn serve<I>(
    io: GuardedIo<I>,
    plane: &Arc<DataPlane>,
    connection: &Arc<Connection>,
    stop: &mut watch::Receiver<bool>,
) -> Served<I>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let limits = connection.settings.headers;
    let head_limit = connection
        .settings
        .buffer_limit
        .max(limits.max_request_headers_bytes)
        .max(8 * 1024);
    let mut server = Server {
        io,
        read: BytesMut::with_capacity(READ_BUFFER),
        out: Vec::with_capacity(1024),
        names: NameCache::default(),
    };
    let stopping = stop.clone();
    let mut stopped = pin!(async move {
        let mut stop = stopping;
        let _ = stop.wait_for(|stopped| *stopped).await;
    });
    loop {
        let next =
            poll_fn(|cx| server.poll_head(cx, &limits, head_limit, stop, stopped.as_mut())).await;
        let simple = match next {
            Next::Request(simple) => simple,
            Next::Other => {
                let buffered = server.read.to_vec();
                let mut io = server.io;
                io.may_hibernate = false;
                return Served::HandOver { io, buffered };
            }
            Next::Hibernate => return Served::Idle(server.io),
            Next::End(result) => return Served::Done(result),
        };
        let is_head = simple.request.method() == http::Method::HEAD;
        let Ok(response) =
            stack::handle(Arc::clone(plane), Arc::clone(connection), simple.request).await;
        let keep_alive = simple.keep_alive && !*stop.borrow();
        match server.write_response(response, is_head, keep_alive).await {
            Ok(true) => {}
            Ok(false) => return Served::Done(server.io.shutdown().await),
            Err(error) => return Served::Done(Err(error)),
        }
    }
}

/// What came next on the connection.
enum Next {
    Request(parse::SimpleRequest),
    Other,
    /// Idle for the hibernation delay with nothing buffered.
    Hibernate,
    End(Result<(), std::io::Error>),
}

struct Server<I> {
    io: GuardedIo<I>,
    read: BytesMut,
    out: Vec<u8>,
    /// The names of the client's last request heads.
    names: NameCache,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Server<I> {
    /// Reads until a complete head is buffered. Between requests (nothing buffered) a stop
    /// ends the connection.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        limits: &HeaderLimits,
        head_limit: usize,
        stop: &watch::Receiver<bool>,
        mut stopped: Pin<&mut impl Future<Output = ()>>,
    ) -> Poll<Next> {
        // The flag is read on every call; the future that wakes the task on a stop is polled
        // (registered) only when the task is about to wait for the socket, once per idle
        // wait instead of on every call.
        if self.read.is_empty() && *stop.borrow() {
            return Poll::Ready(Next::End(Ok(())));
        }
        loop {
            if !self.read.is_empty() {
                match parse::parse(&mut self.read, limits, &mut self.names) {
                    Parsed::Simple(simple) => return Poll::Ready(Next::Request(simple)),
                    Parsed::Partial if self.read.len() < head_limit => {}
                    // hyper answers 431 for a head over the limit, 400 for a broken one.
                    Parsed::Partial | Parsed::Other => return Poll::Ready(Next::Other),
                }
            }
            if self.read.capacity() - self.read.len() < 1024 {
                self.read.reserve(READ_BUFFER);
            }
            // Only a connection with nothing buffered may leave its task.
            self.io.may_hibernate = self.read.is_empty();
            match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Next::End(Ok(()))),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) if guard::is_hibernation(&error) => {
                    return Poll::Ready(Next::Hibernate);
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Next::End(Err(error))),
                // About to wait between requests: a stop must wake the task, and ends it.
                Poll::Pending if self.read.is_empty() && stopped.as_mut().poll(cx).is_ready() => {
                    return Poll::Ready(Next::End(Ok(())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes what the output buffer holds.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut written = 0;
        while written < self.out.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out[written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    self.out.drain(..written);
                    return Poll::Pending;
                }
            }
        }
        self.out.clear();
        Pin::new(&mut self.io).poll_flush(cx)
    }
}
