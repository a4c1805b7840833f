//! gRPC detection and Trailers-Only error responses.

use http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use http_body::Body;

use super::*;
use crate::error::ProxyError;

fn with_content_type(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(value).expect("value"),
    );
    headers
}

#[test]
fn grpc_is_recognised_by_content_type() {
    for grpc in [
        "application/grpc",
        "application/grpc+proto",
        "Application/GRPC+json",
        "application/grpc;charset=utf-8",
    ] {
        assert_eq!(
            ClientProtocol::of(Version::HTTP_2, &with_content_type(grpc)),
            ClientProtocol::Grpc,
            "{grpc}"
        );
    }
    for http in ["application/grpc-web", "application/json", "application/gr"] {
        assert_eq!(
            ClientProtocol::of(Version::HTTP_2, &with_content_type(http)),
            ClientProtocol::Http,
            "{http}"
        );
    }
    assert_eq!(
        ClientProtocol::of(Version::HTTP_2, &HeaderMap::new()),
        ClientProtocol::Http
    );
    // gRPC is HTTP/2 only: HTTP/1.x is answered in HTTP.
    for version in [Version::HTTP_10, Version::HTTP_11] {
        assert_eq!(
            ClientProtocol::of(version, &with_content_type("application/grpc")),
            ClientProtocol::Http,
            "{version:?}"
        );
    }
}

#[test]
fn unmatched_grpc_call_is_trailers_only_unimplemented() {
    let response = ProxyError::NoRoute.into_response_for(ClientProtocol::Grpc);
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers[header::CONTENT_TYPE], "application/grpc");
    assert_eq!(headers["grpc-status"], "12");
    assert_eq!(
        headers["grpc-message"],
        "not found: no route matches this request"
    );
    assert_eq!(headers["x-portcullis-error"], "no-route");
    // Trailers-Only: the headers end the stream.
    assert!(response.body().is_end_stream());
}

#[test]
fn http_clients_keep_http_statuses() {
    let response = ProxyError::NoRoute.into_response_for(ClientProtocol::Http);
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().get("grpc-status").is_none());
}

#[test]
fn gateway_errors_map_to_grpc_codes() {
    assert_eq!(ProxyError::NoListener.grpc_code(), GrpcCode::Unimplemented);
    assert_eq!(ProxyError::NoEndpoints.grpc_code(), GrpcCode::Unavailable);
    assert_eq!(
        ProxyError::Connect("refused".to_owned()).grpc_code(),
        GrpcCode::Unavailable
    );
    assert_eq!(ProxyError::Timeout.grpc_code(), GrpcCode::DeadlineExceeded);
    assert_eq!(ProxyError::InvalidHost.grpc_code(), GrpcCode::Internal);
    assert_eq!(
        GrpcCode::from_http(StatusCode::INTERNAL_SERVER_ERROR),
        GrpcCode::Internal
    );
    assert_eq!(
        GrpcCode::from_http(StatusCode::IM_A_TEAPOT),
        GrpcCode::Unknown
    );
}

#[test]
fn grpc_message_is_percent_encoded() {
    assert_eq!(percent_encode("100% done"), "100%25 done");
    assert_eq!(percent_encode("caf\u{e9}\n"), "caf%C3%A9%0A");
    let response = error_response(GrpcCode::Internal, "  spaced out \n", "direct-response");
    assert_eq!(response.headers()["grpc-message"], "spaced out");
    assert_eq!(response.headers()["grpc-status"], "13");
}
