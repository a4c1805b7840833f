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
            "allowOrigins": ["*"],
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

/// The first problem of a `cors` block at path `c`.
fn refusal(block: serde_json::Value) -> String {
    compile_cors(&"c".into(), &spec(block.clone()))
        .expect_err(&block.to_string())
        .to_string()
}

#[test]
fn wildcard_must_stand_alone_in_allow_lists() {
    for field in ["allowOrigins", "allowMethods", "allowHeaders"] {
        let other = match field {
            "allowOrigins" => "https://a.example",
            "allowMethods" => "GET",
            _ => "x-a",
        };
        let error = refusal(serde_json::json!({ field: [other, "*"] }));
        assert_eq!(
            error,
            format!("c.{field}: \"*\" must be the only entry when it is used"),
        );
    }
    // exposeHeaders has no such rule in the CRD: `*` there still exposes everything.
    let policy = compile_cors(
        &"c".into(),
        &spec(serde_json::json!({"exposeHeaders": ["x-a", "*"]})),
    )
    .expect("valid");
    assert_eq!(policy.expose_headers, CorsList::Any);
}

#[test]
fn lists_are_sets() {
    assert_eq!(
        refusal(serde_json::json!({"allowMethods": ["GET", "PUT", "GET"]})),
        "c.allowMethods[2]: \"GET\" is already listed at [0]; the list is a set"
    );
    assert_eq!(
        refusal(serde_json::json!({"allowOrigins": ["https://a.example", "https://a.example"]})),
        "c.allowOrigins[1]: \"https://a.example\" is already listed at [0]; the list is a set"
    );
    assert!(
        refusal(serde_json::json!({"exposeHeaders": ["x-a", "x-a"]}))
            .starts_with("c.exposeHeaders[1]"),
    );
}

#[test]
fn methods_come_from_the_crd_enum() {
    let error = refusal(serde_json::json!({"allowMethods": ["GET", "PROPFIND"]}));
    assert!(
        error.starts_with("c.allowMethods[1]: \"PROPFIND\" is not one of GET, HEAD"),
        "{error}"
    );
    // Methods are case-sensitive tokens (RFC 9110 section 9.1); the enum is upper case.
    assert!(refusal(serde_json::json!({"allowMethods": ["get"]})).starts_with("c.allowMethods[0]"));
    let every = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let policy = compile_cors(
        &"c".into(),
        &spec(serde_json::json!({"allowMethods": every})),
    )
    .expect("every enum value");
    assert_eq!(
        policy.allow_methods,
        CorsList::Listed(HeaderValue::from_static(
            "GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH"
        ))
    );
}
