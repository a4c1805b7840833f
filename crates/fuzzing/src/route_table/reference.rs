//! The naive reference router: test every rule, keep the best by Gateway API precedence.
//!
//! Written from the spec (`HTTPRouteSpec.hostnames`, `HTTPRouteSpec.rules`, `HTTPPathMatch`,
//! `HTTPHeaderMatch`, `HTTPQueryParamMatch`) and the router's documented choices, without
//! calling the router's matching or ranking code, so that a shared mistake is unlikely:
//!
//! 1. hostname: an exact hostname, then wildcards by longest suffix, then rules without one;
//! 2. path: `Exact`, then `RegularExpression` (longest source first), then `PathPrefix`
//!    (longest as written, trailing `/` included);
//! 3. a method match beats none; 4. more header matches; 5. more query matches;
//! 6. [`router::RouteOrder`] (oldest, then `namespace/name`, rule index, match index);
//! 7. insertion order, which the table documents for identical ranks.

use std::cmp::Reverse;

use http::HeaderValue;
use router::{HeaderMatch, HostPattern, PathMatch, QueryMatch, RequestView, RuleMatch, ValueMatch};

use super::generate::Rule;

/// Hostname specificity; lower wins.
type HostRank = (u8, Reverse<usize>);

/// Path kind, path length, no method, header count, query count; lower wins.
type MatchRank = (u8, Reverse<usize>, bool, Reverse<usize>, Reverse<usize>);

/// Index of the rule that must serve `request`, if any.
pub(super) fn find(rules: &[Rule], request: &RequestView<'_>) -> Option<usize> {
    let host = request_host(request.host);
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| conditions_hold(&rule.matching, path, request))
        .filter_map(|(id, rule)| {
            let host_rank = best_host_rank(&rule.hosts, &host)?;
            Some((host_rank, match_rank(&rule.matching), &rule.order, id))
        })
        .min()
        .map(|(_, _, _, id)| id)
}

/// The request host without port and one trailing dot, lowercased (hostnames are
/// case-insensitive, RFC 4343).
fn request_host(authority: &str) -> String {
    let host = if authority.starts_with('[') {
        // `[v6]` or `[v6]:port`: keep the brackets, drop the port.
        authority
            .find(']')
            .map_or(authority, |end| &authority[..=end])
    } else if authority.matches(':').count() == 1 {
        authority.split(':').next().unwrap_or(authority)
    } else {
        // No colon, or a bare IPv6 address whose colons are not a port separator.
        authority
    };
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// The best rank among the rule's hostnames that match `host`; no hostnames means any host.
fn best_host_rank(hosts: &[HostPattern], host: &str) -> Option<HostRank> {
    if hosts.is_empty() {
        return Some(host_rank(&HostPattern::Any));
    }
    hosts
        .iter()
        .filter(|pattern| host_matches(pattern, host))
        .map(host_rank)
        .min()
}

fn host_matches(pattern: &HostPattern, host: &str) -> bool {
    match pattern {
        HostPattern::Exact(name) => host == name.to_ascii_lowercase(),
        // At least one character of label before `.suffix`: `*.a.com` never matches `a.com`.
        HostPattern::Wildcard(suffix) => {
            let dotted = format!(".{}", suffix.to_ascii_lowercase());
            host.len() > dotted.len() && host.ends_with(&dotted)
        }
        HostPattern::Any => true,
    }
}

fn host_rank(pattern: &HostPattern) -> HostRank {
    match pattern {
        HostPattern::Exact(_) => (0, Reverse(0)),
        HostPattern::Wildcard(suffix) => (1, Reverse(suffix.len())),
        HostPattern::Any => (2, Reverse(0)),
    }
}

fn match_rank(matching: &RuleMatch) -> MatchRank {
    let (kind, length) = match &matching.path {
        PathMatch::Exact(path) => (0, path.len()),
        PathMatch::Regex(regex) => (1, regex_source(regex).len()),
        PathMatch::Prefix(prefix) => (2, prefix.len()),
    };
    (
        kind,
        Reverse(length),
        matching.method.is_none(),
        Reverse(matching.headers.len()),
        Reverse(matching.query.len()),
    )
}

/// The expression as written, without the anchoring `PathMatch::regex` adds.
fn regex_source(regex: &regex::Regex) -> &str {
    let anchored = regex.as_str();
    anchored
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(anchored)
}

/// Whether path, method, headers and query all hold (hostnames are checked apart).
fn conditions_hold(matching: &RuleMatch, path: &str, request: &RequestView<'_>) -> bool {
    path_matches(&matching.path, path)
        && matching.method.as_ref().is_none_or(|m| m == request.method)
        && matching.headers.iter().all(|h| header_holds(h, request))
        && matching.query.iter().all(|q| query_holds(q, request.query))
}

fn path_matches(condition: &PathMatch, path: &str) -> bool {
    match condition {
        PathMatch::Exact(exact) => path == &**exact,
        PathMatch::Prefix(prefix) => {
            // Element by element; `/abc` and `/abc/` both cover `/abc`, `/abc/` and `/abc/x`
            // but not `/abcd`. A prefix without a leading `/` matches nothing.
            if !prefix.starts_with('/') {
                return false;
            }
            let elements = prefix.strip_suffix('/').unwrap_or(prefix);
            elements.is_empty()
                || path == elements
                || path
                    .strip_prefix(elements)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
        PathMatch::Regex(regex) => regex.is_match(path),
    }
}

/// Some value of the header (a header may repeat) satisfies the match.
fn header_holds(condition: &HeaderMatch, request: &RequestView<'_>) -> bool {
    request
        .headers
        .iter()
        .any(|(name, value)| *name == condition.name && value_holds(&condition.value, value))
}

fn value_holds(condition: &ValueMatch, value: &HeaderValue) -> bool {
    bytes_hold(condition, value.as_bytes())
}

fn bytes_hold(condition: &ValueMatch, value: &[u8]) -> bool {
    match condition {
        ValueMatch::Exact(exact) => value == exact.as_bytes(),
        ValueMatch::Regex(regex) => std::str::from_utf8(value).is_ok_and(|v| regex.is_match(v)),
    }
}

/// The first parameter with the decoded name has a matching decoded value.
fn query_holds(condition: &QueryMatch, query: Option<&str>) -> bool {
    let Some(query) = query else {
        return false;
    };
    let first = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(name, _)| form_decode(name) == condition.name.as_bytes());
    first.is_some_and(|(_, value)| bytes_hold(&condition.value, &form_decode(value)))
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, any other `%`
/// stays.
fn form_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    out
}
