//! The response body the server sends: either the upstream's streamed body or a small body
//! of our own. When access logging is on it counts the bytes sent and writes the log line when
//! the body ends (or the client goes away), so the line has the real byte count and duration.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use telemetry::trace::ServerSpan;
use telemetry::{AccessLogEntry, Hex};
use upstream::UpstreamBody;

use crate::guard::InFlight;
use crate::plane::DataPlane;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project_lite::pin_project! {
    #[project = InnerProjection]
    enum Inner {
        Upstream { #[pin] body: UpstreamBody },
        Full { data: Option<Bytes> },
    }
}

pin_project_lite::pin_project! {
    /// Response body of the gateway.
    pub struct ResponseBody {
        #[pin]
        inner: Inner,
        log: Option<Box<PendingLog>>,
        // The request is in flight on its connection until this body ends or drops.
        in_flight: Option<InFlight>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            // The client went away (or the server never polled to the end): log what was sent.
            let ended = this.is_end_stream();
            let this = this.project();
            if let Some(mut log) = this.log.take() {
                if log.error.is_none() && !ended {
                    log.error = Some("response not completed (client closed the connection)".to_owned());
                    log.error_code.get_or_insert("client-closed");
                }
                log.write();
            }
        }
    }
}

impl ResponseBody {
    /// A body held in memory.
    pub fn full(data: Bytes) -> ResponseBody {
        let data = if data.is_empty() { None } else { Some(data) };
        ResponseBody {
            inner: Inner::Full { data },
            log: None,
            in_flight: None,
        }
    }

    /// The upstream's body, streamed.
    pub(crate) fn upstream(body: UpstreamBody) -> ResponseBody {
        ResponseBody {
            inner: Inner::Upstream { body },
            log: None,
            in_flight: None,
        }
    }

    /// The upstream response head's fields as bytes, when the exchange asked for them
    /// (`Exchange::raw_response_head`); the response's header map then holds only the fields
    /// the gateway added.
    pub(crate) fn take_raw_head(&mut self) -> Option<upstream::RawHead> {
        match &mut self.inner {
            Inner::Upstream { body } => body.take_raw_head(),
            Inner::Full { .. } => None,
        }
    }

    /// Keeps the request counted as in flight on its connection until the body ends.
    pub(crate) fn set_in_flight(&mut self, in_flight: InFlight) {
        self.in_flight = Some(in_flight);
    }

    /// Attaches the access-log record to write when the body ends.
    pub(crate) fn set_log(&mut self, log: Box<PendingLog>) {
        self.log = Some(log);
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled: Poll<Option<Result<Frame<Bytes>, BoxError>>> = match this.inner.project() {
            InnerProjection::Upstream { body } => body.poll_frame(cx),
            InnerProjection::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        };
        if let Some(log) = this.log.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        log.bytes_sent += data.len() as u64;
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    log.error = Some(format!("response body: {error}"));
                    log.error_code.get_or_insert("response-body-error");
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
        }
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.in_flight.take();
            if let Some(mut log) = this.log.take() {
                log.write();
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Upstream { body } => body.is_end_stream(),
            Inner::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Upstream { body } => body.size_hint(),
            Inner::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// An access-log record (and a sampled request's server span) waiting for its response body to
/// end. Only built when access logging is on or the request is sampled, so the off path
/// allocates nothing for it.
pub(crate) struct PendingLog {
    pub(crate) plane: Arc<DataPlane>,
    /// Whether to write the access-log line (the record may exist for the span alone).
    pub(crate) log_line: bool,
    /// The request's trace and server span ids, when tracing is on.
    pub(crate) trace: Option<(Hex<16>, Hex<8>)>,
    /// What went wrong, as the gateway's error code (`x-portcullis-error`), for the span's
    /// `error.type`.
    pub(crate) error_code: Option<&'static str>,
    /// A sampled request's server span, ended and submitted with the line.
    pub(crate) span: Option<Box<ServerSpan>>,
    pub(crate) time: SystemTime,
    pub(crate) start: Instant,
    pub(crate) client: SocketAddr,
    pub(crate) method: http::Method,
    pub(crate) host: String,
    pub(crate) path: String,
    pub(crate) protocol: &'static str,
    pub(crate) status: u16,
    pub(crate) route: Option<Arc<str>>,
    pub(crate) backend: Option<Arc<str>>,
    pub(crate) endpoint: Option<SocketAddr>,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) error: Option<String>,
}

impl PendingLog {
    fn write(&mut self) {
        if let Some(mut span) = self.span.take()
            && let Some(tracer) = &self.plane.tracer
        {
            span.end = SystemTime::now();
            span.status = self.status;
            span.bytes_sent = self.bytes_sent;
            span.error = self.error_code;
            tracer.submit(*span);
        }
        if !self.log_line {
            return;
        }
        self.plane.access_log.log(&AccessLogEntry {
            time: self.time,
            client: Some(self.client),
            method: self.method.as_str(),
            host: &self.host,
            path: &self.path,
            protocol: self.protocol,
            status: self.status,
            route: self.route.as_deref(),
            backend: self.backend.as_deref(),
            endpoint: self.endpoint,
            bytes_received: self.bytes_received,
            bytes_sent: self.bytes_sent,
            duration: self.start.elapsed(),
            error: self.error.as_deref(),
            trace_id: self.trace.map(|(trace, _)| trace),
            span_id: self.trace.map(|(_, span)| span),
        });
    }
}

/// A client's request body as its server read it: a stream's (hyper's or our HTTP/2
/// server's), or none (our HTTP/1.1 server takes only requests without a body, `h1_server`);
/// or a stream's with its first frames read ahead (external authorization `withBody`,
/// `access.rs`), which are sent first.
#[derive(Debug)]
pub(crate) enum RequestStream {
    Empty,
    Streaming(ClientStream),
    ReadAhead {
        /// The frames read, in order.
        frames: std::collections::VecDeque<Frame<Bytes>>,
        /// The rest of the body (`None`: it ended within `frames`).
        rest: Option<ClientStream>,
    },
}

/// A request body read from the client as it arrives: by hyper (HTTP/1.1 beyond the common
/// requests, connections whose version hyper-util's auto server found), or by our HTTP/2
/// server.
#[derive(Debug)]
pub(crate) enum ClientStream {
    Hyper(hyper::body::Incoming),
    H2(crate::h2_server::RequestBody),
}

impl Body for ClientStream {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientStream::Hyper(body) => poll_boxed(Pin::new(body), cx),
            ClientStream::H2(body) => poll_boxed(Pin::new(body), cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientStream::Hyper(body) => body.is_end_stream(),
            ClientStream::H2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientStream::Hyper(body) => body.size_hint(),
            ClientStream::H2(body) => body.size_hint(),
        }
    }
}

/// `body`'s next frame, its error boxed.
fn poll_boxed<B>(
    body: Pin<&mut B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, BoxError>>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    body.poll_frame(cx)
        .map(|frame| frame.map(|f| f.map_err(Into::into)))
}

impl RequestStream {
    fn is_end_stream(&self) -> bool {
        match self {
            RequestStream::Empty => true,
            RequestStream::Streaming(body) => body.is_end_stream(),
            RequestStream::ReadAhead { frames, rest } => {
                frames.is_empty() && rest.as_ref().is_none_or(Body::is_end_stream)
            }
        }
    }

    /// Reads up to `limit` bytes of the body ahead (they stay in it, sent first). Returns
    /// them, and whether the body is longer. A body that fails while read ahead keeps the
    /// frames read and ends there (the error surfaces as the upstream request's).
    pub(crate) async fn read_ahead(&mut self, limit: usize) -> (Bytes, bool) {
        let mut body = match std::mem::replace(self, RequestStream::Empty) {
            RequestStream::Streaming(body) => body,
            other => {
                *self = other;
                return (Bytes::new(), false);
            }
        };
        let mut frames = std::collections::VecDeque::new();
        let mut read = bytes::BytesMut::new();
        let mut longer = false;
        let mut ended = false;
        while read.len() <= limit {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        read.extend_from_slice(data);
                    }
                    frames.push_back(frame);
                }
                Some(Err(_)) | None => {
                    ended = true;
                    break;
                }
            }
        }
        if read.len() > limit {
            read.truncate(limit);
            longer = true;
        } else if !ended && !body.is_end_stream() {
            longer = true;
        }
        *self = RequestStream::ReadAhead {
            frames,
            rest: (!ended).then_some(body),
        };
        (read.freeze(), longer)
    }
}

pin_project_lite::pin_project! {
    /// A client's request body with the listener's `requestBodyTimeout`: the whole body must
    /// arrive within the time from the request head, or it ends with [`BodyTimeout`] (the
    /// request gets 408, `stack.rs`). Without a limit, or for a request without body, it is the
    /// body as it is.
    pub(crate) struct ClientBody {
        inner: RequestStream,
        // Boxed: most requests have no body, hence no timer, and the body is moved on the way
        // to the backend (a timer inline would make every move a copy of a hundred bytes).
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
        timed_out: Option<Arc<std::sync::atomic::AtomicBool>>,
    }
}

/// The request body did not arrive within the listener's `requestBodyTimeout`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the listener's requestBodyTimeout")]
pub(crate) struct BodyTimeout;

impl ClientBody {
    /// `inner` with `limit`; the returned flag is set when the limit ran out (`None` when no
    /// timer was needed).
    pub(crate) fn new(
        inner: RequestStream,
        limit: Option<std::time::Duration>,
    ) -> (ClientBody, Option<Arc<std::sync::atomic::AtomicBool>>) {
        let limit = limit.filter(|_| !inner.is_end_stream());
        let timed_out = limit.map(|_| Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let body = ClientBody {
            inner,
            deadline: limit.map(|limit| Box::pin(tokio::time::sleep(limit))),
            timed_out: timed_out.clone(),
        };
        (body, timed_out)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let inner = match this.inner {
            RequestStream::Streaming(inner) => inner,
            RequestStream::ReadAhead { frames, rest } => match frames.pop_front() {
                Some(frame) => return Poll::Ready(Some(Ok(frame))),
                None => match rest {
                    Some(inner) => inner,
                    None => return Poll::Ready(None),
                },
            },
            RequestStream::Empty => return Poll::Ready(None),
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame),
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    if let Some(flag) = this.timed_out {
                        flag.store(true, std::sync::atomic::Ordering::Release);
                    }
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            RequestStream::Empty => SizeHint::with_exact(0),
            RequestStream::Streaming(body) => body.size_hint(),
            RequestStream::ReadAhead { frames, rest } => {
                let buffered: u64 = frames
                    .iter()
                    .filter_map(Frame::data_ref)
                    .map(|data| data.len() as u64)
                    .sum();
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + buffered);
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper + buffered);
                }
                hint
            }
        }
    }
}
