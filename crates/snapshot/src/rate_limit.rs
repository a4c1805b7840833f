//! Compiled `RateLimitPolicy` settings.
//!
//! A policy is attached like a SecurityPolicy (Gateway, listener, route, rule; the most
//! specific wins, whole) and resolved for every rule ([`crate::RouteRule::rate_limit`]) and
//! listener ([`crate::ListenerRoutes::rate_limit`]).
//!
//! Every rule whose selectors all match the request applies: the request is admitted only
//! if each of them admits it. A rule counts requests in one bucket per distinct value of its
//! `Distinct` selectors (one bucket per client IP, per API key, per JWT `sub`, ...), or in
//! one bucket for all the requests it selects when it has none.
//! - **local** rules count in this replica's memory (GCRA);
//! - **global** rules count in Redis, shared by every replica (one round trip per decision,
//!   a Lua script deciding every global rule of the request at once), so a quota does not
//!   multiply with the number of replicas. When Redis cannot answer, `fail_open` decides.
//!
//! A refused request gets 429 with `Retry-After`, `RateLimit-Policy` and `RateLimit`.
//! Counters are runtime state in the `policy` crate, keyed by [`RateLimitRule::id`] (the
//! policy, the rule and its limit): a reload that keeps a rule keeps its counters.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use ipnet::IpNet;

/// One RateLimitPolicy, compiled.
#[derive(Debug, PartialEq)]
pub struct RateLimitPolicy {
    /// `RateLimitPolicy ns/name`.
    pub label: Arc<str>,
    /// Per-replica limits.
    pub local: Vec<RateLimitRule>,
    /// Limits shared through Redis.
    pub global: Option<GlobalLimits>,
}

/// `spec.global`.
#[derive(Debug, PartialEq)]
pub struct GlobalLimits {
    /// The rules.
    pub rules: Vec<RateLimitRule>,
    /// `failureMode: FailOpen` (admit) or `FailClosed` (refuse with 503) while Redis cannot
    /// answer within `timeout`.
    pub fail_open: bool,
    /// How long one decision may wait for Redis (default 50 ms).
    pub timeout: Duration,
}

/// One limit and the requests it counts.
#[derive(Debug, PartialEq)]
pub struct RateLimitRule {
    /// Stable identity of the rule's counters: `RateLimitPolicy ns/name local[i]` (or
    /// `global[i]`), plus its name when set. Redis keys derive from it, so every replica
    /// with the same config counts in the same keys.
    pub id: Arc<str>,
    /// Every selector must match for the rule to apply (none: every request).
    pub selectors: Vec<Selector>,
    /// The limit.
    pub limit: Limit,
    /// `shadowMode`: decisions are counted in metrics but never refuse a request.
    pub shadow: bool,
}

/// `limit: {requests, unit}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Requests allowed per `period`.
    pub requests: u64,
    /// `Second`, `Minute`, `Hour` or `Day`.
    pub period: Duration,
    /// Requests allowed in a burst above the steady rate (default `requests`: a whole
    /// period's worth may arrive at once).
    pub burst: u64,
}

/// One thing a rule selects requests by, and whether it splits them into buckets.
#[derive(Debug, PartialEq)]
pub enum Selector {
    /// A request header.
    Header {
        /// Header name.
        name: HeaderName,
        /// How its value selects.
        matching: ValueMatch,
    },
    /// The client address (after trusted proxy hops).
    SourceCidr {
        /// Only clients in this network are selected.
        network: IpNet,
        /// One bucket per client address (`Distinct`) or one for the whole network (`Exact`).
        distinct: bool,
    },
    /// A claim of the JWT the request was authenticated with (a request without one is not
    /// selected).
    JwtClaim {
        /// Claim name; a dot walks into nested objects.
        name: String,
        /// How its value selects.
        matching: ValueMatch,
    },
    /// The API-key or basic-auth client the request was authenticated as.
    Client {
        /// How the client id selects.
        matching: ValueMatch,
    },
    /// The request path (normalized).
    Path {
        /// `Exact` or `PathPrefix` (segment-wise), or `Distinct` over the whole path.
        matching: PathSelector,
    },
    /// The request method.
    Methods(Vec<Method>),
}

/// How a value selects requests.
#[derive(Debug, PartialEq)]
pub enum ValueMatch {
    /// The value must be this.
    Exact(String),
    /// The value must match this regular expression (RE2, anchored: the whole value).
    RegularExpression(Pattern),
    /// Any value selects; each distinct value has its own bucket. A request without the value
    /// is not selected.
    Distinct,
    /// The value must be absent (`invert` on a header): requests without it are selected.
    Absent,
}

/// Path selection.
#[derive(Debug, PartialEq)]
pub enum PathSelector {
    /// Exactly this path.
    Exact(String),
    /// This prefix, segment by segment.
    Prefix(String),
    /// Every path, one bucket per path.
    Distinct,
}

/// A compiled regular expression, equal to another with the same pattern.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}
