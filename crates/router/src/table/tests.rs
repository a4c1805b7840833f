use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::*;
use crate::matching::{HeaderMatch, QueryMatch, ValueMatch};

mod crosscheck;

fn order(route: &str, rule: u32) -> RouteOrder {
    RouteOrder {
        created: Some(100),
        route: route.into(),
        rule,
        matching: 0,
    }
}

fn path(path: PathMatch) -> RuleMatch {
    RuleMatch {
        path,
        ..RuleMatch::default()
    }
}

fn prefix(prefix: &str) -> RuleMatch {
    path(PathMatch::prefix(prefix))
}

fn hosts(patterns: &[&str]) -> Vec<HostPattern> {
    patterns.iter().map(|p| HostPattern::parse(p)).collect()
}

fn header(name: &'static str, value: &str) -> HeaderMatch {
    HeaderMatch {
        name: HeaderName::from_static(name),
        value: ValueMatch::exact(value),
    }
}

fn query(name: &str, value: &str) -> QueryMatch {
    QueryMatch {
        name: name.into(),
        value: ValueMatch::exact(value),
    }
}

/// A request with everything but host and path defaulted.
struct Request<'a> {
    method: Method,
    host: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: HeaderMap,
}

impl<'a> Request<'a> {
    fn get(host: &'a str, path: &'a str) -> Self {
        Request {
            method: Method::GET,
            host,
            path,
            query: None,
            headers: HeaderMap::new(),
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.append(name, HeaderValue::from_static(value));
        self
    }

    fn query(mut self, query: &'a str) -> Self {
        self.query = Some(query);
        self
    }

    fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    fn route(&self, table: &'a RouteTable<&'static str>) -> Option<&'static str> {
        let view = RequestView {
            method: &self.method,
            host: self.host,
            path: self.path,
            query: self.query,
            headers: &self.headers,
        };
        table.find(&view).map(|hit| *hit.target)
    }
}

fn table(add: impl FnOnce(&mut RouteTableBuilder<&'static str>)) -> RouteTable<&'static str> {
    let mut builder = RouteTableBuilder::new();
    add(&mut builder);
    builder.build()
}

#[test]
fn exact_path_beats_prefix() {
    let table = table(|b| {
        b.add(&[], prefix("/a/b/c"), order("ns/prefix", 0), "prefix");
        b.add(
            &[],
            path(PathMatch::exact("/a/b")),
            order("ns/exact", 0),
            "exact",
        );
    });
    assert_eq!(Request::get("h", "/a/b").route(&table), Some("exact"));
    assert_eq!(Request::get("h", "/a/b/c").route(&table), Some("prefix"));
    assert_eq!(Request::get("h", "/a/b/").route(&table), None);
}

#[test]
fn exact_path_beats_method_match() {
    let table = table(|b| {
        let method = RuleMatch {
            method: Some(Method::GET),
            ..prefix("/a")
        };
        b.add(&[], method, order("ns/method", 0), "method");
        b.add(
            &[],
            path(PathMatch::exact("/a")),
            order("ns/exact", 0),
            "exact",
        );
    });
    assert_eq!(Request::get("h", "/a").route(&table), Some("exact"));
}

#[test]
fn regex_path_ranks_between_exact_and_prefix() {
    let table = table(|b| {
        let regex = PathMatch::regex("/a/[0-9]+").expect("valid regex");
        b.add(&[], path(regex), order("ns/regex", 0), "regex");
        b.add(&[], prefix("/a/1"), order("ns/prefix", 0), "prefix");
        b.add(
            &[],
            path(PathMatch::exact("/a/1")),
            order("ns/exact", 0),
            "exact",
        );
    });
    assert_eq!(Request::get("h", "/a/1").route(&table), Some("exact"));
    assert_eq!(Request::get("h", "/a/12").route(&table), Some("regex"));
    assert_eq!(Request::get("h", "/a/1/x").route(&table), Some("prefix"));
}

#[test]
fn longer_regex_wins() {
    let table = table(|b| {
        let short = PathMatch::regex("/a.*").expect("valid regex");
        let long = PathMatch::regex("/a/b.*").expect("valid regex");
        b.add(&[], path(short), order("ns/short", 0), "short");
        b.add(&[], path(long), order("ns/long", 0), "long");
    });
    assert_eq!(Request::get("h", "/a/bc").route(&table), Some("long"));
    assert_eq!(Request::get("h", "/ax").route(&table), Some("short"));
}

#[test]
fn regex_path_is_anchored() {
    let table = table(|b| {
        let regex = PathMatch::regex("/v[0-9]").expect("valid regex");
        b.add(&[], path(regex), order("ns/regex", 0), "regex");
    });
    assert_eq!(Request::get("h", "/v1").route(&table), Some("regex"));
    assert_eq!(Request::get("h", "/v1/x").route(&table), None);
    assert_eq!(Request::get("h", "/x/v1").route(&table), None);
}

#[test]
fn longest_prefix_wins() {
    let table = table(|b| {
        b.add(&[], prefix("/"), order("ns/root", 0), "root");
        b.add(&[], prefix("/a"), order("ns/a", 0), "a");
        b.add(&[], prefix("/a/b"), order("ns/ab", 0), "ab");
    });
    assert_eq!(Request::get("h", "/a/b/c").route(&table), Some("ab"));
    assert_eq!(Request::get("h", "/a/c").route(&table), Some("a"));
    assert_eq!(Request::get("h", "/c").route(&table), Some("root"));
}

#[test]
fn prefix_with_trailing_slash_counts_its_characters() {
    let table = table(|b| {
        b.add(&[], prefix("/a"), order("ns/a", 0), "plain");
        b.add(&[], prefix("/a/"), order("ns/b", 0), "slash");
    });
    // Same paths covered; "/a/" has more characters as written.
    assert_eq!(Request::get("h", "/a").route(&table), Some("slash"));
}

#[test]
fn prefix_matches_on_segment_boundary() {
    let table = table(|b| b.add(&[], prefix("/abc"), order("ns/abc", 0), "abc"));
    assert_eq!(Request::get("h", "/abc").route(&table), Some("abc"));
    assert_eq!(Request::get("h", "/abc/").route(&table), Some("abc"));
    assert_eq!(Request::get("h", "/abc/def").route(&table), Some("abc"));
    assert_eq!(Request::get("h", "/abcd").route(&table), None);
}

#[test]
fn prefix_trailing_slash_equivalent() {
    let table = table(|b| b.add(&[], prefix("/abc/"), order("ns/abc", 0), "abc"));
    assert_eq!(Request::get("h", "/abc").route(&table), Some("abc"));
    assert_eq!(Request::get("h", "/abc/def").route(&table), Some("abc"));
    assert_eq!(Request::get("h", "/abcd").route(&table), None);
}

#[test]
fn empty_path_is_root() {
    let table = table(|b| {
        b.add(
            &[],
            path(PathMatch::exact("/")),
            order("ns/root", 0),
            "root",
        )
    });
    assert_eq!(Request::get("h", "").route(&table), Some("root"));
}

#[test]
fn method_match_beats_no_method() {
    let table = table(|b| {
        b.add(&[], prefix("/a"), order("ns/any", 0), "any");
        let post = RuleMatch {
            method: Some(Method::POST),
            ..prefix("/a")
        };
        b.add(&[], post, order("ns/post", 0), "post");
    });
    assert_eq!(
        Request::get("h", "/a").method(Method::POST).route(&table),
        Some("post")
    );
    assert_eq!(Request::get("h", "/a").route(&table), Some("any"));
}

#[test]
fn more_headers_win() {
    let table = table(|b| {
        let one = RuleMatch {
            headers: vec![header("x-a", "1")],
            ..prefix("/")
        };
        let two = RuleMatch {
            headers: vec![header("x-a", "1"), header("x-b", "2")],
            ..prefix("/")
        };
        b.add(&[], one, order("ns/one", 0), "one");
        b.add(&[], two, order("ns/two", 0), "two");
    });
    let both = Request::get("h", "/").header("x-a", "1").header("x-b", "2");
    assert_eq!(both.route(&table), Some("two"));
    assert_eq!(
        Request::get("h", "/").header("x-a", "1").route(&table),
        Some("one")
    );
    assert_eq!(Request::get("h", "/").route(&table), None);
}

#[test]
fn more_query_params_win() {
    let table = table(|b| {
        let one = RuleMatch {
            query: vec![query("a", "1")],
            ..prefix("/")
        };
        let two = RuleMatch {
            query: vec![query("a", "1"), query("b", "2")],
            ..prefix("/")
        };
        b.add(&[], one, order("ns/one", 0), "one");
        b.add(&[], two, order("ns/two", 0), "two");
    });
    assert_eq!(
        Request::get("h", "/").query("b=2&a=1").route(&table),
        Some("two")
    );
    assert_eq!(
        Request::get("h", "/").query("a=1").route(&table),
        Some("one")
    );
}

#[test]
fn headers_beat_query_params() {
    let table = table(|b| {
        let by_query = RuleMatch {
            query: vec![query("a", "1"), query("b", "2")],
            ..prefix("/")
        };
        let by_header = RuleMatch {
            headers: vec![header("x-a", "1")],
            ..prefix("/")
        };
        b.add(&[], by_query, order("ns/query", 0), "query");
        b.add(&[], by_header, order("ns/header", 0), "header");
    });
    let request = Request::get("h", "/").query("a=1&b=2").header("x-a", "1");
    assert_eq!(request.route(&table), Some("header"));
}

#[test]
fn query_value_is_percent_decoded() {
    let table = table(|b| {
        let rule = RuleMatch {
            query: vec![query("name", "a b")],
            ..prefix("/")
        };
        b.add(&[], rule, order("ns/q", 0), "q");
    });
    assert_eq!(
        Request::get("h", "/").query("name=a%20b").route(&table),
        Some("q")
    );
    assert_eq!(
        Request::get("h", "/").query("name=a+b").route(&table),
        Some("q")
    );
}

#[test]
fn header_regex_anchored() {
    let table = table(|b| {
        let rule = RuleMatch {
            headers: vec![HeaderMatch {
                name: HeaderName::from_static("x-v"),
                value: ValueMatch::regex("[0-9]").expect("valid regex"),
            }],
            ..prefix("/")
        };
        b.add(&[], rule, order("ns/v", 0), "v");
    });
    assert_eq!(
        Request::get("h", "/").header("x-v", "7").route(&table),
        Some("v")
    );
    assert_eq!(
        Request::get("h", "/").header("x-v", "77").route(&table),
        None
    );
}

#[test]
fn older_route_wins_tie() {
    let table = table(|b| {
        let newer = RouteOrder {
            created: Some(200),
            ..order("a/newer", 0)
        };
        let older = RouteOrder {
            created: Some(100),
            ..order("z/older", 0)
        };
        let undated = RouteOrder {
            created: None,
            ..order("0/undated", 0)
        };
        b.add(&[], prefix("/"), newer, "newer");
        b.add(&[], prefix("/"), undated, "undated");
        b.add(&[], prefix("/"), older, "older");
    });
    assert_eq!(Request::get("h", "/").route(&table), Some("older"));
}

#[test]
fn alphabetical_route_wins_tie() {
    let table = table(|b| {
        b.add(&[], prefix("/"), order("ns/b", 0), "b");
        b.add(&[], prefix("/"), order("ns/a", 0), "a");
    });
    assert_eq!(Request::get("h", "/").route(&table), Some("a"));
}

#[test]
fn first_rule_wins_within_route() {
    let table = table(|b| {
        b.add(&[], prefix("/"), order("ns/r", 1), "second");
        b.add(&[], prefix("/"), order("ns/r", 0), "first");
    });
    assert_eq!(Request::get("h", "/").route(&table), Some("first"));
}

#[test]
fn exact_hostname_beats_wildcard() {
    let table = table(|b| {
        b.add(
            &hosts(&["*.example.com"]),
            path(PathMatch::exact("/a")),
            order("ns/w", 0),
            "wild",
        );
        b.add(
            &hosts(&["foo.example.com"]),
            prefix("/"),
            order("ns/e", 0),
            "exact",
        );
    });
    // Hostname precedence comes before path precedence.
    assert_eq!(
        Request::get("foo.example.com", "/a").route(&table),
        Some("exact")
    );
    assert_eq!(
        Request::get("bar.example.com", "/a").route(&table),
        Some("wild")
    );
}

#[test]
fn longer_wildcard_beats_shorter() {
    let table = table(|b| {
        b.add(
            &hosts(&["*.com"]),
            path(PathMatch::exact("/a")),
            order("ns/short", 0),
            "short",
        );
        b.add(
            &hosts(&["*.example.com"]),
            prefix("/"),
            order("ns/long", 0),
            "long",
        );
    });
    assert_eq!(
        Request::get("a.example.com", "/a").route(&table),
        Some("long")
    );
    assert_eq!(
        Request::get("a.other.com", "/a").route(&table),
        Some("short")
    );
}

#[test]
fn wildcard_does_not_match_apex() {
    let table = table(|b| {
        b.add(
            &hosts(&["*.example.com"]),
            prefix("/"),
            order("ns/w", 0),
            "w",
        )
    });
    assert_eq!(Request::get("example.com", "/").route(&table), None);
    assert_eq!(
        Request::get("a.b.example.com", "/").route(&table),
        Some("w")
    );
}

#[test]
fn falls_through_to_less_specific_host() {
    let table = table(|b| {
        b.add(
            &hosts(&["foo.com"]),
            prefix("/a"),
            order("ns/foo", 0),
            "foo",
        );
        b.add(&[], prefix("/b"), order("ns/any", 0), "any");
    });
    assert_eq!(Request::get("foo.com", "/a").route(&table), Some("foo"));
    assert_eq!(Request::get("foo.com", "/b").route(&table), Some("any"));
    assert_eq!(Request::get("bar.com", "/a").route(&table), None);
}

#[test]
fn route_with_several_hostnames_is_in_each_bucket() {
    let table = table(|b| {
        let names = hosts(&["a.com", "*.b.com", "a.com"]);
        b.add(&names, prefix("/"), order("ns/r", 0), "r");
    });
    assert_eq!(table.len(), 1);
    assert_eq!(Request::get("a.com", "/").route(&table), Some("r"));
    assert_eq!(Request::get("x.b.com", "/").route(&table), Some("r"));
    assert_eq!(Request::get("c.com", "/").route(&table), None);
}

#[test]
fn host_port_is_ignored() {
    let table = table(|b| b.add(&hosts(&["foo.com"]), prefix("/"), order("ns/r", 0), "r"));
    assert_eq!(Request::get("foo.com:8443", "/").route(&table), Some("r"));
}

#[test]
fn host_match_is_case_insensitive() {
    let table = table(|b| b.add(&hosts(&["Foo.COM"]), prefix("/"), order("ns/r", 0), "r"));
    assert_eq!(Request::get("FOO.com", "/").route(&table), Some("r"));
}

#[test]
fn ipv6_host_with_port() {
    let table = table(|b| {
        b.add(&hosts(&["foo.com"]), prefix("/"), order("ns/foo", 0), "foo");
        b.add(&[], prefix("/"), order("ns/any", 0), "any");
    });
    assert_eq!(Request::get("[::1]:8080", "/").route(&table), Some("any"));
    assert_eq!(Request::get("[::1]", "/").route(&table), Some("any"));
}

#[test]
fn hit_reports_the_matched_path_condition() {
    let table = table(|b| b.add(&[], prefix("/api/"), order("ns/r", 0), "r"));
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::GET,
        host: "h",
        path: "/api/x",
        query: None,
        headers: &headers,
    };
    let hit = table.find(&view).expect("prefix /api/ covers /api/x");
    assert!(matches!(hit.path_match, PathMatch::Prefix(p) if &**p == "/api/"));
}

#[test]
fn empty_table_finds_nothing() {
    let table: RouteTable<&str> = RouteTable::default();
    assert!(table.is_empty());
    assert_eq!(Request::get("h", "/").route(&table), None);
}

#[test]
fn table_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RouteTable<std::sync::Arc<String>>>();
}
