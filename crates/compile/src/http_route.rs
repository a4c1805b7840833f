//! HTTPRoute: rule compilation (matches, filters, backendRefs, timeouts, retries). Attachment
//! to listeners and route status are shared with the other route kinds in `attachment`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use model::Store;
use model::gateway_api::{
    HttpRoute, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeaders, HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod,
    HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteRulesMatchesQueryParams,
    HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};
use router::{HeaderMatch, PathMatch, QueryMatch, RuleMatch, ValueMatch};
use snapshot::{
    BackendChoice, BackendTarget, DirectResponse, Filters, PathModifier, RetryPolicy, RouteRule,
    RuleAction, Timeouts, WeightedBackend,
};

use crate::CompileOptions;
use crate::attachment::{self, CompiledRule, RuleProblems};
use crate::backend_ref::{BackendRefSpec, BackendTable, Referrer};
use crate::filter::FilterScope;
use crate::listener::Listeners;
use crate::mirror::MirrorTargets;
use crate::problems::{FieldPath, Problem, Problems};
use crate::route_unit::{RouteSpec, RouteUnit};
use crate::{duration, filter};

#[cfg(test)]
mod tests;

/// Compiles one HTTPRoute into the rules it adds and where it attaches. `None` when no
/// parentRef of the route is ours.
pub(crate) fn compile_route(
    store: &Store,
    options: &CompileOptions,
    listeners: &Listeners,
    backends: &mut BackendTable,
    (namespace, name): (&str, &str),
    route: &HttpRoute,
) -> Option<RouteUnit> {
    let spec = RouteSpec {
        kind: "HTTPRoute",
        namespace,
        name,
        parents: attachment::normalise_parents(namespace, route.spec.parent_refs.as_deref()),
        hostnames: route.spec.hostnames.as_deref(),
        metadata: &route.metadata,
    };
    RouteUnit::compile(store, options, listeners, spec, |problems| {
        compile_rules(store, namespace, name, route, backends, problems)
    })
}

/// Compiles every rule of a route. Invalid rules are left out and reported; rules whose
/// backendRefs do not resolve stay, answering 500 for the share of traffic of the bad refs.
fn compile_rules(
    store: &Store,
    namespace: &str,
    name: &str,
    route: &HttpRoute,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Vec<CompiledRule> {
    let mut compiled = Vec::new();
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: "HTTPRoute",
        namespace,
    };
    let rules = FieldPath::object("HTTPRoute", namespace, name).field("rules");
    for (index, rule) in route
        .spec
        .rules
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = rules.index(index);
        let rule_name: Arc<str> = match &rule.name {
            Some(rule_name) => format!("{at} ({rule_name})").into(),
            None => at.to_string().into(),
        };
        let gateway = first_gateway_parent(
            namespace,
            route.spec.parent_refs.as_deref().unwrap_or_default(),
        );
        let scope = backends.traffic().for_rule(
            "HTTPRoute",
            namespace,
            name,
            rule.name.as_deref(),
            gateway
                .as_ref()
                .map(|(ns, gw, listener)| (ns.as_str(), gw.as_str(), listener.as_deref())),
        );
        backends.enter_rule(scope);
        let compiled_rule = compile_rule(store, &at, rule, &referrer, backends, problems);
        backends.enter_rule(None);
        match compiled_rule {
            Ok((matches, compiled_action)) => compiled.push(CompiledRule {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                matches,
                rule: Arc::new(compiled_action.into_rule(
                    rule_name,
                    backends.route_policies().for_rule(
                        "HTTPRoute",
                        namespace,
                        name,
                        rule.name.as_deref(),
                    ),
                )),
            }),
            Err(found) => problems.invalid.extend(found),
        }
    }
    compiled
}

/// Compiles one rule (`at` is its path): its matches and what it does (filters, timeouts,
/// retry, weighted backends). `Err` drops the rule with the problems of its first invalid
/// section (every bad filter of a filter list); backendRefs that do not resolve are recorded
/// in `problems` and answer 500 for their share of traffic. GRPCRoute rules reuse it for their
/// filters and backendRefs, which share HTTPRoute's schema (`referrer.kind` tells them
/// apart). A rule naming a Composition answers with it: its backendRefs are not compiled
/// (see `crate::composition`).
pub(crate) fn compile_rule(
    store: &Store,
    at: &FieldPath,
    rule: &HttpRouteRules,
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<(Vec<RuleMatch>, CompiledAction), Problems> {
    // The first invalid section drops the rule and is the one reported, so this order is the
    // order in which an operator meets the problems. Filters come first: their mirrors
    // resolve backends before the rule's own backendRefs do, which fixes the backends' order
    // in the snapshot.
    let mut unusable_composition = None;
    let scope = if referrer.kind == "HTTPRoute" {
        FilterScope::HttpRouteRule {
            unusable: &mut unusable_composition,
        }
    } else {
        FilterScope::GrpcRouteRule
    };
    let filters = filter::compile_filters(
        at,
        rule.filters.as_deref().unwrap_or_default(),
        scope,
        &mut MirrorTargets {
            store,
            referrer,
            backends,
            problems: &mut problems.refs,
        },
    )?;
    let timeouts = compile_timeouts(at, rule.timeouts.as_deref())?;
    let retry = compile_retry(at, rule.retry.as_deref())?;
    let session = crate::session::compile_session(at, rule.session_persistence.as_deref())?;
    let matches = compile_matches(at, rule.matches.as_deref())?;
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    let composes = filters.composition.is_some() || unusable_composition.is_some();
    let weighted = if composes {
        // The Composition answers: the backendRefs are not used (module doc of `composition`).
        WeightedRefs {
            candidates: Vec::new(),
            uses_prefix_rewrite: false,
        }
    } else {
        compile_backend_refs(store, at, refs, referrer, backends, problems)?
    };
    check_prefix_rewrite(
        at,
        &matches,
        has_prefix_modifier(&filters) || weighted.uses_prefix_rewrite,
    )?;
    // The route's own `retry` (Gateway API) wins; otherwise the BackendTrafficPolicy retry of
    // the first usable backend (its own policy, or the rule's route/Gateway-level one).
    let retry = retry.or_else(|| policy_retry(backends, &weighted.candidates));
    let action = match (unusable_composition, &filters.composition) {
        (Some(response), _) => RuleAction::Respond(response),
        (None, Some(composition)) => RuleAction::Respond(composed(composition)),
        (None, None) => rule_action(at, refs.is_empty(), weighted.candidates),
    };
    Ok((
        matches,
        CompiledAction {
            filters,
            timeouts,
            retry,
            action,
            session,
        },
    ))
}

/// A rule's filters, timeouts and action.
pub(crate) struct CompiledAction {
    pub(crate) filters: Filters,
    pub(crate) timeouts: Timeouts,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) action: RuleAction,
    pub(crate) session: Option<snapshot::session::SessionPersistence>,
}

impl CompiledAction {
    /// The snapshot rule, named for logs and metrics.
    pub(crate) fn into_rule(
        self,
        name: Arc<str>,
        policies: crate::route_policy::AppliedRoutePolicies,
    ) -> RouteRule {
        RouteRule {
            name,
            filters: self.filters,
            timeouts: self.timeouts,
            retry: self.retry.map(Box::new),
            action: self.action,
            session: self.session.map(Box::new),
            security: policies.security,
            rate_limit: policies.rate_limit,
        }
    }
}

/// A rule's `matches`; none means one match of every request (`PathPrefix /`).
fn compile_matches(
    at: &FieldPath,
    matches: Option<&[HttpRouteRulesMatches]>,
) -> Result<Vec<RuleMatch>, Problem> {
    match matches {
        None | Some([]) => Ok(vec![RuleMatch::default()]),
        Some(matches) => {
            let list = at.field("matches");
            matches
                .iter()
                .enumerate()
                .map(|(i, m)| compile_match(&list.index(i), m))
                .collect()
        }
    }
}

/// The backendRefs of a rule with a non-zero weight, and whether their filters rewrite a
/// path prefix.
struct WeightedRefs {
    candidates: Vec<WeightedBackend>,
    uses_prefix_rewrite: bool,
}

/// Compiles a rule's backendRefs. A ref that does not resolve stays, answering 500 (the
/// problem is in `problems.refs`); invalid ref filters drop the rule.
fn compile_backend_refs(
    store: &Store,
    at: &FieldPath,
    refs: &[HttpRouteRulesBackendRefs],
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<WeightedRefs, Problems> {
    let list = at.field("backendRefs");
    let mut weighted = WeightedRefs {
        candidates: Vec::with_capacity(refs.len()),
        uses_prefix_rewrite: false,
    };
    for (i, backend_ref) in refs.iter().enumerate() {
        let ref_at = list.index(i);
        let filters =
            backend_ref_filters(store, &ref_at, backend_ref, referrer, backends, problems)?;
        weighted.uses_prefix_rewrite |= has_prefix_modifier(&filters);
        let weight = u64::try_from(backend_ref.weight.unwrap_or(1)).unwrap_or(0);
        let spec = BackendRefSpec {
            group: backend_ref.group.as_deref().unwrap_or(""),
            kind: backend_ref.kind.as_deref().unwrap_or("Service"),
            name: &backend_ref.name,
            namespace: backend_ref
                .namespace
                .as_deref()
                .unwrap_or(referrer.namespace),
            port: backend_ref.port,
        };
        let target = match backends.resolve(store, referrer, &spec, &ref_at) {
            Ok(index) => BackendTarget::Backend(index),
            Err(problem) => {
                let response = internal_error(&problem);
                problems.refs.report(problem);
                BackendTarget::Invalid(response)
            }
        };
        if weight > 0 {
            weighted.candidates.push(WeightedBackend {
                weight,
                target,
                filters: Filters::boxed(filters),
            });
        }
    }
    // Kept for the life of the config: no spare room.
    weighted.candidates.shrink_to_fit();
    Ok(weighted)
}

/// The `filters` of one backendRef (`at`), compiled like a rule's.
fn backend_ref_filters(
    store: &Store,
    at: &FieldPath,
    backend_ref: &HttpRouteRulesBackendRefs,
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<Filters, Problems> {
    let filters = filter::compile_filters(
        at,
        backend_ref.filters.as_deref().unwrap_or_default(),
        FilterScope::BackendRef,
        &mut MirrorTargets {
            store,
            referrer,
            backends,
            problems: &mut problems.refs,
        },
    )?;
    if filters.external_auth.is_some() {
        // The access phases run before a backendRef is chosen.
        return Err(at
            .field("filters")
            .problem("ExternalAuth is only supported on the rule, not on a backendRef")
            .into());
    }
    if filters.cors.is_some() {
        // A preflight is answered before a backendRef is chosen: CORS belongs to the rule.
        return Err(at
            .field("filters")
            .problem("CORS is only supported on the rule, not on a backendRef")
            .into());
    }
    Ok(filters)
}

/// Spec (HTTPPathModifier): `ReplacePrefixMatch` replaces the matched prefix, so every match of
/// the rule must be a `PathPrefix` match.
fn check_prefix_rewrite(
    at: &FieldPath,
    matches: &[RuleMatch],
    uses_prefix_rewrite: bool,
) -> Result<(), Problem> {
    if uses_prefix_rewrite
        && matches
            .iter()
            .any(|m| !matches!(m.path, PathMatch::Prefix(_)))
    {
        return Err(
            at.problem("ReplacePrefixMatch needs every match of the rule to be a PathPrefix match")
        );
    }
    Ok(())
}

/// The BackendTrafficPolicy retry of the first usable candidate, for rules without a `retry`
/// of their own.
fn policy_retry(backends: &BackendTable, candidates: &[WeightedBackend]) -> Option<RetryPolicy> {
    candidates.iter().find_map(|c| match c.target {
        BackendTarget::Backend(index) => backends
            .applied_policy(index)
            .and_then(|p| p.retry_policy()),
        BackendTarget::Invalid(_) => None,
    })
}

/// What the rule does: forward to its weighted candidates, or, with no backendRefs or no
/// weight, answer the 500 the spec asks for.
fn rule_action(at: &FieldPath, no_refs: bool, candidates: Vec<WeightedBackend>) -> RuleAction {
    let total_weight: u64 = candidates.iter().map(|c| c.weight).sum();
    if no_refs {
        RuleAction::Respond(internal_error(&at.sentence("has no backendRefs")))
    } else if total_weight == 0 {
        RuleAction::Respond(internal_error(&at.problem("every backendRef has weight 0")))
    } else {
        RuleAction::Forward(BackendChoice {
            candidates,
            total_weight,
        })
    }
}

/// The action of a rule whose Composition answers it (`proxy/src/compose.rs` runs it; the data
/// plane never forwards such a rule): a 500 naming it, should a path ever reach it.
fn composed(composition: &snapshot::composition::Composition) -> DirectResponse {
    DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::from(format!(
            "this rule is answered by {}, which did not run\n",
            composition.name
        )),
    }
}

fn has_prefix_modifier(filters: &Filters) -> bool {
    let redirect = filters.redirect.as_ref().and_then(|r| r.path.as_ref());
    let rewrite = filters.rewrite.as_ref().and_then(|r| r.path.as_ref());
    [redirect, rewrite]
        .into_iter()
        .flatten()
        .any(|p| matches!(p, PathModifier::ReplacePrefixMatch(_)))
}

/// `retry` (GEP-1731), validated as the v1.6 CRD does at apply time (standalone mode has no API
/// server to do it): `codes` a set of statuses 400-599, `attempts` at least 1 (v1.6 raised the
/// minimum from 0: a rule that wants no retries leaves `retry` out), `backoff` a GEP-2257
/// duration. Without `attempts` a request is retried once.
fn compile_retry(
    rule: &FieldPath,
    spec: Option<&HttpRouteRulesRetry>,
) -> Result<Option<RetryPolicy>, Problem> {
    let Some(spec) = spec else { return Ok(None) };
    let at = rule.field("retry");
    let mut codes: Vec<u16> = Vec::new();
    for (i, code) in spec.codes.as_deref().unwrap_or_default().iter().enumerate() {
        let code = u16::try_from(*code)
            .ok()
            .filter(|c| (400..=599).contains(c))
            .ok_or_else(|| {
                at.field("codes")
                    .index(i)
                    .problem(format!("{code} is not a 4xx or 5xx status"))
            })?;
        // `codes` is a set (`x-kubernetes-list-type: set` since v1.6): the API server refuses
        // a repeated entry, so the same file must not pass here either.
        if let Some(first) = codes.iter().position(|c| *c == code) {
            return Err(at.field("codes").index(i).problem(format!(
                "{code} is already listed at codes[{first}]; codes is a set"
            )));
        }
        codes.push(code);
    }
    let attempts = spec
        .attempts
        .map_or(Ok(1), u32::try_from)
        .ok()
        .filter(|attempts| *attempts >= 1)
        .ok_or_else(|| {
            at.field("attempts").problem(format!(
                "{} must be at least 1 (leave retry out for no retries)",
                spec.attempts.unwrap_or_default()
            ))
        })?;
    let backoff = match &spec.backoff {
        // Without `backoff` the implementation chooses (GEP-1731): a small jittered pause.
        None => snapshot::Backoff::DEFAULT_RETRY,
        Some(text) => snapshot::Backoff::fixed(
            duration::parse(text).map_err(|e| at.field("backoff").problem(e))?,
        ),
    };
    // GEP-1731: connection errors (refused, reset, timeout before the response head) are
    // always retried; `codes` adds response statuses. No budget: only `attempts` limits.
    Ok(Some(RetryPolicy {
        triggers: snapshot::RetryTriggers {
            connect_failure: true,
            reset: true,
            timeout: true,
            status_codes: codes,
            gateway_error: false,
            server_error: false,
        },
        attempts,
        backoff,
        per_try_timeout: None,
        budget: None,
    }))
}

/// `timeouts`: GEP-2257 durations; `0s` disables a timeout; backendRequest must not exceed
/// request.
fn compile_timeouts(
    rule: &FieldPath,
    spec: Option<&HttpRouteRulesTimeouts>,
) -> Result<Timeouts, Problem> {
    let Some(spec) = spec else {
        return Ok(Timeouts::default());
    };
    let at = rule.field("timeouts");
    let parse = |field: &str, value: Option<&String>| -> Result<Option<Duration>, Problem> {
        match value {
            None => Ok(None),
            Some(text) => {
                let parsed = duration::parse(text).map_err(|e| at.field(field).problem(e))?;
                Ok(Some(parsed).filter(|d| !d.is_zero()))
            }
        }
    };
    let request = parse("request", spec.request.as_ref())?;
    let backend_request = parse("backendRequest", spec.backend_request.as_ref())?;
    if let (Some(request), Some(backend)) = (request, backend_request)
        && backend > request
    {
        return Err(at.field("backendRequest").sentence(format!(
            "({backend:?}) must not exceed timeouts.request ({request:?})"
        )));
    }
    Ok(Timeouts {
        request,
        backend_request,
    })
}

/// The 500 the Gateway API requires for traffic that cannot be forwarded. The body names the
/// rule and the reason so an operator can act without reading logs.
fn internal_error(why: &Problem) -> DirectResponse {
    DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::from(format!("no backend for this request: {why}\n")),
    }
}

/// One `HTTPRouteMatch` (`at` is its path): path, headers, query parameters and method.
pub(crate) fn compile_match(
    at: &FieldPath,
    spec: &HttpRouteRulesMatches,
) -> Result<RuleMatch, Problem> {
    Ok(RuleMatch {
        path: path_match(&at.field("path"), spec.path.as_ref())?,
        method: spec.method.as_ref().map(method),
        headers: header_matches(&at.field("headers"), spec.headers.as_deref())?,
        query: query_matches(&at.field("queryParams"), spec.query_params.as_deref())?,
    })
}

/// `path`: `PathPrefix /` when absent; Exact and PathPrefix values must be absolute and
/// normalised.
fn path_match(
    at: &FieldPath,
    spec: Option<&HttpRouteRulesMatchesPath>,
) -> Result<PathMatch, Problem> {
    let Some(path) = spec else {
        return Ok(PathMatch::prefix("/"));
    };
    let at = at.field("value");
    let value = path.value.as_deref().unwrap_or("/");
    let kind = path
        .r#type
        .clone()
        .unwrap_or(HttpRouteRulesMatchesPathType::PathPrefix);
    match kind {
        HttpRouteRulesMatchesPathType::RegularExpression => PathMatch::regex(value)
            .map_err(|e| at.problem(format!("invalid regular expression: {e}"))),
        HttpRouteRulesMatchesPathType::Exact | HttpRouteRulesMatchesPathType::PathPrefix => {
            if !value.starts_with('/') {
                return Err(at.problem(format!("{value:?} must start with \"/\"")));
            }
            if value.contains("//") || value.contains("/./") || value.contains("/../") {
                return Err(at.problem(format!("{value:?} must be a normalised path")));
            }
            if kind == HttpRouteRulesMatchesPathType::Exact {
                Ok(PathMatch::exact(value))
            } else {
                Ok(PathMatch::prefix(value))
            }
        }
    }
}

/// `headers` (`at` is the list): names must be valid; of several entries naming one header
/// only the first counts.
fn header_matches(
    at: &FieldPath,
    specs: Option<&[HttpRouteRulesMatchesHeaders]>,
) -> Result<Vec<HeaderMatch>, Problem> {
    let mut headers = Vec::new();
    let mut seen_headers = Vec::new();
    for (i, header) in specs.unwrap_or_default().iter().enumerate() {
        let name = http::HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            at.index(i)
                .field("name")
                .problem(format!("{:?} is not a valid header name", header.name))
        })?;
        // Spec: if several entries name the same header, only the first is considered.
        if seen_headers.contains(&name) {
            continue;
        }
        seen_headers.push(name.clone());
        let value = match header
            .r#type
            .clone()
            .unwrap_or(HttpRouteRulesMatchesHeadersType::Exact)
        {
            HttpRouteRulesMatchesHeadersType::Exact => ValueMatch::exact(&header.value),
            HttpRouteRulesMatchesHeadersType::RegularExpression => ValueMatch::regex(&header.value)
                .map_err(|e| {
                    at.index(i)
                        .field("value")
                        .problem(format!("invalid regular expression: {e}"))
                })?,
        };
        headers.push(HeaderMatch { name, value });
    }
    Ok(headers)
}

/// `queryParams` (`at` is the list): of several entries naming one parameter only the first
/// counts.
fn query_matches(
    at: &FieldPath,
    specs: Option<&[HttpRouteRulesMatchesQueryParams]>,
) -> Result<Vec<QueryMatch>, Problem> {
    let mut query = Vec::new();
    for (i, param) in specs.unwrap_or_default().iter().enumerate() {
        if query.iter().any(|q: &QueryMatch| *q.name == *param.name) {
            continue;
        }
        let value = match param
            .r#type
            .clone()
            .unwrap_or(HttpRouteRulesMatchesQueryParamsType::Exact)
        {
            HttpRouteRulesMatchesQueryParamsType::Exact => ValueMatch::exact(&param.value),
            HttpRouteRulesMatchesQueryParamsType::RegularExpression => {
                ValueMatch::regex(&param.value).map_err(|e| {
                    at.index(i)
                        .field("value")
                        .problem(format!("invalid regular expression: {e}"))
                })?
            }
        };
        query.push(QueryMatch {
            name: param.name.as_str().into(),
            value,
        });
    }
    Ok(query)
}

/// `method`, as the `http` crate spells it.
fn method(spec: &HttpRouteRulesMatchesMethod) -> http::Method {
    match spec {
        HttpRouteRulesMatchesMethod::Get => http::Method::GET,
        HttpRouteRulesMatchesMethod::Head => http::Method::HEAD,
        HttpRouteRulesMatchesMethod::Post => http::Method::POST,
        HttpRouteRulesMatchesMethod::Put => http::Method::PUT,
        HttpRouteRulesMatchesMethod::Delete => http::Method::DELETE,
        HttpRouteRulesMatchesMethod::Connect => http::Method::CONNECT,
        HttpRouteRulesMatchesMethod::Options => http::Method::OPTIONS,
        HttpRouteRulesMatchesMethod::Trace => http::Method::TRACE,
        HttpRouteRulesMatchesMethod::Patch => http::Method::PATCH,
    }
}

/// The first parentRef that names a Gateway: `(namespace, name, sectionName)`, for the
/// Gateway-level BackendTrafficPolicy of a route.
fn first_gateway_parent(
    namespace: &str,
    parents: &[model::gateway_api::HttpRouteParentRefs],
) -> Option<(String, String, Option<String>)> {
    parents
        .iter()
        .find(|p| {
            p.group.as_deref().unwrap_or(model::kind::GATEWAY_GROUP) == model::kind::GATEWAY_GROUP
                && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        })
        .map(|p| {
            let gateway_namespace = p.namespace.clone().unwrap_or_else(|| namespace.to_owned());
            (gateway_namespace, p.name.clone(), p.section_name.clone())
        })
}
