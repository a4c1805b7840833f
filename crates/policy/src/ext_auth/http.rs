//! The HTTP protocol of a check (Envoy's `http_service`, Envoy Gateway's `extAuth.http`).
//!
//! The check is the client's request re-addressed: the original method, `path_prefix` followed
//! by the original path and query, the selected headers (see `mod.rs`), and the first bytes of
//! the body when `withBody` is set (with `x-envoy-auth-partial-body`), else no body. Envoy
//! sends the method unchanged too, so a service may route on it.
//!
//! The answer's status decides, as in Envoy's `RawHttpClientImpl::toResponse`:
//! - 2xx: allowed. Each header named in `headersToBackend` (`headers_to_upstream`) takes the
//!   answer's values on the upstream request. Unlike Envoy, a listed header the answer does
//!   not carry is *removed* from the request: the upstream can then trust that such a header
//!   (say `x-user-id`) came from the authorization service, never from the client. This is
//!   what JWT `claimToHeaders` does too. `x-envoy-auth-headers-to-remove` (a comma-separated
//!   list of names, Envoy's HTTP form of `headers_to_remove`) removes request headers, such as
//!   the credentials the service consumed.
//! - 5xx: the service failed; `fail_open` decides (Envoy: `failure_mode_allow`).
//! - anything else: denied. The client gets the service's status, headers (less hop-by-hop
//!   and framing ones) and body: a 401 with `WWW-Authenticate`, or a 302 to a login page,
//!   reach the browser as the service wrote them.

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::uri::PathAndQuery;
use ::http::{Request, Uri, Version, request, response};
use bytes::Bytes;
use snapshot::security::ExtAuth;

use super::{DENIED, HeaderChange, HeaderChanges, PARTIAL_BODY, Verdict};
use crate::Denial;

/// The HTTP check: see the module doc. `headers` are those selected by `mod.rs`.
pub(super) fn check_request(
    path_prefix: &str,
    parts: &request::Parts,
    mut headers: HeaderMap,
    body: Option<(Bytes, bool)>,
) -> Request<Bytes> {
    if !headers.contains_key(header::HOST)
        && let Some(host) = super::request_host(parts)
        && let Ok(value) = HeaderValue::from_str(host)
    {
        // An HTTP/2 client request has `:authority` only; the HTTP/1.1 check needs `Host`.
        headers.insert(header::HOST, value);
    }
    let body = match body {
        Some((bytes, truncated)) => {
            headers.insert(PARTIAL_BODY, super::partial_body_value(truncated));
            bytes
        }
        None => Bytes::new(),
    };
    // The check's own framing: the client's Content-Length (not forwarded) described a body
    // the check may not carry.
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = check_uri(path_prefix, parts.uri.path_and_query());
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    request
}

/// `path_prefix` followed by the original path and query. A prefix byte that cannot appear
/// in a URI path is percent-encoded, so any prefix gives a valid URI.
fn check_uri(path_prefix: &str, original: Option<&PathAndQuery>) -> Uri {
    let original = original.map_or("/", PathAndQuery::as_str);
    let mut target = String::with_capacity(path_prefix.len() + original.len());
    for byte in path_prefix.bytes() {
        if is_path_byte(byte) {
            target.push(char::from(byte));
        } else {
            target.push_str(&format!("%{byte:02X}"));
        }
    }
    target.push_str(original);
    Uri::try_from(target).unwrap_or_else(|_| {
        // Unreachable in practice (the prefix is encoded and the original parsed already);
        // the original target alone is still a valid URI.
        Uri::try_from(original).unwrap_or_else(|_| Uri::from_static("/"))
    })
}

/// Bytes that stand for themselves in a URI path: unreserved, sub-delims, `:`, `@`, `/`
/// (RFC 3986 §3.3), and `%` (an escape the prefix already has).
fn is_path_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&byte)
}

/// Reads the service's answer: see the module doc.
pub(super) fn judge(settings: &ExtAuth, head: response::Parts, body: Bytes) -> Verdict {
    let status = head.status;
    if status.is_success() {
        return Verdict::Allow(upstream_changes(settings, &head.headers));
    }
    if status.is_server_error() {
        return Verdict::Error("server-error");
    }
    if status.is_informational() {
        // A 1xx is never a final answer; the client could not be given it either.
        return Verdict::Error("bad-status");
    }
    Verdict::Deny(Denial {
        status,
        headers: client_headers(head.headers),
        body,
        reason: DENIED,
    })
}

/// The `headers_to_upstream` of an allowing answer, as changes to the upstream request.
fn upstream_changes(settings: &ExtAuth, answer: &HeaderMap) -> HeaderChanges {
    let mut changes = HeaderChanges::default();
    let every: Vec<HeaderName>;
    let names = if settings.all_headers_to_upstream {
        // Each name once; what may never be changed upstream (`Host`, framing, hop-by-hop)
        // is refused by `HeaderChanges::apply`, and the answer's own framing is not copied.
        let mut names: Vec<HeaderName> = answer
            .keys()
            .filter(|name| {
                ![
                    header::CONTENT_TYPE,
                    header::DATE,
                    header::SERVER,
                    HEADERS_TO_REMOVE,
                ]
                .contains(name)
            })
            .cloned()
            .collect();
        names.dedup();
        every = names;
        &every
    } else {
        &settings.headers_to_upstream
    };
    for name in names {
        changes.push(HeaderChange::Remove(name.clone()));
        for value in answer.get_all(name) {
            changes.push(HeaderChange::Append(name.clone(), value.clone()));
        }
    }
    let removed = answer
        .get_all(HEADERS_TO_REMOVE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok());
    for name in removed {
        changes.push(HeaderChange::Remove(name));
    }
    changes
}

/// Envoy's header for `headers_to_remove` in an HTTP service's allowing answer.
const HEADERS_TO_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// The answer's headers a denied client gets: all but hop-by-hop ones (and those its
/// `Connection` names) and `Content-Length`, which the proxy sets for the body it sends.
fn client_headers(mut answer: HeaderMap) -> HeaderMap {
    let connection_named: Vec<HeaderName> = answer
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in connection_named {
        answer.remove(name);
    }
    let protected: Vec<HeaderName> = answer
        .keys()
        .filter(|name| super::is_protected(name))
        .cloned()
        .collect();
    for name in protected {
        answer.remove(name);
    }
    answer
}
