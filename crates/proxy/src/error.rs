//! Data-plane errors and the one place they become responses (HTTP statuses, or gRPC statuses
//! for gRPC clients).
//!
//! Every error knows where it came from ([`ErrorSource`]: the client, the backend, or the
//! gateway itself) and whether another attempt may follow ([`RetryClass`]), as Pingora's
//! `Error { etype, esource, retry }` does. Those facts are decided once, here: the retry policy
//! (`retry.rs`) and the backend's health accounting (`exchange.rs`) read them instead of
//! matching variants of their own.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use snapshot::DirectResponse;
use upstream::UpstreamError;
use upstream::breaker::Rejection;

use crate::body::ResponseBody;
use crate::grpc::{self, ClientProtocol, GrpcCode};

/// Where an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorSource {
    /// The client (downstream): a malformed request, a host or path nothing serves.
    Downstream,
    /// The backend (upstream): it could not be reached, failed, or was too slow. Only these
    /// errors count against a backend (breaker, outlier detection) and may be retried.
    Upstream,
    /// The gateway itself: the config answers directly, or one of its own limits refused
    /// (circuit breaker, concurrency and connection limits).
    Internal,
}

/// Whether an attempt that failed with an error may be followed by another, before the rule's
/// retry triggers have their say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryClass {
    /// The request never left the gateway (connect failure, no endpoint): safe to retry
    /// whatever the method (the `connect-failure` trigger).
    NotSent,
    /// The backend may have acted on the request before the connection was reset (the
    /// `reset` trigger, idempotent methods only).
    AfterReset,
    /// The backend may have acted on the request before the attempt timed out (the `timeout`
    /// trigger, idempotent methods only).
    AfterTimeout,
    /// Never retried: the client's fault, garbage from the backend, or the gateway's own
    /// refusal (a breaker must not be hammered by retries).
    Never,
}

/// Why the gateway answered a request itself. [`ProxyError::source`] says whose fault it is,
/// [`ProxyError::retry_class`] whether it may be retried, [`ProxyError::status`] the status.
#[derive(Debug)]
pub(crate) enum ProxyError {
    /// Client: an HTTP/1.1 request without Host, with more than one, or a Host that is not a
    /// valid authority.
    InvalidHost,
    /// Client/config: no listener of this socket accepts the request's host.
    NoListener,
    /// Client/config: no route rule matches.
    NoRoute,
    /// Client: the request's host is served by another listener than the TLS connection's
    /// SNI (421, GEP-3567).
    Misdirected,
    /// Config: the rule answers directly (unresolvable backendRefs answer 500).
    Direct(DirectResponse),
    /// Upstream: the backend has no endpoint that can take traffic.
    NoEndpoints,
    /// Upstream: no connection could be made (the request never left the gateway).
    Connect(String),
    /// Upstream: the connection was reset or closed before the response head.
    Reset(String),
    /// Upstream: the response was not valid HTTP.
    Protocol(String),
    /// Client: the request body could not be read.
    ClientBody(String),
    /// Client: the request body did not arrive within the listener's `requestBodyTimeout`
    /// (408, and the connection is closed).
    ClientBodyTimeout,
    /// Client: the path cannot be normalized safely (400, ClientTrafficPolicy `path`).
    InvalidPath(router::path::PathRejection),
    /// Client: an extended CONNECT for a protocol other than `websocket`, or to a backend that
    /// cannot take it (501).
    UnsupportedProtocol,
    /// Client: the request target is longer than the listener's `maxUriBytes` (414).
    UriTooLong,
    /// Client: a head larger than the listener's `maxRequestHeadersKiB`, or more header
    /// fields than its `maxHeadersCount` (431).
    HeadersTooLarge,
    /// Upstream: `timeouts.request` or `timeouts.backendRequest` ran out.
    Timeout,
    /// Upstream: the backend's error-rate breaker is open (BackendTrafficPolicy
    /// `circuitBreaker.errorRate`); answered at once, never retried.
    CircuitOpen,
    /// Upstream: the backend has `circuitBreaker.maxParallelRequests` requests in flight.
    OverloadedParallel,
    /// Upstream: the backend has `circuitBreaker.maxPendingRequests` requests waiting.
    OverloadedPending,
    /// Upstream: a new connection was needed and the backend has `circuitBreaker.maxConnections`
    /// open.
    OverloadedConnections(String),
    /// Upstream: a required part of a composed response failed (502; the body, JSON, names
    /// the part and why: `compose.rs`).
    PartFailed(Box<PartFailure>),
    /// Client: the path does not fit the rule's Composition `pathPattern` (404).
    PathMismatch,
}

/// Why a composed response failed: its JSON body and the access log's text.
#[derive(Debug)]
pub(crate) struct PartFailure {
    /// `{"error": "composition-part-failed", "part": ..., "reason": ..., "message": ...}`.
    pub(crate) body: Bytes,
    /// One line for the access log.
    pub(crate) detail: String,
}

impl ProxyError {
    /// Where the error came from.
    pub(crate) fn source(&self) -> ErrorSource {
        match self {
            ProxyError::InvalidHost
            | ProxyError::NoListener
            | ProxyError::NoRoute
            | ProxyError::Misdirected
            | ProxyError::ClientBody(_)
            | ProxyError::ClientBodyTimeout
            | ProxyError::InvalidPath(_)
            | ProxyError::UriTooLong
            | ProxyError::UnsupportedProtocol
            | ProxyError::HeadersTooLarge
            | ProxyError::PathMismatch => ErrorSource::Downstream,
            ProxyError::NoEndpoints
            | ProxyError::Connect(_)
            | ProxyError::Reset(_)
            | ProxyError::Protocol(_)
            | ProxyError::Timeout
            | ProxyError::PartFailed(_) => ErrorSource::Upstream,
            ProxyError::Direct(_)
            | ProxyError::CircuitOpen
            | ProxyError::OverloadedParallel
            | ProxyError::OverloadedPending
            | ProxyError::OverloadedConnections(_) => ErrorSource::Internal,
        }
    }

    /// Whether another attempt may follow this error (the rule's triggers decide in the end).
    pub(crate) fn retry_class(&self) -> RetryClass {
        match self {
            ProxyError::Connect(_) | ProxyError::NoEndpoints => RetryClass::NotSent,
            ProxyError::Reset(_) => RetryClass::AfterReset,
            ProxyError::Timeout => RetryClass::AfterTimeout,
            _ => RetryClass::Never,
        }
    }

    /// Short machine-readable cause, also sent as `x-portcullis-error`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ProxyError::InvalidHost => "invalid-host",
            ProxyError::NoListener => "no-listener",
            ProxyError::NoRoute => "no-route",
            ProxyError::Misdirected => "misdirected-request",
            ProxyError::Direct(_) => "direct-response",
            ProxyError::NoEndpoints => "no-healthy-upstream",
            ProxyError::Connect(_) => "upstream-connect-error",
            ProxyError::Reset(_) => "upstream-reset",
            ProxyError::Protocol(_) => "upstream-protocol-error",
            ProxyError::ClientBody(_) => "client-body-error",
            ProxyError::ClientBodyTimeout => "request-body-timeout",
            ProxyError::InvalidPath(_) => "invalid-path",
            ProxyError::UriTooLong => "uri-too-long",
            ProxyError::UnsupportedProtocol => "unsupported-protocol",
            ProxyError::HeadersTooLarge => "headers-too-large",
            ProxyError::Timeout => "upstream-timeout",
            ProxyError::CircuitOpen => "circuit-open",
            ProxyError::OverloadedParallel => "overloaded-parallel",
            ProxyError::OverloadedPending => "overloaded-pending",
            ProxyError::OverloadedConnections(_) => "overloaded-connections",
            ProxyError::PartFailed(_) => "composition-part-failed",
            ProxyError::PathMismatch => "composition-path-mismatch",
        }
    }

    /// The HTTP status the client gets.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ProxyError::InvalidHost => StatusCode::BAD_REQUEST,
            ProxyError::NoListener | ProxyError::NoRoute | ProxyError::PathMismatch => {
                StatusCode::NOT_FOUND
            }
            ProxyError::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            ProxyError::Direct(direct) => direct.status,
            // Envoy's convention: nothing usable came back, so the service is unavailable.
            ProxyError::NoEndpoints
            | ProxyError::Connect(_)
            | ProxyError::Reset(_)
            | ProxyError::CircuitOpen
            | ProxyError::OverloadedParallel
            | ProxyError::OverloadedPending
            | ProxyError::OverloadedConnections(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Protocol(_) | ProxyError::PartFailed(_) => StatusCode::BAD_GATEWAY,
            ProxyError::ClientBody(_) | ProxyError::InvalidPath(_) => StatusCode::BAD_REQUEST,
            ProxyError::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::UriTooLong => StatusCode::URI_TOO_LONG,
            ProxyError::UnsupportedProtocol => StatusCode::NOT_IMPLEMENTED,
            ProxyError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The response a client gets: the status, a plain-text body saying why, and
    /// `x-portcullis-error`.
    pub(crate) fn into_response(self) -> Response<ResponseBody> {
        let status = self.status();
        let code = self.code();
        // A malformed request (no or several Hosts, a broken body): nothing more is read from
        // that connection.
        let close = matches!(
            self,
            ProxyError::ClientBody(_)
                | ProxyError::ClientBodyTimeout
                | ProxyError::InvalidHost
                | ProxyError::UriTooLong
                | ProxyError::HeadersTooLarge
        );
        let content_type = match self {
            ProxyError::PartFailed(_) => "application/json",
            _ => "text/plain; charset=utf-8",
        };
        let body = self.into_text();
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        headers.insert("x-portcullis-error", HeaderValue::from_static(code));
        if close {
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// The response for a client speaking `protocol`: [`ProxyError::into_response`] for HTTP;
    /// for gRPC, a Trailers-Only gRPC error carrying [`ProxyError::grpc_code`] and the same
    /// text, since gRPC clients read `grpc-status` rather than the HTTP status.
    pub(crate) fn into_response_for(self, protocol: ClientProtocol) -> Response<ResponseBody> {
        match protocol {
            ClientProtocol::Http => self.into_response(),
            ClientProtocol::Grpc => {
                let grpc_code = self.grpc_code();
                let code = self.code();
                let text = self.into_text();
                grpc::error_response(grpc_code, &String::from_utf8_lossy(&text), code)
            }
        }
    }

    /// The gRPC status for this error: no listener or route is `UNIMPLEMENTED` (what gRPC
    /// clients and GEP-1016 expect for an unknown method), a deadline that ran out is
    /// `DEADLINE_EXCEEDED`, and everything else follows gRPC's HTTP-to-gRPC status mapping of
    /// [`ProxyError::status`] (so backend trouble is `UNAVAILABLE`, config 500s `INTERNAL`).
    pub(crate) fn grpc_code(&self) -> GrpcCode {
        match self {
            ProxyError::NoListener | ProxyError::NoRoute => GrpcCode::Unimplemented,
            ProxyError::Timeout => GrpcCode::DeadlineExceeded,
            other => GrpcCode::from_http(other.status()),
        }
    }

    /// The plain-text explanation of the error (the HTTP body).
    fn into_text(self) -> Bytes {
        match self {
            ProxyError::InvalidHost => {
                Bytes::from_static(b"bad request: missing or invalid Host header\n")
            }
            ProxyError::NoListener => Bytes::from_static(b"not found: no listener for this host\n"),
            ProxyError::NoRoute => {
                Bytes::from_static(b"not found: no route matches this request\n")
            }
            ProxyError::Misdirected => Bytes::from_static(
                b"misdirected request: this host is not served on this TLS connection\n",
            ),
            ProxyError::Direct(direct) => direct.body,
            ProxyError::NoEndpoints => Bytes::from_static(b"no healthy upstream\n"),
            ProxyError::Connect(detail) => {
                Bytes::from(format!("upstream connect error: {detail}\n"))
            }
            ProxyError::Reset(detail) => Bytes::from(format!(
                "upstream connection reset before the response: {detail}\n"
            )),
            ProxyError::Protocol(detail) => {
                Bytes::from(format!("upstream protocol error: {detail}\n"))
            }
            ProxyError::ClientBody(detail) => Bytes::from(format!(
                "bad request: cannot read the request body: {detail}\n"
            )),
            ProxyError::ClientBodyTimeout => {
                Bytes::from_static(b"request timeout: the request body did not arrive in time\n")
            }
            ProxyError::InvalidPath(rejection) => {
                Bytes::from(format!("bad request: {rejection}\n"))
            }
            ProxyError::UriTooLong => Bytes::from_static(b"URI too long\n"),
            ProxyError::UnsupportedProtocol => Bytes::from_static(
                b"not implemented: extended CONNECT is served for WebSocket to HTTP/1.1 backends\n",
            ),
            ProxyError::HeadersTooLarge => Bytes::from_static(b"request header fields too large\n"),
            ProxyError::Timeout => Bytes::from_static(b"upstream request timeout\n"),
            ProxyError::CircuitOpen => {
                Bytes::from_static(b"upstream unavailable: circuit breaker open\n")
            }
            ProxyError::OverloadedParallel => {
                Bytes::from_static(b"upstream overloaded: too many requests in flight\n")
            }
            ProxyError::OverloadedPending => {
                Bytes::from_static(b"upstream overloaded: too many pending requests\n")
            }
            ProxyError::OverloadedConnections(detail) => {
                Bytes::from(format!("upstream overloaded: {detail}\n"))
            }
            ProxyError::PartFailed(failure) => failure.body,
            ProxyError::PathMismatch => Bytes::from_static(
                b"not found: the path does not fit the composition's pathPattern\n",
            ),
        }
    }

    /// Access-log text for the error.
    pub(crate) fn detail(&self) -> &str {
        match self {
            ProxyError::Connect(detail)
            | ProxyError::Reset(detail)
            | ProxyError::Protocol(detail)
            | ProxyError::ClientBody(detail)
            | ProxyError::OverloadedConnections(detail) => detail,
            ProxyError::PartFailed(failure) => &failure.detail,
            other => other.code(),
        }
    }
}

impl From<UpstreamError> for ProxyError {
    fn from(error: UpstreamError) -> ProxyError {
        match error {
            UpstreamError::Connect(detail) => ProxyError::Connect(detail),
            UpstreamError::Reset(detail) => ProxyError::Reset(detail),
            UpstreamError::Protocol(detail) => ProxyError::Protocol(detail),
            UpstreamError::ClientBody(detail) => ProxyError::ClientBody(detail),
            UpstreamError::ConnectionLimit(limit) => {
                ProxyError::OverloadedConnections(limit.to_string())
            }
        }
    }
}

impl From<Rejection> for ProxyError {
    fn from(rejection: Rejection) -> ProxyError {
        match rejection {
            Rejection::Parallel => ProxyError::OverloadedParallel,
            Rejection::Pending => ProxyError::OverloadedPending,
            Rejection::BreakerOpen => ProxyError::CircuitOpen,
        }
    }
}

#[cfg(test)]
mod tests;
