//! The HTTP protocol: the check request and the judging of answers.

use ::http::{HeaderMap, HeaderName, Method, Request, StatusCode, Version};
use bytes::Bytes;
use snapshot::security::{BodyForwarding, ExtAuth, ExtAuthProtocol};

use super::{answer, client, client_request, settings, values};
use crate::ext_auth::{DENIED, HeaderChange, MAX_ANSWER_BYTES, Verdict, check_request, judge};

fn http_settings(path_prefix: &str) -> ExtAuth {
    settings(ExtAuthProtocol::Http {
        path_prefix: path_prefix.to_owned(),
    })
}

#[test]
fn the_check_keeps_the_method_and_puts_the_prefix_before_path_and_query() {
    let check = check_request(
        &http_settings("/auth"),
        &client_request(),
        client(),
        "https",
        None,
    );
    assert_eq!(check.method(), Method::POST);
    assert_eq!(check.uri(), "/auth/api/items?x=1");
    assert_eq!(check.version(), Version::HTTP_11);
    assert_eq!(values(check.headers(), "host"), ["shop.example"]);
}

#[test]
fn the_check_carries_end_to_end_headers_but_no_hop_by_hop_or_framing_ones() {
    let check = check_request(
        &http_settings(""),
        &client_request(),
        client(),
        "https",
        None,
    );
    let headers = check.headers();
    assert_eq!(values(headers, "authorization"), ["Bearer token"]);
    assert_eq!(values(headers, "accept"), ["text/html", "application/json"]);
    for hop_by_hop in ["connection", "keep-alive", "x-hop", "te", "expect"] {
        assert!(!headers.contains_key(hop_by_hop), "{hop_by_hop} was sent");
    }
    // No body forwarding: the client's Content-Length (11) must not describe the empty check.
    assert_eq!(values(headers, "content-length"), ["0"]);
    assert!(check.body().is_empty());
    assert_eq!(values(headers, "x-forwarded-for"), ["10.0.0.1, 192.0.2.7"]);
    assert_eq!(values(headers, "x-forwarded-proto"), ["https"]);
    assert!(!headers.contains_key("x-envoy-auth-partial-body"));
}

#[test]
fn headers_to_backend_selects_the_headers_sent_besides_host_and_forwarding() {
    let mut settings = http_settings("");
    settings.headers_to_backend = vec![HeaderName::from_static("authorization")];
    let check = check_request(&settings, &client_request(), client(), "http", None);
    let mut names: Vec<&str> = check.headers().keys().map(HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "authorization",
            "content-length",
            "host",
            "x-forwarded-for",
            "x-forwarded-proto"
        ]
    );
}

#[test]
fn with_body_the_first_max_bytes_are_sent_and_the_partial_header_says_whether_cut() {
    let mut settings = http_settings("");
    settings.body = Some(BodyForwarding {
        max_bytes: 4,
        refuse_larger: false,
    });
    let body = Bytes::from_static(b"hello world");
    let check = check_request(
        &settings,
        &client_request(),
        client(),
        "http",
        Some((&body, false)),
    );
    assert_eq!(check.body().as_ref(), b"hell");
    assert_eq!(values(check.headers(), "content-length"), ["4"]);
    assert_eq!(
        values(check.headers(), "x-envoy-auth-partial-body"),
        ["true"]
    );

    let whole = Bytes::from_static(b"hi");
    let check = check_request(
        &settings,
        &client_request(),
        client(),
        "http",
        Some((&whole, false)),
    );
    assert_eq!(check.body().as_ref(), b"hi");
    assert_eq!(
        values(check.headers(), "x-envoy-auth-partial-body"),
        ["false"]
    );
}

#[test]
fn without_body_forwarding_a_given_body_is_not_sent() {
    let body = Bytes::from_static(b"secret");
    let check = check_request(
        &http_settings(""),
        &client_request(),
        client(),
        "http",
        Some((&body, false)),
    );
    assert!(check.body().is_empty());
    assert!(!check.headers().contains_key("x-envoy-auth-partial-body"));
}

#[test]
fn a_prefix_with_bytes_not_allowed_in_a_path_is_percent_encoded() {
    let check = check_request(
        &http_settings("/a b?c"),
        &client_request(),
        client(),
        "http",
        None,
    );
    assert_eq!(check.uri(), "/a%20b%3Fc/api/items?x=1");
}

#[test]
fn an_http2_request_without_host_gets_its_authority_as_host() {
    let parts = Request::builder()
        .uri("https://h2.example/x")
        .version(Version::HTTP_2)
        .body(())
        .expect("a valid request")
        .into_parts()
        .0;
    let check = check_request(&http_settings(""), &parts, client(), "https", None);
    assert_eq!(values(check.headers(), "host"), ["h2.example"]);
    assert_eq!(check.uri(), "/x");
    assert_eq!(check.method(), Method::GET);
}

#[test]
fn a_2xx_allows_and_headers_to_upstream_replace_the_clients_values() {
    let mut settings = http_settings("");
    settings.headers_to_upstream = vec![
        HeaderName::from_static("x-user"),
        HeaderName::from_static("x-groups"),
        HeaderName::from_static("x-tenant"),
    ];
    let head = answer(
        204,
        &[
            ("x-user", "ana"),
            ("x-groups", "a"),
            ("x-groups", "b"),
            ("x-other", "no"),
        ],
    );
    let Verdict::Allow(changes) = judge(&settings, head, Bytes::new(), None) else {
        panic!("a 204 must allow");
    };
    let mut upstream = HeaderMap::new();
    upstream.insert("x-user", "forged".parse().expect("a header value"));
    upstream.insert("x-tenant", "forged".parse().expect("a header value"));
    upstream.insert("x-kept", "1".parse().expect("a header value"));
    changes.apply(&mut upstream);
    assert_eq!(values(&upstream, "x-user"), ["ana"]);
    assert_eq!(values(&upstream, "x-groups"), ["a", "b"]);
    // Listed but not in the answer: the client's value does not survive.
    assert!(!upstream.contains_key("x-tenant"));
    assert!(!upstream.contains_key("x-other"));
    assert_eq!(values(&upstream, "x-kept"), ["1"]);
}

#[test]
fn headers_to_upstream_never_change_framing_or_routing_headers() {
    let mut settings = http_settings("");
    settings.headers_to_upstream = vec![
        HeaderName::from_static("content-length"),
        HeaderName::from_static("transfer-encoding"),
        HeaderName::from_static("host"),
    ];
    let head = answer(
        200,
        &[
            ("content-length", "0"),
            ("transfer-encoding", "chunked"),
            ("host", "evil"),
        ],
    );
    let Verdict::Allow(changes) = judge(&settings, head, Bytes::new(), None) else {
        panic!("a 200 must allow");
    };
    assert_eq!(changes.changes(), &[] as &[HeaderChange]);
}

#[test]
fn a_401_denies_and_reaches_the_client_with_its_headers_and_body() {
    let head = answer(
        401,
        &[
            ("www-authenticate", "Bearer realm=\"shop\""),
            ("content-type", "text/plain"),
            ("content-length", "6"),
            ("connection", "close, x-private"),
            ("x-private", "1"),
            ("x-trace", "t"),
        ],
    );
    let Verdict::Deny(denial) = judge(
        &http_settings(""),
        head,
        Bytes::from_static(b"who?\r\n"),
        None,
    ) else {
        panic!("a 401 must deny");
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denial.reason, DENIED);
    assert_eq!(denial.body.as_ref(), b"who?\r\n");
    assert_eq!(
        values(&denial.headers, "www-authenticate"),
        ["Bearer realm=\"shop\""]
    );
    assert_eq!(values(&denial.headers, "x-trace"), ["t"]);
    for dropped in ["content-length", "connection", "x-private"] {
        assert!(
            !denial.headers.contains_key(dropped),
            "{dropped} reached the client"
        );
    }
}

#[test]
fn a_302_redirect_reaches_the_client() {
    let head = answer(302, &[("location", "https://login.example/?rd=%2Fapi")]);
    let Verdict::Deny(denial) = judge(&http_settings(""), head, Bytes::new(), None) else {
        panic!("a 302 must deny");
    };
    assert_eq!(denial.status, StatusCode::FOUND);
    assert_eq!(
        values(&denial.headers, "location"),
        ["https://login.example/?rd=%2Fapi"]
    );
}

#[test]
fn a_5xx_is_an_error_of_the_service_not_a_denial() {
    for status in [500, 502, 503] {
        let verdict = judge(&http_settings(""), answer(status, &[]), Bytes::new(), None);
        assert!(
            matches!(verdict, Verdict::Error("server-error")),
            "{status}: {verdict:?}"
        );
    }
}

#[test]
fn an_answer_larger_than_the_bound_is_an_error() {
    let body = Bytes::from(vec![b'x'; MAX_ANSWER_BYTES + 1]);
    let verdict = judge(&http_settings(""), answer(403, &[]), body, None);
    assert!(
        matches!(verdict, Verdict::Error("answer-too-large")),
        "{verdict:?}"
    );
}

#[test]
fn envoy_headers_to_remove_removes_request_headers_but_never_host() {
    let head = answer(
        200,
        &[(
            "x-envoy-auth-headers-to-remove",
            "authorization, cookie,host,bad name",
        )],
    );
    let Verdict::Allow(changes) = judge(&http_settings(""), head, Bytes::new(), None) else {
        panic!("a 200 must allow");
    };
    let mut upstream = HeaderMap::new();
    for (name, value) in [
        ("authorization", "Basic x"),
        ("cookie", "a=1"),
        ("host", "shop.example"),
        ("accept", "*/*"),
    ] {
        upstream.insert(name, value.parse().expect("a header value"));
    }
    changes.apply(&mut upstream);
    let mut left: Vec<&str> = upstream.keys().map(HeaderName::as_str).collect();
    left.sort_unstable();
    assert_eq!(left, ["accept", "host"]);
}

#[test]
fn a_client_taken_from_x_forwarded_for_is_not_appended_again_nor_a_forged_partial_header_sent() {
    let mut parts = client_request();
    parts.headers.insert(
        "x-forwarded-for",
        "192.0.2.7, 10.0.0.1".parse().expect("a header value"),
    );
    parts.headers.insert(
        "x-envoy-auth-partial-body",
        "false".parse().expect("a header value"),
    );
    let check = check_request(&http_settings(""), &parts, client(), "http", None);
    assert_eq!(
        values(check.headers(), "x-forwarded-for"),
        ["192.0.2.7, 10.0.0.1"]
    );
    assert!(!check.headers().contains_key("x-envoy-auth-partial-body"));
}
