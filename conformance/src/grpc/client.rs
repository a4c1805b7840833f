//! The gRPC client: one unary call per connection, over h2c with prior knowledge.
//!
//! Reproduces how grpc-go turns what it receives into a status code, because the suite compares codes: the
//! `grpc-status` trailer (or header, for Trailers-Only responses); for a non-gRPC answer, the HTTP status mapped
//! as grpc-go maps it (404 is `Unimplemented`, 503 is `Unavailable`, ...); a failed connection is `Unavailable`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::wire::EchoAssertions;
use super::{
    DEADLINE_EXCEEDED, INTERNAL, OK, PERMISSION_DENIED, UNAUTHENTICATED, UNAVAILABLE,
    UNIMPLEMENTED, UNKNOWN,
};

/// How one RPC ended.
#[derive(Debug)]
pub(crate) struct GrpcOutcome {
    /// The status code.
    pub(crate) code: u32,
    /// `grpc-message` or a description of the transport failure.
    pub(crate) message: String,
    /// The decoded reply, when the code is OK.
    pub(crate) assertions: Option<EchoAssertions>,
}

impl GrpcOutcome {
    /// An outcome without a reply.
    fn failed(code: u32, message: String) -> Self {
        Self {
            code,
            message,
            assertions: None,
        }
    }
}

/// Calls `path` (e.g. `/pkg.Service/Method`) with an empty request message on `addr`, sending `authority` as
/// `:authority` and `metadata` as request headers (names lower-cased, as grpc-go's `metadata.New` does).
pub(crate) async fn call(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    metadata: &BTreeMap<String, String>,
    timeout: Duration,
) -> GrpcOutcome {
    match tokio::time::timeout(timeout, exchange(addr, authority, path, metadata)).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => GrpcOutcome::failed(UNAVAILABLE, format!("{error:#}")),
        Err(_elapsed) => {
            GrpcOutcome::failed(DEADLINE_EXCEEDED, format!("no answer within {timeout:?}"))
        }
    }
}

/// Sends the request and classifies the answer; transport errors are `Err`.
async fn exchange(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    metadata: &BTreeMap<String, String>,
) -> anyhow::Result<GrpcOutcome> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let _ignored = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("h2c handshake with {addr}"))?;
    let driver = tokio::spawn(connection);
    let mut request = Request::new(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = format!("http://{authority}{path}")
        .parse()
        .with_context(|| format!("invalid authority {authority:?} or path {path:?}"))?;
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("te", HeaderValue::from_static("trailers"));
    for (name, value) in metadata {
        let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
            .with_context(|| format!("invalid metadata name {name:?}"))?;
        let value = HeaderValue::from_str(value)
            .with_context(|| format!("invalid metadata value for {name}"))?;
        headers.append(name, value);
    }
    let response = sender
        .send_request(request)
        .await
        .context("sending the RPC")?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.context("reading the RPC response")?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    let data = collected.to_bytes();
    driver.abort();
    Ok(classify(parts.status, &parts.headers, &trailers, &data))
}

/// Turns a complete HTTP/2 response into a gRPC outcome, the way grpc-go does.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    trailers: &HeaderMap,
    data: &Bytes,
) -> GrpcOutcome {
    let is_grpc = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if !is_grpc || status != StatusCode::OK {
        return GrpcOutcome::failed(
            http_status_code(status),
            format!(
                "not a gRPC answer: HTTP {status}, content-type {:?}",
                headers.get(CONTENT_TYPE)
            ),
        );
    }
    let status_header = trailers
        .get("grpc-status")
        .or_else(|| headers.get("grpc-status"));
    let Some(code) = status_header
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u32>().ok())
    else {
        return GrpcOutcome::failed(INTERNAL, "the response carries no grpc-status".to_owned());
    };
    let message = trailers
        .get("grpc-message")
        .or_else(|| headers.get("grpc-message"))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    if code != OK {
        return GrpcOutcome::failed(code, message);
    }
    match unframe(data).and_then(EchoAssertions::decode_response) {
        Ok(assertions) => GrpcOutcome {
            code,
            message,
            assertions: Some(assertions),
        },
        Err(error) => GrpcOutcome::failed(INTERNAL, format!("undecodable EchoResponse: {error}")),
    }
}

/// The message of a single length-prefixed gRPC frame.
fn unframe(data: &[u8]) -> Result<&[u8], String> {
    let (header, message) = data
        .split_at_checked(5)
        .ok_or_else(|| format!("response body of {} bytes has no gRPC frame", data.len()))?;
    if header[0] != 0 {
        return Err("compressed gRPC frames are not supported".to_owned());
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    message
        .get(..usize::try_from(length).unwrap_or(usize::MAX))
        .ok_or_else(|| {
            format!(
                "gRPC frame announces {length} bytes, body has {}",
                message.len()
            )
        })
}

/// grpc-go's `HTTPStatusConvTab`, with `Unknown` for anything else.
fn http_status_code(status: StatusCode) -> u32 {
    match status.as_u16() {
        400 => INTERNAL,
        401 => UNAUTHENTICATED,
        403 => PERMISSION_DENIED,
        404 => UNIMPLEMENTED,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => UNKNOWN,
    }
}
