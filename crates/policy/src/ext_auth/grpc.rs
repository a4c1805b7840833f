//! The gRPC protocol of a check: one unary call of `envoy.service.auth.v3.Authorization/Check`
//! over HTTP/2 (Envoy's `grpc_service`, Envoy Gateway's `extAuth.grpc`).
//!
//! The request is a `CheckRequest` whose `attributes` carry, as Envoy fills them: the client as
//! `source` (address and port), and `request.http` with the `x-request-id` as `id`, the
//! method, the headers (lower-case names, the pseudo-headers `:authority`, `:method`, `:path`,
//! `:scheme` too, repeated headers joined with `,`), path (with query), host, scheme,
//! protocol, body size and, with `withBody`, the body. Envoy puts the body in `body` (text) or,
//! with `packAsBytes`, in `raw_body`; services read one or the other, so both are filled
//! (`body` only when the bytes are UTF-8). The gateway does not know its own address here,
//! so `destination` is left out.
//!
//! The answer is judged in two layers, as Envoy does:
//! - the call: HTTP status 200, a gRPC `content-type`, a `grpc-status` (in the trailers, or in
//!   the head of a Trailers-Only answer) of 0, and exactly one uncompressed message frame that
//!   decodes as a `CheckResponse`. Anything else is an error of the service ([`Verdict::Error`],
//!   `fail_open` decides), never a denial and never a panic.
//! - the decision: `status.code` 0 allows (a missing `status` reads as code 0, as protobuf
//!   defaults say and Envoy does), with `ok_response.headers` and `headers_to_remove` applied to
//!   the upstream request; any other code denies, with `denied_response`'s status (403 when
//!   missing or not a valid final status), headers and body.
//!
//! `HeaderValueOption` semantics: a set `append` (deprecated, but what most services send)
//! wins: true appends, false replaces. Without it `append_action` decides, its default
//! `APPEND_IF_EXISTS_OR_ADD` read as *replace*: Envoy documents that `append` "defaults to
//! false" in these messages, and proto3 cannot tell an unset action from 0 (recent Envoy
//! releases apply the enum literally and append; replacing is the safer reading: a value the
//! client forged does not survive beside the service's). A service that wants to append sets
//! `append: true`. An empty value is dropped unless `keep_empty_value`; an invalid name or value
//! is skipped (Envoy skips them).

use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Method, Request, StatusCode, Version, request, response};
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use snapshot::security::ExtAuth;
use std::net::SocketAddr;

use super::proto::envoy::config::core::v3::{
    Address, HeaderValueOption, SocketAddress, address, header_value_option::HeaderAppendAction,
    socket_address,
};
use super::proto::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
    attribute_context, check_response::HttpResponse,
};
use super::{DENIED, HeaderChange, HeaderChanges, MAX_ANSWER_BYTES, PARTIAL_BODY, Verdict};
use crate::Denial;

/// The path of the `Check` method.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// Length of a gRPC message frame's prefix: a compressed flag and a big-endian length.
const FRAME_PREFIX: usize = 5;

/// The gRPC check: see the module doc. `headers` are those selected by `mod.rs`.
pub(super) fn check_request(
    settings: &ExtAuth,
    parts: &request::Parts,
    headers: HeaderMap,
    client: SocketAddr,
    scheme: &str,
    body: Option<(Bytes, bool)>,
) -> Request<Bytes> {
    let message = CheckRequest {
        attributes: Some(attributes(parts, &headers, client, scheme, body.as_ref())),
    };
    let frame = frame(&message).unwrap_or_else(|| {
        // Only a body over 4 GiB could overflow the frame's length: send the check without it.
        let without_body = CheckRequest {
            attributes: Some(attributes(parts, &headers, client, scheme, None)),
        };
        frame(&without_body).unwrap_or_default()
    });
    let mut request = Request::new(frame);
    *request.method_mut() = Method::POST;
    *request.uri_mut() = ::http::Uri::from_static(CHECK_PATH);
    *request.version_mut() = Version::HTTP_2;
    let check_headers = request.headers_mut();
    check_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    check_headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Ok(timeout) = HeaderValue::from_str(&grpc_timeout(settings.timeout)) {
        // The service may give up when the gateway will have stopped waiting.
        check_headers.insert(GRPC_TIMEOUT, timeout);
    }
    request
}

const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// A message in one uncompressed gRPC frame; `None` when it is 4 GiB or more.
fn frame(message: &CheckRequest) -> Option<Bytes> {
    let length = u32::try_from(message.encoded_len()).ok()?;
    let mut frame = BytesMut::with_capacity(FRAME_PREFIX + message.encoded_len());
    frame.put_u8(0);
    frame.put_u32(length);
    message.encode(&mut frame).ok()?;
    Some(frame.freeze())
}

/// `grpc-timeout` (at most 8 digits): milliseconds, or whole seconds when longer.
pub(super) fn grpc_timeout(timeout: std::time::Duration) -> String {
    let millis = timeout.as_millis();
    if millis <= 99_999_999 {
        format!("{}m", millis.max(1))
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    }
}

/// The `attributes` of the check: see the module doc.
fn attributes(
    parts: &request::Parts,
    headers: &HeaderMap,
    client: SocketAddr,
    scheme: &str,
    body: Option<&(Bytes, bool)>,
) -> AttributeContext {
    let host = super::request_host(parts).unwrap_or_default().to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |target| target.as_str())
        .to_owned();
    let mut map = header_map(headers);
    map.insert(":authority".to_owned(), host.clone());
    map.insert(":method".to_owned(), parts.method.as_str().to_owned());
    map.insert(":path".to_owned(), path.clone());
    map.insert(":scheme".to_owned(), scheme.to_owned());
    let mut http = attribute_context::HttpRequest {
        id: text(headers.get("x-request-id")),
        method: parts.method.as_str().to_owned(),
        path,
        host,
        scheme: scheme.to_owned(),
        size: body_size(&parts.headers, body),
        protocol: protocol(parts.version).to_owned(),
        ..Default::default()
    };
    if let Some((bytes, truncated)) = body {
        map.insert(PARTIAL_BODY.as_str().to_owned(), truncated.to_string());
        if let Ok(text) = std::str::from_utf8(bytes) {
            http.body = text.to_owned();
        }
        http.raw_body = bytes.to_vec();
    }
    http.headers = map;
    AttributeContext {
        source: Some(attribute_context::Peer {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    protocol: socket_address::Protocol::Tcp.into(),
                    address: client.ip().to_string(),
                    port_specifier: Some(socket_address::PortSpecifier::PortValue(u32::from(
                        client.port(),
                    ))),
                })),
            }),
            ..Default::default()
        }),
        destination: None,
        request: Some(attribute_context::Request { http: Some(http) }),
    }
}

/// Headers as the protocol's map: lower-case names (as `HeaderName`s are), repeated headers
/// joined with `,`, values not valid UTF-8 decoded lossily.
fn header_map(headers: &HeaderMap) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::with_capacity(headers.keys_len() + 5);
    for name in headers.keys() {
        let mut joined = String::new();
        for value in headers.get_all(name) {
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(&String::from_utf8_lossy(value.as_bytes()));
        }
        map.insert(name.as_str().to_owned(), joined);
    }
    map
}

/// A header value as text (empty when absent).
fn text(value: Option<&HeaderValue>) -> String {
    value.map_or_else(String::new, |value| {
        String::from_utf8_lossy(value.as_bytes()).into_owned()
    })
}

/// The body's size: its `Content-Length`, else the buffered body's length when it is whole,
/// else -1 (unknown, as the protocol says).
fn body_size(client_headers: &HeaderMap, body: Option<&(Bytes, bool)>) -> i64 {
    let declared = client_headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    match (declared, body) {
        (Some(length), _) => length,
        (None, Some((bytes, false))) => i64::try_from(bytes.len()).unwrap_or(-1),
        _ => -1,
    }
}

/// The protocol names Envoy uses.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Reads the service's answer: see the module doc.
pub(super) fn judge(head: response::Parts, body: Bytes, trailers: Option<&HeaderMap>) -> Verdict {
    if head.status != StatusCode::OK {
        return Verdict::Error("grpc-http-status");
    }
    let is_grpc = head
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if !is_grpc {
        return Verdict::Error("not-grpc");
    }
    // Trailers-Only: an answer without a message puts `grpc-status` in its head.
    let status = trailers
        .and_then(|trailers| trailers.get(&GRPC_STATUS))
        .or_else(|| head.headers.get(&GRPC_STATUS));
    let Some(status) = status else {
        return Verdict::Error("missing-grpc-status");
    };
    match status.to_str().ok().map(|code| code.trim().parse::<u32>()) {
        Some(Ok(0)) => {}
        Some(Ok(_)) => return Verdict::Error("grpc-error"),
        _ => return Verdict::Error("bad-grpc-status"),
    }
    let message = match single_message(&body) {
        Ok(message) => message,
        Err(why) => return Verdict::Error(why),
    };
    match CheckResponse::decode(message) {
        Ok(response) => decide(response),
        Err(_) => Verdict::Error("bad-check-response"),
    }
}

/// The one message of a unary answer's body, which must be exactly one uncompressed frame
/// (the check asks for no compression: it sends no `grpc-accept-encoding`).
fn single_message(body: &Bytes) -> Result<Bytes, &'static str> {
    let Some((&flag, rest)) = body.split_first() else {
        return Err("missing-message");
    };
    let Some(length) = rest.first_chunk::<4>() else {
        return Err("truncated-frame");
    };
    match flag {
        0 => {}
        1 => return Err("compressed-message"),
        _ => return Err("bad-frame"),
    }
    let length = usize::try_from(u32::from_be_bytes(*length)).unwrap_or(usize::MAX);
    if length > MAX_ANSWER_BYTES {
        return Err("oversized-frame");
    }
    let available = body.len().saturating_sub(FRAME_PREFIX);
    if available < length {
        return Err("truncated-frame");
    }
    if available > length {
        return Err("extra-frames");
    }
    Ok(body.slice(FRAME_PREFIX..))
}

/// The decision in a well-formed `CheckResponse`.
fn decide(response: CheckResponse) -> Verdict {
    let code = response.status.as_ref().map_or(0, |status| status.code);
    if code == 0 {
        let changes = match response.http_response {
            Some(HttpResponse::OkResponse(ok)) => ok_changes(ok),
            // A denied_response beside an OK status is ignored, as Envoy does.
            _ => HeaderChanges::default(),
        };
        return Verdict::Allow(changes);
    }
    let denied = match response.http_response {
        Some(HttpResponse::DeniedResponse(denied)) => denied,
        _ => DeniedHttpResponse::default(),
    };
    Verdict::Deny(denial(denied))
}

/// The changes of an `OkHttpResponse`: its headers in order, then its removals.
fn ok_changes(ok: OkHttpResponse) -> HeaderChanges {
    let mut changes = HeaderChanges::default();
    for option in &ok.headers {
        if let Some(change) = header_change(option) {
            changes.push(change);
        }
    }
    for name in &ok.headers_to_remove {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            changes.push(HeaderChange::Remove(name));
        }
    }
    changes
}

/// One `HeaderValueOption` as a change (see the module doc); `None` to skip it.
fn header_change(option: &HeaderValueOption) -> Option<HeaderChange> {
    let header = option.header.as_ref()?;
    let name = HeaderName::from_bytes(header.key.as_bytes()).ok()?;
    let value = if header.raw_value.is_empty() {
        HeaderValue::from_str(&header.value).ok()?
    } else {
        HeaderValue::from_bytes(&header.raw_value).ok()?
    };
    if value.is_empty() && !option.keep_empty_value {
        return None;
    }
    Some(match option.append {
        Some(true) => HeaderChange::Append(name, value),
        Some(false) => HeaderChange::Set(name, value),
        None => match HeaderAppendAction::try_from(option.append_action).ok()? {
            HeaderAppendAction::AppendIfExistsOrAdd
            | HeaderAppendAction::OverwriteIfExistsOrAdd => HeaderChange::Set(name, value),
            HeaderAppendAction::AddIfAbsent => HeaderChange::AddIfAbsent(name, value),
            HeaderAppendAction::OverwriteIfExists => HeaderChange::OverwriteIfExists(name, value),
        },
    })
}

/// The client's response for a `DeniedHttpResponse`.
fn denial(denied: DeniedHttpResponse) -> Denial {
    let status = denied
        .status
        .and_then(|status| u16::try_from(status.code).ok())
        .filter(|code| (200..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::FORBIDDEN);
    let mut changes = HeaderChanges::default();
    for option in &denied.headers {
        if let Some(change) = header_change(option) {
            changes.push(change);
        }
    }
    let mut headers = HeaderMap::new();
    changes.apply(&mut headers);
    Denial {
        status,
        headers,
        body: Bytes::from(denied.body),
        reason: DENIED,
    }
}
