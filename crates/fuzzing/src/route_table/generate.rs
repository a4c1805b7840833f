//! Rules and requests drawn from small alphabets, so that most requests match several rules.
//!
//! Every pool holds the awkward cases as well as the common ones: uppercase and trailing-dot
//! hostnames, ports and IPv6 literals, prefixes with and without trailing `/` (and one without a
//! leading `/`, which matches nothing), empty path elements, repeated and non-UTF-8 header
//! values, percent-encoded and `+`-encoded query parameters, duplicate [`RouteOrder`]s.

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

/// Path pieces; a path is a few of them concatenated.
const PATH_PIECES: &[&str] = &["/", "a", "b", "ab", "/a", "/b", "//", "x", "."];

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

const HEADER_NAMES: &[&str] = &["x-a", "x-b"];
const HEADER_VALUES: &[&str] = &["1", "12", "B", "b", ""];
const HEADER_REGEXES: &[&str] = &["[0-9]+", "[a-z]*", "B|1"];

const QUERY_NAMES: &[&str] = &["q", "r", "Q", "a b"];
const QUERY_VALUES: &[&str] = &["a b", "1", "", "ab", "a+b"];
const QUERY_REGEXES: &[&str] = &["a.*", "[0-9]*", "a b"];
/// Query pieces; a query is a few of them concatenated.
const QUERY_PIECES: &[&str] = &[
    "q", "r", "Q", "=", "&", "a", "b", "+", "%20", "%2", "1", "%61", "%ff", "a+b",
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
    let host_count = input.int_in_range(0..=2)?;
    let hosts = (0..host_count)
        .map(|_| Ok(HostPattern::parse(input.choose(RULE_HOSTS)?)))
        .collect::<Result<_>>()?;
    let path = match input.int_in_range(0..=2)? {
        0 => PathMatch::exact(&pieces(input, PATH_PIECES, 4)?),
        1 => PathMatch::regex(input.choose(PATH_REGEXES)?).expect("pool regexes are valid"),
        _ => PathMatch::prefix(&pieces(input, PATH_PIECES, 4)?),
    };
    let method = match input.int_in_range(0..=3)? {
        0 => Some(Method::GET),
        1 => Some(Method::POST),
        _ => None,
    };
    let header_count = input.int_in_range(0..=2)?;
    let headers = (0..header_count)
        .map(|_| header_match(input))
        .collect::<Result<_>>()?;
    let query_count = input.int_in_range(0..=2)?;
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
        ValueMatch::regex(input.choose(HEADER_REGEXES)?).expect("pool regexes are valid")
    } else {
        ValueMatch::exact(input.choose(HEADER_VALUES)?)
    };
    Ok(HeaderMatch { name, value })
}

fn query_match(input: &mut Unstructured<'_>) -> Result<QueryMatch> {
    let name = (*input.choose(QUERY_NAMES)?).into();
    let value = if input.arbitrary()? {
        ValueMatch::regex(input.choose(QUERY_REGEXES)?).expect("pool regexes are valid")
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
        _ => pieces(input, PATH_PIECES, 5)?,
    };
    let query = match input.arbitrary()? {
        true => Some(pieces(input, QUERY_PIECES, 6)?),
        false => None,
    };
    let mut headers = HeaderMap::new();
    for _ in 0..input.int_in_range(0..=3)? {
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

/// Up to `max` pieces concatenated.
fn pieces(input: &mut Unstructured<'_>, pool: &[&str], max: usize) -> Result<String> {
    let count = input.int_in_range(0..=max)?;
    let mut out = String::new();
    for _ in 0..count {
        out.push_str(input.choose(pool)?);
    }
    Ok(out)
}
