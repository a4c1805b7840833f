//! Which rules select a request, and which bucket of a rule it counts in.
//!
//! A rule applies when every one of its selectors matches (no selector: every request). Its
//! `Distinct` selectors split the requests it selects into buckets: their values, in selector
//! order, are fed to a [`KeySink`] (each value length-prefixed, so `("ab", "c")` and
//! `("a", "bc")` never share a bucket). The sink decides what the key is: a keyed SipHash for
//! the local store (a client cannot aim for another client's bucket without knowing this
//! process's random key), a SHA-1 for Redis keys (every replica computes the same key; see
//! `global.rs`). Nothing here allocates except reading a non-string JWT claim as text.
//!
//! Where the values come from:
//! - `Header`: the first value of the header in `parts.headers` (`Absent`: the header is missing);
//! - `SourceCidr`: the client address given to `RateLimiter::check` (after trusted hops);
//! - `JwtClaim`: `identity.jwt`'s claim through [`crate::claim`] / [`crate::claim_text`]; a request
//!   without a JWT is never selected, whatever the matching;
//! - `Client`: `identity.client` (the API-key client id or basic-auth user);
//! - `Path`: `parts.uri.path()` (normalised by the proxy), `Prefix` segment by segment;
//! - `Methods`: the request method is one of them.
//!
//! Regular expressions are used as compiled: compile anchors them (`^(?:source)$`), as the
//! router does for route matches, so they match the whole value.

use std::net::IpAddr;

use http::request::Parts;
use serde_json::Value;
use snapshot::rate_limit::{PathSelector, RateLimitRule, Selector, ValueMatch};

use crate::{Identity, claim_text};

/// The request as rate-limit selectors see it.
#[derive(Clone, Copy)]
pub(crate) struct RequestView<'a> {
    /// Method, path and headers.
    pub(crate) parts: &'a Parts,
    /// The client address.
    pub(crate) client_ip: IpAddr,
    /// What authentication found.
    pub(crate) identity: &'a Identity,
}

/// Receives the distinct values of a selected request, in selector order.
pub(crate) trait KeySink {
    /// Adds one value to the key.
    fn feed(&mut self, value: &[u8]);
}

/// Feeds length-prefixed values to any [`std::hash::Hasher`].
pub(crate) struct HasherSink<H>(pub(crate) H);

impl<H: std::hash::Hasher> KeySink for HasherSink<H> {
    fn feed(&mut self, value: &[u8]) {
        self.0.write_u64(value.len() as u64);
        self.0.write(value);
    }
}

/// Feeds length-prefixed values to SHA-1 (Redis keys: the same on every replica).
pub(crate) struct DigestSink(pub(crate) sha1_smol::Sha1);

impl KeySink for DigestSink {
    fn feed(&mut self, value: &[u8]) {
        self.0.update(&(value.len() as u64).to_be_bytes());
        self.0.update(value);
    }
}

/// Whether `rule` selects the request; when it does, its distinct values went to `sink`.
/// When it does not, `sink` may have received some values: callers throw it away.
pub(crate) fn select(
    rule: &RateLimitRule,
    request: RequestView<'_>,
    sink: &mut impl KeySink,
) -> bool {
    rule.selectors
        .iter()
        .all(|selector| matches_selector(selector, request, sink))
}

fn matches_selector(
    selector: &Selector,
    request: RequestView<'_>,
    sink: &mut impl KeySink,
) -> bool {
    match selector {
        Selector::Header { name, matching } => {
            let value = request
                .parts
                .headers
                .get(name)
                .map(|value| value.as_bytes());
            matches_value(matching, value, sink)
        }
        Selector::SourceCidr { network, distinct } => {
            if !network.contains(&request.client_ip) {
                return false;
            }
            if *distinct {
                match request.client_ip {
                    IpAddr::V4(ip) => sink.feed(&ip.octets()),
                    IpAddr::V6(ip) => sink.feed(&ip.octets()),
                }
            }
            true
        }
        Selector::JwtClaim { name, matching } => {
            let Some(jwt) = &request.identity.jwt else {
                return false;
            };
            match jwt.claim(name) {
                // Strings, the common case, are read in place; other scalars become text.
                Some(Value::String(text)) => matches_value(matching, Some(text.as_bytes()), sink),
                Some(other) => match claim_text(other) {
                    Some(text) => matches_value(matching, Some(text.as_bytes()), sink),
                    None => matches_value(matching, None, sink),
                },
                None => matches_value(matching, None, sink),
            }
        }
        Selector::Client { matching } => {
            let client = request.identity.client.as_deref().map(str::as_bytes);
            matches_value(matching, client, sink)
        }
        Selector::Path { matching } => {
            let path = request.parts.uri.path();
            match matching {
                PathSelector::Exact(exact) => path == exact,
                PathSelector::Prefix(prefix) => path_has_prefix(path, prefix),
                PathSelector::Distinct => {
                    sink.feed(path.as_bytes());
                    true
                }
            }
        }
        Selector::Methods(methods) => methods.contains(&request.parts.method),
    }
}

/// Whether `value` (`None`: missing) matches; a `Distinct` value is fed to `sink`.
fn matches_value(matching: &ValueMatch, value: Option<&[u8]>, sink: &mut impl KeySink) -> bool {
    match (matching, value) {
        (ValueMatch::Absent, value) => value.is_none(),
        (_, None) => false,
        (ValueMatch::Exact(expected), Some(value)) => expected.as_bytes() == value,
        (ValueMatch::RegularExpression(pattern), Some(value)) => std::str::from_utf8(value)
            .map(|text| pattern.0.is_match(text))
            .unwrap_or(false),
        (ValueMatch::Distinct, Some(value)) => {
            sink.feed(value);
            true
        }
    }
}

/// Gateway API `PathPrefix` semantics: `prefix` matches whole segments of `path` (`/api`
/// matches `/api` and `/api/x`, not `/apix`); a trailing `/` in the prefix is ignored.
pub(crate) fn path_has_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}
