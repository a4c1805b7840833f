//! Unit tests of the ext_authz protocol: building checks and judging answers, for HTTP
//! (`http.rs`) and gRPC (`grpc.rs`), including malformed answers. The real servers are in
//! `crates/policy/tests/ext_auth_*.rs`.

mod grpc;
mod http;

use std::net::SocketAddr;
use std::time::Duration;

use ::http::{HeaderMap, Request, Response, StatusCode, request, response};
use snapshot::security::{ExtAuth, ExtAuthProtocol};

use super::{UNAVAILABLE, Verdict, failure_verdict};

/// Settings with every option at its default.
pub(super) fn settings(protocol: ExtAuthProtocol) -> ExtAuth {
    ExtAuth {
        backend: 0,
        protocol,
        headers_to_backend: Vec::new(),
        headers_to_upstream: Vec::new(),
        all_headers_to_upstream: false,
        body: None,
        fail_open: false,
        timeout: Duration::from_secs(1),
    }
}

/// The client's address in these tests.
pub(super) fn client() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 7], 40_000))
}

/// A client request with end-to-end, hop-by-hop and framing headers.
pub(super) fn client_request() -> request::Parts {
    Request::builder()
        .method("POST")
        .uri("/api/items?x=1")
        .header("host", "shop.example")
        .header("authorization", "Bearer token")
        .header("cookie", "a=1")
        .header("accept", "text/html")
        .header("accept", "application/json")
        .header("connection", "keep-alive, x-hop")
        .header("keep-alive", "timeout=5")
        .header("x-hop", "1")
        .header("te", "trailers")
        .header("content-length", "11")
        .header("expect", "100-continue")
        .header("x-forwarded-for", "10.0.0.1")
        .header("x-request-id", "req-1")
        .body(())
        .expect("a valid request")
        .into_parts()
        .0
}

/// An answer's head.
pub(super) fn answer(status: u16, headers: &[(&str, &str)]) -> response::Parts {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("a valid response").into_parts().0
}

/// The values of `name`, in order.
pub(super) fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

#[test]
fn a_failing_service_allows_when_the_policy_fails_open() {
    let mut open = settings(ExtAuthProtocol::Grpc);
    open.fail_open = true;
    match failure_verdict(&open) {
        Verdict::Allow(changes) => assert!(changes.is_empty()),
        other => panic!("expected an unchanged allow, got {other:?}"),
    }
}

#[test]
fn a_failing_service_denies_with_403_when_the_policy_fails_closed() {
    match failure_verdict(&settings(ExtAuthProtocol::Grpc)) {
        Verdict::Deny(denial) => {
            assert_eq!(denial.status, StatusCode::FORBIDDEN);
            assert_eq!(denial.reason, UNAVAILABLE);
        }
        other => panic!("expected a 403 denial, got {other:?}"),
    }
}
