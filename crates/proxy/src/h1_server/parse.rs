//! Which HTTP/1.1 request heads the gateway's own server takes ([`parse`]), and the request
//! they become. Everything else goes to hyper (see the module doc of `h1_server`), so this
//! only has to recognise the common request exactly, not to judge the rest.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Request, Uri, Version};
use upstream::header_names::NameCache;

use snapshot::client::HeaderLimits;

use crate::body::RequestStream;

/// Header fields our server reads at most; a head with more goes to hyper, which applies the
/// listener's own limit.
pub(crate) const MAX_FIELDS: usize = 100;

/// Fields the proxy adds to a request before forwarding it (`forward.rs`).
const FORWARDING_FIELDS: usize = 2;

/// What a look at the buffered bytes found.
pub(crate) enum Parsed {
    /// A complete head of the common kind: no body, no upgrade, HTTP/1.1.
    Simple(SimpleRequest),
    /// The head is not complete yet.
    Partial,
    /// Anything else: a body, an upgrade, `Expect`, HTTP/1.0, CONNECT, a malformed head.
    Other,
}

/// A request our server serves.
pub(crate) struct SimpleRequest {
    pub(crate) request: Request<RequestStream>,
    /// The client did not ask to close (`Connection: close`).
    pub(crate) keep_alive: bool,
}

/// Looks at the bytes at the start of `read`; a request it takes is split off it (the header
/// values are slices of its bytes: no copy). `limits`: the listener's; a head over its count or
/// size goes to hyper, and the size of a head taken here need not be counted again
/// (`stack::check_limits`). `names`: the connection's names of its last heads.
pub(crate) fn parse(read: &mut BytesMut, limits: &HeaderLimits, names: &mut NameCache) -> Parsed {
    // Left uninitialised: httparse writes the fields it finds, and zeroing 100 of them
    // (3.2 KB) would cost more than parsing a small head.
    let mut fields = [const { MaybeUninit::uninit() }; MAX_FIELDS];
    let mut head = httparse::Request::new(&mut []);
    let length = match head.parse_with_uninit_headers(read, &mut fields) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if head.version != Some(1) || head.headers.len() > limits.max_headers_count {
        return Parsed::Other;
    }
    let Some(method) = head
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
    else {
        return Parsed::Other;
    };
    if method == Method::CONNECT {
        return Parsed::Other;
    }
    let mut keep_alive = true;
    // Counted as `stack::check_limits` counts a head: as it would be written out again.
    let mut size = method.as_str().len() + head.path.map_or(0, str::len) + " HTTP/1.1\r\n ".len();
    for field in head.headers.iter() {
        size += field.name.len() + field.value.len() + ": \r\n".len();
        match classify(field.name.as_bytes()) {
            Field::Plain => {}
            Field::Framing => return Parsed::Other,
            Field::Connection => keep_alive &= !lists_close(field.value),
        }
    }
    if size > limits.max_request_headers_bytes {
        return Parsed::Other;
    }
    if names.collect(read, head.headers).is_err() {
        return Parsed::Other;
    }
    let field_count = head.headers.len();
    let target = head.path.map_or(0..0, |path| {
        let start = path.as_ptr().addr() - read.as_ptr().addr();
        start..start + path.len()
    });
    // The parser's borrow of `read` ends here: the head leaves the buffer without a copy.
    let bytes = read.split_to(length).freeze();
    let Ok(uri) = Uri::from_maybe_shared(bytes.slice(target)) else {
        // A target httparse takes and `Uri` does not: hyper judges the request.
        put_back(read, &bytes);
        return Parsed::Other;
    };
    // Room for what forwarding adds (`X-Forwarded-For`, `-Proto`): a map that grows on the
    // way rehashes every field, about a thousand instructions.
    let mut headers = HeaderMap::with_capacity(field_count + FORWARDING_FIELDS);
    for field in names.take_fields() {
        let Ok(value) = HeaderValue::from_maybe_shared(bytes.slice(field.value)) else {
            put_back(read, &bytes);
            return Parsed::Other;
        };
        headers.append(field.name, value);
    }
    let mut request = Request::new(RequestStream::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    Parsed::Simple(SimpleRequest {
        request,
        keep_alive,
    })
}

/// Returns a head split off `read` to its front (a copy; only for heads that turn out not to
/// be ours after all).
fn put_back(read: &mut BytesMut, head: &[u8]) {
    let mut whole = BytesMut::with_capacity(head.len() + read.len());
    whole.extend_from_slice(head);
    whole.extend_from_slice(read);
    *read = whole;
}

/// What a field means to the server.
enum Field {
    Plain,
    /// It frames a body, upgrades the connection, or expects an interim answer: hyper's.
    Framing,
    /// `Connection`: may ask to close.
    Connection,
}

fn classify(name: &[u8]) -> Field {
    // By length first: most names are none of these, and the comparison is then one branch.
    match name.len() {
        6 if name.eq_ignore_ascii_case(b"expect") => Field::Framing,
        7 if name.eq_ignore_ascii_case(b"upgrade") => Field::Framing,
        10 if name.eq_ignore_ascii_case(b"connection") => Field::Connection,
        14 if name.eq_ignore_ascii_case(b"content-length") => Field::Framing,
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => Field::Framing,
        _ => Field::Plain,
    }
}

fn lists_close(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default limits with `fields` fields and `bytes` bytes at most.
    fn limits(fields: usize, bytes: usize) -> HeaderLimits {
        HeaderLimits {
            max_headers_count: fields,
            max_request_headers_bytes: bytes,
            ..HeaderLimits::default()
        }
    }

    const DEFAULT: HeaderLimits = HeaderLimits {
        max_request_headers_bytes: 60 * 1024,
        max_headers_count: MAX_FIELDS,
        max_uri_bytes: 8192,
    };

    /// The request `text` starts with, and what is left of it in the buffer.
    fn simple_and_rest(text: &str) -> (SimpleRequest, BytesMut) {
        let mut read = BytesMut::from(text);
        match parse(&mut read, &DEFAULT, &mut NameCache::default()) {
            Parsed::Simple(simple) => (simple, read),
            Parsed::Partial => panic!("partial: {text:?}"),
            Parsed::Other => panic!("not simple: {text:?}"),
        }
    }

    fn simple(text: &str) -> SimpleRequest {
        simple_and_rest(text).0
    }

    /// Whether `text` goes to hyper, with every byte left in the buffer for it.
    fn is_other(text: &str) -> bool {
        is_other_with(text, &DEFAULT)
    }

    #[test]
    fn a_get_becomes_a_request() {
        let text = "GET /a/b?c=d HTTP/1.1\r\nHost: app.test\r\nAccept: */*\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\nGET /next";
        let (parsed, rest) = simple_and_rest(text);
        assert_eq!(rest, "GET /next");
        assert!(parsed.keep_alive);
        let request = parsed.request;
        assert_eq!(request.method(), Method::GET);
        assert_eq!(request.uri().path(), "/a/b");
        assert_eq!(request.uri().query(), Some("c=d"));
        assert_eq!(request.headers()["host"], "app.test");
        let multi: Vec<_> = request.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["1", "2"]);
    }

    #[test]
    fn connection_close_is_noted_and_absolute_targets_kept() {
        let parsed =
            simple("DELETE http://app.test/x HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(!parsed.keep_alive);
        assert_eq!(
            parsed.request.uri().authority().map(|a| a.as_str()),
            Some("app.test")
        );
    }

    #[test]
    fn an_incomplete_head_is_partial() {
        assert!(matches!(
            parse(
                &mut BytesMut::from("GET / HTTP/1.1\r\nHost: a"),
                &DEFAULT,
                &mut NameCache::default()
            ),
            Parsed::Partial
        ));
    }

    #[test]
    fn everything_but_the_common_request_goes_to_hyper() {
        for text in [
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            "POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.0\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
            "GET /\x7f HTTP/1.1\r\n\r\n",
            // httparse takes these targets, `Uri` does not: put back after the split.
            "GET /a<b> HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /a`b HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n",
        ] {
            assert!(is_other(text), "{text:?}");
        }
    }

    #[test]
    fn more_fields_than_the_listener_allows_go_to_hyper() {
        let text = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
        assert!(is_simple_with(text, &limits(3, 1024)));
        assert!(is_other_with(text, &limits(2, 1024)));
    }

    #[test]
    fn a_head_over_the_size_limit_goes_to_hyper() {
        // Counted as `stack::check_limits` counts it: "GET" + "/" + " HTTP/1.1\r\n " (16), then
        // name + value + ": \r\n" (6).
        let text = "GET / HTTP/1.1\r\nA:1\r\n\r\n";
        assert!(is_simple_with(text, &limits(10, 22)));
        assert!(is_other_with(text, &limits(10, 21)));
    }

    fn is_simple_with(text: &str, limits: &HeaderLimits) -> bool {
        let parsed = parse(&mut BytesMut::from(text), limits, &mut NameCache::default());
        matches!(parsed, Parsed::Simple(_))
    }

    fn is_other_with(text: &str, limits: &HeaderLimits) -> bool {
        let mut read = BytesMut::from(text);
        let other = matches!(
            parse(&mut read, limits, &mut NameCache::default()),
            Parsed::Other
        );
        other && read == text.as_bytes()
    }
}
