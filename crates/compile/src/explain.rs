//! `explain`: which socket, listener, route, rule, filters, policies, backends and endpoints a
//! request would hit in a compiled config, and for every other route why it did not win.
//!
//! Shared by `portcullis explain` (offline, on a config file) and the admin `/explain`
//! endpoint (on the live config): both hand a [`Compiler`] and the store it compiled to
//! [`Compiler::explain`]. Pure: no I/O, no clock.
//!
//! The winner is never computed here: it is what `router`'s [`router::RouteTable::find`]
//! returns, the call the data plane makes, after the same listener selection
//! (`HostMap::most_specific`, Gateway API listener isolation) and path normalization
//! (`router::path::normalize`) as `proxy/src/stack.rs`. Only the reasons are computed
//! separately, by testing every match of the listener against the request
//! ([`router::RuleMatch::first_failure`]) and comparing each match that holds with the winner
//! ([`router::decide_precedence`]). A unit test checks that the two agree.
//!
//! It does not explain TLS passthrough (TLSRoute) sockets, GEP-3567 misdirected requests
//! (it has no SNI), or the answers of filters and policies (a redirect, a 401): it names them.

mod composition;
mod elsewhere;
mod evaluate;
mod matched;
mod request;
mod text;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde::Serialize;
use snapshot::backend::{BackendId, EndpointTarget};
use snapshot::{BackendIndex, ListenerRoutes, Snapshot};

pub(crate) use composition::plan as composition_plan;
pub(crate) use evaluate::explain;
pub use request::{ExplainError, ExplainRequest};

use crate::status::ObjectStatus;

/// What [`Compiler::explain`](crate::Compiler::explain) works on: the snapshot plus what only
/// compile knows (who owns each listener, the routes that attached nowhere, BackendTraffic-
/// Policy names, the config's endpoints).
pub(crate) struct Sources<'a> {
    pub(crate) snapshot: &'a Snapshot,
    /// Every usable HTTP listener with its owner.
    pub(crate) listeners: Vec<ListenerOwner>,
    /// The status of every HTTPRoute and GRPCRoute with a parentRef of ours.
    pub(crate) routes: Vec<&'a ObjectStatus>,
    /// The BackendTrafficPolicy (`BackendTrafficPolicy ns/name`) of a backend, if any.
    pub(crate) traffic_policy: Box<TrafficPolicyOf<'a>>,
    /// A backend's endpoints as the config gives them.
    pub(crate) endpoints: Box<EndpointsOf<'a>>,
}

/// Looks up the BackendTrafficPolicy of a backend ([`Sources::traffic_policy`]).
pub(crate) type TrafficPolicyOf<'a> = dyn Fn(BackendIndex) -> Option<Arc<str>> + 'a;

/// Looks up the endpoints of a backend ([`Sources::endpoints`]).
pub(crate) type EndpointsOf<'a> = dyn Fn(&BackendId) -> Vec<EndpointTarget> + 'a;

/// The Gateway (or ListenerSet) listener a compiled listener table belongs to.
pub(crate) struct ListenerOwner {
    pub(crate) routes: Arc<ListenerRoutes>,
    /// `Gateway` or `ListenerSet`.
    pub(crate) kind: &'static str,
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) listener: String,
}

/// The result of explaining one request. Serialized as the JSON of `portcullis explain --json`
/// and `/explain`; field names are stable (docs/architecture/explain.md).
#[derive(Debug, Serialize)]
pub struct Explanation {
    /// The request as understood.
    pub request: RequestSummary,
    /// How far the request got: `matched`, `no_socket`, `no_listener`, `invalid_path` or
    /// `no_route`.
    pub outcome: Outcome,
    /// One sentence saying what happens to the request.
    pub summary: String,
    /// The socket that would accept the connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<SocketChoice>,
    /// The listener of that socket that serves the request's host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listener: Option<ListenerChoice>,
    /// The rule that serves the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchedRule>,
    /// Every route we know, with why each rule did or did not serve the request.
    pub routes: Vec<RouteExplanation>,
}

impl Explanation {
    /// The JSON document (`portcullis explain --json`, `/explain`).
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: every map key is a string and no value is a float NaN (percentages
        // are finite).
        serde_json::to_value(self)
            .unwrap_or_else(|error| serde_json::json!({ "error": error.to_string() }))
    }
}

/// How far a request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A rule serves it.
    Matched,
    /// No socket of the config accepts it (scheme, port or `--gateway`).
    NoSocket,
    /// The socket has no listener for its host: 404.
    NoListener,
    /// Path normalization refuses its path: 400.
    InvalidPath,
    /// The listener has no rule that matches: 404.
    NoRoute,
}

/// The request as explain understood it.
#[derive(Debug, Serialize)]
pub struct RequestSummary {
    /// Method.
    pub method: String,
    /// The URL as given.
    pub url: String,
    /// The host routing uses (the `Host` header when given, else the URL's), without port.
    pub host: String,
    /// Path (before normalization).
    pub path: String,
    /// Query string, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Headers as `name: value`.
    pub headers: Vec<String>,
    /// `--gateway` / `gateway=` as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// The socket chosen.
#[derive(Debug, Serialize)]
pub struct SocketChoice {
    /// `address:port`.
    pub address: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// Why this socket (the URL's port, the default port of the scheme, the only one...).
    pub reason: String,
    /// Other sockets that could have taken the request, not chosen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<String>,
}

/// The listener chosen.
#[derive(Debug, Serialize)]
pub struct ListenerChoice {
    /// `Gateway ns/name listener NAME`.
    pub label: String,
    /// `Gateway` or `ListenerSet` (empty when unknown).
    pub kind: String,
    /// Namespace of the Gateway or ListenerSet.
    pub namespace: String,
    /// Name of the Gateway or ListenerSet.
    pub gateway: String,
    /// Listener name.
    pub name: String,
    /// Listener hostname (`*` for none).
    pub hostname: String,
    /// Other listeners of the socket whose hostname matches the host too, less specific: by
    /// listener isolation their routes do not see the request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub isolated: Vec<String>,
    /// The path routes are matched against, after the listener's path normalization.
    pub path: String,
    /// The listener answers with a redirect to the normalized path (`UnescapeAndRedirect`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redirects: bool,
}

/// The conditions of one match, as text.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MatchConditions {
    /// `PathPrefix /`, `Exact /x` or `RegularExpression ^...$`.
    pub path: String,
    /// Required method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `name Exact value` or `name RegularExpression re`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// `name Exact value` or `name RegularExpression re`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<String>,
}

/// The rule that serves the request.
#[derive(Debug, Serialize)]
pub struct MatchedRule {
    /// `HTTPRoute ns/name`.
    pub route: String,
    /// Index of the rule in the route's `rules`.
    pub rule: u32,
    /// The rule as logs name it (`HTTPRoute ns/name rules[0]`, with its `name` if set).
    pub rule_name: String,
    /// Index of the match in the rule's `matches`.
    #[serde(rename = "match")]
    pub match_index: u32,
    /// The route hostname (as the listener narrows it) the request matched; `*` for any.
    pub hostname: String,
    /// The conditions of the winning match.
    pub conditions: MatchConditions,
    /// The other matches that held and why this one wins over each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub beats: Vec<Beaten>,
    /// The rule's filters by Gateway API name (`RequestRedirect (302)`, `RequestMirror (x2)`).
    pub filters: Vec<String>,
    /// Policies that apply to the request.
    pub policies: Policies,
    /// What the rule does: forward to backends, or answer directly.
    pub action: Action,
}

/// A match that held but lost to the winner.
#[derive(Debug, Serialize)]
pub struct Beaten {
    /// Its rule name and match (`HTTPRoute ns/name rules[1] match 0`).
    pub rule: String,
    /// The precedence criterion that decides (see [`Reason::Precedence`]).
    pub criterion: &'static str,
    /// Why, in words.
    pub detail: String,
}

/// Policies that apply to the matched rule.
#[derive(Debug, Default, Serialize)]
pub struct Policies {
    /// `SecurityPolicy ns/name`, the rule's (or its route's), else its listener's or Gateway's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<String>,
    /// `RateLimitPolicy ns/name`, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<String>,
    /// The rule has a retry policy (its own or a BackendTrafficPolicy's).
    pub retry: bool,
    /// The rule has session persistence.
    pub session_persistence: bool,
}

/// What the matched rule does.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Forward to one of these backends, by weight.
    Forward {
        /// The weighted backendRefs.
        backends: Vec<BackendExplanation>,
    },
    /// Answer directly (no usable backendRef, or a Composition that cannot be used).
    Respond {
        /// Status code.
        status: u16,
        /// Body.
        body: String,
    },
    /// Answer with the document a Composition merges from its parts' responses.
    Compose {
        /// The plan: the parts wave by wave.
        composition: CompositionPlan,
    },
}

/// A Composition as a rule runs it (`explain`, and every rule's in `/config`): its parts grouped
/// in waves, wave 1 the parts that read no other part's response, wave `n + 1` those that read
/// only parts of waves up to `n`. Parts of one wave run together.
#[derive(Debug, Serialize)]
pub struct CompositionPlan {
    /// `Composition ns/name`.
    pub composition: String,
    /// `spec.pathPattern` (only when a template reads the path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_pattern: Option<String>,
    /// Whether the explained request's path fits the pattern (`None`: no pattern, or no
    /// request as in `/config`). When it does not, `{request.path.*}` references have no value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_fits: Option<bool>,
    /// The explained request's path segments bound to the pattern's names (as they appear in
    /// the path, still percent-encoded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<PathBinding>,
    /// `Keyed` or `Deep`.
    pub merge: &'static str,
    /// The deadline of the whole composition, from the request's arrival (`10s`).
    pub timeout: String,
    /// The largest response body of one part, in bytes.
    pub max_part_bytes: usize,
    /// The parts, wave by wave (in declaration order within a wave).
    pub waves: Vec<CompositionWave>,
}

/// One path parameter of a [`CompositionPlan`] and its value for the explained request.
#[derive(Debug, Serialize)]
pub struct PathBinding {
    /// The name in `{NAME}`.
    pub name: String,
    /// The path segment.
    pub value: String,
}

/// The parts of a Composition that run together.
#[derive(Debug, Serialize)]
pub struct CompositionWave {
    /// 1 for the first.
    pub wave: usize,
    /// Its parts.
    pub parts: Vec<PartPlan>,
}

/// One part of a [`CompositionPlan`].
#[derive(Debug, Serialize)]
pub struct PartPlan {
    /// Its name.
    pub name: String,
    /// The request method.
    pub method: String,
    /// The backend's identity (as `/endpoints` names it); `None` for a backendRef that cannot
    /// be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Why its backendRef cannot be used (the part then fails).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// The request target template, as written.
    pub target: String,
    /// Headers copied from the client's request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forward_headers: Vec<String>,
    /// Headers set from templates (`name: template`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub set_headers: Vec<String>,
    /// Whether the composition fails when this part does.
    pub required: bool,
    /// The time the part may take (none: the composition's deadline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The JSON pointer of the piece of its response kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<String>,
    /// The parts whose responses it reads (it runs after them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// One weighted backendRef of the matched rule.
#[derive(Debug, Serialize)]
pub struct BackendExplanation {
    /// Relative weight.
    pub weight: u64,
    /// Share of the rule's requests, percent.
    pub percent: f64,
    /// The backend's identity (as `/endpoints` and metrics name it); `None` for a backendRef
    /// that cannot be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Why a backendRef cannot be used (its share of requests gets a 500 with this body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// Protocol spoken to the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// TLS to the endpoints (a BackendTLSPolicy applies).
    pub tls: bool,
    /// `BackendTrafficPolicy ns/name` applying to the backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_policy: Option<String>,
    /// Filters of this backendRef (after the rule's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Endpoints as the config gives them (`address:port`, weight).
    pub endpoints: Vec<EndpointExplanation>,
}

/// One endpoint of a backend, as the config gives it.
#[derive(Debug, Serialize)]
pub struct EndpointExplanation {
    /// IP or DNS name.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Relative weight (0: out of rotation).
    pub weight: u32,
}

/// One route and how it fared.
#[derive(Debug, Serialize)]
pub struct RouteExplanation {
    /// `HTTPRoute ns/name`.
    pub route: String,
    /// `won`, `lost`, `no_match` (its matches are on the listener but none holds) or
    /// `not_considered` (not on the listener; see `reason`).
    pub result: RouteResult,
    /// Why the route as a whole was not considered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Its rules on the chosen listener.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleExplanation>,
}

/// How a route, rule or match fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteResult {
    /// It serves the request.
    Won,
    /// It holds but another match takes precedence.
    Lost,
    /// A condition does not hold.
    NoMatch,
    /// It is not on the chosen listener.
    NotConsidered,
}

/// One rule of a route on the chosen listener.
#[derive(Debug, Serialize)]
pub struct RuleExplanation {
    /// Index in `rules`.
    pub rule: u32,
    /// The rule as logs name it.
    pub rule_name: String,
    /// Won if one of its matches won, lost if one held, else no_match.
    pub result: RouteResult,
    /// Its matches.
    pub matches: Vec<MatchExplanation>,
}

/// One match of a rule.
#[derive(Debug, Serialize)]
pub struct MatchExplanation {
    /// Index in `matches`.
    #[serde(rename = "match")]
    pub match_index: u32,
    /// Its conditions.
    pub conditions: MatchConditions,
    /// Won, lost or no_match.
    pub result: RouteResult,
    /// Why it did not win.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Why a match or route did not serve the request.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// None of the route's hostnames (on this listener) matches the host.
    Hostname {
        /// The request's host.
        host: String,
        /// The route's hostnames there (`*` for any).
        hostnames: Vec<String>,
    },
    /// The path condition does not hold.
    Path {
        /// The path matched against (normalized).
        path: String,
        /// The condition.
        expected: String,
    },
    /// The method condition does not hold.
    Method {
        /// The request's method.
        method: String,
        /// The condition.
        expected: String,
    },
    /// A header condition does not hold (the first that fails).
    Header {
        /// Header name.
        name: String,
        /// The condition.
        expected: String,
        /// The request's values of that header (none: absent).
        actual: Vec<String>,
    },
    /// A query parameter condition does not hold (the first that fails).
    Query {
        /// Parameter name.
        name: String,
        /// The condition.
        expected: String,
    },
    /// Every condition holds but another match takes precedence.
    Precedence {
        /// The winning rule and match.
        winner: String,
        /// `hostname` (a more specific route hostname), `path_kind`, `path_length`, `method`,
        /// `header_count`, `query_count`, `creation_time`, `route_name`, `rule_index` or
        /// `match_index`: the first Gateway API precedence criterion that tells them apart.
        criterion: &'static str,
        /// Why, in words.
        detail: String,
    },
    /// The route is attached to another listener of the socket whose hostname matches the host
    /// too, but the chosen listener's is more specific: Gateway API listener isolation.
    ListenerIsolation {
        /// The listener the route is attached to.
        listener: String,
        /// The listener that serves the host instead.
        chosen: String,
    },
    /// The route is attached to listeners of the socket whose hostname does not match the host.
    ListenerHostname {
        /// Those listeners with their hostnames.
        listeners: Vec<String>,
    },
    /// The route is attached only to listeners on other sockets (another port or address,
    /// another Gateway).
    OtherSocket {
        /// Those listeners with their sockets.
        listeners: Vec<String>,
    },
    /// The route is on no listener: its status says why.
    NotAttached {
        /// Its unhealthy conditions (`parent: Type=False (Reason): message`).
        conditions: Vec<String>,
    },
}
