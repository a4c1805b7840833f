//! Writing a response (RFC 9112 §6): the status line and headers, then the body framed by
//! `Content-Length` when its size is known, else chunked. The framing headers are always ours;
//! a response to HEAD, a 304 and a 1xx/204 carry no body (HEAD and 304 keep the
//! `Content-Length` they describe). The head and what the body has ready go out in one write.

use std::future::poll_fn;
use std::io::Write;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};

use http::response::Parts;
use http::{Response, StatusCode, header};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Server, date};
use crate::body::ResponseBody;
use upstream::RawHead;

/// Body bytes gathered before they are written.
const FLUSH_AT: usize = 16 * 1024;

/// How the response body goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Server<I> {
    /// Writes `response`; `Ok(true)` when the connection can take another request. The head
    /// is written into the output buffer before the future is made, so that the future holds
    /// the body alone (an async function keeps its arguments twice).
    pub(super) fn write_response(
        &mut self,
        response: Response<ResponseBody>,
        is_head: bool,
        keep_alive: bool,
    ) -> impl Future<Output = std::io::Result<bool>> + '_ {
        let (parts, mut body) = response.into_parts();
        let raw = body.take_raw_head();
        self.out.clear();
        let (framing, keep_alive) = head(
            &mut self.out,
            &parts,
            raw.as_ref(),
            &body,
            is_head,
            keep_alive,
        );
        drop((parts, raw));
        let mut remaining = match framing {
            Framing::Length(length) => length,
            _ => 0,
        };
        let mut ended = framing == Framing::None;
        async move {
            let mut body = pin!(body);
            poll_fn(|cx| self.poll_body(cx, body.as_mut(), framing, &mut remaining, &mut ended))
                .await?;
            Ok(keep_alive)
        }
    }

    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        mut body: Pin<&mut ResponseBody>,
        framing: Framing,
        remaining: &mut u64,
        ended: &mut bool,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if *ended || self.out.len() >= FLUSH_AT {
                ready!(self.poll_write_out(cx))?;
                if *ended {
                    return Poll::Ready(Ok(()));
                }
            }
            match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        append(&mut self.out, data, framing, remaining)?;
                    }
                }
                Poll::Ready(None) if *remaining > 0 => return Poll::Ready(Err(short_body())),
                Poll::Ready(None) => {
                    if framing == Framing::Chunked {
                        self.out.extend_from_slice(b"0\r\n\r\n");
                    }
                    *ended = true;
                }
                // The response cannot be finished: the connection ends, the client sees a
                // truncated response rather than a wrong one.
                Poll::Ready(Some(Err(error))) => {
                    return Poll::Ready(Err(std::io::Error::other(error)));
                }
                Poll::Pending if self.out.is_empty() => return Poll::Pending,
                Poll::Pending => ready!(self.poll_write_out(cx))?,
            }
        }
    }
}

fn short_body() -> std::io::Error {
    std::io::Error::other("response body ended before its Content-Length")
}

/// Appends body data in `framing`.
fn append(
    out: &mut Vec<u8>,
    data: bytes::Bytes,
    framing: Framing,
    remaining: &mut u64,
) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    match framing {
        Framing::None => return Ok(()),
        Framing::Length(_) => {
            let length = data.len() as u64;
            if length > *remaining {
                return Err(std::io::Error::other(
                    "response body longer than its Content-Length",
                ));
            }
            *remaining -= length;
            out.extend_from_slice(&data);
        }
        Framing::Chunked => {
            let _ = write!(out, "{:x}\r\n", data.len());
            out.extend_from_slice(&data);
            out.extend_from_slice(b"\r\n");
        }
    }
    Ok(())
}

/// Appends `n` in decimal (`write!` would go through the formatter: hundreds of instructions
/// on every response).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Writes the response head into `out`: its framing, and whether the connection stays open
/// (a `Connection: close` of the response closes it too). `raw`: the backend's fields as bytes
/// (then `parts` holds only what the gateway added), written first.
fn head(
    out: &mut Vec<u8>,
    parts: &Parts,
    raw: Option<&RawHead>,
    body: &ResponseBody,
    is_head: bool,
    mut keep_alive: bool,
) -> (Framing, bool) {
    let status = parts.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let bodiless = status.is_informational() || status == StatusCode::NO_CONTENT;
    let framing = if bodiless || is_head || status == StatusCode::NOT_MODIFIED {
        Framing::None
    } else {
        match body.size_hint().exact() {
            Some(length) => Framing::Length(length),
            None => Framing::Chunked,
        }
    };
    let mut has_date = false;
    if let Some(raw) = raw {
        out.extend_from_slice(raw.fields());
        has_date = raw.has_date();
    }
    for (name, value) in &parts.headers {
        if name == header::TRANSFER_ENCODING {
            continue;
        }
        if name == header::CONTENT_LENGTH {
            // Ours replaces it when there is a body; a response without one keeps what it
            // says about the representation (HEAD, 304).
            if framing != Framing::None || bodiless {
                continue;
            }
        } else if name == header::DATE {
            has_date = true;
        } else if name == header::CONNECTION {
            keep_alive &= !value
                .as_bytes()
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Length(length) => {
            out.extend_from_slice(b"content-length: ");
            push_decimal(out, length);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // HEAD and 304 keep the backend's own `Content-Length`, if any: the body they stand
        // for is not this one.
        Framing::None => {}
    }
    if !has_date {
        date::append_header(out);
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (framing, keep_alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn head_text(
        response: Response<ResponseBody>,
        is_head: bool,
        keep_alive: bool,
    ) -> (String, Framing, bool) {
        let (parts, body) = response.into_parts();
        let mut out = Vec::new();
        let (framing, keep_alive) = head(&mut out, &parts, None, &body, is_head, keep_alive);
        (String::from_utf8(out).expect("ascii"), framing, keep_alive)
    }

    fn response(
        status: u16,
        headers: &[(&'static str, &'static str)],
        body: &'static str,
    ) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::full(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = StatusCode::from_u16(status).expect("status");
        for (name, value) in headers {
            response
                .headers_mut()
                .append(*name, http::HeaderValue::from_static(value));
        }
        response
    }

    #[test]
    fn a_sized_body_gets_our_content_length_and_a_date() {
        let (text, framing, keep_alive) = head_text(
            response(200, &[("content-length", "99"), ("server", "be")], "ok"),
            false,
            true,
        );
        assert_eq!(framing, Framing::Length(2));
        assert!(keep_alive);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\nserver: be\r\ncontent-length: 2\r\ndate: "),
            "{text}"
        );
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        assert!(!text.contains("99"));
    }

    #[test]
    fn head_and_304_keep_the_length_they_describe_and_send_no_body() {
        let headers = [
            ("content-length", "1234"),
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ];
        for (status, is_head) in [(200, true), (304, false)] {
            let (text, framing, _) = head_text(response(status, &headers, ""), is_head, true);
            assert_eq!(framing, Framing::None);
            assert!(text.contains("content-length: 1234\r\n"), "{text}");
            assert_eq!(text.matches("date:").count(), 1, "{text}");
        }
        let (text, framing, _) =
            head_text(response(204, &[("content-length", "0")], ""), false, true);
        assert_eq!(framing, Framing::None);
        assert!(!text.contains("content-length"), "{text}");
    }

    #[test]
    fn closing_is_said_and_a_response_may_ask_for_it() {
        let (text, _, keep_alive) = head_text(response(200, &[], ""), false, false);
        assert!(!keep_alive);
        assert!(text.ends_with("connection: close\r\n\r\n"), "{text}");
        let (_, _, keep_alive) =
            head_text(response(503, &[("connection", "close")], ""), false, true);
        assert!(!keep_alive);
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 99, 1234, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn chunks_are_framed_and_lengths_enforced() {
        let mut out = Vec::new();
        let mut remaining = 0;
        append(
            &mut out,
            Bytes::from_static(b"hello world!"),
            Framing::Chunked,
            &mut remaining,
        )
        .expect("chunk");
        assert_eq!(out, b"c\r\nhello world!\r\n");
        let mut out = Vec::new();
        let mut remaining = 3;
        assert!(
            append(
                &mut out,
                Bytes::from_static(b"four"),
                Framing::Length(3),
                &mut remaining
            )
            .is_err()
        );
    }
}
