//! Brute-force cross-check: the indexed table must pick exactly what a naive implementation
//! picks (filter every match with `HostPattern::matches` and `RuleMatch::matches`, take the
//! minimum by hostname specificity then `MatchRank`), on pseudo-random routes and requests.

use std::cmp::Reverse;

use super::*;

/// Deterministic linear congruential generator (Knuth's MMIX constants), so failures replay.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The high bits of an LCG are the random ones.
        let high = usize::try_from(self.0 >> 33).expect("31 bits fit in usize");
        high % bound
    }

    fn pick<'a, X>(&mut self, items: &'a [X]) -> &'a X {
        &items[self.below(items.len())]
    }

    fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

const HOSTS: &[&str] = &[
    "a.com",
    "b.a.com",
    "*.a.com",
    "*.b.a.com",
    "*.com",
    "c.org",
    "A.Com",
];
const EXACT_PATHS: &[&str] = &["/", "/a", "/a/", "/a/b", "/ab", "/a//b", "*"];
const PREFIXES: &[&str] = &[
    "/", "/a", "/a/", "/a/b", "/a/b/", "/ab", "/a//b", "//", "", "x",
];
const REGEXES: &[&str] = &["/a.*", "/a/[a-z]+", "/.*b", "/a|/ab", "[^/]*", "/a/b/c"];
const ROUTES: &[&str] = &["ns/a", "ns/b", "other/a"];

const REQUEST_HOSTS: &[&str] = &[
    "a.com",
    "A.COM:80",
    "b.a.com",
    "x.b.a.com",
    "x.a.com",
    "c.org",
    "z.com",
    "com",
    "[::1]:80",
    "a.com.",
    "",
    ".a.com",
    ".B.a.com",
];
const REQUEST_PATHS: &[&str] = &[
    "/", "", "/a", "/a/", "/a/b", "/a/b/c", "/ab", "/abc", "/a//b", "/a//b/x", "//", "*", "/b",
    "/x/b", "/a/b/",
];
const REQUEST_QUERIES: &[Option<&str>] = &[
    None,
    Some("q=a+b"),
    Some("q=a%20b&r=1"),
    Some("Q=1&q=abc"),
    Some("r=1&r=2"),
    Some("q=zz&q=a+b"),
];

/// One added match, as the reference sees it.
struct Spec {
    hosts: Vec<HostPattern>,
    matching: RuleMatch,
    order: RouteOrder,
}

struct Pools {
    regexes: Vec<PathMatch>,
    headers: Vec<HeaderMatch>,
    queries: Vec<QueryMatch>,
}

fn pools() -> Pools {
    let regex_value = |s: &str| ValueMatch::regex(s).expect("pool regexes are valid");
    Pools {
        regexes: REGEXES
            .iter()
            .map(|s| PathMatch::regex(s).expect("pool regexes are valid"))
            .collect(),
        headers: vec![
            header("x-a", "1"),
            HeaderMatch {
                name: HeaderName::from_static("x-a"),
                value: regex_value("[0-9]+"),
            },
            header("x-b", "B"),
        ],
        queries: vec![
            query("q", "a b"),
            QueryMatch {
                name: "q".into(),
                value: regex_value("a.*"),
            },
            query("r", "1"),
            query("Q", "1"),
        ],
    }
}

fn random_spec(rng: &mut Lcg, pools: &Pools, id: usize) -> Spec {
    let hosts = (0..rng.below(3))
        .map(|_| HostPattern::parse(rng.pick_str(HOSTS)))
        .collect();
    let path = match rng.below(3) {
        0 => PathMatch::exact(rng.pick_str(EXACT_PATHS)),
        1 => rng.pick(&pools.regexes).clone(),
        _ => PathMatch::prefix(rng.pick_str(PREFIXES)),
    };
    let method = match rng.below(4) {
        0 => Some(Method::GET),
        1 => Some(Method::POST),
        _ => None,
    };
    let matching = RuleMatch {
        path,
        method,
        headers: (0..rng.below(3))
            .map(|_| rng.pick(&pools.headers).clone())
            .collect(),
        query: (0..rng.below(3))
            .map(|_| rng.pick(&pools.queries).clone())
            .collect(),
    };
    let order = RouteOrder {
        created: *rng.pick(&[None, Some(1), Some(2)]),
        route: (*rng.pick(ROUTES)).into(),
        rule: u32::try_from(rng.below(3)).expect("small"),
        // Unique, so the expected winner is never ambiguous.
        matching: u32::try_from(id).expect("test sizes fit in u32"),
    };
    Spec {
        hosts,
        matching,
        order,
    }
}

fn random_request<'a>(rng: &mut Lcg) -> Request<'a> {
    let mut request = Request::get(rng.pick_str(REQUEST_HOSTS), rng.pick_str(REQUEST_PATHS));
    request.method = rng.pick(&[Method::GET, Method::POST, Method::PUT]).clone();
    request.query = *rng.pick(REQUEST_QUERIES);
    for (name, values) in [("x-a", ["1", "12"]), ("x-b", ["B", "b"])] {
        match rng.below(3) {
            0 => {}
            n => request = request.header(name, values[n - 1]),
        }
    }
    request
}

/// Hostname specificity; lower wins. `HTTPRouteSpec.hostnames`: non-wildcard first, then the
/// most characters.
fn host_rank(pattern: &HostPattern) -> (u8, Reverse<usize>) {
    match pattern {
        HostPattern::Exact(_) => (0, Reverse(0)),
        HostPattern::Wildcard(suffix) => (1, Reverse(suffix.len())),
        HostPattern::Any => (2, Reverse(0)),
    }
}

fn reference(specs: &[Spec], view: &RequestView<'_>) -> Option<usize> {
    let host = strip_port(view.host);
    let any = [HostPattern::Any];
    specs
        .iter()
        .enumerate()
        .filter(|(_, spec)| spec.matching.matches(view))
        .flat_map(|(id, spec)| {
            let hosts = if spec.hosts.is_empty() {
                &any[..]
            } else {
                &spec.hosts[..]
            };
            hosts
                .iter()
                .filter(|pattern| pattern.matches(host))
                .map(move |pattern| {
                    (
                        host_rank(pattern),
                        MatchRank::new(&spec.matching, &spec.order),
                        id,
                    )
                })
        })
        .min()
        .map(|(_, _, id)| id)
}

/// Builds a table of `routes` random matches and compares `requests` random lookups; returns
/// how many requests matched something.
fn check_round(rng: &mut Lcg, pools: &Pools, routes: usize, requests: usize) -> usize {
    let specs: Vec<Spec> = (0..routes).map(|id| random_spec(rng, pools, id)).collect();
    let mut builder = RouteTableBuilder::new();
    for (id, spec) in specs.iter().enumerate() {
        builder.add(&spec.hosts, spec.matching.clone(), spec.order.clone(), id);
    }
    let table = builder.build();
    let mut matched = 0;
    for _ in 0..requests {
        let request = random_request(rng);
        let view = RequestView {
            method: &request.method,
            host: request.host,
            path: request.path,
            query: request.query,
            headers: &request.headers,
        };
        let expected = reference(&specs, &view);
        let actual = table.find(&view).map(|hit| *hit.target);
        assert_eq!(
            actual, expected,
            "host {:?} path {:?} method {} query {:?} headers {:?}",
            request.host, request.path, request.method, request.query, request.headers
        );
        matched += usize::from(actual.is_some());
    }
    matched
}

#[test]
fn table_agrees_with_brute_force_on_small_tables() {
    let pools = pools();
    let mut rng = Lcg(0x5eed);
    let mut matched = 0;
    for round in 0..60 {
        matched += check_round(&mut rng, &pools, 1 + round, 100);
    }
    // Guard against a generator so sparse that both sides trivially answer None.
    assert!(matched > 1_500, "only {matched} of 6000 requests matched");
}

#[test]
fn table_agrees_with_brute_force_on_a_large_table() {
    let pools = pools();
    let mut rng = Lcg(42);
    let matched = check_round(&mut rng, &pools, 3_000, 1_500);
    assert!(matched > 1_000, "only {matched} of 1500 requests matched");
}
