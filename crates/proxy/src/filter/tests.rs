use super::*;

fn prefix(value: &str) -> PathMatch {
    PathMatch::prefix(value)
}

#[test]
fn replace_prefix_match_follows_the_spec_table() {
    let cases = [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
    ];
    for (path, matched, replacement, expected) in cases {
        let modifier = PathModifier::ReplacePrefixMatch(replacement.to_owned());
        assert_eq!(
            modified_path(path, &modifier, &prefix(matched)),
            expected,
            "{path} {matched} {replacement}"
        );
    }
}

#[test]
fn header_modifier_sets_adds_removes() {
    let mut headers = HeaderMap::new();
    headers.insert("x-set", HeaderValue::from_static("old"));
    headers.insert("x-add", HeaderValue::from_static("first"));
    headers.insert("x-remove", HeaderValue::from_static("gone"));
    let modifier = HeaderModifier {
        set: vec![(
            http::HeaderName::from_static("x-set"),
            HeaderValue::from_static("new"),
        )],
        add: vec![(
            http::HeaderName::from_static("x-add"),
            HeaderValue::from_static("second"),
        )],
        remove: vec![http::HeaderName::from_static("x-remove")],
    };
    modify_headers(&mut headers, &modifier);
    assert_eq!(headers["x-set"], "new");
    let added: Vec<_> = headers.get_all("x-add").iter().collect();
    assert_eq!(added, vec!["first", "second"]);
    assert!(!headers.contains_key("x-remove"));
}

fn location(redirect: &Redirect, scheme: &str, host: &str, port: u16, path: &str) -> String {
    let path_and_query = PathAndQuery::try_from(path).expect("path");
    let response = redirect_response(
        redirect,
        scheme,
        host,
        port,
        Some(&path_and_query),
        &prefix("/"),
    );
    response.headers()[header::LOCATION]
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn redirect() -> Redirect {
    Redirect {
        scheme: None,
        hostname: None,
        port: None,
        path: None,
        status: StatusCode::FOUND,
    }
}

#[test]
fn redirect_port_defaults_follow_the_spec() {
    // No scheme, no port: the listener port, omitted when it is the scheme's default.
    assert_eq!(
        location(&redirect(), "http", "a.com:8080", 8080, "/p?q=1"),
        "http://a.com:8080/p?q=1"
    );
    assert_eq!(
        location(&redirect(), "http", "a.com", 80, "/p"),
        "http://a.com/p"
    );
    // A new scheme without a port: that scheme's well-known port.
    let https = Redirect {
        scheme: Some("https".into()),
        ..redirect()
    };
    assert_eq!(
        location(&https, "http", "a.com:8080", 8080, "/"),
        "https://a.com/"
    );
    // An explicit port is kept unless it is the default.
    let port = Redirect {
        port: Some(8443),
        scheme: Some("https".into()),
        ..redirect()
    };
    assert_eq!(
        location(&port, "http", "a.com", 80, "/"),
        "https://a.com:8443/"
    );
    let hostname = Redirect {
        hostname: Some("b.org".into()),
        ..redirect()
    };
    assert_eq!(
        location(&hostname, "http", "a.com", 80, "/x"),
        "http://b.org/x"
    );
}
