use super::*;

fn origin(host: OriginHost, scheme: &str, port: u16) -> OriginPattern {
    OriginPattern::Origin {
        scheme: scheme.to_owned(),
        host,
        port,
    }
}

#[test]
fn origins_parse_with_default_ports() {
    assert_eq!(parse_origin("*"), Ok(OriginPattern::Any));
    assert_eq!(
        parse_origin("https://www.Foo.com"),
        Ok(origin(
            OriginHost::Exact("www.foo.com".into()),
            "https",
            443
        ))
    );
    assert_eq!(
        parse_origin("http://foo.com"),
        Ok(origin(OriginHost::Exact("foo.com".into()), "http", 80))
    );
    assert_eq!(
        parse_origin("http://foo.com:8080"),
        Ok(origin(OriginHost::Exact("foo.com".into()), "http", 8080))
    );
}

#[test]
fn origin_wildcards_are_whole_host_or_first_label() {
    assert_eq!(
        parse_origin("https://*.bar.com"),
        Ok(origin(OriginHost::Suffix(".bar.com".into()), "https", 443))
    );
    assert_eq!(
        parse_origin("https://*"),
        Ok(origin(OriginHost::Any, "https", 443))
    );
    assert!(parse_origin("https://www.*.com").is_err());
    assert!(parse_origin("https://a*.bar.com").is_err());
}

#[test]
fn invalid_origins_are_rejected() {
    for bad in [
        "www.foo.com",
        "ftp://foo.com",
        "https://foo.com/path",
        "https://foo.com:0",
        "https://foo.com:99999",
        "https://foo..com",
        "https://",
    ] {
        assert!(parse_origin(bad).is_err(), "{bad} should be rejected");
    }
}

fn spec(yaml: serde_json::Value) -> HttpRouteRulesFiltersCors {
    serde_json::from_value(yaml).expect("valid cors block")
}

#[test]
fn lists_are_joined_and_wildcards_recognised() {
    let policy = compile_cors(
        &"at".into(),
        &spec(serde_json::json!({
            "allowOrigins": ["https://www.foo.com", "*"],
            "allowMethods": ["GET", "OPTIONS"],
            "allowHeaders": ["*"],
            "exposeHeaders": ["x-header-3", "x-header-4"],
            "allowCredentials": true,
            "maxAge": 3600,
        })),
    )
    .expect("valid");
    assert!(policy.allows_any_origin());
    assert!(policy.allow_credentials);
    assert_eq!(
        policy.allow_methods,
        CorsList::Listed(HeaderValue::from_static("GET, OPTIONS"))
    );
    assert_eq!(policy.allow_headers, CorsList::Any);
    assert_eq!(
        policy.expose_headers,
        CorsList::Listed(HeaderValue::from_static("x-header-3, x-header-4"))
    );
    assert_eq!(policy.max_age, HeaderValue::from_static("3600"));
}

#[test]
fn defaults_are_empty_lists_and_five_seconds() {
    let policy = compile_cors(&"at".into(), &spec(serde_json::json!({}))).expect("valid");
    assert!(policy.allow_origins.is_empty());
    assert!(!policy.allow_credentials);
    assert_eq!(policy.allow_methods, CorsList::Empty);
    assert_eq!(policy.max_age, HeaderValue::from_static("5"));
}

#[test]
fn errors_name_the_field() {
    let error = compile_cors(
        &"HTTPRoute a/b rules[0].filters[0].cors".into(),
        &spec(serde_json::json!({"allowOrigins": ["https://ok.com", "nope"]})),
    )
    .expect_err("invalid origin")
    .to_string();
    assert!(
        error.starts_with("HTTPRoute a/b rules[0].filters[0].cors.allowOrigins[1]: \"nope\""),
        "{error}"
    );
    let error = compile_cors(
        &"c".into(),
        &spec(serde_json::json!({"allowMethods": ["GET", "BAD METHOD"]})),
    )
    .expect_err("invalid method")
    .to_string();
    assert!(error.starts_with("c.allowMethods[1]"), "{error}");
    let error = compile_cors(&"c".into(), &spec(serde_json::json!({"maxAge": 0})))
        .expect_err("maxAge")
        .to_string();
    assert!(error.starts_with("c.maxAge"), "{error}");
}
