//! External authorization: the protocol of asking an authorization service about a request,
//! over plain HTTP or Envoy's `envoy.service.auth.v3.Authorization/Check` gRPC method.
//!
//! Owns the two halves of one check, both pure: [`check_request`] builds the request to send
//! to the service from the client's request, and [`judge`] reads the service's answer into a
//! [`Verdict`]. It deliberately owns no transport: the service is a backend of the snapshot
//! ([`snapshot::security::ExtAuth::backend`]), so the proxy sends the check through its own
//! upstream machinery (balancer, health checks, pools; HTTP/1.1 for [`ExtAuthProtocol::Http`],
//! HTTP/2 for [`ExtAuthProtocol::Grpc`]), enforces [`ExtAuth::timeout`] and applies
//! [`ExtAuth::fail_open`] through [`failure_verdict`]. The proxy's side, in order:
//!
//! 1. buffer up to `settings.body.max_bytes` of the client body when `settings.body` is set;
//! 2. `check_request(settings, &parts, client, scheme, body)`, send it to the backend, with the
//!    backend's authority, within `settings.timeout`;
//! 3. collect the answer's head, body (at most [`MAX_ANSWER_BYTES`]) and, for gRPC, trailers;
//!    `judge(settings, head, body, trailers)`;
//! 4. a connection failure, a timeout, an answer too large or [`Verdict::Error`] →
//!    [`failure_verdict`]; then [`Verdict::Allow`] → [`HeaderChanges::apply`] to the request
//!    going upstream, [`Verdict::Deny`] → the [`Denial`] is the response.
//!
//! The semantics are Envoy's `ext_authz` filter (and so Envoy Gateway's `extAuth`), with the
//! differences written next to the code that makes them:
//! - HTTP (`http.rs`): a 2xx allows; a 5xx is an error of the service (Envoy: subject to
//!   `failure_mode_allow`); any other status denies, and the service's status, headers and body
//!   reach the client (a 401 with `WWW-Authenticate`, a 302 to a login page).
//! - gRPC (`grpc.rs`): a `CheckResponse` whose `status.code` is 0 allows, any other code
//!   denies with the `denied_response`; a call that fails (a non-zero `grpc-status`, a
//!   malformed frame or message) is an error of the service.
//!
//! Decided here, for both protocols:
//! - The service sees the request as the gateway would forward it (the proxy passes the parts
//!   after authentication added its headers), with the original `Host` and the
//!   `X-Forwarded-For` / `X-Forwarded-Proto` the upstream would get, so that a service like
//!   oauth2-proxy can build redirects. Hop-by-hop headers are never sent, nor `Expect`.
//! - Headers an allowing answer gives can never touch the framing or routing of the upstream
//!   request (`Host`, `Content-Length`, `Transfer-Encoding`, hop-by-hop): a compromised or buggy
//!   service must not be able to smuggle a request.

mod grpc;
mod http;
pub mod proto;

#[cfg(test)]
mod tests;

pub use grpc::CHECK_PATH;

use std::net::SocketAddr;

use bytes::Bytes;
// `::http`: the crate, not this module's `http` (the HTTP protocol of a check).
use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Request, StatusCode, request, response};
use snapshot::security::{ExtAuth, ExtAuthProtocol};

use crate::Denial;

/// The most of an answer's body the proxy should collect, and [`judge`] accepts: an answer
/// longer than this is an error of the service (a deny page or a `CheckResponse` is far
/// smaller).
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// [`Denial::reason`] of a request the service refused.
pub const DENIED: &str = "ext-auth-denied";

/// [`Denial::reason`] of a request refused because the service failed and the policy fails
/// closed.
pub const UNAVAILABLE: &str = "ext-auth-unavailable";

/// Header telling the service whether the body it got is the whole body (`false`) or its first
/// `max_bytes` (`true`); Envoy's name, which services written for Envoy read.
pub const PARTIAL_BODY: HeaderName = HeaderName::from_static("x-envoy-auth-partial-body");

/// What the authorization service decided about a request.
#[derive(Debug)]
#[must_use]
pub enum Verdict {
    /// The request goes on, with these changes to its headers.
    Allow(HeaderChanges),
    /// The request is refused with this response (status, headers and body the service chose).
    Deny(Denial),
    /// The service failed (a fixed word for logs and metrics): the policy's `fail_open` decides,
    /// through [`failure_verdict`].
    Error(&'static str),
}

/// The check to send for one client request.
///
/// - `parts`: the client request as the gateway will forward it (normalized path, headers
///   authentication added).
/// - `client`: the client's address (after trusted hops): the gRPC `source`, and appended to
///   `X-Forwarded-For` unless that list already holds it.
/// - `scheme`: the listener's scheme (`http` or `https`), sent as `X-Forwarded-Proto`.
/// - `body`: when `settings.body` is set, the first bytes of the client body (at most
///   `max_bytes`; longer is cut here) and whether the body was longer than that.
///
/// The result is in origin form (path only): the proxy sends it to the service's backend,
/// adding the backend's authority for gRPC, and must leave the `Host` header of an HTTP check
/// as it is (the original host). HTTP checks are HTTP/1.1, gRPC checks HTTP/2.
pub fn check_request(
    settings: &ExtAuth,
    parts: &request::Parts,
    client: SocketAddr,
    scheme: &str,
    body: Option<(&Bytes, bool)>,
) -> Request<Bytes> {
    let body = settings.body.and_then(|forwarding| {
        body.map(|(bytes, truncated)| {
            if bytes.len() > forwarding.max_bytes {
                (bytes.slice(..forwarding.max_bytes), true)
            } else {
                (bytes.clone(), truncated)
            }
        })
    });
    let headers = forwarded_headers(settings, &parts.headers, client, scheme);
    match &settings.protocol {
        ExtAuthProtocol::Http { path_prefix } => {
            http::check_request(path_prefix, parts, headers, body)
        }
        ExtAuthProtocol::Grpc => {
            grpc::check_request(settings, parts, headers, client, scheme, body)
        }
    }
}

/// Judges the service's answer: its head, its collected body (at most [`MAX_ANSWER_BYTES`])
/// and, for gRPC, its trailers (`None` when the answer had none). Never panics, whatever the
/// service sent.
pub fn judge(
    settings: &ExtAuth,
    head: response::Parts,
    body: Bytes,
    trailers: Option<&HeaderMap>,
) -> Verdict {
    if body.len() > MAX_ANSWER_BYTES {
        return Verdict::Error("answer-too-large");
    }
    match settings.protocol {
        ExtAuthProtocol::Http { .. } => http::judge(settings, head, body),
        ExtAuthProtocol::Grpc => grpc::judge(head, body, trailers),
    }
}

/// The verdict when the service could not decide: it could not be reached, timed out, sent an
/// answer too large, or [`judge`] returned [`Verdict::Error`]. `fail_open` lets the request go
/// on unchanged; otherwise it is refused with 403 (Envoy's default `status_on_error`).
pub fn failure_verdict(settings: &ExtAuth) -> Verdict {
    if settings.fail_open {
        Verdict::Allow(HeaderChanges::default())
    } else {
        Verdict::Deny(Denial::new(StatusCode::FORBIDDEN, UNAVAILABLE))
    }
}

/// Changes an allowing answer makes to the request sent upstream, applied in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HeaderChanges {
    changes: Vec<HeaderChange>,
}

/// One change to the upstream request's headers.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderChange {
    /// Replace every value of the header with this one, or add it.
    Set(HeaderName, HeaderValue),
    /// Add one more value (another field line) to the header.
    Append(HeaderName, HeaderValue),
    /// Add the header only when the request has none of that name.
    AddIfAbsent(HeaderName, HeaderValue),
    /// Replace the header's values when the request has it; nothing otherwise.
    OverwriteIfExists(HeaderName, HeaderValue),
    /// Remove every value of the header.
    Remove(HeaderName),
}

impl HeaderChanges {
    /// Adds a change at the end, unless it names a header no service may change (framing,
    /// routing and hop-by-hop headers: see the module doc).
    pub fn push(&mut self, change: HeaderChange) {
        let name = match &change {
            HeaderChange::Set(name, _)
            | HeaderChange::Append(name, _)
            | HeaderChange::AddIfAbsent(name, _)
            | HeaderChange::OverwriteIfExists(name, _)
            | HeaderChange::Remove(name) => name,
        };
        if !is_protected(name) {
            self.changes.push(change);
        }
    }

    /// The changes, in the order [`HeaderChanges::apply`] makes them.
    pub fn changes(&self) -> &[HeaderChange] {
        &self.changes
    }

    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Makes the changes to the headers of the request going upstream.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for change in &self.changes {
            match change {
                HeaderChange::Set(name, value) => {
                    headers.insert(name, value.clone());
                }
                HeaderChange::Append(name, value) => {
                    headers.append(name, value.clone());
                }
                HeaderChange::AddIfAbsent(name, value) => {
                    if !headers.contains_key(name) {
                        headers.insert(name, value.clone());
                    }
                }
                HeaderChange::OverwriteIfExists(name, value) => {
                    if headers.contains_key(name) {
                        headers.insert(name, value.clone());
                    }
                }
                HeaderChange::Remove(name) => {
                    headers.remove(name);
                }
            }
        }
    }
}

/// Headers an authorization service may not set or remove on the upstream request, nor send
/// back to the client in a denial: the ones that frame or route the message, and hop-by-hop
/// ones (RFC 9110 §7.6.1). The proxy computes the framing of what it sends itself.
fn is_protected(name: &HeaderName) -> bool {
    is_hop_by_hop(name) || name == header::HOST || name == header::CONTENT_LENGTH
}

/// The fixed hop-by-hop set (RFC 9110 §7.6.1, plus the legacy `Keep-Alive` and
/// `Proxy-Connection`, and `HTTP2-Settings`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "http2-settings"
    )
}

/// Whether a client request header is sent to the service: not hop-by-hop (nor named by
/// `Connection`), not the framing (`Content-Length`: the check has its own body), not `Expect`
/// (the check is sent whole), not [`PARTIAL_BODY`] (only the gateway says that), and listed in
/// `headers_to_backend` unless that is empty.
fn is_forwarded(settings: &ExtAuth, name: &HeaderName, connection_named: &[HeaderName]) -> bool {
    if is_hop_by_hop(name)
        || name == header::CONTENT_LENGTH
        || name == header::EXPECT
        || name == PARTIAL_BODY
        || connection_named.contains(name)
    {
        return false;
    }
    settings.headers_to_backend.is_empty()
        || name == header::HOST
        || settings.headers_to_backend.contains(name)
}

/// The client headers the service sees, plus `X-Forwarded-For` (the client appended, as the
/// proxy does for the upstream) and `X-Forwarded-Proto` (the listener's scheme).
fn forwarded_headers(
    settings: &ExtAuth,
    client_headers: &HeaderMap,
    client: SocketAddr,
    scheme: &str,
) -> HeaderMap {
    let connection_named: Vec<HeaderName> = client_headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut headers = HeaderMap::with_capacity(client_headers.len() + 2);
    for (name, value) in client_headers {
        if is_forwarded(settings, name, &connection_named) {
            headers.append(name, value.clone());
        }
    }
    let client_ip = client.ip().to_string();
    let forwarded_for = match headers
        .get(X_FORWARDED_FOR)
        .and_then(|value| value.to_str().ok())
    {
        // With trusted hops (`client_ip.rs`) the client was read from this very list: it is
        // not appended a second time.
        Some(existing) if existing.split(',').any(|entry| entry.trim() == client_ip) => {
            existing.to_owned()
        }
        Some(existing) if !existing.trim().is_empty() => format!("{existing}, {client_ip}"),
        _ => client_ip,
    };
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    if let Ok(value) = HeaderValue::from_str(scheme) {
        headers.insert(X_FORWARDED_PROTO, value);
    }
    headers
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The `partial body` header value.
fn partial_body_value(truncated: bool) -> HeaderValue {
    HeaderValue::from_static(if truncated { "true" } else { "false" })
}

/// The host the client asked for: the URI's authority (HTTP/2 `:authority`), else `Host`.
fn request_host(parts: &request::Parts) -> Option<&str> {
    parts
        .uri
        .authority()
        .map(|authority| authority.as_str())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
        })
}
