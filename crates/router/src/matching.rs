//! The conditions of one `HTTPRouteMatch` and how a single request is tested against them.
//!
//! Owns the meaning of each condition (path, method, headers, query parameters) as the Gateway
//! API `HTTPRouteMatch` defines it. It does not rank matches against each other (that is
//! `precedence`) and does not index them (that is `table`); [`RuleMatch::matches`] is the plain
//! definition the indexed table must agree with.

use http::{HeaderMap, Method};

use crate::query;

#[cfg(test)]
mod tests;

/// How a rule matches the request path (`HTTPPathMatch`).
#[derive(Clone, Debug)]
pub enum PathMatch {
    /// `Exact`: the raw path, byte for byte (no decoding, no normalisation).
    Exact(Box<str>),
    /// `PathPrefix`: element-wise prefix, as written (a trailing `/` is kept here and ignored when
    /// matching). Must start with `/`; one that does not matches nothing (the CRD forbids it).
    Prefix(Box<str>),
    /// `RegularExpression`, matched against the whole path. Build it with [`PathMatch::regex`],
    /// which anchors the expression; a `Regex` built by hand must be anchored by its author.
    Regex(regex::Regex),
}

impl PathMatch {
    /// An `Exact` path match.
    pub fn exact(path: &str) -> PathMatch {
        PathMatch::Exact(path.into())
    }

    /// A `PathPrefix` match; `""` is taken as `/`.
    pub fn prefix(prefix: &str) -> PathMatch {
        PathMatch::Prefix(if prefix.is_empty() { "/" } else { prefix }.into())
    }

    /// A `RegularExpression` match on the whole path: `source` is compiled as `^(?:source)$`.
    ///
    /// # Errors
    /// The regex crate's error when `source` is not a valid expression or is too large.
    pub fn regex(source: &str) -> Result<PathMatch, regex::Error> {
        anchored(source).map(PathMatch::Regex)
    }

    /// Whether `path` (without query; `""` is taken as `/`) satisfies this match.
    pub fn matches(&self, path: &str) -> bool {
        let path = if path.is_empty() { "/" } else { path };
        match self {
            PathMatch::Exact(exact) => path == &**exact,
            PathMatch::Prefix(prefix) => {
                let Some(element_prefix) = prefix_elements(prefix) else {
                    return false;
                };
                // HTTPPathMatch: "PathPrefix ... matching is done on a path element by element
                // basis", so `/abc` matches `/abc` and `/abc/def` but not `/abcd`.
                match path.strip_prefix(element_prefix) {
                    Some(rest) => {
                        element_prefix.is_empty() || rest.is_empty() || rest.starts_with('/')
                    }
                    None => false,
                }
            }
            PathMatch::Regex(regex) => regex.is_match(path),
        }
    }
}

/// The part of a `PathPrefix` that must match whole path elements: the prefix without one
/// trailing `/` (the spec makes `/abc/` and `/abc` equivalent), `""` for `/` (matches every
/// path). `None` for a prefix that does not start with `/`, which matches nothing.
pub(crate) fn prefix_elements(prefix: &str) -> Option<&str> {
    if prefix.is_empty() {
        return Some("");
    }
    if !prefix.starts_with('/') {
        return None;
    }
    Some(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// How a header or query parameter value is matched.
#[derive(Clone, Debug)]
pub enum ValueMatch {
    /// `Exact`: byte for byte, case-sensitive.
    Exact(Box<str>),
    /// `RegularExpression` on the whole value. Build it with [`ValueMatch::regex`], which
    /// anchors it.
    Regex(regex::Regex),
}

impl ValueMatch {
    /// An `Exact` value match.
    pub fn exact(value: &str) -> ValueMatch {
        ValueMatch::Exact(value.into())
    }

    /// A `RegularExpression` value match on the whole value (`^(?:source)$`).
    ///
    /// # Errors
    /// The regex crate's error when `source` is not a valid expression or is too large.
    pub fn regex(source: &str) -> Result<ValueMatch, regex::Error> {
        anchored(source).map(ValueMatch::Regex)
    }

    /// Whether `value` satisfies this match. A value that is not UTF-8 never matches a regex.
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueMatch::Exact(exact) => value == exact.as_bytes(),
            ValueMatch::Regex(regex) => std::str::from_utf8(value).is_ok_and(|v| regex.is_match(v)),
        }
    }
}

fn anchored(source: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{source})$"))
}

/// One `HTTPHeaderMatch`.
#[derive(Clone, Debug)]
pub struct HeaderMatch {
    /// Header name; [`http::HeaderName`] is already case-insensitive.
    pub name: http::HeaderName,
    /// Required value.
    pub value: ValueMatch,
}

impl HeaderMatch {
    /// Whether any value of the header satisfies the match (a repeated header matches if one of
    /// its values does). An absent header never matches.
    pub fn matches(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(&self.name)
            .iter()
            .any(|value| self.value.matches(value.as_bytes()))
    }
}

/// One `HTTPQueryParamMatch`.
#[derive(Clone, Debug)]
pub struct QueryMatch {
    /// Parameter name, compared case-sensitively after percent-decoding.
    pub name: Box<str>,
    /// Required value, compared after percent-decoding (`+` is a space).
    pub value: ValueMatch,
}

impl QueryMatch {
    /// Whether the FIRST parameter named [`QueryMatch::name`] in `query` has a matching value.
    /// Allocation happens only for a regex on a value that contains `%` or `+`.
    pub fn matches(&self, query: Option<&str>) -> bool {
        let Some(raw) = query.and_then(|q| query::first_value(q, &self.name)) else {
            return false;
        };
        match &self.value {
            ValueMatch::Exact(exact) => query::decoded_eq(raw, exact),
            ValueMatch::Regex(regex) => query::decode(raw).is_some_and(|v| regex.is_match(&v)),
        }
    }
}

/// What the request looks like to the router.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// Request method.
    pub method: &'a Method,
    /// `Host` or `:authority`; may include `:port` and uppercase, both ignored.
    pub host: &'a str,
    /// Path without the query; `""` is taken as `/`.
    pub path: &'a str,
    /// Raw query string (after `?`), if any.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

/// One `HTTPRouteMatch`: every condition must hold.
///
/// [`RuleMatch::default`] is the spec's default match: `PathPrefix /` and nothing else.
#[derive(Clone, Debug)]
pub struct RuleMatch {
    /// Path condition.
    pub path: PathMatch,
    /// Method condition, if any.
    pub method: Option<Method>,
    /// Header conditions (all must hold).
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions (all must hold).
    pub query: Vec<QueryMatch>,
}

impl Default for RuleMatch {
    fn default() -> Self {
        RuleMatch {
            path: PathMatch::prefix("/"),
            method: None,
            headers: Vec::new(),
            query: Vec::new(),
        }
    }
}

impl RuleMatch {
    /// Whether the request satisfies every condition, path included. Host is not considered
    /// (hostnames belong to the route, not to the match).
    pub fn matches(&self, request: &RequestView<'_>) -> bool {
        self.path.matches(request.path) && self.matches_besides_path(request)
    }

    /// The first condition `request` fails, in the order path, method, headers, query (`None`:
    /// every condition holds, exactly when [`RuleMatch::matches`] is true). For explaining a
    /// lookup; the table does not call it.
    pub fn first_failure(&self, request: &RequestView<'_>) -> Option<MatchFailure> {
        if !self.path.matches(request.path) {
            return Some(MatchFailure::Path);
        }
        if self.method.as_ref().is_some_and(|m| m != request.method) {
            return Some(MatchFailure::Method);
        }
        if let Some(index) = self
            .headers
            .iter()
            .position(|h| !h.matches(request.headers))
        {
            return Some(MatchFailure::Header(index));
        }
        if let Some(index) = self.query.iter().position(|q| !q.matches(request.query)) {
            return Some(MatchFailure::Query(index));
        }
        None
    }

    /// Whether method, headers and query parameters all hold; the table checks the path itself.
    pub(crate) fn matches_besides_path(&self, request: &RequestView<'_>) -> bool {
        self.method.as_ref().is_none_or(|m| m == request.method)
            && self.headers.iter().all(|h| h.matches(request.headers))
            && self.query.iter().all(|q| q.matches(request.query))
    }
}

/// The condition of a [`RuleMatch`] a request failed ([`RuleMatch::first_failure`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchFailure {
    /// The path condition.
    Path,
    /// The method condition.
    Method,
    /// The header condition at this index of [`RuleMatch::headers`].
    Header(usize),
    /// The query parameter condition at this index of [`RuleMatch::query`].
    Query(usize),
}
