//! A stream's response head and trailers as header blocks: the fields HTTP/2 needs added or
//! removed, then HPACK.

use hpack::Encoder;
use http::StatusCode;
use http::header::{self, HeaderMap};

use super::frame;
use crate::h1_server::date;

/// Appends `headers` (after `:status` when there is one) as a header block on `stream`:
/// HEADERS, and CONTINUATION frames when the block is longer than `max_frame`.
pub(super) fn write_block(
    out: &mut Vec<u8>,
    encoder: &Encoder,
    stream: u32,
    status: Option<StatusCode>,
    headers: &HeaderMap,
    end_stream: bool,
    max_frame: usize,
) {
    // Encoded in place after a header written once the length is known.
    let start = out.len();
    out.extend_from_slice(&[0; frame::HEADER_LEN]);
    if let Some(status) = status {
        encoder.encode_status(status, out);
    }
    for (name, value) in headers {
        encoder.encode_field(name, value, out);
    }
    let length = out.len() - start - frame::HEADER_LEN;
    if length <= max_frame {
        let mut flags = frame::flag::END_HEADERS;
        if end_stream {
            flags |= frame::flag::END_STREAM;
        }
        let head = frame::head_bytes(length, frame::kind::HEADERS, flags, stream);
        out[start..start + frame::HEADER_LEN].copy_from_slice(&head);
    } else {
        let block = out.split_off(start + frame::HEADER_LEN);
        out.truncate(start);
        frame::write_header_block(out, stream, &block, end_stream, max_frame);
    }
}

/// What [`prepare`] found among a response's fields.
pub(super) struct Present {
    pub(super) content_length: bool,
}

/// One pass over a response's field names: adds `Date` when there is none (RFC 9110 §6.6.1,
/// as hyper's server did) and removes connection-specific fields, which HTTP/2 forbids (RFC
/// 9113 §8.2.2). Forwarded responses have lost them already (`forward::strip_hop_by_hop`);
/// a response header filter could add one, which h2 would refuse, failing the stream.
pub(super) fn prepare(headers: &mut HeaderMap) -> Present {
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

/// A connection-specific field (RFC 9113 §8.2.2), which no HTTP/2 message may carry (`te`
/// only as `trailers`, in requests).
pub(super) fn is_connection_specific(name: &header::HeaderName) -> bool {
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

#[cfg(test)]
mod tests {
    use http::{Response, response};

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
