//! The explanation itself: the data plane's choices (socket, listener, `find`) replayed on the
//! snapshot, and every match of the listener tested on its own for the reasons. Routes elsewhere
//! are `elsewhere`'s, the winner in full is `matched`'s.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use router::{
    HostPattern, MatchFailure, PathMatch, PrecedenceCriterion, RequestView, RouteEntry, RouteHit,
    RuleMatch, ValueMatch, decide_precedence,
};
use snapshot::{ListenerRoutes, RouteRule, Scheme, SocketRoutes};

use super::{
    ExplainError, ExplainRequest, Explanation, ListenerChoice, MatchConditions, MatchExplanation,
    Outcome, Reason, RequestSummary, RouteExplanation, RouteResult, RuleExplanation, SocketChoice,
    Sources,
};

/// A match of a listener table.
pub(super) type Entry = RouteEntry<Arc<RouteRule>>;

/// One match of the chosen listener's table with every route hostname it was added for.
pub(super) struct Candidate<'a> {
    pub(super) entry: &'a Arc<Entry>,
    pub(super) hostnames: Vec<&'a HostPattern>,
}

impl Candidate<'_> {
    /// The most specific of its hostnames that matches `host` (the bucket `find` would meet
    /// it in first), if any.
    pub(super) fn best_hostname(&self, host: &str) -> Option<&HostPattern> {
        self.hostnames
            .iter()
            .copied()
            .filter(|pattern| pattern.matches(host))
            .min_by_key(|pattern| specificity(pattern))
    }
}

/// The order `HostMap::candidates` visits hostnames in: exact, longest wildcard, any.
fn specificity(pattern: &HostPattern) -> (u8, Reverse<usize>) {
    match pattern {
        HostPattern::Exact(_) => (0, Reverse(0)),
        HostPattern::Wildcard(suffix) => (1, Reverse(suffix.len())),
        HostPattern::Any => (2, Reverse(0)),
    }
}

/// Explains `request` against `sources` (see the module documentation of `explain`).
pub(crate) fn explain(
    sources: &Sources<'_>,
    request: &ExplainRequest,
) -> Result<Explanation, ExplainError> {
    check_gateway(sources, request)?;
    let mut explanation = Explanation {
        request: summarize(request),
        outcome: Outcome::NoSocket,
        summary: String::new(),
        socket: None,
        listener: None,
        matched: None,
        routes: Vec::new(),
    };
    let Some((address, socket, choice)) = choose_socket(sources, request) else {
        let port = request
            .port
            .map_or_else(|| "any port".to_owned(), |p| format!("port {p}"));
        let gateway = request
            .gateway
            .as_ref()
            .map(|(ns, name)| format!(" of Gateway {ns}/{name}"))
            .unwrap_or_default();
        explanation.summary = format!(
            "no {} listener{gateway} on {port}: the connection would be refused",
            request.scheme.as_str()
        );
        explanation.routes =
            super::elsewhere::routes_not_on(sources, request, None, None, &HashSet::new());
        return Ok(explanation);
    };
    explanation.socket = Some(choice);
    let Some(listener) = socket.listeners.most_specific(&request.host) else {
        explanation.outcome = Outcome::NoListener;
        explanation.summary = format!(
            "no listener of {address} accepts host {:?}: 404",
            request.host
        );
        explanation.routes =
            super::elsewhere::routes_not_on(sources, request, Some(address), None, &HashSet::new());
        return Ok(explanation);
    };
    explain_on_listener(sources, request, address, socket, listener, explanation)
}

/// The rest of [`explain`] once the listener is known.
fn explain_on_listener(
    sources: &Sources<'_>,
    request: &ExplainRequest,
    address: SocketAddr,
    socket: &SocketRoutes,
    listener: &Arc<ListenerRoutes>,
    mut explanation: Explanation,
) -> Result<Explanation, ExplainError> {
    let normalized = router::path::normalize(&request.path, &listener.path);
    let (path, redirects) = match &normalized {
        Ok(normalized) => (normalized.path.to_string(), normalized.redirect),
        Err(_) => (request.path.clone(), false),
    };
    explanation.listener = Some(listener_choice(
        sources, request, socket, listener, &path, redirects,
    ));
    if let Err(rejection) = normalized {
        explanation.outcome = Outcome::InvalidPath;
        explanation.summary = format!("the listener refuses the request: {rejection} (400)");
        explanation.routes = super::elsewhere::routes_not_on(
            sources,
            request,
            Some(address),
            Some(listener),
            &HashSet::new(),
        );
        return Ok(explanation);
    }
    judge_listener(sources, request, address, listener, &path, &mut explanation);
    Ok(explanation)
}

/// Tests every match of the listener against the request (path already normalized) and fills
/// in the outcome, the winner and the routes.
fn judge_listener(
    sources: &Sources<'_>,
    request: &ExplainRequest,
    address: SocketAddr,
    listener: &Arc<ListenerRoutes>,
    path: &str,
    explanation: &mut Explanation,
) {
    let candidates = candidates_of(listener);
    let on_listener: HashSet<String> = candidates
        .iter()
        .map(|c| route_label(c.entry.target()))
        .collect();
    let view = RequestView {
        method: &request.method,
        host: &request.host,
        path,
        query: request.query.as_deref(),
        headers: &request.headers,
    };
    let hit = listener.table.find(&view);
    let winner = hit.and_then(|hit| candidates.iter().find(|c| c.entry.is_hit(&hit)));
    let judged: Vec<(&Candidate<'_>, RouteResult, Option<Reason>)> = candidates
        .iter()
        .map(|candidate| {
            let (result, reason) = judge(candidate, &view, hit.as_ref(), winner);
            (candidate, result, reason)
        })
        .collect();
    explanation.routes = group_routes(&judged);
    explanation.routes.extend(super::elsewhere::routes_not_on(
        sources,
        request,
        Some(address),
        Some(listener),
        &on_listener,
    ));
    match (hit, winner) {
        (Some(hit), Some(winner)) => {
            let matched = super::matched::matched_rule(
                sources,
                listener,
                hit.target,
                winner,
                &judged,
                (&request.host, path),
            );
            explanation.outcome = Outcome::Matched;
            explanation.summary = format!(
                "{} (match {}) serves the request",
                matched.rule_name, matched.match_index
            );
            explanation.matched = Some(matched);
        }
        _ => {
            explanation.outcome = Outcome::NoRoute;
            explanation.summary = format!("no rule of {} matches: 404", listener.name);
        }
    }
}

/// A `--gateway` that owns no usable listener is a user error, named as such.
fn check_gateway(sources: &Sources<'_>, request: &ExplainRequest) -> Result<(), ExplainError> {
    let Some((namespace, name)) = &request.gateway else {
        return Ok(());
    };
    let owns = |o: &&super::ListenerOwner| o.namespace == *namespace && o.name == *name;
    if sources.listeners.iter().any(|o| owns(&o)) {
        return Ok(());
    }
    let mut known: Vec<String> = sources
        .listeners
        .iter()
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect();
    known.sort();
    known.dedup();
    Err(ExplainError::UnknownGateway {
        gateway: format!("{namespace}/{name}"),
        known: if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        },
    })
}

fn summarize(request: &ExplainRequest) -> RequestSummary {
    RequestSummary {
        method: request.method.to_string(),
        url: request.url.clone(),
        host: request.host.clone(),
        path: request.path.clone(),
        query: request.query.clone(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
            .collect(),
        gateway: request
            .gateway
            .as_ref()
            .map(|(ns, name)| format!("{ns}/{name}")),
    }
}

/// The owner of a listener table, if compile knows it.
fn owner<'s>(
    sources: &'s Sources<'_>,
    listener: &Arc<ListenerRoutes>,
) -> Option<&'s super::ListenerOwner> {
    sources
        .listeners
        .iter()
        .find(|o| Arc::ptr_eq(&o.routes, listener))
}

/// The socket a client connecting to the URL would reach (see docs/architecture/explain.md):
/// the URL's port if it has one, else preferably the scheme's default port, else one with a
/// listener for the host; `--gateway` keeps only sockets with a listener of that Gateway.
fn choose_socket<'s>(
    sources: &'s Sources<'_>,
    request: &ExplainRequest,
) -> Option<(SocketAddr, &'s SocketRoutes, SocketChoice)> {
    let of_gateway = |socket: &SocketRoutes| match &request.gateway {
        None => true,
        Some((ns, name)) => socket.listeners.iter().any(|(_, listener)| {
            owner(sources, listener).is_some_and(|o| o.namespace == *ns && o.name == *name)
        }),
    };
    let mut candidates: Vec<(SocketAddr, &SocketRoutes)> = sources
        .snapshot
        .sockets
        .iter()
        .filter(|(address, socket)| {
            socket.scheme == request.scheme
                && request.port.is_none_or(|port| address.port() == port)
                && of_gateway(socket)
        })
        .map(|(address, socket)| (*address, &**socket))
        .collect();
    let default_port = if request.scheme == Scheme::Https {
        443
    } else {
        80
    };
    candidates.sort_by_key(|(address, socket)| {
        (
            address.port() != default_port,
            socket.listeners.most_specific(&request.host).is_none(),
            *address,
        )
    });
    let (address, socket) = *candidates.first()?;
    let scheme = request.scheme.as_str();
    let reason = if let Some(port) = request.port {
        format!("the URL's port {port}")
    } else if candidates.len() == 1 {
        format!("the only {scheme} socket (the URL has no port)")
    } else if address.port() == default_port {
        format!("the default port of {scheme} (the URL has no port)")
    } else {
        format!(
            "the URL has no port: the first {scheme} socket with a listener for the host; put the port in the URL to choose another"
        )
    };
    let others = candidates[1..]
        .iter()
        .map(|(address, _)| address.to_string())
        .collect();
    let choice = SocketChoice {
        address: address.to_string(),
        scheme,
        reason,
        others,
    };
    Some((address, socket, choice))
}

fn listener_choice(
    sources: &Sources<'_>,
    request: &ExplainRequest,
    socket: &SocketRoutes,
    listener: &Arc<ListenerRoutes>,
    path: &str,
    redirects: bool,
) -> ListenerChoice {
    let hostname = socket
        .listeners
        .iter()
        .find(|(_, l)| Arc::ptr_eq(l, listener))
        .map_or_else(|| "*".to_owned(), |(pattern, _)| pattern.to_string());
    let isolated = socket
        .listeners
        .iter()
        .filter(|(pattern, l)| !Arc::ptr_eq(l, listener) && pattern.matches(&request.host))
        .map(|(pattern, l)| format!("{} (hostname {pattern})", l.name))
        .collect();
    let owner = owner(sources, listener);
    ListenerChoice {
        label: listener.name.to_string(),
        kind: owner.map(|o| o.kind.to_owned()).unwrap_or_default(),
        namespace: owner.map(|o| o.namespace.clone()).unwrap_or_default(),
        gateway: owner.map(|o| o.name.clone()).unwrap_or_default(),
        name: owner.map(|o| o.listener.clone()).unwrap_or_default(),
        hostname,
        isolated,
        path: path.to_owned(),
        redirects,
    }
}

/// Every match of the listener's table, each once with all its hostnames, in route, rule and
/// match order.
fn candidates_of(listener: &ListenerRoutes) -> Vec<Candidate<'_>> {
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    // An entry is shared by the hostnames it was added for: one candidate per entry.
    let mut seen: HashMap<*const Entry, usize> = HashMap::new();
    for (pattern, routes) in listener.table.hosts() {
        for entry in routes.entries() {
            match seen.entry(Arc::as_ptr(entry)) {
                MapEntry::Occupied(index) => candidates[*index.get()].hostnames.push(pattern),
                MapEntry::Vacant(vacant) => {
                    vacant.insert(candidates.len());
                    candidates.push(Candidate {
                        entry,
                        hostnames: vec![pattern],
                    });
                }
            }
        }
    }
    candidates.sort_by(|a, b| {
        let (a, b) = (a.entry.order(), b.entry.order());
        (&a.route, a.rule, a.matching).cmp(&(&b.route, b.rule, b.matching))
    });
    candidates
}

/// `HTTPRoute ns/name` of a rule named `HTTPRoute ns/name rules[i]` (compile names rules so).
pub(super) fn route_label(rule: &RouteRule) -> String {
    rule.name
        .split(" rules[")
        .next()
        .unwrap_or(&rule.name)
        .to_owned()
}

/// How one match fared, and why.
fn judge(
    candidate: &Candidate<'_>,
    view: &RequestView<'_>,
    hit: Option<&RouteHit<'_, Arc<RouteRule>>>,
    winner: Option<&Candidate<'_>>,
) -> (RouteResult, Option<Reason>) {
    let Some(hostname) = candidate.best_hostname(view.host) else {
        let reason = Reason::Hostname {
            host: view.host.to_owned(),
            hostnames: candidate
                .hostnames
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        return (RouteResult::NoMatch, Some(reason));
    };
    let matching = candidate.entry.matching();
    if let Some(failure) = matching.first_failure(view) {
        return (
            RouteResult::NoMatch,
            Some(failure_reason(matching, failure, view)),
        );
    }
    if hit.is_some_and(|hit| candidate.entry.is_hit(hit)) {
        return (RouteResult::Won, None);
    }
    let Some(winner) = winner else {
        // `find` and the per-match test disagree: cannot happen while both read the same
        // conditions (the cross-check test holds them to it); said rather than hidden.
        let reason = Reason::Precedence {
            winner: "none".to_owned(),
            criterion: "unexplained",
            detail: "every condition holds but the route table found no match".to_owned(),
        };
        return (RouteResult::Lost, Some(reason));
    };
    let (criterion, detail) = precedence_reason(winner, candidate, hostname, view.host);
    let reason = Reason::Precedence {
        winner: match_name(winner.entry),
        criterion,
        detail,
    };
    (RouteResult::Lost, Some(reason))
}

/// `HTTPRoute ns/name rules[i] match j`.
pub(super) fn match_name(entry: &Entry) -> String {
    format!("{} match {}", entry.target().name, entry.order().matching)
}

fn failure_reason(matching: &RuleMatch, failure: MatchFailure, view: &RequestView<'_>) -> Reason {
    match failure {
        MatchFailure::Path => Reason::Path {
            path: view.path.to_owned(),
            expected: path_text(&matching.path),
        },
        MatchFailure::Method => Reason::Method {
            method: view.method.to_string(),
            expected: matching
                .method
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        },
        MatchFailure::Header(index) => {
            let header = &matching.headers[index];
            Reason::Header {
                name: header.name.to_string(),
                expected: value_text(&header.value),
                actual: view
                    .headers
                    .get_all(&header.name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect(),
            }
        }
        MatchFailure::Query(index) => {
            let query = &matching.query[index];
            Reason::Query {
                name: query.name.to_string(),
                expected: value_text(&query.value),
            }
        }
    }
}

/// Why `winner` beats `loser`, whose best hostname for `host` is `hostname`.
fn precedence_reason(
    winner: &Candidate<'_>,
    loser: &Candidate<'_>,
    hostname: &HostPattern,
    host: &str,
) -> (&'static str, String) {
    if let Some(winner_hostname) = winner.best_hostname(host)
        && specificity(winner_hostname) < specificity(hostname)
    {
        return (
            "hostname",
            format!(
                "the winner's route hostname {winner_hostname} is more specific than {hostname}"
            ),
        );
    }
    let (w, l) = (winner.entry, loser.entry);
    let (_, criterion) = decide_precedence((w.matching(), w.order()), (l.matching(), l.order()));
    criterion_text(criterion, w, l)
}

/// The name and the words of the precedence criterion by which `w` beats `l`.
fn criterion_text(criterion: PrecedenceCriterion, w: &Entry, l: &Entry) -> (&'static str, String) {
    let (wm, lm) = (w.matching(), l.matching());
    let (wo, lo) = (w.order(), l.order());
    match criterion {
        PrecedenceCriterion::PathKind => (
            "path_kind",
            format!(
                "{} beats {} (Exact, then RegularExpression, then PathPrefix)",
                path_text(&wm.path),
                path_text(&lm.path)
            ),
        ),
        PrecedenceCriterion::PathLength => (
            "path_length",
            format!(
                "the longer path wins: {} over {}",
                path_text(&wm.path),
                path_text(&lm.path)
            ),
        ),
        PrecedenceCriterion::Method => (
            "method",
            "the winner matches on the method, this match does not".to_owned(),
        ),
        PrecedenceCriterion::HeaderCount => (
            "header_count",
            format!(
                "more header matches win: {} against {}",
                wm.headers.len(),
                lm.headers.len()
            ),
        ),
        PrecedenceCriterion::QueryCount => (
            "query_count",
            format!(
                "more query parameter matches win: {} against {}",
                wm.query.len(),
                lm.query.len()
            ),
        ),
        PrecedenceCriterion::CreationTime => (
            "creation_time",
            "equal matches: the older route wins".to_owned(),
        ),
        PrecedenceCriterion::RouteName => (
            "route_name",
            format!("equal matches: {} sorts before {}", wo.route, lo.route),
        ),
        PrecedenceCriterion::RuleIndex => (
            "rule_index",
            format!(
                "equal matches in one route: rules[{}] comes before rules[{}]",
                wo.rule, lo.rule
            ),
        ),
        PrecedenceCriterion::MatchIndex | PrecedenceCriterion::Equal => (
            "match_index",
            format!(
                "equal matches in one rule: matches[{}] comes before matches[{}]",
                wo.matching, lo.matching
            ),
        ),
    }
}

pub(super) fn path_text(path: &PathMatch) -> String {
    match path {
        PathMatch::Exact(path) => format!("Exact {path}"),
        PathMatch::Prefix(prefix) => format!("PathPrefix {prefix}"),
        PathMatch::Regex(regex) => format!("RegularExpression {}", unanchored(regex.as_str())),
    }
}

fn value_text(value: &ValueMatch) -> String {
    match value {
        ValueMatch::Exact(value) => format!("Exact {value}"),
        ValueMatch::Regex(regex) => format!("RegularExpression {}", unanchored(regex.as_str())),
    }
}

/// The expression as written: `router` wraps it in `^(?:` `)$`.
fn unanchored(source: &str) -> &str {
    source
        .strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(source)
}

pub(super) fn conditions(matching: &RuleMatch) -> MatchConditions {
    MatchConditions {
        path: path_text(&matching.path),
        method: matching.method.as_ref().map(ToString::to_string),
        headers: matching
            .headers
            .iter()
            .map(|h| format!("{} {}", h.name, value_text(&h.value)))
            .collect(),
        query: matching
            .query
            .iter()
            .map(|q| format!("{} {}", q.name, value_text(&q.value)))
            .collect(),
    }
}

/// The judged matches of the listener, by route and rule: the winning route first, then those
/// that lost on precedence, then those that did not match (each group by name), so that the
/// few that matter lead a list of thousands.
fn group_routes(judged: &[(&Candidate<'_>, RouteResult, Option<Reason>)]) -> Vec<RouteExplanation> {
    let mut routes: BTreeMap<String, BTreeMap<u32, RuleExplanation>> = BTreeMap::new();
    for (candidate, result, reason) in judged {
        let entry = candidate.entry;
        let rule = routes
            .entry(route_label(entry.target()))
            .or_default()
            .entry(entry.order().rule)
            .or_insert_with(|| RuleExplanation {
                rule: entry.order().rule,
                rule_name: entry.target().name.to_string(),
                result: RouteResult::NoMatch,
                matches: Vec::new(),
            });
        rule.result = best(rule.result, *result);
        rule.matches.push(MatchExplanation {
            match_index: entry.order().matching,
            conditions: conditions(entry.matching()),
            result: *result,
            reason: reason.clone(),
        });
    }
    let mut routes: Vec<RouteExplanation> = routes
        .into_iter()
        .map(|(route, rules)| {
            let rules: Vec<RuleExplanation> = rules.into_values().collect();
            let result = rules
                .iter()
                .fold(RouteResult::NoMatch, |acc, rule| best(acc, rule.result));
            RouteExplanation {
                route,
                result,
                reason: None,
                rules,
            }
        })
        .collect();
    // Stable: each group keeps the name order of the map.
    routes.sort_by_key(|route| rank(route.result));
    routes
}

/// Won over lost over no match.
fn best(a: RouteResult, b: RouteResult) -> RouteResult {
    if rank(a) <= rank(b) { a } else { b }
}

/// Won, lost, no match, not considered: the order results are listed in.
fn rank(result: RouteResult) -> u8 {
    match result {
        RouteResult::Won => 0,
        RouteResult::Lost => 1,
        RouteResult::NoMatch => 2,
        RouteResult::NotConsidered => 3,
    }
}
