use super::*;

fn listed(value: &'static str) -> CorsList {
    CorsList::Listed(HeaderValue::from_static(value))
}

fn origin(scheme: &str, host: OriginHost, port: u16) -> OriginPattern {
    OriginPattern::Origin {
        scheme: scheme.to_owned(),
        host,
        port,
    }
}

/// The policy of the conformance route `cors-multiple-origins-methods-headers`.
fn listed_policy() -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![
            origin("https", OriginHost::Exact("www.foo.com".into()), 443),
            origin("https", OriginHost::Suffix(".bar.com".into()), 443),
        ],
        allow_credentials: true,
        allow_methods: listed("GET, OPTIONS"),
        allow_headers: listed("x-header-1, x-header-2"),
        expose_headers: listed("x-header-3, x-header-4"),
        max_age: HeaderValue::from_static("3600"),
    }
}

fn wildcard_policy(allow_credentials: bool) -> CorsPolicy {
    CorsPolicy {
        allow_origins: vec![OriginPattern::Any],
        allow_credentials,
        allow_methods: CorsList::Any,
        allow_headers: CorsList::Any,
        expose_headers: CorsList::Any,
        max_age: HeaderValue::from_static("5"),
    }
}

fn request_headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    headers
}

fn preflight(policy: &CorsPolicy, pairs: &[(&str, &str)]) -> Response<ResponseBody> {
    match check(Some(policy), &Method::OPTIONS, &request_headers(pairs)) {
        CorsVerdict::Respond(response) => response,
        CorsVerdict::Continue(_) => panic!("a preflight must be answered by the gateway"),
    }
}

fn grant(policy: &CorsPolicy, method: Method, pairs: &[(&str, &str)]) -> CorsGrant {
    match check(Some(policy), &method, &request_headers(pairs)) {
        CorsVerdict::Continue(Some(grant)) => grant,
        CorsVerdict::Continue(None) => panic!("a rule with CORS must produce a grant"),
        CorsVerdict::Respond(_) => panic!("not a preflight"),
    }
}

fn header<'a>(response: &'a Response<ResponseBody>, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn allowed(policy: &CorsPolicy, origin: &str) -> bool {
    origin_allowed(policy, origin.as_bytes())
}

#[test]
fn exact_origin_matches_with_the_scheme_default_port() {
    let policy = listed_policy();
    assert!(allowed(&policy, "https://www.foo.com"));
    assert!(allowed(&policy, "https://www.foo.com:443"));
    assert!(allowed(&policy, "HTTPS://WWW.FOO.COM"));
    assert!(!allowed(&policy, "http://www.foo.com"));
    assert!(!allowed(&policy, "https://www.foo.com:8443"));
    assert!(!allowed(&policy, "https://foo.com"));
}

#[test]
fn wildcard_origin_takes_any_number_of_labels_to_the_left() {
    let policy = listed_policy();
    assert!(allowed(&policy, "https://www.bar.com"));
    assert!(allowed(&policy, "https://xpto.www.bar.com"));
    assert!(!allowed(&policy, "https://bar.com"));
    assert!(!allowed(&policy, "https://foobar.com"));
    assert!(!allowed(&policy, "https://www.bar.com.evil.org"));
}

#[test]
fn explicit_port_must_match() {
    let policy = CorsPolicy {
        allow_origins: vec![origin("http", OriginHost::Any, 8080)],
        ..listed_policy()
    };
    assert!(allowed(&policy, "http://anything.example:8080"));
    assert!(allowed(&policy, "http://[::1]:8080"));
    assert!(!allowed(&policy, "http://anything.example"));
}

#[test]
fn star_allows_every_origin_even_null() {
    let policy = wildcard_policy(false);
    assert!(allowed(&policy, "https://foobar.com:12345"));
    assert!(allowed(&policy, "null"));
}

#[test]
fn malformed_origins_do_not_match() {
    let policy = listed_policy();
    for origin in [
        "null",
        "www.foo.com",
        "https://www.foo.com/path",
        "https://www.foo.com:99999",
        "https://",
    ] {
        assert!(!allowed(&policy, origin), "{origin}");
    }
}

#[test]
fn preflight_from_allowed_origin_gets_the_configured_lists() {
    let response = preflight(
        &listed_policy(),
        &[
            ("origin", "https://xpto.www.bar.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-header-1, x-header-2"),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://xpto.www.bar.com")
    );
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("GET, OPTIONS")
    );
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        Some("x-header-1, x-header-2")
    );
    assert_eq!(
        header(&response, "access-control-expose-headers"),
        Some("x-header-3, x-header-4")
    );
    assert_eq!(header(&response, "access-control-max-age"), Some("3600"));
    assert_eq!(
        header(&response, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&response, "vary"), Some("Origin"));
}

#[test]
fn preflight_from_other_origin_is_answered_without_cors_headers() {
    let response = preflight(
        &listed_policy(),
        &[
            ("origin", "https://foobar.com"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .keys()
            .all(|name| !name.as_str().starts_with("access-control-")),
        "{:?}",
        response.headers()
    );
}

#[test]
fn credentials_turn_wildcards_into_echoes() {
    let response = preflight(
        &wildcard_policy(true),
        &[
            ("origin", "https://other.foo.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-header-1, x-header-2"),
        ],
    );
    assert_eq!(
        header(&response, "access-control-allow-origin"),
        Some("https://other.foo.com")
    );
    assert_eq!(
        header(&response, "access-control-allow-methods"),
        Some("PUT")
    );
    assert_eq!(
        header(&response, "access-control-allow-headers"),
        Some("x-header-1, x-header-2")
    );
    assert_eq!(
        header(&response, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(header(&response, "access-control-expose-headers"), None);
}

#[test]
fn credentialed_wildcard_headers_are_left_out_when_none_were_requested() {
    let response = preflight(
        &wildcard_policy(true),
        &[
            ("origin", "https://other.foo.com"),
            ("access-control-request-method", "PUT"),
        ],
    );
    assert_eq!(header(&response, "access-control-allow-headers"), None);
}

#[test]
fn wildcards_without_credentials_answer_star() {
    let response = preflight(
        &wildcard_policy(false),
        &[
            ("origin", "https://other.foo.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-header-1"),
        ],
    );
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-methods"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-headers"), Some("*"));
    assert_eq!(header(&response, "access-control-allow-credentials"), None);
    assert_eq!(header(&response, "access-control-max-age"), Some("5"));
    assert_eq!(header(&response, "vary"), None, "`*` does not vary");
}

#[test]
fn options_without_a_request_method_is_not_a_preflight() {
    let verdict = check(
        Some(&listed_policy()),
        &Method::OPTIONS,
        &request_headers(&[("origin", "https://www.foo.com")]),
    );
    assert!(matches!(verdict, CorsVerdict::Continue(Some(_))));
}

#[test]
fn rules_without_cors_are_left_alone() {
    let verdict = check(
        None,
        &Method::OPTIONS,
        &request_headers(&[
            ("origin", "https://www.foo.com"),
            ("access-control-request-method", "GET"),
        ]),
    );
    assert!(matches!(verdict, CorsVerdict::Continue(None)));
}

#[test]
fn allowed_actual_request_gets_origin_credentials_and_exposed_headers() {
    let grant = grant(
        &listed_policy(),
        Method::GET,
        &[("origin", "https://www.foo.com")],
    );
    let mut headers =
        request_headers(&[("access-control-allow-origin", "https://backend.example")]);
    decorate(&mut headers, &grant);
    assert_eq!(
        headers
            .get_all("access-control-allow-origin")
            .iter()
            .collect::<Vec<_>>(),
        vec!["https://www.foo.com"],
        "the gateway's answer replaces the backend's"
    );
    assert_eq!(
        headers
            .get("access-control-allow-credentials")
            .map(HeaderValue::as_bytes),
        Some(&b"true"[..])
    );
    assert_eq!(
        headers
            .get("access-control-expose-headers")
            .map(HeaderValue::as_bytes),
        Some(&b"x-header-3, x-header-4"[..])
    );
    assert_eq!(
        headers.get("vary").map(HeaderValue::as_bytes),
        Some(&b"Origin"[..])
    );
}

#[test]
fn other_origin_actual_response_only_varies() {
    let grant = grant(
        &listed_policy(),
        Method::GET,
        &[("origin", "https://foobar.com")],
    );
    let mut headers = HeaderMap::new();
    decorate(&mut headers, &grant);
    assert_eq!(headers.len(), 1);
    assert!(headers.contains_key("vary"));
}

#[test]
fn vary_origin_is_not_repeated() {
    let grant = grant(
        &listed_policy(),
        Method::GET,
        &[("origin", "https://www.foo.com")],
    );
    let mut headers = request_headers(&[("vary", "Accept-Encoding, origin")]);
    decorate(&mut headers, &grant);
    assert_eq!(headers.get_all("vary").iter().count(), 1);
}

#[test]
fn credentialed_expose_wildcard_names_the_response_headers() {
    let grant = grant(
        &wildcard_policy(true),
        Method::GET,
        &[("origin", "https://other.foo.com")],
    );
    let mut headers = request_headers(&[("content-type", "text/plain"), ("x-trace", "1")]);
    decorate(&mut headers, &grant);
    assert_eq!(
        headers
            .get("access-control-expose-headers")
            .map(HeaderValue::as_bytes),
        Some(&b"content-type, x-trace"[..])
    );
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(HeaderValue::as_bytes),
        Some(&b"https://other.foo.com"[..])
    );
}

#[test]
fn repeated_origin_headers_are_not_trusted() {
    let grant = grant(
        &listed_policy(),
        Method::GET,
        &[
            ("origin", "https://www.foo.com"),
            ("origin", "https://evil.org"),
        ],
    );
    let mut headers = HeaderMap::new();
    decorate(&mut headers, &grant);
    assert!(!headers.contains_key("access-control-allow-origin"));
}
