//! Rules and requests drawn from small alphabets, so that most requests match several rules.
//!
//! Every pool holds the awkward cases as well as the common ones: uppercase and trailing-dot
//! hostnames, ports and IPv6 literals, prefixes with and without trailing `/` (and one without a
//! leading `/`, which matches nothing), empty path elements, repeated and non-UTF-8 header
//! values, percent-encoded and `+`-encoded query parameters, duplicate [`RouteOrder`]s.

use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use router::{
    HeaderMatch, HostPattern, PathMatch, QueryMatch, RequestView, RouteOrder, RuleMatch, ValueMatch,
};

/// Hostnames a rule may carry, parsed as `compile` does with [`HostPattern::parse`].
const RULE_HOSTS: &[&str] = &[
    "a.com",
    "b.a.com",
    "*.a.com",
    "*.b.a.com",
    "*.com",
    "c.org",
    "A.Com",
    "a.com.",
    "*",
    "*..",
];

/// Path pieces; a path is a few of them concatenated. Mostly whole elements, so that exact
/// paths and prefixes meet requests often.
const PATH_PIECES: &[&str] = &["/a", "/b", "/a", "/", "/ab", "a", "/.", "//"];

/// Sources of `RegularExpression` paths.
const PATH_REGEXES: &[&str] = &[
    "/a.*",
    "/a/[a-z]+",
    "/.*b",
    "/a|/ab",
    "[^/]*",
    "/a/b",
    "(/[ab]+)+/?",
    ".*",
];

/// The regex pools compiled once: compiling per input would dominate the target's time.
struct Compiled {
    paths: Vec<PathMatch>,
    headers: Vec<ValueMatch>,
    queries: Vec<ValueMatch>,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let value = |s: &&str| ValueMatch::regex(s).expect("pool regexes are valid");
    Compiled {
        paths: PATH_REGEXES
            .iter()
            .map(|s| PathMatch::regex(s).expect("pool regexes are valid"))
            .collect(),
        headers: HEADER_REGEXES.iter().map(value).collect(),
        queries: QUERY_REGEXES.iter().map(value).collect(),
    }
});

const HEADER_NAMES: &[&str] = &["x-a", "x-b"];
const HEADER_VALUES: &[&str] = &["1", "12", "B", "b", ""];
const HEADER_REGEXES: &[&str] = &["[0-9]+", "[a-z]*", "B|1"];

const QUERY_NAMES: &[&str] = &["q", "r", "Q", "a b"];
const QUERY_VALUES: &[&str] = &["a b", "1", "", "ab", "a+b"];
const QUERY_REGEXES: &[&str] = &["a.*", "[0-9]*", "a b"];
/// Query pieces; a query is a few of them concatenated: mostly whole parameters, some
/// fragments that make odd encodings.
const QUERY_PIECES: &[&str] = &[
    "q=1&", "q=a+b&", "r=1&", "Q=1&", "q=a%20b&", "a+b=1&", "q=ab&", "%71=1&", "q", "=", "&", "%2",
    "%ff", "+",
];

const ROUTES: &[&str] = &["ns/a", "ns/b", "x/a"];
const CREATED: &[Option<i64>] = &[None, Some(1), Some(2), Some(-1)];

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
    "[::1]",
    "::1",
    "a.com.",
    "",
    ".a.com",
    ".B.a.com",
    "a..com",
    "x.y.a.com:8080",
    "a.",
    "a..",
];

/// One added match, with the hostnames it was added under.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) hosts: Vec<HostPattern>,
    pub(super) matching: RuleMatch,
    pub(super) order: RouteOrder,
}

/// One request: what [`RequestView`] borrows.
#[derive(Debug)]
pub(super) struct Request {
    method: Method,
    host: &'static str,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl Request {
    pub(super) fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            host: self.host,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
        }
    }
}

/// Up to `max` rules.
pub(super) fn rules(input: &mut Unstructured<'_>, max: usize) -> Result<Vec<Rule>> {
    let count = input.int_in_range(0..=max)?;
    (0..count).map(|_| rule(input)).collect()
}

fn rule(input: &mut Unstructured<'_>) -> Result<Rule> {
    let host_count = match input.int_in_range(0..=3)? {
        0 | 1 => 0,
        n => n - 1,
    };
    let hosts = (0..host_count)
        .map(|_| Ok(HostPattern::parse(input.choose(RULE_HOSTS)?)))
        .collect::<Result<_>>()?;
    let path = match input.int_in_range(0..=4)? {
        0 => PathMatch::exact(&pieces(input, PATH_PIECES, 3)?),
        1 => input.choose(&COMPILED.paths)?.clone(),
        _ => PathMatch::prefix(&pieces(input, PATH_PIECES, 2)?),
    };
    let method = match input.int_in_range(0..=3)? {
        0 => Some(Method::GET),
        1 => Some(Method::POST),
        _ => None,
    };
    let header_count = few(input)?;
    let headers = (0..header_count)
        .map(|_| header_match(input))
        .collect::<Result<_>>()?;
    let query_count = few(input)?;
    let query = (0..query_count)
        .map(|_| query_match(input))
        .collect::<Result<_>>()?;
    let order = RouteOrder {
        created: *input.choose(CREATED)?,
        route: (*input.choose(ROUTES)?).into(),
        rule: input.int_in_range(0..=2)?,
        matching: input.int_in_range(0..=1)?,
    };
    Ok(Rule {
        hosts,
        matching: RuleMatch {
            path,
            method,
            headers,
            query,
        },
        order,
    })
}

fn header_match(input: &mut Unstructured<'_>) -> Result<HeaderMatch> {
    let name = HeaderName::from_static(input.choose(HEADER_NAMES)?);
    let value = if input.arbitrary()? {
        input.choose(&COMPILED.headers)?.clone()
    } else {
        ValueMatch::exact(input.choose(HEADER_VALUES)?)
    };
    Ok(HeaderMatch { name, value })
}

fn query_match(input: &mut Unstructured<'_>) -> Result<QueryMatch> {
    let name = (*input.choose(QUERY_NAMES)?).into();
    let value = if input.arbitrary()? {
        input.choose(&COMPILED.queries)?.clone()
    } else {
        ValueMatch::exact(input.choose(QUERY_VALUES)?)
    };
    Ok(QueryMatch { name, value })
}

/// One request.
pub(super) fn request(input: &mut Unstructured<'_>) -> Result<Request> {
    let method = input
        .choose(&[Method::GET, Method::POST, Method::PUT, Method::HEAD])?
        .clone();
    let host = *input.choose(REQUEST_HOSTS)?;
    let path = match input.int_in_range(0..=7)? {
        0 => String::new(),
        1 => "*".to_owned(),
        _ => pieces(input, PATH_PIECES, 3)?,
    };
    let query = match input.int_in_range(0..=3)? {
        0 => None,
        _ => Some(pieces(input, QUERY_PIECES, 4)?),
    };
    let mut headers = HeaderMap::new();
    for _ in 0..input.int_in_range(0..=4)? {
        let name = HeaderName::from_static(input.choose(HEADER_NAMES)?);
        let value = match input.int_in_range(0..=7)? {
            // Not UTF-8: matches no regex, and no exact value of the pools.
            0 => HeaderValue::from_bytes(b"\xff").expect("obs-text is a valid header value"),
            _ => HeaderValue::from_static(input.choose(HEADER_VALUES)?),
        };
        headers.append(name, value);
    }
    Ok(Request {
        method,
        host,
        path,
        query,
        headers,
    })
}

/// How many header or query conditions a rule has: usually none (each one makes a match less
/// likely), sometimes one or two.
fn few(input: &mut Unstructured<'_>) -> Result<usize> {
    Ok(match input.int_in_range(0..=9)? {
        0..=6 => 0,
        7 | 8 => 1,
        _ => 2,
    })
}

/// Up to `max` pieces concatenated.
fn pieces(input: &mut Unstructured<'_>, pool: &[&str], max: usize) -> Result<String> {
    let count = input.int_in_range(0..=max)?;
    let mut out = String::new();
    for _ in 0..count {
        out.push_str(input.choose(pool)?);
    }
    Ok(out)
}
