//! Writing HTTP/1.1 requests (RFC 9112): the head into the connection's output buffer, and the
//! body framed by `Content-Length` or chunked coding. The framing header is always ours: the
//! proxy strips `Transfer-Encoding` as hop-by-hop, and a `Content-Length` is written only for
//! the length the body will really have.

use std::io::Write;

use bytes::Buf;
use http::request::Parts;
use http::{HeaderMap, Method, header};
use http_body::Body;

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

/// Writes the request head (origin-form target, `HTTP/1.1`, the headers, the framing header)
/// into `out`.
pub(crate) fn head(out: &mut Vec<u8>, parts: &Parts, framing: RequestFraming) {
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    match parts.uri.path_and_query() {
        Some(target) if !target.as_str().is_empty() => {
            out.extend_from_slice(target.as_str().as_bytes());
        }
        _ => out.push(b'/'),
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut had_length = false;
    for (name, value) in &parts.headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            had_length |= name == header::CONTENT_LENGTH;
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::Empty if had_length || expects_body(&parts.method) => {
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
}

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
