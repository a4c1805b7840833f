//! Proves that `RouteTable::find` does not allocate on the request path.
//!
//! The counting global allocator comes from the `allocation-counter` dev-dependency: our
//! workspace forbids `unsafe_code`, and `forbid` cannot be relaxed for one test file, so the
//! `unsafe impl GlobalAlloc` has to live outside it. Counting is per thread, so tests running in
//! parallel do not disturb each other.

use http::{HeaderMap, HeaderName, HeaderValue};
use router::{
    HeaderMatch, HostPattern, Method, PathMatch, QueryMatch, RequestView, RouteOrder, RouteTable,
    RouteTableBuilder, RuleMatch, ValueMatch,
};

fn order(route: &str) -> RouteOrder {
    RouteOrder {
        created: Some(1),
        route: route.into(),
        rule: 0,
        matching: 0,
    }
}

fn regex(source: &str) -> ValueMatch {
    ValueMatch::regex(source).expect("test regex is valid")
}

/// A table that exercises every index: exact map, regex list, trie, wildcard and any buckets,
/// header and query conditions.
fn table() -> RouteTable<u32> {
    let mut builder = RouteTableBuilder::new();
    let exact_host = [HostPattern::parse("shop.example.com")];
    let wildcard_host = [HostPattern::parse("*.example.com")];
    for (i, prefix) in ["/", "/api", "/api/v1", "/api/v1/users/"]
        .into_iter()
        .enumerate()
    {
        let matching = RuleMatch {
            path: PathMatch::prefix(prefix),
            ..RuleMatch::default()
        };
        builder.add(&exact_host, matching, order("shop/prefix"), 10 + i as u32);
    }
    let exact = RuleMatch {
        path: PathMatch::exact("/healthz"),
        method: Some(Method::GET),
        ..RuleMatch::default()
    };
    builder.add(&exact_host, exact, order("shop/exact"), 20);
    let regex_path = RuleMatch {
        path: PathMatch::regex("/items/[0-9]+").expect("test regex is valid"),
        headers: vec![HeaderMatch {
            name: HeaderName::from_static("x-version"),
            value: regex("v[0-9]+"),
        }],
        ..RuleMatch::default()
    };
    builder.add(&wildcard_host, regex_path, order("shop/regex"), 30);
    let with_query = RuleMatch {
        path: PathMatch::prefix("/search"),
        query: vec![QueryMatch {
            name: "q".into(),
            value: ValueMatch::exact("red shoes"),
        }],
        ..RuleMatch::default()
    };
    builder.add(&wildcard_host, with_query, order("shop/query"), 40);
    builder.add(&[], RuleMatch::default(), order("default/catch-all"), 50);
    builder.build()
}

struct Probe {
    host: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    expected: Option<u32>,
}

const PROBES: &[Probe] = &[
    Probe {
        host: "shop.example.com",
        path: "/api/v1/users/42",
        query: None,
        expected: Some(13),
    },
    Probe {
        host: "SHOP.Example.com:8443",
        path: "/api/v2",
        query: None,
        expected: Some(11),
    },
    Probe {
        host: "shop.example.com",
        path: "/healthz",
        query: None,
        expected: Some(20),
    },
    Probe {
        host: "a.b.example.com",
        path: "/items/7",
        query: None,
        expected: Some(30),
    },
    Probe {
        host: "m.example.com",
        path: "/search",
        query: Some("x=1&q=red+shoes"),
        expected: Some(40),
    },
    Probe {
        host: "m.example.com",
        path: "/search",
        query: Some("q=red%20shoes"),
        expected: Some(40),
    },
    Probe {
        host: "[::1]:80",
        path: "/anything",
        query: None,
        expected: Some(50),
    },
    Probe {
        host: "",
        path: "",
        query: None,
        expected: Some(50),
    },
];

fn run_probes(table: &RouteTable<u32>, headers: &HeaderMap) -> Vec<Option<u32>> {
    // Results are written into a buffer allocated before measuring.
    let mut results = Vec::with_capacity(PROBES.len());
    let info = allocation_counter::measure(|| {
        for probe in PROBES {
            let view = RequestView {
                method: &Method::GET,
                host: probe.host,
                path: probe.path,
                query: probe.query,
                headers,
            };
            results.push(table.find(&view).map(|hit| *hit.target));
        }
    });
    assert_eq!(info.count_total, 0, "find allocated: {info:?}");
    results
}

#[test]
fn find_does_not_allocate() {
    let table = table();
    let mut headers = HeaderMap::new();
    headers.insert("x-version", HeaderValue::from_static("v2"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    // Warm-up: the regex crate fills its per-thread matching cache on first use.
    let mut warm_up = Vec::new();
    for probe in PROBES {
        let view = RequestView {
            method: &Method::GET,
            host: probe.host,
            path: probe.path,
            query: probe.query,
            headers: &headers,
        };
        warm_up.push(table.find(&view).map(|hit| *hit.target));
    }
    let results = run_probes(&table, &headers);
    let expected: Vec<Option<u32>> = PROBES.iter().map(|probe| probe.expected).collect();
    assert_eq!(results, expected);
    assert_eq!(warm_up, expected);
}

#[test]
fn counter_sees_the_documented_slow_path() {
    // Guards against a vacuous test: a host over 253 bytes with uppercase is lowercased on
    // the heap (a lowercase host is used as it is).
    let table = table();
    let headers = HeaderMap::new();
    let long_host = format!("{}.example.com", "A".repeat(300));
    let view = RequestView {
        method: &Method::GET,
        host: &long_host,
        path: "/",
        query: None,
        headers: &headers,
    };
    let info = allocation_counter::measure(|| {
        std::hint::black_box(table.find(&view));
    });
    assert!(
        info.count_total > 0,
        "the allocation counter is not installed"
    );
}
