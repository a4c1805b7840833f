//! gRPC in the data plane: recognising a gRPC call, and answering one in gRPC's terms when the
//! gateway answers it itself.
//!
//! A gRPC client reads `grpc-status`, not the HTTP status, so an error the gateway produces for
//! a gRPC call (no route: `UNIMPLEMENTED`, as GEP-1016 expects; no backend: `UNAVAILABLE`; ...)
//! is a Trailers-Only response: HTTP 200, `content-type: application/grpc`, `grpc-status` and a
//! percent-encoded `grpc-message` in the headers, and the end of the stream (gRPC over HTTP/2,
//! "Responses"). Which code an error gets is decided in `error.rs` with every other status.
//!
//! Everything else about gRPC is plain HTTP/2 to the proxy: calls are routed by path like any
//! request (`compile` turns GRPCRoute method matches into path matches) and bodies stream frame
//! by frame in both directions, so messages and the backend's trailers (`grpc-status`) pass
//! through untouched. It does not parse messages, transcode, or speak gRPC-Web.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version, header};

use crate::body::ResponseBody;

#[cfg(test)]
mod tests;

/// Which protocol the client speaks, decided from the request head before routing, so that
/// an error can be answered in that protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientProtocol {
    /// Plain HTTP: errors are HTTP statuses with a text body.
    Http,
    /// gRPC (`content-type: application/grpc` or `application/grpc+proto`, ...): errors are
    /// gRPC statuses.
    Grpc,
}

impl ClientProtocol {
    /// gRPC when the request is HTTP/2 and its `content-type` starts with `application/grpc`
    /// (the gRPC over HTTP/2 spec's Content-Type production; `application/grpc-web` is another
    /// protocol and stays HTTP). gRPC runs over HTTP/2 only: an HTTP/1.x request is answered
    /// in HTTP whatever it says it carries, and its fields are not looked at (one lookup less
    /// on every HTTP/1.1 request).
    pub(crate) fn of(version: Version, headers: &HeaderMap) -> ClientProtocol {
        const GRPC: &[u8] = b"application/grpc";
        if version != Version::HTTP_2 {
            return ClientProtocol::Http;
        }
        let Some(value) = headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes) else {
            return ClientProtocol::Http;
        };
        let is_grpc = value
            .get(..GRPC.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(GRPC))
            && matches!(value.get(GRPC.len()), None | Some(b'+' | b';'));
        if is_grpc {
            ClientProtocol::Grpc
        } else {
            ClientProtocol::Http
        }
    }
}

/// The gRPC status codes the gateway produces (`google.rpc.Code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrpcCode {
    /// 2: no better code applies.
    Unknown = 2,
    /// 4: the request deadline (`timeouts.request` / `timeouts.backendRequest`) ran out.
    DeadlineExceeded = 4,
    /// 7: the caller may not do this.
    PermissionDenied = 7,
    /// 8: a quota ran out (RateLimitPolicy).
    ResourceExhausted = 8,
    /// 12: nothing serves this method (no listener or route matches).
    Unimplemented = 12,
    /// 13: the request or the config is broken in a way retrying will not fix.
    Internal = 13,
    /// 14: the backend cannot be reached or answered badly; retrying may help.
    Unavailable = 14,
    /// 16: the caller is not authenticated.
    Unauthenticated = 16,
}

impl GrpcCode {
    /// The code a gRPC client infers from an HTTP status (gRPC's "HTTP to gRPC Status Code
    /// Mapping"), with 500 as `INTERNAL` rather than the table's `UNKNOWN`: when the gateway
    /// answers 500 it knows the config, not the backend, is at fault.
    pub(crate) fn from_http(status: StatusCode) -> GrpcCode {
        match status.as_u16() {
            400 | 500 => GrpcCode::Internal,
            401 => GrpcCode::Unauthenticated,
            403 => GrpcCode::PermissionDenied,
            404 => GrpcCode::Unimplemented,
            429 | 502 | 503 | 504 => GrpcCode::Unavailable,
            _ => GrpcCode::Unknown,
        }
    }

    /// The `grpc-status` value.
    fn header_value(self) -> HeaderValue {
        HeaderValue::from(self as u16)
    }
}

/// A Trailers-Only gRPC error response: HTTP 200 and end of stream, with the status in the
/// headers. `message` becomes `grpc-message` (trimmed, percent-encoded); `error_code` is kept
/// as `x-portcullis-error`, as on HTTP error responses.
pub(crate) fn error_response(
    code: GrpcCode,
    message: &str,
    error_code: &'static str,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", code.header_value());
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message.trim())) {
        headers.insert("grpc-message", message);
    }
    headers.insert("x-portcullis-error", HeaderValue::from_static(error_code));
    response
}

/// `grpc-message` encoding: UTF-8 bytes outside printable ASCII, and `%` itself, as `%XX`.
fn percent_encode(message: &str) -> String {
    let mut encoded = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
