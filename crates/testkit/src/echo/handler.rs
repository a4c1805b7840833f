//! Request handling of the echo backend: routing and the health, status, retry and echo handlers.
//!
//! Reproduces echo-basic (conformance README section 4). Every input, however malformed, gets a response or a
//! deliberate RST; nothing here panics on what a client sends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::EchoMode;
use super::go_duration::parse_go_duration;
use super::query::first_query_value;
use super::reply::{EchoReply, canonical_header_name};
use super::reset::ConnectionReset;

/// The request header whose `Name:value,Name2:value2` list the echo copies into its response headers.
const ECHO_SET_HEADER: &str = "x-echo-set-header";

/// Plain-text responses carry what Go's content sniffing would pick for them.
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// State shared by every connection of one echo server.
#[derive(Debug)]
pub(crate) struct EchoState {
    /// Reported as `pod`.
    pub(crate) pod: String,
    /// Reported as `namespace`.
    pub(crate) namespace: String,
    /// Reported as `service`.
    pub(crate) service: String,
    /// Which protocols are accepted.
    pub(crate) mode: EchoMode,
    /// Reported as `httpPort`.
    pub(crate) port: u16,
    /// Requests received, whatever their outcome.
    pub(crate) requests: AtomicU64,
    /// One `Echoing back request made to <RequestURI> to client` line per echoed request, in order.
    pub(crate) logs: Mutex<Vec<String>>,
    /// Attempts seen so far for each retry-simulator uuid. Its lock is held for the whole of an attempt (see
    /// [`retry`]), so it is an async lock.
    pub(crate) retry_attempts: tokio::sync::Mutex<HashMap<String, u64>>,
}

/// Serves one request. `reset` belongs to the connection the request arrived on.
pub(crate) async fn handle(
    state: Arc<EchoState>,
    reset: Arc<ConnectionReset>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let (parts, body) = request.into_parts();
    // Read the body so an HTTP/1.1 connection stays reusable; its content is never echoed (echo-basic ignores it).
    let _ignored = body.collect().await;

    if state.mode == EchoMode::H2cOnly && parts.version != Version::HTTP_2 {
        return Ok(text_response(
            StatusCode::BAD_REQUEST,
            "Expected h2c request",
        ));
    }

    let request_uri = request_uri(&parts);
    // echo-basic collapses `//` before its mux routes the request, but reports the RequestURI unchanged.
    let route_path = parts.uri.path().replace("//", "/");
    let response = if route_path == "/health" {
        text_response(StatusCode::OK, "OK")
    } else if route_path.starts_with("/status/") {
        status(&request_uri)
    } else if route_path.starts_with("/retry/") {
        retry(&state, &reset, &parts, &request_uri).await
    } else {
        echo(&state, &parts, &request_uri).await
    };
    Ok(response)
}

/// Go's `RequestURI`: the request target as sent. hyper keeps origin-form targets byte for byte.
fn request_uri(parts: &Parts) -> String {
    if parts.version != Version::HTTP_2 && parts.uri.scheme().is_some() {
        // An absolute-form HTTP/1 target (RFC 9112 section 3.2.2) is reported whole, as Go does.
        return parts.uri.to_string();
    }
    parts.uri.path_and_query().map_or_else(
        || "/".to_owned(),
        |path_and_query| path_and_query.as_str().to_owned(),
    )
}

/// `/status/NNN`: replies with status NNN and no body; anything else under `/status/` is 400.
fn status(request_uri: &str) -> Response<Full<Bytes>> {
    // echo-basic matches `^/status/(\d\d\d)$` against the RequestURI, so a query string makes it a 400.
    let code = request_uri
        .strip_prefix("/status/")
        .filter(|digits| digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::BAD_REQUEST);
    empty_response(code)
}

/// The retry simulator: `/retry/...?uuid=U&succeedAfter=N[&responseCode=C][&delayRetry=D]`.
///
/// The first N attempts for a uuid fail after sleeping D, with status C or, without `responseCode`, an RST.
/// Later attempts are echoed. Go's `Query().Get` cannot tell an empty parameter from a missing one, so neither
/// can this.
///
/// Attempts are served one at a time, whatever their uuid: like echo-basic, which takes one mutex once the
/// parameters are parsed and keeps it until the handler returns, an attempt holds the lock through its
/// `delayRetry` sleep and its answer (failure, RST or echo). A retry that reaches this server while an earlier
/// attempt still sleeps therefore waits for it, and the gateway sees the two delays add up.
async fn retry(
    state: &EchoState,
    reset: &ConnectionReset,
    parts: &Parts,
    request_uri: &str,
) -> Response<Full<Bytes>> {
    let query = parts.uri.query().unwrap_or("");
    let parameter = |key: &str| first_query_value(query, key).filter(|value| !value.is_empty());
    let Some(uuid) = parameter("uuid") else {
        return text_response(StatusCode::BAD_REQUEST, "missing uuid query parameter");
    };
    let Some(succeed_after) = parameter("succeedAfter").and_then(|value| value.parse::<u64>().ok())
    else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "missing or invalid succeedAfter query parameter",
        );
    };
    let failure_status = match parameter("responseCode") {
        None => None,
        Some(value) => match value
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
        {
            Some(code) => Some(code),
            None => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    "invalid responseCode query parameter",
                );
            }
        },
    };
    let failure_delay = match parameter("delayRetry").map(|value| parse_go_duration(&value)) {
        None => Duration::ZERO,
        Some(Ok(delay)) => delay,
        Some(Err(message)) => return text_response(StatusCode::BAD_REQUEST, &message),
    };

    // Held until this future completes, or is dropped with its connection after an RST was requested.
    let mut attempts = state.retry_attempts.lock().await;
    let attempt = {
        let count = attempts.entry(uuid).or_insert(0);
        *count += 1;
        *count
    };
    if attempt > succeed_after {
        return echo(state, parts, request_uri).await;
    }
    tokio::time::sleep(failure_delay).await;
    match failure_status {
        Some(code) => empty_response(code),
        None => {
            reset.request();
            // The connection task drops this future together with the socket; no response is ever written.
            std::future::pending().await
        }
    }
}

/// The echo handler: logs the request, honours `?delay=`, and returns what it saw as JSON.
async fn echo(state: &EchoState, parts: &Parts, request_uri: &str) -> Response<Full<Bytes>> {
    state
        .logs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(format!(
            "Echoing back request made to {request_uri} to client"
        ));

    let delay = first_query_value(parts.uri.query().unwrap_or(""), "delay")
        .filter(|value| !value.is_empty());
    if let Some(text) = delay {
        match parse_go_duration(&text) {
            Ok(delay) => tokio::time::sleep(delay).await,
            Err(message) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &message),
        }
    }

    let reply = EchoReply {
        path: request_uri.to_owned(),
        host: request_host(parts),
        method: parts.method.as_str().to_owned(),
        proto: proto_name(parts.version).to_owned(),
        headers: canonical_headers(&parts.headers),
        namespace: state.namespace.clone(),
        ingress: String::new(),
        service: state.service.clone(),
        pod: state.pod.clone(),
        http_port: state.port.to_string(),
    };
    let body = match serde_json::to_vec_pretty(&reply) {
        Ok(body) => body,
        Err(error) => return error_response(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    // Set first so that, as in echo-basic, a requested Content-Type cannot override the JSON one below.
    for (name, value) in echo_set_headers(&parts.headers) {
        response.headers_mut().insert(name, value);
    }
    set_json_headers(response.headers_mut());
    response
}

/// Go's `Request.Host`: the authority of the target (`:authority` in HTTP/2), else the `Host` header.
fn request_host(parts: &Parts) -> String {
    if let Some(authority) = parts.uri.authority() {
        return authority.as_str().to_owned();
    }
    parts
        .headers
        .get(HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Go's `Request.Proto` for a version.
fn proto_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Request headers keyed by Go canonical name, without `Host` (Go moves it to `Request.Host`).
fn canonical_headers(headers: &HeaderMap) -> std::collections::BTreeMap<String, Vec<String>> {
    headers
        .keys()
        .filter(|name| **name != HOST)
        .map(|name| {
            let values = headers
                .get_all(name)
                .iter()
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .collect();
            (canonical_header_name(name.as_str()), values)
        })
        .collect()
}

/// The response headers requested through `X-Echo-Set-Header: Name:value,Name2:value2`.
///
/// Repeated names are joined with `,` as echo-basic does. Empty entries, and names or values that are not valid
/// in HTTP, are skipped. Names go out in hyper's lower case: HTTP header names are case-insensitive.
pub(crate) fn echo_set_headers(request_headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for list in request_headers.get_all(ECHO_SET_HEADER) {
        let list = String::from_utf8_lossy(list.as_bytes());
        for entry in list.split(',') {
            let entry = entry.trim();
            let (name, value) = entry.split_once(':').unwrap_or((entry, ""));
            let value = value.trim();
            if name.is_empty() {
                continue;
            }
            match merged
                .iter_mut()
                .find(|(seen, _)| seen.eq_ignore_ascii_case(name))
            {
                Some((_, joined)) => {
                    joined.push(',');
                    joined.push_str(value);
                }
                None => merged.push((name.to_owned(), value.to_owned())),
            }
        }
    }
    merged
        .into_iter()
        .filter_map(|(name, value)| {
            Some((
                HeaderName::from_bytes(name.as_bytes()).ok()?,
                HeaderValue::from_str(&value).ok()?,
            ))
        })
        .collect()
}

/// Marks a response as echo JSON, exactly as echo-basic does.
fn set_json_headers(headers: &mut HeaderMap) {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

/// echo-basic's `processError`: `{"message": ...}` with the given status.
fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    set_json_headers(response.headers_mut());
    response
}

/// A plain-text response.
fn text_response(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(text.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
    response
}

/// A response with a status and no body.
fn empty_response(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
