use http::StatusCode;
use upstream::breaker::Rejection;

use super::ProxyError;
use crate::grpc::{ClientProtocol, GrpcCode};

#[test]
fn breaker_rejections_answer_503_with_their_reason() {
    let cases = [
        (Rejection::BreakerOpen, "circuit-open"),
        (Rejection::Parallel, "overloaded-parallel"),
        (Rejection::Pending, "overloaded-pending"),
    ];
    for (rejection, code) in cases {
        let error = ProxyError::from(rejection);
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["x-portcullis-error"], code);
    }
}

#[test]
fn breaker_rejections_are_unavailable_for_grpc_clients() {
    assert!(matches!(
        ProxyError::CircuitOpen.grpc_code(),
        GrpcCode::Unavailable
    ));
    let response = ProxyError::OverloadedParallel.into_response_for(ClientProtocol::Grpc);
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn a_connection_limit_answers_503_overloaded_connections() {
    let error = ProxyError::from(upstream::UpstreamError::ConnectionLimit(
        upstream::pool::ConnectionLimitError(8),
    ));
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()["x-portcullis-error"],
        "overloaded-connections"
    );
    assert!(response.headers().get(http::header::CONNECTION).is_none());
}

#[test]
fn a_broken_client_body_answers_400_and_closes_the_connection() {
    let error = ProxyError::from(upstream::UpstreamError::ClientBody(
        "invalid chunk size line".to_owned(),
    ));
    let response = error.into_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["x-portcullis-error"],
        "client-body-error"
    );
    assert_eq!(response.headers()[http::header::CONNECTION], "close");
}

#[test]
fn a_bad_host_answers_400_and_closes_the_connection() {
    let response = ProxyError::InvalidHost.into_response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()[http::header::CONNECTION], "close");
    // Backend trouble keeps the client's connection.
    let response = ProxyError::NoEndpoints.into_response();
    assert!(response.headers().get(http::header::CONNECTION).is_none());
}

#[test]
fn only_backend_failures_are_upstream_errors() {
    use super::ErrorSource;
    assert_eq!(
        ProxyError::Connect("refused".into()).source(),
        ErrorSource::Upstream
    );
    assert_eq!(ProxyError::Timeout.source(), ErrorSource::Upstream);
    assert_eq!(
        ProxyError::ClientBody("bad chunk".into()).source(),
        ErrorSource::Downstream
    );
    assert_eq!(ProxyError::NoRoute.source(), ErrorSource::Downstream);
    assert_eq!(ProxyError::CircuitOpen.source(), ErrorSource::Internal);
    assert_eq!(
        ProxyError::OverloadedConnections("limit".into()).source(),
        ErrorSource::Internal
    );
}

#[test]
fn only_unsent_requests_retry_whatever_the_method() {
    use super::RetryClass;
    assert_eq!(
        ProxyError::Connect("refused".into()).retry_class(),
        RetryClass::NotSent
    );
    assert_eq!(ProxyError::NoEndpoints.retry_class(), RetryClass::NotSent);
    assert_eq!(
        ProxyError::Reset("eof".into()).retry_class(),
        RetryClass::AfterReset
    );
    assert_eq!(ProxyError::Timeout.retry_class(), RetryClass::AfterTimeout);
    assert_eq!(
        ProxyError::Protocol("garbage".into()).retry_class(),
        RetryClass::Never
    );
    assert_eq!(ProxyError::CircuitOpen.retry_class(), RetryClass::Never);
}
