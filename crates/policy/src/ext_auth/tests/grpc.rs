//! The gRPC protocol: the `CheckRequest` and its framing, and the judging of answers,
//! malformed ones included.

use std::time::Duration;

use ::http::{HeaderMap, Method, StatusCode, Version, response};
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use snapshot::security::{BodyForwarding, ExtAuthProtocol};

use super::{answer, client, client_request, settings, values};
use crate::ext_auth::grpc::grpc_timeout;
use crate::ext_auth::proto::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, address, header_value_option::HeaderAppendAction,
    socket_address,
};
use crate::ext_auth::proto::envoy::service::auth::v3::{
    CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse, attribute_context,
    check_response::HttpResponse,
};
use crate::ext_auth::proto::envoy::r#type::v3::HttpStatus;
use crate::ext_auth::proto::google::rpc::Status;
use crate::ext_auth::{CHECK_PATH, DENIED, Verdict, check_request, judge};

/// The message of a one-frame body.
fn unframe(body: &Bytes) -> Bytes {
    assert_eq!(body.first(), Some(&0), "an uncompressed frame");
    let length = u32::from_be_bytes(
        body.get(1..5)
            .and_then(|length| length.try_into().ok())
            .expect("a frame prefix"),
    );
    assert_eq!(body.len(), 5 + length as usize, "one frame, whole");
    body.slice(5..)
}

/// `message` in one gRPC frame.
fn framed(message: &CheckResponse) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::new();
    frame.put_u8(0);
    frame.put_u32(u32::try_from(encoded.len()).expect("a small message"));
    frame.put_slice(&encoded);
    frame.freeze()
}

fn grpc_head() -> response::Parts {
    answer(200, &[("content-type", "application/grpc")])
}

fn ok_trailers() -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().expect("a header value"));
    trailers
}

/// The verdict on a well-formed answer carrying `message`.
fn judged(message: &CheckResponse) -> Verdict {
    judge(
        &settings(ExtAuthProtocol::Grpc),
        grpc_head(),
        framed(message),
        Some(&ok_trailers()),
    )
}

fn sent_http(check: &::http::Request<Bytes>) -> attribute_context::HttpRequest {
    let message = CheckRequest::decode(unframe(check.body())).expect("a CheckRequest");
    message
        .attributes
        .and_then(|attributes| attributes.request)
        .and_then(|request| request.http)
        .expect("request.http")
}

#[test]
fn the_check_is_a_framed_check_request_posted_over_http2() {
    let check = check_request(
        &settings(ExtAuthProtocol::Grpc),
        &client_request(),
        client(),
        "https",
        None,
    );
    assert_eq!(check.method(), Method::POST);
    assert_eq!(check.uri(), CHECK_PATH);
    assert_eq!(check.version(), Version::HTTP_2);
    assert_eq!(
        values(check.headers(), "content-type"),
        ["application/grpc"]
    );
    assert_eq!(values(check.headers(), "te"), ["trailers"]);
    assert_eq!(values(check.headers(), "grpc-timeout"), ["1000m"]);

    let message = CheckRequest::decode(unframe(check.body())).expect("a CheckRequest");
    let attributes = message.attributes.expect("attributes");
    let source = attributes
        .source
        .and_then(|peer| peer.address)
        .and_then(|a| a.address);
    let Some(address::Address::SocketAddress(socket)) = source else {
        panic!("a source socket address");
    };
    assert_eq!(socket.address, "192.0.2.7");
    assert_eq!(
        socket.port_specifier,
        Some(socket_address::PortSpecifier::PortValue(40_000))
    );
}

#[test]
fn the_http_attributes_are_filled_as_envoy_fills_them() {
    let check = check_request(
        &settings(ExtAuthProtocol::Grpc),
        &client_request(),
        client(),
        "https",
        None,
    );
    let http = sent_http(&check);
    assert_eq!(http.id, "req-1");
    assert_eq!(http.method, "POST");
    assert_eq!(http.path, "/api/items?x=1");
    assert_eq!(http.host, "shop.example");
    assert_eq!(http.scheme, "https");
    assert_eq!(http.protocol, "HTTP/1.1");
    assert_eq!(http.size, 11);
    let header = |name: &str| http.headers.get(name).map(String::as_str);
    assert_eq!(header(":authority"), Some("shop.example"));
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":path"), Some("/api/items?x=1"));
    assert_eq!(header("authorization"), Some("Bearer token"));
    assert_eq!(header("accept"), Some("text/html,application/json"));
    assert_eq!(header("x-forwarded-for"), Some("10.0.0.1, 192.0.2.7"));
    for hop_by_hop in ["connection", "x-hop", "te", "content-length"] {
        assert_eq!(header(hop_by_hop), None, "{hop_by_hop} was sent");
    }
    assert!(http.body.is_empty() && http.raw_body.is_empty());
}

#[test]
fn with_body_the_body_goes_as_text_and_bytes_and_the_partial_header_is_set() {
    let mut settings = settings(ExtAuthProtocol::Grpc);
    settings.body = Some(BodyForwarding {
        max_bytes: 5,
        refuse_larger: false,
    });
    let body = Bytes::from_static(b"{\"a\":1} and more");
    let check = check_request(
        &settings,
        &client_request(),
        client(),
        "http",
        Some((&body, true)),
    );
    let http = sent_http(&check);
    assert_eq!(http.body, "{\"a\":");
    assert_eq!(http.raw_body, b"{\"a\":");
    assert_eq!(
        http.headers
            .get("x-envoy-auth-partial-body")
            .map(String::as_str),
        Some("true")
    );

    let binary = Bytes::from_static(&[0xff, 0xfe, 0x00]);
    let check = check_request(
        &settings,
        &client_request(),
        client(),
        "http",
        Some((&binary, false)),
    );
    let http = sent_http(&check);
    assert!(
        http.body.is_empty(),
        "bytes that are not UTF-8 go in raw_body only"
    );
    assert_eq!(http.raw_body, [0xff, 0xfe, 0x00]);
}

#[test]
fn grpc_timeout_uses_milliseconds_then_seconds_within_eight_digits() {
    assert_eq!(grpc_timeout(Duration::from_millis(250)), "250m");
    assert_eq!(grpc_timeout(Duration::ZERO), "1m");
    assert_eq!(grpc_timeout(Duration::from_secs(200_000)), "200000S");
}

fn option(
    key: &str,
    value: &str,
    append: Option<bool>,
    action: HeaderAppendAction,
) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value: value.to_owned(),
            raw_value: Vec::new(),
        }),
        append,
        append_action: action.into(),
        keep_empty_value: false,
    }
}

#[test]
fn an_ok_status_allows_with_the_header_operations_of_ok_response() {
    use HeaderAppendAction::{AddIfAbsent, AppendIfExistsOrAdd, OverwriteIfExists};
    let ok = OkHttpResponse {
        headers: vec![
            option("x-set", "new", Some(false), AppendIfExistsOrAdd),
            option("x-append", "2", Some(true), AppendIfExistsOrAdd),
            // No `append`: the default action reads as replace ("append defaults to false").
            option("x-default", "new", None, AppendIfExistsOrAdd),
            option("x-absent", "new", None, AddIfAbsent),
            option("x-present", "new", None, AddIfAbsent),
            option("x-missing", "new", None, OverwriteIfExists),
            option("x-empty", "", None, AppendIfExistsOrAdd),
            option("bad name", "v", None, AppendIfExistsOrAdd),
            option("content-length", "0", Some(false), AppendIfExistsOrAdd),
            option(
                "transfer-encoding",
                "chunked",
                Some(false),
                AppendIfExistsOrAdd,
            ),
        ],
        headers_to_remove: vec!["authorization".to_owned(), "host".to_owned()],
    };
    let response = CheckResponse {
        status: Some(Status {
            code: 0,
            message: String::new(),
        }),
        http_response: Some(HttpResponse::OkResponse(ok)),
    };
    let Verdict::Allow(changes) = judged(&response) else {
        panic!("status 0 must allow");
    };
    let mut upstream = HeaderMap::new();
    for (name, value) in [
        ("x-set", "old"),
        ("x-append", "1"),
        ("x-default", "old"),
        ("x-present", "old"),
        ("authorization", "Bearer t"),
        ("host", "shop.example"),
        ("content-length", "5"),
    ] {
        upstream.append(name, value.parse().expect("a header value"));
    }
    changes.apply(&mut upstream);
    assert_eq!(values(&upstream, "x-set"), ["new"]);
    assert_eq!(values(&upstream, "x-append"), ["1", "2"]);
    assert_eq!(values(&upstream, "x-default"), ["new"]);
    assert_eq!(values(&upstream, "x-absent"), ["new"]);
    assert_eq!(values(&upstream, "x-present"), ["old"]);
    assert!(!upstream.contains_key("x-missing"));
    assert!(!upstream.contains_key("x-empty"));
    assert!(!upstream.contains_key("authorization"));
    assert_eq!(values(&upstream, "host"), ["shop.example"]);
    assert_eq!(values(&upstream, "content-length"), ["5"]);
    assert!(!upstream.contains_key("transfer-encoding"));
}

#[test]
fn a_response_without_status_allows_as_protobuf_defaults_say() {
    let verdict = judged(&CheckResponse::default());
    assert!(
        matches!(verdict, Verdict::Allow(ref changes) if changes.is_empty()),
        "{verdict:?}"
    );
}

#[test]
fn a_non_ok_status_denies_with_the_denied_response() {
    let mut keep_empty = option("x-empty", "", None, HeaderAppendAction::AppendIfExistsOrAdd);
    keep_empty.keep_empty_value = true;
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus { code: 401 }),
        headers: vec![
            option(
                "www-authenticate",
                "Bearer",
                None,
                HeaderAppendAction::AppendIfExistsOrAdd,
            ),
            option(
                "set-cookie",
                "a=1",
                Some(true),
                HeaderAppendAction::AppendIfExistsOrAdd,
            ),
            option(
                "set-cookie",
                "b=2",
                Some(true),
                HeaderAppendAction::AppendIfExistsOrAdd,
            ),
            option(
                "content-length",
                "99",
                None,
                HeaderAppendAction::AppendIfExistsOrAdd,
            ),
            keep_empty,
        ],
        body: "no entry".to_owned(),
    };
    let response = CheckResponse {
        status: Some(Status {
            code: 7,
            message: "denied".to_owned(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(denied)),
    };
    let Verdict::Deny(denial) = judged(&response) else {
        panic!("status 7 must deny");
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denial.reason, DENIED);
    assert_eq!(denial.body.as_ref(), b"no entry");
    assert_eq!(values(&denial.headers, "www-authenticate"), ["Bearer"]);
    assert_eq!(values(&denial.headers, "set-cookie"), ["a=1", "b=2"]);
    assert_eq!(values(&denial.headers, "x-empty"), [""]);
    assert!(!denial.headers.contains_key("content-length"));
}

#[test]
fn a_denial_without_a_valid_status_is_a_403() {
    for status in [None, Some(0), Some(99), Some(1000), Some(-1)] {
        let response = CheckResponse {
            status: Some(Status {
                code: 16,
                message: String::new(),
            }),
            http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                status: status.map(|code| HttpStatus { code }),
                ..Default::default()
            })),
        };
        let Verdict::Deny(denial) = judged(&response) else {
            panic!("status 16 must deny");
        };
        assert_eq!(denial.status, StatusCode::FORBIDDEN, "{status:?}");
    }
    let bare = CheckResponse {
        status: Some(Status {
            code: 7,
            message: String::new(),
        }),
        http_response: None,
    };
    assert!(matches!(judged(&bare), Verdict::Deny(ref d) if d.status == StatusCode::FORBIDDEN));
}

/// The reason `judge` gives for an answer with this head, body and trailers.
fn error_of(head: response::Parts, body: Bytes, trailers: Option<&HeaderMap>) -> &'static str {
    match judge(&settings(ExtAuthProtocol::Grpc), head, body, trailers) {
        Verdict::Error(why) => why,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_failed_call_is_an_error_not_a_denial() {
    let ok = framed(&CheckResponse::default());
    let mut failed = HeaderMap::new();
    failed.insert("grpc-status", "14".parse().expect("a header value"));
    assert_eq!(
        error_of(grpc_head(), ok.clone(), Some(&failed)),
        "grpc-error"
    );
    // Trailers-Only: the status in the head, no body.
    let trailers_only = answer(
        200,
        &[("content-type", "application/grpc"), ("grpc-status", "7")],
    );
    assert_eq!(error_of(trailers_only, Bytes::new(), None), "grpc-error");
    let ok_without_message = answer(
        200,
        &[("content-type", "application/grpc"), ("grpc-status", "0")],
    );
    assert_eq!(
        error_of(ok_without_message, Bytes::new(), None),
        "missing-message"
    );
    assert_eq!(
        error_of(grpc_head(), ok.clone(), None),
        "missing-grpc-status"
    );
    let mut garbled = HeaderMap::new();
    garbled.insert("grpc-status", "zero".parse().expect("a header value"));
    assert_eq!(
        error_of(grpc_head(), ok.clone(), Some(&garbled)),
        "bad-grpc-status"
    );
    assert_eq!(
        error_of(answer(503, &[]), ok.clone(), Some(&ok_trailers())),
        "grpc-http-status"
    );
    let html = answer(200, &[("content-type", "text/html")]);
    assert_eq!(error_of(html, ok, Some(&ok_trailers())), "not-grpc");
}

#[test]
fn malformed_frames_and_messages_are_errors() {
    let trailers = ok_trailers();
    let case = |body: &[u8]| error_of(grpc_head(), Bytes::copy_from_slice(body), Some(&trailers));
    assert_eq!(case(&[0, 0, 0]), "truncated-frame");
    assert_eq!(case(&[0, 0, 0, 0, 10, 1, 2, 3]), "truncated-frame");
    assert_eq!(case(&[0, 0xff, 0xff, 0xff, 0xff, 1]), "oversized-frame");
    assert_eq!(case(&[1, 0, 0, 0, 0]), "compressed-message");
    assert_eq!(case(&[7, 0, 0, 0, 0]), "bad-frame");
    assert_eq!(case(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "extra-frames");
    // Field 1 as a length-delimited message that runs past its end; then a wire type 7.
    assert_eq!(case(&[0, 0, 0, 0, 2, 0x0a, 0x09]), "bad-check-response");
    assert_eq!(case(&[0, 0, 0, 0, 2, 0xff, 0xff]), "bad-check-response");
}

#[test]
fn no_prefix_of_an_answer_nor_noise_panics() {
    let response = CheckResponse {
        status: Some(Status {
            code: 7,
            message: "no".to_owned(),
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: 401 }),
            headers: vec![option(
                "x",
                "y",
                Some(true),
                HeaderAppendAction::AddIfAbsent,
            )],
            body: "b".to_owned(),
        })),
    };
    let whole = framed(&response);
    let trailers = ok_trailers();
    let settings = settings(ExtAuthProtocol::Grpc);
    for end in 0..whole.len() {
        let verdict = judge(&settings, grpc_head(), whole.slice(..end), Some(&trailers));
        assert!(
            matches!(verdict, Verdict::Error(_)),
            "prefix {end}: {verdict:?}"
        );
    }
    // Deterministic noise (a linear congruential generator) behind a valid frame prefix.
    let mut state: u32 = 0x2545_f491;
    for length in 0..300_u32 {
        let mut body = BytesMut::new();
        body.put_u8(0);
        body.put_u32(length);
        for _ in 0..length {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            body.put_u8(state.to_be_bytes()[0]);
        }
        // Whatever it decodes to, judging it must return.
        let _ = judge(&settings, grpc_head(), body.freeze(), Some(&trailers));
    }
}
