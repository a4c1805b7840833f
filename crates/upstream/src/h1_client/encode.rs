//! Writing HTTP/1.1 requests (RFC 9112): the head into the connection's output buffer, and the
//! body framed by `Content-Length` or chunked coding. The framing header is always ours: the
//! proxy strips `Transfer-Encoding` as hop-by-hop, and a `Content-Length` is written only for
//! the length the body will really have.

use std::io::Write;
use std::time::Instant;

use bytes::Buf;
use http::header::HeaderName;
use http::{HeaderMap, Method, Request, header};
use http_body::Body;

use super::decode::RequestKind;
use crate::pool::RequestBody;

/// How a request body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes follow.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
}

impl RequestFraming {
    /// The framing of `body` for a request with `headers`: an ended body has none, a body of
    /// known size is sized, else a `Content-Length` the client sent (the body must then match
    /// it), else chunked.
    pub(crate) fn of(body: &RequestBody, headers: &HeaderMap) -> RequestFraming {
        if body.is_end_stream() {
            return RequestFraming::Empty;
        }
        if let Some(exact) = body.size_hint().exact() {
            return RequestFraming::Length(exact);
        }
        match headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
        {
            Some(length) => RequestFraming::Length(length),
            None => RequestFraming::Chunked,
        }
    }
}

/// A request to an HTTP/1.1 backend with its head already written out: what an exchange needs
/// of it is then a buffer, the framing and the body, not the request's header map and URI.
/// Written once the endpoint is known (the `Host` may name it) and before a connection is
/// taken; the connection sends the buffer as it is.
pub struct Http1Request {
    pub(crate) head: Vec<u8>,
    pub(crate) framing: RequestFraming,
    pub(crate) kind: RequestKind,
    pub(crate) body: RequestBody,
    /// The caller's clock reading as it sends the request ([`Http1Request::sent_at`]).
    pub(crate) sent_at: Option<Instant>,
}

/// The `Host` field an [`Http1Request`] carries.
#[derive(Clone, Copy, Debug)]
pub enum HostField<'a> {
    /// The request's own `Host` field(s), as they are.
    AsIs,
    /// This value, first, in place of any `Host` field of the request.
    Set(&'a str),
    /// The request's own `Host` field(s), or this value, first, when it has none: whether it
    /// has one is seen as its fields are written, rather than looked up first.
    Default(&'a str),
}

/// The `X-Forwarded-For` and `X-Forwarded-Proto` fields a proxy adds, written with the head
/// instead of inserted into the request's map first (two hashes and inserts per request).
#[derive(Clone, Copy, Debug)]
pub struct Forwarded<'a> {
    /// The address of the client the request came from, as text; appended to the first
    /// `X-Forwarded-For` of the request when that one is readable and not empty (`a, client`),
    /// else alone. Other `X-Forwarded-For` fields of the request are not sent.
    pub client: &'a [u8],
    /// The scheme the client used, in place of any `X-Forwarded-Proto` of the request.
    pub proto: &'a str,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

impl Http1Request {
    /// Writes the head of a request for `target` (origin form, `/path?query`; empty is `/`).
    /// `Content-Length` and `Transfer-Encoding` of `headers` are replaced by the framing
    /// `body` needs (see [`RequestFraming::of`]).
    pub fn new(
        method: &Method,
        target: &str,
        host: HostField<'_>,
        headers: &HeaderMap,
        forwarded: Option<Forwarded<'_>>,
        body: RequestBody,
    ) -> Http1Request {
        let framing = RequestFraming::of(&body, headers);
        let mut out = crate::spare_buffers::take(HEAD_CAPACITY);
        // The request line, the headers, the framing header.
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        if target.is_empty() {
            out.push(b'/');
        } else {
            out.extend_from_slice(target.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let replace_host = match host {
            HostField::AsIs | HostField::Default(_) => false,
            HostField::Set(value) => {
                write_host(&mut out, value);
                true
            }
        };
        let fields_at = out.len();
        let mut had_host = false;
        let mut had_length = false;
        let mut forwarded_for = None;
        for (name, value) in headers {
            if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
                had_length |= name == header::CONTENT_LENGTH;
                continue;
            }
            if name == header::HOST {
                if replace_host {
                    continue;
                }
                had_host = true;
            }
            if forwarded.is_some() && (name == X_FORWARDED_FOR || name == X_FORWARDED_PROTO) {
                if name == X_FORWARDED_FOR && forwarded_for.is_none() {
                    forwarded_for = Some(value);
                }
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if let HostField::Default(value) = host
            && !had_host
        {
            // Rare (a request without `Host`: HTTP/1.0): moved in first, where it goes.
            let mut field = Vec::with_capacity(value.len() + "host: \r\n".len());
            write_host(&mut field, value);
            out.splice(fields_at..fields_at, field);
        }
        if let Some(forwarded) = forwarded {
            out.extend_from_slice(b"x-forwarded-for: ");
            if let Some(existing) = forwarded_for.filter(|v| !v.is_empty() && v.to_str().is_ok()) {
                out.extend_from_slice(existing.as_bytes());
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(forwarded.client);
            out.extend_from_slice(b"\r\nx-forwarded-proto: ");
            out.extend_from_slice(forwarded.proto.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match framing {
            RequestFraming::Empty if had_length || expects_body(method) => {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
            RequestFraming::Empty => {}
            RequestFraming::Length(length) => {
                // Writing into a Vec cannot fail.
                let _ = write!(out, "content-length: {length}\r\n");
            }
            RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        Http1Request {
            head: out,
            framing,
            kind: RequestKind {
                head: *method == Method::HEAD,
                raw: false,
            },
            body,
            sent_at: None,
        }
    }

    /// The clock reading the caller took as it sends the request: an idle connection's
    /// expiry is judged by it, so that the pool need not read the clock itself.
    pub fn sent_at(mut self, now: Instant) -> Http1Request {
        self.sent_at = Some(now);
        self
    }

    /// The head as it will be sent.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Asks for the response head as bytes ([`crate::UpstreamBody::take_raw_head`]) where the
    /// response allows it, for a caller that writes it to an HTTP/1.1 client and only adds
    /// fields to it: the response's header map then holds none of the backend's fields.
    pub fn with_raw_response_head(mut self) -> Http1Request {
        self.kind.raw = true;
        self
    }

    /// `request` written out, its target in origin form whatever form its URI has; its `Host`
    /// field must be set already.
    pub(crate) fn from_request(request: Request<RequestBody>) -> Http1Request {
        let (parts, body) = request.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map_or("", |target| target.as_str());
        Http1Request::new(
            &parts.method,
            target,
            HostField::AsIs,
            &parts.headers,
            None,
            body,
        )
    }
}

/// The buffer a head starts with: most heads fit, a larger one grows it.
const HEAD_CAPACITY: usize = 512;

/// Methods whose requests carry a body by definition: an empty one is said to be empty.
fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

/// Appends one chunk of data (`size CRLF data CRLF`).
pub(crate) fn chunk(out: &mut Vec<u8>, mut data: impl Buf) {
    let _ = write!(out, "{:x}\r\n", data.remaining());
    while data.has_remaining() {
        let piece = data.chunk();
        out.extend_from_slice(piece);
        let advanced = piece.len();
        data.advance(advanced);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk, the trailers and the empty line that ends a chunked body.
pub(crate) fn last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends sized body data.
pub(crate) fn data(out: &mut Vec<u8>, mut data: impl Buf) {
    while data.has_remaining() {
        let piece = data.chunk();
        out.extend_from_slice(piece);
        let advanced = piece.len();
        data.advance(advanced);
    }
}

/// Writes a `Host` field.
fn write_host(out: &mut Vec<u8>, value: &str) {
    out.extend_from_slice(b"host: ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}
