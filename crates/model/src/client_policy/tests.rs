use crate::kind::Object;
use crate::parse_documents;

use super::*;

/// The example of the README (also applied to a real API server by the e2e tests).
const EXAMPLE: &str = include_str!("../../../../examples/policies/client-traffic-policy.yaml");

/// Parses one document the way the file source does (YAML → JSON value → typed).
fn parse(text: &str) -> Result<ClientTrafficPolicy, String> {
    let parsed = parse_documents(text).map_err(|e| e.to_string())?;
    match parsed.objects.into_iter().next() {
        Some(Object::ClientTrafficPolicy(policy)) => Ok((*policy).clone()),
        other => Err(format!("not a ClientTrafficPolicy: {other:?}")),
    }
}

#[test]
fn the_documented_example_parses_every_field() {
    let policy = parse(EXAMPLE).expect("example parses");
    let spec = policy.spec;
    let target = &spec.target_refs[0];
    assert_eq!(
        (target.kind.as_str(), target.name.as_str()),
        ("Gateway", "edge")
    );
    assert_eq!(target.section_name.as_deref(), Some("https"));
    let headers = spec.headers.expect("headers");
    assert_eq!(headers.max_request_headers_kib, Some(60));
    assert_eq!(headers.max_headers_count, Some(100));
    assert_eq!(headers.max_uri_bytes, Some(8192));
    let path = spec.path.expect("path");
    assert_eq!(path.merge_slashes, Some(true));
    assert_eq!(
        path.escaped_slashes_action.as_deref(),
        Some("RejectRequest")
    );
    let http = spec.timeout.and_then(|t| t.http).expect("timeout.http");
    assert_eq!(http.request_header_timeout.as_deref(), Some("10s"));
    assert_eq!(http.request_body_timeout.as_deref(), Some("60s"));
    assert_eq!(http.idle_timeout.as_deref(), Some("60s"));
    let connection = spec.connection.expect("connection");
    assert_eq!(connection.max_connections, Some(16384));
    assert_eq!(
        connection.buffer_limit,
        Some(ByteQuantity::Text("32KiB".into()))
    );
    let http2 = spec.http2.expect("http2");
    assert_eq!(http2.max_concurrent_streams, Some(200));
    assert_eq!(http2.max_resets_per_connection, Some(1000));
    assert_eq!(http2.max_control_frames_per_second, Some(1000));
    assert_eq!(
        http2.initial_stream_window_size,
        Some(ByteQuantity::Text("64KiB".into()))
    );
    assert_eq!(
        http2.initial_connection_window_size,
        Some(ByteQuantity::Text("1MiB".into()))
    );
    let hops = spec
        .client_ip_detection
        .and_then(|d| d.x_forwarded_for)
        .and_then(|x| x.num_trusted_hops);
    assert_eq!(hops, Some(0));
    assert_eq!(spec.proxy_protocol.and_then(|p| p.enabled), Some(false));
    let tls = spec.tls.expect("tls");
    assert_eq!(tls.min_version.as_deref(), Some("1.2"));
    assert_eq!(
        tls.alpn_protocols,
        Some(vec!["h2".to_owned(), "http/1.1".to_owned()])
    );
}

#[test]
fn absent_sections_are_none() {
    let policy = parse(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: p}\nspec: {targetRefs: []}\n",
    )
    .expect("parses");
    assert_eq!(policy.spec, ClientTrafficPolicySpec::default());
}

#[test]
fn byte_sizes_may_be_integers_and_versions_numbers() {
    let policy = parse(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: p}\nspec:\n  connection: {bufferLimit: 65536}\n  tls: {minVersion: 1.3}\n",
    )
    .expect("parses");
    assert_eq!(
        policy.spec.connection.and_then(|c| c.buffer_limit),
        Some(ByteQuantity::Number(65536))
    );
    assert_eq!(
        policy.spec.tls.and_then(|t| t.min_version).as_deref(),
        Some("1.3")
    );
}

#[test]
fn negative_numbers_reach_compile() {
    // A range problem is compile's to report, on the policy alone; the file still parses.
    let policy = parse(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: p}\nspec: {headers: {maxUriBytes: -1}}\n",
    )
    .expect("parses");
    assert_eq!(policy.spec.headers.and_then(|h| h.max_uri_bytes), Some(-1));
}

#[test]
fn unknown_fields_are_errors_naming_the_field() {
    let error = parse(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: p}\nspec: {headers: {maxUriByte: 10}}\n",
    )
    .expect_err("typo rejected");
    assert!(error.contains("spec.headers"), "{error}");
    assert!(error.contains("maxUriByte"), "{error}");
}

#[test]
fn a_fractional_byte_size_is_an_error() {
    let error = parse(
        "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: p}\nspec: {connection: {bufferLimit: 1.5}}\n",
    )
    .expect_err("fraction rejected");
    assert!(error.contains("spec.connection.bufferLimit"), "{error}");
}
