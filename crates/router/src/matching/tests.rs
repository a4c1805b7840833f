use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn request<'a>(path: &'a str, query: Option<&'a str>, headers: &'a HeaderMap) -> RequestView<'a> {
    RequestView {
        method: &Method::GET,
        host: "example.com",
        path,
        query,
        headers,
    }
}

fn regex_path(source: &str) -> PathMatch {
    PathMatch::regex(source).expect("test regex is valid")
}

fn regex_value(source: &str) -> ValueMatch {
    ValueMatch::regex(source).expect("test regex is valid")
}

#[test]
fn prefix_matches_on_segment_boundary() {
    let prefix = PathMatch::prefix("/abc");
    assert!(prefix.matches("/abc"));
    assert!(prefix.matches("/abc/"));
    assert!(prefix.matches("/abc/def"));
    assert!(!prefix.matches("/abcd"));
    assert!(!prefix.matches("/ab"));
}

#[test]
fn prefix_trailing_slash_equivalent() {
    let with_slash = PathMatch::prefix("/abc/");
    for path in ["/abc", "/abc/", "/abc/def"] {
        assert!(with_slash.matches(path), "{path}");
    }
    assert!(!with_slash.matches("/abcd"));
}

#[test]
fn root_prefix_matches_everything() {
    let root = PathMatch::prefix("/");
    for path in ["/", "", "/x/y", "*", "//"] {
        assert!(root.matches(path), "{path}");
    }
    assert!(PathMatch::prefix("").matches("/anything"));
}

#[test]
fn prefix_without_leading_slash_matches_nothing() {
    assert!(!PathMatch::prefix("abc").matches("/abc"));
    assert!(!PathMatch::prefix("abc").matches("abc"));
}

#[test]
fn exact_path_is_byte_for_byte() {
    let exact = PathMatch::exact("/a/b");
    assert!(exact.matches("/a/b"));
    assert!(!exact.matches("/a/b/"));
    assert!(!exact.matches("/A/b"));
    assert!(!exact.matches("/a%2Fb"));
    assert!(PathMatch::exact("/").matches(""));
}

#[test]
fn regex_path_is_anchored() {
    let regex = regex_path("/a/[0-9]+");
    assert!(regex.matches("/a/123"));
    assert!(!regex.matches("/a/123/x"));
    assert!(!regex.matches("/x/a/123"));
    // Alternation is grouped before anchoring: not `^/a|/b$`.
    let alternation = regex_path("/a|/b");
    assert!(alternation.matches("/a"));
    assert!(!alternation.matches("/ax"));
    assert!(!alternation.matches("/x/b"));
}

#[test]
fn invalid_regex_is_an_error() {
    assert!(PathMatch::regex("(").is_err());
    assert!(ValueMatch::regex("[").is_err());
}

#[test]
fn header_name_is_case_insensitive_value_is_not() {
    let mut headers = HeaderMap::new();
    headers.insert("X-Env", HeaderValue::from_static("Canary"));
    let matching = HeaderMatch {
        name: HeaderName::from_static("x-env"),
        value: ValueMatch::exact("Canary"),
    };
    assert!(matching.matches(&headers));
    let lower = HeaderMatch {
        value: ValueMatch::exact("canary"),
        ..matching
    };
    assert!(!lower.matches(&headers));
}

#[test]
fn header_regex_anchored() {
    let mut headers = HeaderMap::new();
    headers.insert("x-version", HeaderValue::from_static("v10"));
    let matching = |source: &str| HeaderMatch {
        name: HeaderName::from_static("x-version"),
        value: regex_value(source),
    };
    assert!(matching("v[0-9]+").matches(&headers));
    assert!(!matching("v1").matches(&headers));
    assert!(!matching("[0-9]+").matches(&headers));
}

#[test]
fn repeated_header_matches_on_any_value() {
    let mut headers = HeaderMap::new();
    headers.append("x-tag", HeaderValue::from_static("a"));
    headers.append("x-tag", HeaderValue::from_static("b"));
    let matching = HeaderMatch {
        name: HeaderName::from_static("x-tag"),
        value: ValueMatch::exact("b"),
    };
    assert!(matching.matches(&headers));
}

#[test]
fn absent_header_never_matches() {
    let matching = HeaderMatch {
        name: HeaderName::from_static("x-tag"),
        value: regex_value(".*"),
    };
    assert!(!matching.matches(&HeaderMap::new()));
}

#[test]
fn non_utf8_header_never_matches_regex() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-raw",
        HeaderValue::from_bytes(b"\xff").expect("obs-text is allowed"),
    );
    let matching = HeaderMatch {
        name: HeaderName::from_static("x-raw"),
        value: regex_value(".*"),
    };
    assert!(!matching.matches(&headers));
}

#[test]
fn query_value_is_percent_decoded() {
    let exact = QueryMatch {
        name: "q".into(),
        value: ValueMatch::exact("a b/c"),
    };
    assert!(exact.matches(Some("q=a%20b%2Fc")));
    assert!(exact.matches(Some("q=a+b/c")));
    let regex = QueryMatch {
        name: "q".into(),
        value: regex_value("a b.*"),
    };
    assert!(regex.matches(Some("x=1&q=a+b%2F")));
}

#[test]
fn query_param_uses_first_occurrence() {
    let matching = QueryMatch {
        name: "v".into(),
        value: ValueMatch::exact("2"),
    };
    assert!(!matching.matches(Some("v=1&v=2")));
    assert!(matching.matches(Some("v=2&v=1")));
}

#[test]
fn query_param_absent_or_no_query_never_matches() {
    let matching = QueryMatch {
        name: "v".into(),
        value: regex_value(".*"),
    };
    assert!(!matching.matches(None));
    assert!(!matching.matches(Some("w=1")));
    assert!(matching.matches(Some("v")));
}

#[test]
fn default_match_is_prefix_root() {
    let headers = HeaderMap::new();
    let default = RuleMatch::default();
    assert!(matches!(&default.path, PathMatch::Prefix(p) if &**p == "/"));
    assert!(default.matches(&request("/anything", None, &headers)));
}

#[test]
fn all_conditions_must_hold() {
    let mut headers = HeaderMap::new();
    headers.insert("x-a", HeaderValue::from_static("1"));
    let rule = RuleMatch {
        path: PathMatch::prefix("/api"),
        method: Some(Method::GET),
        headers: vec![HeaderMatch {
            name: HeaderName::from_static("x-a"),
            value: ValueMatch::exact("1"),
        }],
        query: vec![QueryMatch {
            name: "k".into(),
            value: ValueMatch::exact("v"),
        }],
    };
    assert!(rule.matches(&request("/api/x", Some("k=v"), &headers)));
    assert!(!rule.matches(&request("/api/x", Some("k=w"), &headers)));
    assert!(!rule.matches(&request("/other", Some("k=v"), &headers)));
    let post = RequestView {
        method: &Method::POST,
        ..request("/api/x", Some("k=v"), &headers)
    };
    assert!(!rule.matches(&post));
    assert!(!rule.matches(&request("/api/x", Some("k=v"), &HeaderMap::new())));
}
