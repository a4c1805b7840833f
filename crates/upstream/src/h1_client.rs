//! Our HTTP/1.1 client: one request at a time on a pooled connection, driven by the request's
//! own task.
//!
//! Why not hyper's client connection: it runs each connection in a task of its own and hands
//! requests and responses across a channel, builds and re-checks state for every message, and
//! reallocates its read buffer whenever a response's headers outlive it. Per proxied request
//! that was about a third of all the gateway's instructions. Here the request's task writes the
//! head straight into the socket, parses the response head with `httparse` (as hyper does), and
//! the response body ([`H1Body`]) reads the rest from the same buffer; no task, no channel.
//!
//! Strictness is hyper's or more (RFC 9112): conflicting or malformed `Content-Length`, bad
//! chunk sizes or extensions, bare LF, heads over 64 KiB or 100 fields are protocol errors; a
//! response framed by the connection's end, or with both `Transfer-Encoding` and
//! `Content-Length`, ends the connection; bytes the backend sends beyond a response, or while
//! the connection is idle, end it too. Interim responses (1xx but 101) are skipped.
//!
//! While the request body is still being sent the response head is read too (a backend may
//! answer early); the body keeps being sent from the response body's polls. A connection goes
//! back to the pool only when both the request and the response are complete.

mod decode;
mod encode;
mod io;
mod upgraded;

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};

use crate::header_names::NameCache;
use http::{Response, StatusCode};
use http_body::{Body, Frame};
use tokio::io::AsyncWrite;

pub(crate) use decode::ProtocolError;
pub use decode::RawHead;
use decode::{RequestKind, ResponseFraming, ResponseHead};
use encode::RequestFraming;
pub use encode::{Forwarded, HostField, Http1Request};
pub(crate) use io::UpstreamIo;
pub use upgraded::UpstreamUpgraded;

use crate::http1_pool::Home;
use crate::pool::{BoxError, RequestBody, UpstreamError, error_chain};

/// The read buffer of a new connection; it grows for larger heads.
const READ_BUFFER: usize = 8 * 1024;
/// At most this many interim (1xx) responses before the final one.
const MAX_INTERIM: usize = 16;

/// An HTTP/1.1 connection to an endpoint, between or during exchanges.
pub(crate) struct Connection {
    io: UpstreamIo,
    read: BytesMut,
    out: Vec<u8>,
    written: usize,
    /// The names of the backend's last response head.
    names: NameCache,
    /// When the connection was opened (`maxConnectionDuration`).
    pub(crate) born: Instant,
}

impl Connection {
    pub(crate) fn new(io: UpstreamIo) -> Box<Connection> {
        Box::new(Connection {
            io,
            read: BytesMut::with_capacity(READ_BUFFER),
            out: Vec::with_capacity(1024),
            written: 0,
            names: NameCache::default(),
            born: Instant::now(),
        })
    }

    /// Whether an idle connection can take a request: the backend has not closed it and sent
    /// nothing unasked. Never waits: the socket is read only when the runtime saw it become
    /// readable since the last read, so a quiet connection costs no system call.
    pub(crate) fn is_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        // The readiness flag alone answers for a quiet plain connection, the common case.
        self.io.poll_read_ready(&mut cx).is_pending() || self.poll_fill(&mut cx).is_pending()
    }

    /// Reads more bytes into the read buffer; `Ok(0)` is the end of the stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.read.capacity() - self.read.len() < 1024 {
            self.read.reserve(READ_BUFFER);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }

    /// Writes what the output buffer holds.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.out.clear();
        self.written = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Takes `n` buffered bytes as a data frame, split off the read buffer without a copy
    /// (as the head was). Once every frame taken from the buffer is dropped, the next read
    /// reuses it; a frame still held (a slow client) makes the next read allocate a new one.
    fn take(&mut self, n: usize) -> Bytes {
        self.read.split_to(n).freeze()
    }
}

/// Sends a request (`parts`, `body`) on `connection` and reads the response head. The
/// response body reads the rest, and gives the connection back to `home` when done.
///
/// A connection that the backend closes after the request was written is an error, never a
/// reason to send the request again: the backend may have acted on it, and retries are the
/// route's retry policy's to decide (Gateway API `HTTPRouteRetry`, which counts them).
pub(crate) fn send(
    mut connection: Box<Connection>,
    request: Http1Request,
    home: Home,
) -> impl Future<Output = Result<Response<UpstreamBody>, UpstreamError>> + Send {
    // Set up before the future is made, so that it holds what the exchange needs once (an
    // async function keeps its arguments twice).
    let Http1Request {
        head,
        framing,
        kind,
        body,
        ..
    } = request;
    // The written head becomes the connection's output buffer (no copy); the old one is kept
    // for another head.
    crate::spare_buffers::give_back(std::mem::replace(&mut connection.out, head));
    connection.written = 0;
    let mut writer = BodyWriter::new(body, framing);
    async move {
        let mut interim = 0;
        let head =
            poll_fn(|cx| poll_exchange(&mut connection, &mut writer, kind, &mut interim, cx)).await;
        let head = head.map_err(Failure::into_upstream)?;
        // One reading for the head's arrival: the connection's idle time when the body is
        // already complete, and the caller's latency ([`UpstreamBody::received_at`]).
        let received_at = Instant::now();
        Ok(response(connection, writer, head, home, received_at))
    }
}

/// Writes the request as far as the socket takes it, and reads until the final response head.
fn poll_exchange(
    connection: &mut Connection,
    writer: &mut BodyWriter,
    request: RequestKind,
    interim: &mut usize,
    cx: &mut Context<'_>,
) -> Poll<Result<ResponseHead, Failure>> {
    loop {
        if !writer.is_done() {
            // Pending: the backend may still answer before it has the whole body.
            if let Poll::Ready(Err(failure)) = writer.poll_send(connection, cx) {
                return Poll::Ready(Err(failure));
            }
        }
        if !connection.read.is_empty() {
            match decode::parse_head(&mut connection.read, request, &mut connection.names)? {
                Some((head, _)) => {
                    if head.status.is_informational()
                        && head.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        *interim += 1;
                        if *interim > MAX_INTERIM {
                            return Poll::Ready(Err(Failure::protocol("too many 1xx responses")));
                        }
                        continue;
                    }
                    return Poll::Ready(Ok(head));
                }
                None if connection.read.len() >= decode::MAX_HEAD_BYTES => {
                    return Poll::Ready(Err(Failure::protocol("response head over 64 KiB")));
                }
                None => {}
            }
        }
        let received_before = !connection.read.is_empty() || *interim > 0;
        match ready!(connection.poll_fill(cx)) {
            Ok(0) if received_before => {
                return Poll::Ready(Err(Failure::protocol(
                    "connection closed in the response head",
                )));
            }
            Ok(0) => return Poll::Ready(Err(Failure::Closed)),
            Ok(_) => {}
            Err(error) if received_before => return Poll::Ready(Err(Failure::Io(error))),
            Err(error) => return Poll::Ready(Err(Failure::io_before_response(error))),
        }
    }
}

/// Builds the response: a body reading the rest of it, or, after `101`, the connection itself.
fn response(
    connection: Box<Connection>,
    writer: BodyWriter,
    head: ResponseHead,
    home: Home,
    received_at: Instant,
) -> Response<UpstreamBody> {
    let body = if head.status == StatusCode::SWITCHING_PROTOCOLS {
        UpstreamBody::upgraded(UpstreamUpgraded::new(connection))
    } else {
        let state = match head.framing {
            ResponseFraming::Empty | ResponseFraming::Length(0) => BodyState::Done,
            ResponseFraming::Length(length) => BodyState::Length(length),
            ResponseFraming::Chunked => BodyState::Chunked(ChunkState::Size),
            ResponseFraming::UntilClose => BodyState::UntilClose,
        };
        let mut body = H1Body {
            connection: Some(connection),
            state,
            writer: (!writer.is_done()).then(|| Box::new(writer)),
            waited: false,
            reusable: head.keep_alive,
            home: Some(home),
            raw_head: head.raw,
            received_at,
        };
        if body.state == BodyState::Done {
            body.finish_at(Some(received_at));
        }
        UpstreamBody::h1(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.version_mut() = head.version;
    *response.headers_mut() = head.headers;
    response
}

/// How an exchange failed, before it becomes an [`UpstreamError`].
enum Failure {
    /// The connection ended before any byte of a response.
    Closed,
    /// Reading or writing failed.
    Io(std::io::Error),
    /// The response is not valid HTTP/1.1.
    Protocol(ProtocolError),
    /// The client's request body failed.
    ClientBody(BoxError),
}

impl Failure {
    fn protocol(what: &str) -> Failure {
        Failure::Protocol(ProtocolError(what.to_owned()))
    }

    /// A reset or a broken pipe before any response byte is the backend closing the
    /// connection, like an orderly close.
    fn io_before_response(error: std::io::Error) -> Failure {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
        match error.kind() {
            BrokenPipe | ConnectionReset | ConnectionAborted => Failure::Closed,
            _ => Failure::Io(error),
        }
    }

    fn into_upstream(self) -> UpstreamError {
        match self {
            Failure::Closed => {
                UpstreamError::Reset("connection closed before the response".to_owned())
            }
            Failure::Io(error) => UpstreamError::Reset(error.to_string()),
            Failure::Protocol(error) => UpstreamError::Protocol(error.0),
            Failure::ClientBody(error) => UpstreamError::ClientBody(error_chain(&*error)),
        }
    }
}

impl From<ProtocolError> for Failure {
    fn from(error: ProtocolError) -> Failure {
        Failure::Protocol(error)
    }
}

/// Sends a request body, framed, as fast as the body yields it and the socket takes it.
struct BodyWriter {
    /// `None` once the body has ended (or never had anything).
    body: Option<RequestBody>,
    framing: RequestFraming,
    /// Bytes still owed under `Content-Length` framing.
    remaining: u64,
    /// The framing's last bytes still have to be written.
    finishing: bool,
}

impl BodyWriter {
    fn new(body: RequestBody, framing: RequestFraming) -> BodyWriter {
        let remaining = match framing {
            RequestFraming::Length(length) => length,
            _ => 0,
        };
        BodyWriter {
            body: (framing != RequestFraming::Empty).then_some(body),
            framing,
            remaining,
            // The head still has to be written.
            finishing: true,
        }
    }

    fn is_done(&self) -> bool {
        self.body.is_none() && !self.finishing
    }

    fn poll_send(
        &mut self,
        connection: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Failure>> {
        loop {
            ready!(connection.poll_write_out(cx)).map_err(Failure::io_before_response)?;
            let Some(body) = self.body.as_mut() else {
                self.finishing = false;
                return Poll::Ready(Ok(()));
            };
            match ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => self.encode(connection, frame)?,
                Some(Err(error)) => return Poll::Ready(Err(Failure::ClientBody(error))),
                None => {
                    if self.framing == RequestFraming::Chunked {
                        encode::last_chunk(&mut connection.out, None);
                    } else if self.remaining > 0 {
                        return Poll::Ready(Err(Failure::ClientBody(
                            "request body ended before its Content-Length".into(),
                        )));
                    }
                    self.body = None;
                }
            }
        }
    }

    fn encode(&mut self, connection: &mut Connection, frame: Frame<Bytes>) -> Result<(), Failure> {
        let out = &mut connection.out;
        match frame.into_data() {
            Ok(data) if data.is_empty() => {}
            Ok(data) if self.framing == RequestFraming::Chunked => encode::chunk(out, data),
            Ok(data) => {
                let length = data.len() as u64;
                if length > self.remaining {
                    return Err(Failure::ClientBody(
                        "request body longer than its Content-Length".into(),
                    ));
                }
                self.remaining -= length;
                encode::data(out, data);
            }
            Err(frame) => {
                // Trailers end a chunked body; a sized body has nowhere to put them.
                if let (Ok(trailers), RequestFraming::Chunked) =
                    (frame.into_trailers(), self.framing)
                {
                    encode::last_chunk(out, Some(&trailers));
                    self.body = None;
                }
            }
        }
        Ok(())
    }
}

/// Where a response body is in its framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    Chunked(ChunkState),
    UntilClose,
    Done,
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes to go.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailers and the final CRLF.
    Trailers,
}

/// The body of a response read by [`send`].
pub(crate) struct H1Body {
    /// `None` once given back to the pool or closed.
    connection: Option<Box<Connection>>,
    state: BodyState,
    /// The request body, when it was still being sent as the response began (boxed: rare, and
    /// the body is moved with every response).
    writer: Option<Box<BodyWriter>>,
    /// The response allows another request on the connection.
    reusable: bool,
    /// The body has waited for the backend: its end is not when the head arrived.
    waited: bool,
    home: Option<Home>,
    /// The response head's fields as bytes, when the request asked for them.
    raw_head: Option<RawHead>,
    /// When the response head arrived.
    received_at: Instant,
}

impl H1Body {
    pub(crate) fn is_end_stream(&self) -> bool {
        self.state == BodyState::Done
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(connection) = self.connection.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(writer) = self.writer.as_mut() {
            match writer.poll_send(connection, cx) {
                Poll::Ready(Ok(())) => self.writer = None,
                // The response goes on; the connection cannot be trusted with another request.
                Poll::Ready(Err(_)) => {
                    self.writer = None;
                    self.reusable = false;
                }
                Poll::Pending => {}
            }
        }
        let polled = poll_body(connection, &mut self.state, cx);
        // A body that was all there with its head (the common small response) ends when the
        // head arrived, as far as the connection's idle time is concerned: no clock reading.
        let ended_at = (!self.waited).then_some(self.received_at);
        match &polled {
            Poll::Ready(Some(Ok(_))) if self.state == BodyState::Done => self.finish_at(ended_at),
            Poll::Ready(None) => self.finish_at(ended_at),
            Poll::Pending => self.waited = true,
            Poll::Ready(Some(Err(_))) => {
                self.state = BodyState::Done;
                self.connection = None;
            }
            _ => {}
        }
        polled
    }

    /// The response has been read: the connection goes back to the pool if it can carry
    /// another request, else it closes.
    fn finish(&mut self) {
        self.finish_at(None);
    }

    /// Ends the body; a reusable connection goes back to its pool, idle since `now` (read
    /// when `None`).
    fn finish_at(&mut self, now: Option<Instant>) {
        self.state = BodyState::Done;
        let Some(connection) = self.connection.take() else {
            return;
        };
        if self.reusable
            && self.writer.is_none()
            && connection.read.is_empty()
            && let Some(home) = self.home.take()
        {
            home.checkin(connection, now);
        }
    }
}

impl Drop for H1Body {
    fn drop(&mut self) {
        // A body read to its end but not polled past it still gives its connection back.
        if self.state == BodyState::Done {
            self.finish();
        }
    }
}

/// Reads the next frame of a response body.
fn poll_body(
    connection: &mut Connection,
    state: &mut BodyState,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    loop {
        match *state {
            BodyState::Done => return Poll::Ready(None),
            BodyState::Length(remaining) => {
                if connection.read.is_empty() && ready!(fill(connection, cx, true))? {
                    *state = BodyState::Done;
                    return Poll::Ready(None);
                }
                let n = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(connection.read.len());
                let data = connection.take(n);
                let left = remaining - n as u64;
                *state = if left == 0 {
                    BodyState::Done
                } else {
                    BodyState::Length(left)
                };
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            BodyState::UntilClose => {
                if connection.read.is_empty() && ready!(fill(connection, cx, false))? {
                    *state = BodyState::Done;
                    return Poll::Ready(None);
                }
                let n = connection.read.len();
                return Poll::Ready(Some(Ok(Frame::data(connection.take(n)))));
            }
            BodyState::Chunked(chunk) => {
                if let Some(frame) = ready!(poll_chunked(connection, chunk, state, cx))? {
                    return Poll::Ready(Some(Ok(frame)));
                }
            }
        }
    }
}

/// Reads more of a body: `Ok(true)` when the connection ended, which is an error unless the
/// body is framed by the connection's end (`until_close`).
fn fill(
    connection: &mut Connection,
    cx: &mut Context<'_>,
    framed: bool,
) -> Poll<Result<bool, BoxError>> {
    match ready!(connection.poll_fill(cx)) {
        Ok(0) if framed => Poll::Ready(Err("connection closed before the end of the body".into())),
        Ok(0) => Poll::Ready(Ok(true)),
        Ok(_) => Poll::Ready(Ok(false)),
        Err(error) => Poll::Ready(Err(error.into())),
    }
}

/// One step of a chunked body: a data frame, trailers, or `None` after a step that yields no
/// frame (a size line, a CRLF); at the end the state is `Done`.
fn poll_chunked(
    connection: &mut Connection,
    chunk: ChunkState,
    state: &mut BodyState,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<Frame<Bytes>>, BoxError>> {
    let read = &connection.read;
    let step = match chunk {
        ChunkState::Size => decode::parse_chunk_size(read)?.map(|(size, length)| {
            let next = match size {
                0 => ChunkState::Trailers,
                size => ChunkState::Data(size),
            };
            (BodyState::Chunked(next), length, None)
        }),
        ChunkState::Data(remaining) if !read.is_empty() => {
            let n = usize::try_from(remaining)
                .unwrap_or(usize::MAX)
                .min(read.len());
            let data = connection.take(n);
            let left = remaining - n as u64;
            *state = BodyState::Chunked(match left {
                0 => ChunkState::DataEnd,
                left => ChunkState::Data(left),
            });
            return Poll::Ready(Ok(Some(Frame::data(data))));
        }
        ChunkState::Data(_) => None,
        ChunkState::DataEnd => match read.get(..2) {
            Some(b"\r\n") => Some((BodyState::Chunked(ChunkState::Size), 2, None)),
            Some(_) => return Poll::Ready(Err("invalid chunk: no CRLF after its data".into())),
            None => None,
        },
        ChunkState::Trailers if read.starts_with(b"\r\n") => Some((BodyState::Done, 2, None)),
        ChunkState::Trailers => decode::parse_trailers(read)?
            .map(|(trailers, length)| (BodyState::Done, length, Some(Frame::trailers(trailers)))),
    };
    match step {
        Some((next, consumed, frame)) => {
            connection.read.advance(consumed);
            *state = next;
            Poll::Ready(Ok(frame))
        }
        None => {
            ready!(fill(connection, cx, true))?;
            Poll::Ready(Ok(None))
        }
    }
}

/// The body of an upstream response: read from our HTTP/1.1 connection, from hyper's HTTP/2
/// stream, or, after `101 Switching Protocols`, nothing: the connection itself is taken with
/// [`UpstreamBody::take_upgrade`].
pub struct UpstreamBody {
    kind: Kind,
}

enum Kind {
    H1(H1Body),
    H2(hyper::body::Incoming),
    Upgraded(Option<UpstreamUpgraded>),
}

impl UpstreamBody {
    fn h1(body: H1Body) -> UpstreamBody {
        UpstreamBody {
            kind: Kind::H1(body),
        }
    }

    fn upgraded(upgraded: UpstreamUpgraded) -> UpstreamBody {
        UpstreamBody {
            kind: Kind::Upgraded(Some(upgraded)),
        }
    }

    /// The body of an HTTP/2 response (its connection is multiplexed, not pooled by us).
    pub(crate) fn h2(inner: hyper::body::Incoming) -> UpstreamBody {
        UpstreamBody {
            kind: Kind::H2(inner),
        }
    }

    /// The response head's end-to-end fields as bytes, when the request asked for them
    /// ([`Http1Request::with_raw_response_head`]) and the response allowed it; the response's
    /// header map then holds none of the backend's fields. `None` otherwise, or once taken.
    pub fn take_raw_head(&mut self) -> Option<RawHead> {
        match &mut self.kind {
            Kind::H1(body) => body.raw_head.take(),
            _ => None,
        }
    }

    /// When the response head arrived, as our HTTP/1.1 client read the clock then; `None` for
    /// other responses.
    pub fn received_at(&self) -> Option<Instant> {
        match &self.kind {
            Kind::H1(body) => Some(body.received_at),
            _ => None,
        }
    }

    /// After `101 Switching Protocols`: the connection to the backend, with any bytes it sent
    /// after the response head. `None` for any other response, or when already taken.
    pub fn take_upgrade(&mut self) -> Option<UpstreamUpgraded> {
        match &mut self.kind {
            Kind::Upgraded(upgraded) => upgraded.take(),
            _ => None,
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::H1(_) => "http/1.1",
            Kind::H2(_) => "h2",
            Kind::Upgraded(_) => "upgraded",
        };
        f.debug_struct("UpstreamBody").field("kind", &kind).finish()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::H1(body) => body.poll_frame(cx),
            Kind::H2(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|result| result.map_err(BoxError::from))),
            Kind::Upgraded(_) => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::H1(body) => body.is_end_stream(),
            Kind::H2(body) => body.is_end_stream(),
            Kind::Upgraded(_) => true,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.kind {
            Kind::H1(body) => match body.state {
                BodyState::Length(remaining) => http_body::SizeHint::with_exact(remaining),
                BodyState::Done => http_body::SizeHint::with_exact(0),
                _ => http_body::SizeHint::default(),
            },
            Kind::H2(body) => body.size_hint(),
            Kind::Upgraded(_) => http_body::SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests;
