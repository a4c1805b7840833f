//! A request head from a stream's decoded header block, checked as RFC 9113 §8.1.1, §8.2 and
//! §8.3 require (a malformed request resets its stream with PROTOCOL_ERROR), and its
//! trailers.

use bytes::Bytes;
use hpack::{Field, Pseudo};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, Uri, Version};

use super::response::is_connection_specific;

/// Why a request head was refused (for logs; the client gets PROTOCOL_ERROR).
pub(super) type Malformed = &'static str;

/// A request head as its fields arrive ([`RequestFields::field`] is the decoder's sink).
#[derive(Default)]
pub(super) struct RequestFields {
    method: Option<Bytes>,
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
    protocol: Option<Bytes>,
    headers: HeaderMap,
    /// A regular field was seen: pseudo-header fields must come first.
    regular: bool,
    malformed: Option<Malformed>,
}

/// A checked request head: the request (with an empty body for now), the declared
/// `Content-Length`, and the extended CONNECT protocol (RFC 8441) when there is one.
pub(super) struct RequestHead {
    pub(super) request: Request<()>,
    pub(super) content_length: Option<u64>,
    pub(super) protocol: Option<Bytes>,
}

impl RequestFields {
    /// One decoded field.
    pub(super) fn field(&mut self, field: Field) {
        if self.malformed.is_some() {
            return;
        }
        match field {
            Field::Pseudo(pseudo, value) => {
                if self.regular {
                    self.malformed = Some("a pseudo-header field after a regular one");
                    return;
                }
                let slot = match pseudo {
                    Pseudo::Method => &mut self.method,
                    Pseudo::Scheme => &mut self.scheme,
                    Pseudo::Authority => &mut self.authority,
                    Pseudo::Path => &mut self.path,
                    Pseudo::Protocol => &mut self.protocol,
                    Pseudo::Status => {
                        self.malformed = Some("a :status in a request");
                        return;
                    }
                };
                if slot.is_some() {
                    self.malformed = Some("a pseudo-header field twice");
                    return;
                }
                *slot = Some(value);
            }
            Field::Regular(name, value) => {
                self.regular = true;
                if let Some(problem) = regular_field_problem(&name, &value) {
                    self.malformed = Some(problem);
                    return;
                }
                self.headers.append(name, value);
            }
            Field::Malformed { .. } => {
                self.malformed = Some("a field name or value HTTP/2 does not allow");
            }
        }
    }

    /// The request, or why it is malformed.
    pub(super) fn into_head(self) -> Result<RequestHead, Malformed> {
        if let Some(problem) = self.malformed {
            return Err(problem);
        }
        let method = self.method.ok_or("no :method")?;
        let method = Method::from_bytes(&method).map_err(|_| "an invalid :method")?;
        let is_connect = method == Method::CONNECT;
        if self.protocol.is_some() && !is_connect {
            return Err("a :protocol outside CONNECT");
        }
        let uri = if is_connect && self.protocol.is_none() {
            // A plain CONNECT: :authority only (RFC 9113 §8.5).
            if self.scheme.is_some() || self.path.is_some() {
                return Err("a CONNECT with :scheme or :path");
            }
            let authority = self.authority.ok_or("a CONNECT without :authority")?;
            let authority =
                Authority::from_maybe_shared(authority).map_err(|_| "an invalid :authority")?;
            Uri::from(authority)
        } else {
            uri(self.scheme, self.authority, self.path)?
        };
        let content_length = content_length(&self.headers)?;
        let mut request = Request::new(());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_2;
        *request.headers_mut() = self.headers;
        Ok(RequestHead {
            request,
            content_length,
            protocol: self.protocol,
        })
    }
}

/// The URI of a request with :scheme and :path (and :authority when given).
fn uri(
    scheme: Option<Bytes>,
    authority: Option<Bytes>,
    path: Option<Bytes>,
) -> Result<Uri, Malformed> {
    let scheme = scheme.ok_or("no :scheme")?;
    let path = path.ok_or("no :path")?;
    if path.is_empty() {
        return Err("an empty :path");
    }
    let path = PathAndQuery::from_maybe_shared(path).map_err(|_| "an invalid :path")?;
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(path);
    if let Some(authority) = authority {
        parts.authority =
            Some(Authority::from_maybe_shared(authority).map_err(|_| "an invalid :authority")?);
        parts.scheme = Some(match &scheme[..] {
            b"http" => Scheme::HTTP,
            b"https" => Scheme::HTTPS,
            other => Scheme::try_from(other).map_err(|_| "an invalid :scheme")?,
        });
    } else if Scheme::try_from(&scheme[..]).is_err() {
        return Err("an invalid :scheme");
    }
    Uri::from_parts(parts).map_err(|_| "an invalid request target")
}

/// What makes a regular request field malformed: connection-specific fields (RFC 9113
/// §8.2.2; `te` only as `trailers`).
fn regular_field_problem(name: &HeaderName, value: &HeaderValue) -> Option<Malformed> {
    if name == header::TE {
        return (value != "trailers").then_some("a te other than trailers");
    }
    is_connection_specific(name).then_some("a connection-specific field")
}

/// The declared `Content-Length` (all its values must agree and be numbers).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, Malformed> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let parsed = std::str::from_utf8(value.as_bytes())
            .ok()
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or("an invalid content-length")?;
        if length.is_some_and(|length| length != parsed) {
            return Err("content-length values that differ");
        }
        length = Some(parsed);
    }
    Ok(length)
}

/// Trailers as their fields arrive: no pseudo-header fields (RFC 9113 §8.1).
#[derive(Default)]
pub(super) struct TrailerFields {
    pub(super) headers: HeaderMap,
    pub(super) malformed: bool,
}

impl TrailerFields {
    pub(super) fn field(&mut self, field: Field) {
        match field {
            Field::Regular(name, value) if regular_field_problem(&name, &value).is_none() => {
                self.headers.append(name, value);
            }
            _ => self.malformed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> RequestFields {
        let mut fields = RequestFields::default();
        for (name, value) in list {
            let value = Bytes::copy_from_slice(value.as_bytes());
            let field = match *name {
                ":method" => Field::Pseudo(Pseudo::Method, value),
                ":scheme" => Field::Pseudo(Pseudo::Scheme, value),
                ":authority" => Field::Pseudo(Pseudo::Authority, value),
                ":path" => Field::Pseudo(Pseudo::Path, value),
                ":protocol" => Field::Pseudo(Pseudo::Protocol, value),
                ":status" => Field::Pseudo(Pseudo::Status, value),
                name => Field::Regular(
                    HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                    HeaderValue::from_maybe_shared(value).expect("a value"),
                ),
            };
            fields.field(field);
        }
        fields
    }

    const GET: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "shop.example"),
        (":path", "/cart?x=1"),
    ];

    #[test]
    fn a_complete_request_becomes_an_http2_request_with_its_uri() {
        let mut list = GET.to_vec();
        list.push(("content-length", "5"));
        list.push(("cookie", "a=1"));
        list.push(("cookie", "b=2"));
        let head = fields(&list).into_head().expect("well formed");
        assert_eq!(head.request.method(), Method::GET);
        assert_eq!(head.request.uri(), "https://shop.example/cart?x=1");
        assert_eq!(head.request.version(), Version::HTTP_2);
        assert_eq!(head.content_length, Some(5));
        assert_eq!(head.request.headers().get_all("cookie").iter().count(), 2);
    }

    #[test]
    fn malformed_heads_are_refused() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[(":method", "GET"), (":scheme", "http")], "no path"),
            (&[(":method", "GET"), (":path", "/")], "no scheme"),
            (&[(":scheme", "http"), (":path", "/")], "no method"),
            (
                &[(":method", "GET"), (":scheme", "http"), (":path", "")],
                "empty path",
            ),
            (
                &[
                    (":method", "GET"),
                    ("accept", "*/*"),
                    (":scheme", "http"),
                    (":path", "/"),
                ],
                "pseudo after regular",
            ),
            (
                &[
                    (":method", "GET"),
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                ],
                "pseudo twice",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":status", "200"),
                ],
                "status",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("connection", "x"),
                ],
                "connection",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("te", "gzip"),
                ],
                "te",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("content-length", "1x"),
                ],
                "bad length",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("content-length", "1"),
                    ("content-length", "2"),
                ],
                "two lengths",
            ),
            (
                &[
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":protocol", "websocket"),
                ],
                "protocol outside CONNECT",
            ),
            (
                &[
                    (":method", "CONNECT"),
                    (":authority", "a:1"),
                    (":path", "/"),
                ],
                "CONNECT path",
            ),
        ];
        for (list, what) in cases {
            assert!(fields(list).into_head().is_err(), "{what} must be refused");
        }
    }

    #[test]
    fn connect_takes_an_authority_and_extended_connect_a_protocol() {
        let plain = fields(&[(":method", "CONNECT"), (":authority", "db.internal:5432")])
            .into_head()
            .expect("plain CONNECT");
        assert_eq!(plain.request.uri(), "db.internal:5432");
        assert!(plain.protocol.is_none());
        let extended = fields(&[
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "https"),
            (":authority", "chat.example"),
            (":path", "/socket"),
        ])
        .into_head()
        .expect("extended CONNECT");
        assert_eq!(extended.protocol.as_deref(), Some(&b"websocket"[..]));
        assert_eq!(extended.request.uri(), "https://chat.example/socket");
    }

    #[test]
    fn te_trailers_is_the_one_te_allowed() {
        let mut list = GET.to_vec();
        list.push(("te", "trailers"));
        assert!(fields(&list).into_head().is_ok());
    }
}
