//! Turning a client request into an upstream request and an upstream response into a client
//! response: hop-by-hop headers (RFC 9110 §7.6.1), `X-Forwarded-*`, Host / `:authority`, and the
//! version the upstream pool speaks.

use crate::body::ClientBody;
use std::net::IpAddr;

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme, Uri};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use snapshot::backend::AppProtocol;
use upstream::{Forwarded, HostField, Http1Request, PickContext, RequestBody, UpstreamBody};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Removes hop-by-hop headers: the fixed set, and every header the `Connection` header names.
/// `TE: trailers` survives on requests because gRPC needs it end to end.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
    // Each remove hashes a name, and most messages carry none of the set or only
    // `Connection: keep-alive`: one pass over the names says which are there.
    let present = HopByHop::scan(headers);
    if present.is_empty() {
        return;
    }
    if present.contains(HopByHop::CONNECTION) {
        // Headers listed in Connection are hop-by-hop too. Names of the fixed set are removed
        // below if present (TE stays), so the usual `keep-alive` costs no parse, allocation or
        // remove.
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|name| !HopByHop::is_fixed_name(name))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .filter(|name| !is_end_to_end(name))
            .collect();
        for name in named {
            headers.remove(&name);
        }
        headers.remove(header::CONNECTION);
    }
    let fixed = [
        (HopByHop::KEEP_ALIVE, &KEEP_ALIVE),
        (HopByHop::PROXY_CONNECTION, &PROXY_CONNECTION),
        (HopByHop::TRANSFER_ENCODING, &header::TRANSFER_ENCODING),
        (HopByHop::UPGRADE, &header::UPGRADE),
        (HopByHop::TRAILER, &header::TRAILER),
        (HopByHop::HTTP2_SETTINGS, &HTTP2_SETTINGS),
    ];
    for (bit, name) in fixed {
        if present.contains(bit) {
            headers.remove(name);
        }
    }
    if is_request && present.contains(HopByHop::TE) {
        let keeps_trailers = headers
            .get(header::TE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
            });
        headers.remove(header::TE);
        if keeps_trailers {
            headers.insert(header::TE, HeaderValue::from_static("trailers"));
        }
    }
}

/// Headers a `Connection` header may not make hop-by-hop (hop-by-hop header abuse: a client
/// listing `Authorization` or `X-Forwarded-For` would strip what the backend relies on, or what
/// a proxy in front of us added). They are end to end by definition or carry identity.
fn is_end_to_end(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "content-type"
            | "content-encoding"
            | "authorization"
            | "cookie"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-forwarded-port"
            | "x-real-ip"
    )
}

/// Which headers of the fixed hop-by-hop set (RFC 9110 §7.6.1, plus the legacy `Keep-Alive`
/// and `Proxy-Connection`) a header map holds, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HopByHop(u8);

impl HopByHop {
    const CONNECTION: u8 = 1;
    const KEEP_ALIVE: u8 = 1 << 1;
    const PROXY_CONNECTION: u8 = 1 << 2;
    const TRANSFER_ENCODING: u8 = 1 << 3;
    const UPGRADE: u8 = 1 << 4;
    const TRAILER: u8 = 1 << 5;
    const TE: u8 = 1 << 6;
    /// `HTTP2-Settings` (RFC 9113 §3.2.1): belongs to an h2c upgrade, which we never forward.
    const HTTP2_SETTINGS: u8 = 1 << 7;

    /// One pass over the names (lowercase already: `HeaderName` normalises them).
    fn scan(headers: &HeaderMap) -> HopByHop {
        HopByHop(headers.keys().fold(0, |present, name| {
            present | HopByHop::bit(name.as_str().as_bytes())
        }))
    }

    fn bit(name: &[u8]) -> u8 {
        match name {
            b"connection" => HopByHop::CONNECTION,
            b"keep-alive" => HopByHop::KEEP_ALIVE,
            b"proxy-connection" => HopByHop::PROXY_CONNECTION,
            b"transfer-encoding" => HopByHop::TRANSFER_ENCODING,
            b"upgrade" => HopByHop::UPGRADE,
            b"trailer" => HopByHop::TRAILER,
            b"te" => HopByHop::TE,
            b"http2-settings" => HopByHop::HTTP2_SETTINGS,
            _ => 0,
        }
    }

    /// Whether `name` (as written in a `Connection` header, any case) is one of the set.
    fn is_fixed_name(name: &str) -> bool {
        // Lowercased on the stack: no name of the set is longer than `transfer-encoding`.
        let mut lower = [0u8; "transfer-encoding".len()];
        let Some(lower) = lower.get_mut(..name.len()) else {
            return false;
        };
        for (to, from) in lower.iter_mut().zip(name.bytes()) {
            *to = from.to_ascii_lowercase();
        }
        HopByHop::bit(lower) != 0
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto`.
pub(crate) fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, scheme: &'static str) {
    // One lookup for both reading and replacing the header.
    match headers.entry(&X_FORWARDED_FOR) {
        Entry::Occupied(mut entry) => {
            let mut buffer = [0u8; 64];
            let client_text = format_ip(client, &mut buffer);
            let value = match entry.get().to_str() {
                Ok(existing) if !existing.is_empty() => {
                    HeaderValue::from_bytes(&[existing.as_bytes(), b", ", client_text].concat())
                }
                _ => HeaderValue::from_bytes(client_text),
            };
            if let Ok(value) = value {
                entry.insert(value);
            }
        }
        Entry::Vacant(entry) => {
            if let Some(value) = address_value(client) {
                entry.insert(value);
            }
        }
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
}

/// `ip` as a header value. The last one made on this thread is kept: a gateway's requests come
/// from few addresses in a row (keep-alive connections, or a load balancer in front), and a
/// kept value costs a reference count instead of formatting and an allocation per request.
fn address_value(ip: IpAddr) -> Option<HeaderValue> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(IpAddr, HeaderValue)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((kept, value)) = &*last
            && *kept == ip
        {
            return Some(value.clone());
        }
        let mut buffer = [0u8; 64];
        let value = HeaderValue::from_bytes(format_ip(ip, &mut buffer)).ok()?;
        *last = Some((ip, value.clone()));
        Some(value)
    })
}

/// The text form of `ip` (as `Display` writes it), in `buffer`.
fn format_ip(ip: IpAddr, buffer: &mut [u8; 64]) -> &[u8] {
    use std::io::Write;
    if let IpAddr::V4(ip) = ip {
        // The common case by hand: `Display` goes through the formatter (and its padding
        // support), about a thousand instructions per request.
        // At most 15 bytes ("255.255.255.255"), well inside the buffer.
        let mut len = 0;
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                buffer[len] = b'.';
                len += 1;
            }
            if octet >= 100 {
                buffer[len] = b'0' + octet / 100;
                len += 1;
            }
            if octet >= 10 {
                buffer[len] = b'0' + octet / 10 % 10;
                len += 1;
            }
            buffer[len] = b'0' + octet % 10;
            len += 1;
        }
        return &buffer[..len];
    }
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    // 64 bytes hold any IPv6 text form (at most 45), so the write cannot fail.
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    &buffer[..len]
}

/// The parts of a request that every attempt sends again (`http::request::Parts` is not
/// `Clone` because of its extensions, which we do not forward).
#[derive(Clone, Debug)]
pub(crate) struct RequestHead {
    method: http::Method,
    uri: Uri,
    headers: HeaderMap,
    /// The client's address (the balancer's hash key for `SourceIP`).
    client: IpAddr,
    /// The connection's peer and the listener's scheme: the `X-Forwarded-For` / `-Proto` the
    /// request is sent with. Written with the head, not kept in `headers`: a balancer hashing
    /// on a header sees the request's fields as the client sent them (after the request
    /// filters), without the gateway's `X-Forwarded-*`; `SourceIP` hashes on the client.
    peer: IpAddr,
    scheme: &'static str,
}

impl RequestHead {
    /// Takes the head of a client request, removing hop-by-hop headers; the request is sent
    /// with `X-Forwarded-For` (the connection's `peer`) / `X-Forwarded-Proto`. `client` is who
    /// the client is (`client_ip.rs`), the balancer's key.
    pub(crate) fn from_client(
        parts: http::request::Parts,
        peer: IpAddr,
        client: IpAddr,
        scheme: &'static str,
    ) -> RequestHead {
        let mut head = RequestHead {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            client,
            peer,
            scheme,
        };
        strip_hop_by_hop(&mut head.headers, true);
        head
    }

    /// What the balancer may look at: the headers as they will be sent, and the client.
    pub(crate) fn pick_context(&self, now: std::time::Instant) -> PickContext<'_> {
        PickContext {
            headers: &self.headers,
            client: self.client,
            now,
        }
    }

    /// The headers, to adjust before sending.
    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Writes the request out for an HTTP/1.1 `endpoint`, as [`RequestHead::into_request`]
    /// would address it (origin form, `Host` from the target's authority, else the client's,
    /// else the endpoint), without building a request on the way.
    pub(crate) fn to_http1(&self, body: RequestBody, endpoint: &Authority) -> Http1Request {
        let target = self.uri.path_and_query().map_or("", PathAndQuery::as_str);
        let host = match self.uri.authority() {
            Some(authority) => HostField::Set(authority.as_str()),
            None => HostField::Default(endpoint.as_str()),
        };
        let mut buffer = [0u8; 64];
        let forwarded = Forwarded {
            client: format_ip(self.peer, &mut buffer),
            proto: self.scheme,
        };
        Http1Request::new(
            &self.method,
            target,
            host,
            &self.headers,
            Some(forwarded),
            body,
        )
    }

    /// Builds the upstream request for `endpoint`.
    ///
    /// HTTP/1.1 upstream: origin-form URI (`/path?query`), `Host` header carrying the virtual
    /// host. h2c upstream: the URI authority is the virtual host (it
    /// becomes `:authority`) and the `Host` header is dropped.
    pub(crate) fn into_request(
        self,
        body: RequestBody,
        endpoint: &Authority,
        protocol: AppProtocol,
    ) -> Result<Request<RequestBody>, http::Error> {
        let RequestHead {
            method,
            uri,
            mut headers,
            peer,
            scheme,
            ..
        } = self;
        add_forwarded(&mut headers, peer, scheme);
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let (uri, version) = match protocol {
            AppProtocol::H2c => {
                // `:authority` is the virtual host: the client's authority, else its Host header,
                // else (an HTTP/1.0 client without Host) the endpoint.
                let host = match (uri.authority(), headers.get(header::HOST)) {
                    (Some(authority), _) => authority.clone(),
                    (None, Some(value)) => Authority::try_from(value.as_bytes())?,
                    (None, None) => endpoint.clone(),
                };
                headers.remove(header::HOST);
                let uri = Uri::builder()
                    .scheme(UriScheme::HTTP)
                    .authority(host)
                    .path_and_query(path)
                    .build()?;
                (uri, Version::HTTP_2)
            }
            AppProtocol::Http1 | AppProtocol::WebSocket => {
                // The target's authority wins over Host (RFC 9112 §3.2.2 for absolute-form
                // targets; HTTP/2 clients send `:authority`), and routing used it, so the
                // backend must see it too. An HTTP/1.0 client may send neither: HTTP/1.1
                // requires Host, so the endpoint stands in.
                match uri.authority() {
                    Some(authority) => {
                        headers.insert(header::HOST, HeaderValue::from_str(authority.as_str())?);
                    }
                    None if !headers.contains_key(header::HOST) => {
                        headers.insert(header::HOST, HeaderValue::from_str(endpoint.as_str())?);
                    }
                    None => {}
                }
                // Origin form: the pool picks the connection by endpoint address.
                (Uri::from(path), Version::HTTP_11)
            }
        };
        let mut request = Request::new(body);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.version_mut() = version;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// A client body for the upstream pools (none when it has ended already: no box); its errors
/// are marked as the client's ([`upstream::ClientBodyError`]), so that they never count
/// against the backend.
pub(crate) fn stream_body(body: ClientBody) -> RequestBody {
    if http_body::Body::is_end_stream(&body) {
        return RequestBody::empty();
    }
    RequestBody::new(body.map_err(upstream::ClientBodyError::boxed))
}

/// Cleans an upstream response for the client.
pub(crate) fn client_response(response: &mut Response<UpstreamBody>) {
    strip_hop_by_hop(response.headers_mut(), false);
}

#[cfg(test)]
mod tests;
