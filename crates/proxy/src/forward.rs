//! Turning a client request into an upstream request and an upstream response into a client
//! response: hop-by-hop headers (RFC 9110 §7.6.1), `X-Forwarded-*`, Host / `:authority`, and the
//! version the upstream pool speaks.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme, Uri};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use upstream::{AppProtocol, PickContext, RequestBody};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Removes hop-by-hop headers: the fixed set, and every header the `Connection` header names.
/// `TE: trailers` survives on requests because gRPC needs it end to end.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
    // Headers listed in Connection are hop-by-hop too. Collect names first (rare path: only
    // when a Connection header is present).
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in named {
            if name != header::TE {
                headers.remove(&name);
            }
        }
        headers.remove(header::CONNECTION);
    }
    headers.remove(&KEEP_ALIVE);
    headers.remove(&PROXY_CONNECTION);
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::UPGRADE);
    headers.remove(header::TRAILER);
    if is_request {
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

/// Appends the client address to `X-Forwarded-For` and sets `X-Forwarded-Proto`.
pub(crate) fn add_forwarded(headers: &mut HeaderMap, client: IpAddr, scheme: &'static str) {
    let mut buffer = [0u8; 64];
    let client_text = format_ip(client, &mut buffer);
    let value = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => {
            HeaderValue::from_str(&format!("{existing}, {client_text}"))
        }
        _ => HeaderValue::from_str(client_text),
    };
    if let Ok(value) = value {
        headers.insert(&X_FORWARDED_FOR, value);
    }
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
}

fn format_ip(ip: IpAddr, buffer: &mut [u8; 64]) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    // 64 bytes hold any IPv6 text form (at most 45), so the write cannot fail.
    let _ = write!(cursor, "{ip}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    std::str::from_utf8(&buffer[..len]).unwrap_or("")
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
}

impl RequestHead {
    /// Takes the head of a client request, removing hop-by-hop headers and adding
    /// `X-Forwarded-For` / `X-Forwarded-Proto`.
    pub(crate) fn from_client(
        parts: http::request::Parts,
        client: IpAddr,
        scheme: &'static str,
    ) -> RequestHead {
        let mut head = RequestHead {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            client,
        };
        strip_hop_by_hop(&mut head.headers, true);
        add_forwarded(&mut head.headers, client, scheme);
        head
    }

    /// What the balancer may look at: the headers as they will be sent, and the client.
    pub(crate) fn pick_context(&self) -> PickContext<'_> {
        PickContext {
            headers: &self.headers,
            client: self.client,
        }
    }

    /// The headers, to adjust before sending.
    pub(crate) fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// Builds the upstream request for `endpoint`.
    ///
    /// HTTP/1.1 upstream: absolute URI with the endpoint as authority (the pool key), `Host`
    /// header carrying the virtual host. h2c upstream: the URI authority is the virtual host (it
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
            ..
        } = self;
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
                let uri = Uri::builder()
                    .scheme(UriScheme::HTTP)
                    .authority(endpoint.clone())
                    .path_and_query(path)
                    .build()?;
                (uri, Version::HTTP_11)
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

/// Boxes a client body for the upstream pools.
pub(crate) fn stream_body(body: Incoming) -> RequestBody {
    body.map_err(Into::into).boxed_unsync()
}

/// Cleans an upstream response for the client.
pub(crate) fn client_response(response: &mut Response<Incoming>) {
    strip_hop_by_hop(response.headers_mut(), false);
}

#[cfg(test)]
mod tests;
