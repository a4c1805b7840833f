use super::*;

fn map(patterns: &[&str]) -> HostMap<String> {
    let mut map = HostMap::new();
    for pattern in patterns {
        map.entry_or_insert_with(&HostPattern::parse(pattern), || (*pattern).to_owned());
    }
    map
}

fn candidates(map: &HostMap<String>, host: &str) -> Vec<String> {
    map.candidates(host).cloned().collect()
}

#[test]
fn parse_recognises_wildcard_exact_and_any() {
    assert_eq!(
        HostPattern::parse("*.Example.COM"),
        HostPattern::Wildcard("example.com".into())
    );
    assert_eq!(
        HostPattern::parse("Foo.Example.com"),
        HostPattern::Exact("foo.example.com".into())
    );
    assert_eq!(HostPattern::parse(""), HostPattern::Any);
    assert_eq!(HostPattern::parse("*"), HostPattern::Any);
    assert_eq!(
        HostPattern::parse("foo.com."),
        HostPattern::Exact("foo.com".into())
    );
}

#[test]
fn display_round_trips_parse() {
    for text in ["*.example.com", "foo.example.com", "*"] {
        assert_eq!(HostPattern::parse(text).to_string(), text);
    }
}

#[test]
fn candidates_are_most_specific_first() {
    let map = map(&["*", "*.com", "*.a.com", "b.a.com", "*.b.a.com"]);
    assert_eq!(
        candidates(&map, "b.a.com"),
        ["b.a.com", "*.a.com", "*.com", "*"]
    );
    assert_eq!(
        candidates(&map, "x.b.a.com"),
        ["*.b.a.com", "*.a.com", "*.com", "*"]
    );
    assert_eq!(candidates(&map, "other.org"), ["*"]);
}

#[test]
fn exact_hostname_beats_wildcard() {
    let map = map(&["*.example.com", "foo.example.com"]);
    assert_eq!(
        map.most_specific("foo.example.com").map(String::as_str),
        Some("foo.example.com")
    );
    assert_eq!(
        map.most_specific("bar.example.com").map(String::as_str),
        Some("*.example.com")
    );
}

#[test]
fn longer_wildcard_beats_shorter() {
    let map = map(&["*.com", "*.example.com"]);
    assert_eq!(
        map.most_specific("a.example.com").map(String::as_str),
        Some("*.example.com")
    );
}

#[test]
fn wildcard_does_not_match_apex() {
    let map = map(&["*.example.com"]);
    assert!(map.most_specific("example.com").is_none());
    assert!(map.most_specific(".example.com").is_none());
    assert!(!HostPattern::parse("*.example.com").matches("example.com"));
    assert!(!HostPattern::parse("*.example.com").matches(".example.com"));
}

#[test]
fn wildcard_matches_several_labels() {
    let map = map(&["*.example.com"]);
    assert!(map.most_specific("a.b.example.com").is_some());
    assert!(HostPattern::parse("*.example.com").matches("a.b.example.com"));
}

#[test]
fn wildcard_matches_only_on_label_boundary() {
    let map = map(&["*.example.com"]);
    assert!(map.most_specific("aexample.com").is_none());
    assert!(!HostPattern::parse("*.example.com").matches("aexample.com"));
}

#[test]
fn host_match_is_case_insensitive() {
    let map = map(&["foo.example.com", "*.bar.com"]);
    assert!(map.most_specific("FOO.Example.COM").is_some());
    assert!(map.most_specific("X.BAR.COM").is_some());
    assert!(HostPattern::parse("foo.example.com").matches("FOO.EXAMPLE.COM"));
}

#[test]
fn pattern_built_without_parse_is_case_insensitive_too() {
    let mut map = HostMap::new();
    map.entry_or_insert_with(&HostPattern::Exact("Foo.COM".into()), || 1);
    assert_eq!(map.most_specific("foo.com"), Some(&1));
    assert_eq!(map.get(&HostPattern::Exact("FOO.com".into())), Some(&1));
}

#[test]
fn trailing_dot_is_ignored() {
    let map = map(&["foo.com"]);
    assert!(map.most_specific("foo.com.").is_some());
    assert!(HostPattern::parse("foo.com").matches("foo.com."));
}

#[test]
fn host_longer_than_inline_buffer_still_matches() {
    let long = format!("{}.example.com", "a".repeat(300));
    let map = map(&["*.example.com", long.as_str()]);
    assert_eq!(map.most_specific(&long.to_uppercase()), Some(&long));
    let other = format!("{}.example.com", "b".repeat(300));
    assert_eq!(
        map.most_specific(&other).map(String::as_str),
        Some("*.example.com")
    );
}

#[test]
fn entry_or_insert_with_reuses_existing_entry() {
    let mut map: HostMap<Vec<u8>> = HostMap::new();
    map.entry_or_insert_with(&HostPattern::parse("a.com"), Vec::new)
        .push(1);
    map.entry_or_insert_with(&HostPattern::parse("A.com"), Vec::new)
        .push(2);
    map.entry_or_insert_with(&HostPattern::Any, Vec::new)
        .push(3);
    assert_eq!(map.len(), 2);
    assert_eq!(map.get(&HostPattern::parse("a.com")), Some(&vec![1, 2]));
    let patterns: Vec<String> = map.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(patterns, ["a.com", "*"]);
}

#[test]
fn host_port_is_ignored() {
    assert_eq!(strip_port("foo.com:8080"), "foo.com");
    assert_eq!(strip_port("foo.com"), "foo.com");
    assert_eq!(strip_port("foo.com:"), "foo.com");
    assert_eq!(strip_port(":80"), "");
    assert_eq!(strip_port(""), "");
    assert_eq!(strip_port("127.0.0.1:38603"), "127.0.0.1");
}

#[test]
fn ipv6_host_with_port() {
    assert_eq!(strip_port("[::1]:8080"), "[::1]");
    assert_eq!(strip_port("[::1]"), "[::1]");
    assert_eq!(strip_port("::1"), "::1");
    assert_eq!(strip_port("[::1"), "[::1");
    assert_eq!(strip_port("2001:db8::1"), "2001:db8::1");
    assert_eq!(strip_port("[2001:db8::1]:443"), "[2001:db8::1]");
}

#[test]
fn empty_host_matches_only_any() {
    let map = map(&["a.com", "*.com", "*"]);
    assert_eq!(candidates(&map, ""), ["*"]);
}
