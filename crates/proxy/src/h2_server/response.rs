//! A stream's response to the client: the head, then the body frame by frame with h2's flow
//! control as the backpressure.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, SendStream};
use http::Response;
use http::header::{self, HeaderMap, HeaderValue};
use http_body::Body;

use super::tunnel::PendingTunnel;
use crate::body::ResponseBody;
use crate::h1_server::date;

/// Sends `response` on the stream: the head (with the body's end when it has none), then the
/// body. A successful answer to an extended CONNECT opens the tunnel instead.
pub(super) async fn send(
    response: Response<ResponseBody>,
    mut respond: SendResponse<Bytes>,
    tunnel: Option<PendingTunnel>,
) {
    let (mut head, body) = response.into_parts();
    let has = prepare(&mut head.headers);
    if let Some(tunnel) = tunnel
        && head.status.is_success()
    {
        // The tunnel's bytes are the stream's DATA frames: no length (RFC 8441 §4, RFC 9113
        // §8.5).
        if has.content_length {
            head.headers.remove(header::CONTENT_LENGTH);
        }
        if let Ok(stream) = respond.send_response(Response::from_parts(head, ()), false) {
            tunnel.open(stream);
        }
        return;
    }
    if body.is_end_stream() {
        // A failed send: the stream was reset, nobody to answer.
        let _ = respond.send_response(Response::from_parts(head, ()), true);
        return;
    }
    if !has.content_length
        && let Some(length) = body.size_hint().exact()
    {
        head.headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    let Ok(stream) = respond.send_response(Response::from_parts(head, ()), false) else {
        return;
    };
    let mut body = pin!(body);
    let mut pipe = Pipe {
        stream,
        waiting: false,
    };
    poll_fn(|cx| pipe.poll(body.as_mut(), cx)).await;
}

/// What [`prepare`] found among a response's fields.
struct Present {
    content_length: bool,
}

/// One pass over a response's field names: adds `Date` when there is none (RFC 9110 §6.6.1,
/// as hyper's server did) and removes connection-specific fields, which HTTP/2 forbids (RFC
/// 9113 §8.2.2). Forwarded responses have lost them already (`forward::strip_hop_by_hop`);
/// a response header filter could add one, which h2 would refuse, failing the stream.
fn prepare(headers: &mut HeaderMap) -> Present {
    let mut date = false;
    let mut content_length = false;
    let mut connection_specific = false;
    for name in headers.keys() {
        if name == header::DATE {
            date = true;
        } else if name == header::CONTENT_LENGTH {
            content_length = true;
        } else if is_connection_specific(name) {
            connection_specific = true;
        }
    }
    if connection_specific {
        strip_connection_specific(headers);
    }
    if !date {
        headers.insert(header::DATE, date::header_value());
    }
    Present { content_length }
}

fn is_connection_specific(name: &header::HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || *name == "keep-alive"
        || *name == "proxy-connection"
}

/// Removes the connection-specific fields and those `Connection` names.
fn strip_connection_specific(headers: &mut HeaderMap) {
    if let Some(listed) = headers.remove(header::CONNECTION)
        && let Ok(listed) = listed.to_str()
    {
        for name in listed.split(',') {
            headers.remove(name.trim());
        }
    }
    for name in [
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::HeaderName::from_static("keep-alive"),
        header::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// The body's frames to h2. A chunk is handed over as it arrives (h2 holds it until the flow
/// control windows let it out); the next is read only once h2 has found window for all it
/// holds plus a byte, or its send buffer (`max_send_buffer_size`) has room, so a slow client
/// slows the upstream read rather than growing the buffer.
struct Pipe {
    stream: SendStream<Bytes>,
    /// Waiting for capacity before the next read.
    waiting: bool,
}

impl Pipe {
    fn poll(&mut self, mut body: Pin<&mut ResponseBody>, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            while self.waiting {
                if self.stream.capacity() > 0 {
                    self.waiting = false;
                    break;
                }
                match self.stream.poll_capacity(cx) {
                    Poll::Ready(Some(Ok(_))) => {}
                    // Reset, or the connection is gone.
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                    Poll::Pending => return Poll::Pending,
                }
            }
            match body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let end = body.is_end_stream();
                        let empty = data.is_empty();
                        if self.stream.send_data(data, end).is_err() || end {
                            return Poll::Ready(());
                        }
                        if !empty {
                            self.stream.reserve_capacity(1);
                            self.waiting = true;
                        }
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            let _ = self.stream.send_trailers(trailers);
                            return Poll::Ready(());
                        }
                    }
                },
                Poll::Ready(Some(Err(_))) => {
                    // The upstream failed mid-body: the client must not take the truncated
                    // body for a whole one.
                    self.stream.send_reset(Reason::INTERNAL_ERROR);
                    return Poll::Ready(());
                }
                Poll::Ready(None) => {
                    let _ = self.stream.send_data(Bytes::new(), true);
                    return Poll::Ready(());
                }
                Poll::Pending => {
                    // Reset by the client while the upstream is quiet: stop reading it.
                    return match self.stream.poll_reset(cx) {
                        Poll::Ready(_) => Poll::Ready(()),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::response;

    use super::*;

    fn prepared(mut head: response::Parts) -> response::Parts {
        let _ = prepare(&mut head.headers);
        head
    }

    fn head(fields: &[(&str, &str)]) -> response::Parts {
        let mut builder = Response::builder();
        for (name, value) in fields {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid head").into_parts().0
    }

    #[test]
    fn a_response_without_date_gets_one_and_keeps_its_own() {
        let added = prepared(head(&[("content-type", "text/plain")]));
        let date = added.headers.get(header::DATE).expect("a date");
        assert!(httpdate::parse_http_date(date.to_str().expect("ascii")).is_ok());
        let kept = prepared(head(&[("date", "Sun, 06 Nov 1994 08:49:37 GMT")]));
        assert_eq!(kept.headers[header::DATE], "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(kept.headers.len(), 1);
    }

    #[test]
    fn connection_specific_fields_and_those_connection_names_are_removed() {
        let head = prepared(head(&[
            ("connection", "x-hop, close"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("proxy-connection", "keep-alive"),
            ("x-end-to-end", "2"),
        ]));
        let mut names: Vec<&str> = head.headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["date", "x-end-to-end"]);
    }

    #[test]
    fn content_length_is_reported_when_present() {
        let mut headers = head(&[("content-length", "2")]).headers;
        assert!(prepare(&mut headers).content_length);
        let mut headers = head(&[("content-type", "text/plain")]).headers;
        assert!(!prepare(&mut headers).content_length);
    }
}
