use super::*;

#[test]
fn hop_by_hop_headers_are_removed() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-secret"),
    );
    headers.insert("x-secret", HeaderValue::from_static("1"));
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.insert(header::UPGRADE, HeaderValue::from_static("h2c"));
    headers.insert("x-kept", HeaderValue::from_static("yes"));
    strip_hop_by_hop(&mut headers, true);
    assert_eq!(headers.len(), 1);
    assert_eq!(headers["x-kept"], "yes");
}

#[test]
fn te_trailers_survives_for_grpc() {
    let mut headers = HeaderMap::new();
    headers.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
    strip_hop_by_hop(&mut headers, true);
    assert_eq!(headers[header::TE], "trailers");
    let mut headers = HeaderMap::new();
    headers.insert(header::TE, HeaderValue::from_static("gzip"));
    strip_hop_by_hop(&mut headers, true);
    assert!(!headers.contains_key(header::TE));
}

#[test]
fn forwarded_for_appends_client() {
    let mut headers = HeaderMap::new();
    add_forwarded(&mut headers, IpAddr::from([10, 0, 0, 1]), "http");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1");
    add_forwarded(&mut headers, "::1".parse().expect("ip"), "http");
    assert_eq!(headers["x-forwarded-for"], "10.0.0.1, ::1");
    assert_eq!(headers["x-forwarded-proto"], "http");
}
