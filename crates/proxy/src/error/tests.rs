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
