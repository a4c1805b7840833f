//! HTTPRoute: rule compilation (matches, filters, backendRefs, timeouts, retries). Attachment
//! to listeners and route status are shared with the other route kinds in `attachment`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use model::Store;
use model::gateway_api::{
    HttpRoute, HttpRouteRules, HttpRouteRulesFilters, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};
use router::{HeaderMatch, PathMatch, QueryMatch, RuleMatch, ValueMatch};
use snapshot::{
    BackendChoice, BackendTarget, DirectResponse, Filters, PathModifier, RetryPolicy, RouteRule,
    RuleAction, Timeouts, WeightedBackend,
};

use crate::CompileOptions;
use crate::attachment::{self, CompiledRule, RouteAttachment, RuleProblems};
use crate::backend_ref::{BackendRefSpec, BackendTable, Referrer};
use crate::listener::Listeners;
use crate::mirror::MirrorTargets;
use crate::status::StatusReport;
use crate::{duration, filter};

/// Attaches every HTTPRoute to the listeners its parentRefs select.
pub(crate) fn attach_http_routes(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    backends: &mut BackendTable,
    status: &mut StatusReport,
) {
    for ((namespace, name), route) in &store.http_routes {
        let label = format!("HTTPRoute {namespace}/{name}");
        let parents = attachment::normalise_parents(namespace, route.spec.parent_refs.as_deref());
        let ours = attachment::our_parents(store, options, parents);
        if ours.is_empty() {
            continue; // not attached to any Gateway of ours: not our business
        }

        let mut problems = RuleProblems::default();
        let rules = compile_rules(
            store,
            namespace,
            name,
            &label,
            route,
            backends,
            &mut problems,
        );
        let hostnames = route.spec.hostnames.clone().unwrap_or_default();
        let attaching = RouteAttachment {
            kind: "HTTPRoute",
            namespace,
            name,
            hostnames: &hostnames,
            created: attachment::created_seconds(&route.metadata),
            parents: ours,
        };
        attachment::attach_route(
            store, options, listeners, status, attaching, &rules, &problems,
        );
    }
}

/// Compiles every rule of a route. Invalid rules are left out and reported; rules whose
/// backendRefs do not resolve stay, answering 500 for the share of traffic of the bad refs.
fn compile_rules(
    store: &Store,
    namespace: &str,
    name: &str,
    label: &str,
    route: &HttpRoute,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Vec<CompiledRule> {
    let mut compiled = Vec::new();
    let referrer = Referrer {
        kind: "HTTPRoute",
        namespace,
    };
    for (index, rule) in route
        .spec
        .rules
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let at = format!("{label} rules[{index}]");
        let rule_name: Arc<str> = match &rule.name {
            Some(rule_name) => {
                format!("HTTPRoute {namespace}/{name} rules[{index}] ({rule_name})").into()
            }
            None => format!("HTTPRoute {namespace}/{name} rules[{index}]").into(),
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
                rule: Arc::new(compiled_action.into_rule(rule_name)),
            }),
            Err(message) => problems.invalid.push(message),
        }
    }
    compiled
}

/// Compiles one rule: its matches and what it does (filters, timeouts, retry, weighted
/// backends). `Err` drops the rule (the message names the field); backendRefs that do not
/// resolve are recorded in `problems` and answer 500 for their share of traffic. GRPCRoute
/// rules reuse it for their filters and backendRefs, which share HTTPRoute's schema.
pub(crate) fn compile_rule(
    store: &Store,
    at: &str,
    rule: &HttpRouteRules,
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<(Vec<RuleMatch>, CompiledAction), String> {
    let filters = filter::compile_filters(
        at,
        rule.filters.as_deref().unwrap_or_default(),
        &mut MirrorTargets {
            store,
            referrer,
            backends,
            problems: &mut problems.refs,
        },
    )?;
    let timeouts = compile_timeouts(at, rule.timeouts.as_ref())?;
    let retry = compile_retry(at, rule.retry.as_ref())?;
    let session = crate::session::compile_session(at, rule.session_persistence.as_ref())?;
    let matches = match rule.matches.as_deref() {
        None | Some([]) => vec![RuleMatch::default()],
        Some(matches) => matches
            .iter()
            .enumerate()
            .map(|(i, m)| compile_match(&format!("{at}.matches[{i}]"), m))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut uses_prefix_rewrite = has_prefix_modifier(&filters);
    let refs = rule.backend_refs.as_deref().unwrap_or_default();
    let mut candidates = Vec::new();
    for (i, backend_ref) in refs.iter().enumerate() {
        let ref_at = format!("{at}.backendRefs[{i}]");
        let backend_filters: Vec<HttpRouteRulesFilters> =
            filter::convert(&backend_ref.filters.clone().unwrap_or_default())?;
        let backend_filters = filter::compile_filters(
            &ref_at,
            &backend_filters,
            &mut MirrorTargets {
                store,
                referrer,
                backends,
                problems: &mut problems.refs,
            },
        )?;
        if backend_filters.cors.is_some() {
            // A preflight is answered before a backendRef is chosen: CORS belongs to the rule.
            return Err(format!(
                "{ref_at}.filters: CORS is only supported on the rule, not on a backendRef"
            ));
        }
        uses_prefix_rewrite |= has_prefix_modifier(&backend_filters);
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
        let target = match backends.resolve(store, referrer, &spec) {
            Ok(index) => BackendTarget::Backend(index),
            Err(problem) => {
                let response = internal_error(&format!("{ref_at}: {}", problem.message));
                problems.refs.push((ref_at, problem));
                BackendTarget::Invalid(response)
            }
        };
        if weight > 0 {
            candidates.push(WeightedBackend {
                weight,
                target,
                filters: backend_filters,
            });
        }
    }
    if uses_prefix_rewrite
        && matches
            .iter()
            .any(|m| !matches!(m.path, PathMatch::Prefix(_)))
    {
        return Err(format!(
            "{at}: ReplacePrefixMatch needs every match of the rule to be a PathPrefix match"
        ));
    }
    // The route's own `retry` (Gateway API) wins; otherwise the BackendTrafficPolicy retry of
    // the first usable backend (its own policy, or the rule's route/Gateway-level one).
    let retry = retry.or_else(|| {
        candidates.iter().find_map(|c| match c.target {
            BackendTarget::Backend(index) => backends
                .applied_policy(index)
                .and_then(|p| p.retry_policy()),
            BackendTarget::Invalid(_) => None,
        })
    });
    let total_weight: u64 = candidates.iter().map(|c| c.weight).sum();
    let action = if refs.is_empty() {
        RuleAction::Respond(internal_error(&format!("{at} has no backendRefs")))
    } else if total_weight == 0 {
        RuleAction::Respond(internal_error(&format!(
            "{at}: every backendRef has weight 0"
        )))
    } else {
        RuleAction::Forward(BackendChoice {
            candidates,
            total_weight,
        })
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
    pub(crate) fn into_rule(self, name: Arc<str>) -> RouteRule {
        RouteRule {
            name,
            filters: self.filters,
            timeouts: self.timeouts,
            retry: self.retry,
            action: self.action,
            session: self.session,
        }
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

/// `retry` (GEP-1731): codes 400-599, attempts >= 0, backoff a GEP-2257 duration.
fn compile_retry(
    at: &str,
    spec: Option<&HttpRouteRulesRetry>,
) -> Result<Option<RetryPolicy>, String> {
    let Some(spec) = spec else { return Ok(None) };
    let mut codes = Vec::new();
    for (i, code) in spec.codes.as_deref().unwrap_or_default().iter().enumerate() {
        let code = u16::try_from(*code)
            .ok()
            .filter(|c| (400..=599).contains(c))
            .ok_or_else(|| format!("{at}.retry.codes[{i}]: {code} is not a 4xx or 5xx status"))?;
        codes.push(code);
    }
    let attempts = u32::try_from(spec.attempts.unwrap_or(1))
        .map_err(|_| format!("{at}.retry.attempts must be 0 or more"))?;
    let backoff = match &spec.backoff {
        None => snapshot::Backoff::default(),
        Some(text) => snapshot::Backoff::fixed(
            duration::parse(text).map_err(|e| format!("{at}.retry.backoff: {e}"))?,
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
fn compile_timeouts(at: &str, spec: Option<&HttpRouteRulesTimeouts>) -> Result<Timeouts, String> {
    let Some(spec) = spec else {
        return Ok(Timeouts::default());
    };
    let parse = |field: &str, value: Option<&String>| -> Result<Option<Duration>, String> {
        match value {
            None => Ok(None),
            Some(text) => {
                let parsed =
                    duration::parse(text).map_err(|e| format!("{at}.timeouts.{field}: {e}"))?;
                Ok(Some(parsed).filter(|d| !d.is_zero()))
            }
        }
    };
    let request = parse("request", spec.request.as_ref())?;
    let backend_request = parse("backendRequest", spec.backend_request.as_ref())?;
    if let (Some(request), Some(backend)) = (request, backend_request)
        && backend > request
    {
        return Err(format!(
            "{at}.timeouts.backendRequest ({backend:?}) must not exceed timeouts.request ({request:?})"
        ));
    }
    Ok(Timeouts {
        request,
        backend_request,
    })
}

/// The 500 the Gateway API requires for traffic that cannot be forwarded. The body names the
/// rule and the reason so an operator can act without reading logs.
fn internal_error(message: &str) -> DirectResponse {
    DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::from(format!("no backend for this request: {message}\n")),
    }
}

pub(crate) fn compile_match(at: &str, spec: &HttpRouteRulesMatches) -> Result<RuleMatch, String> {
    let path = match &spec.path {
        None => PathMatch::prefix("/"),
        Some(path) => {
            let value = path.value.as_deref().unwrap_or("/");
            let kind = path
                .r#type
                .clone()
                .unwrap_or(HttpRouteRulesMatchesPathType::PathPrefix);
            match kind {
                HttpRouteRulesMatchesPathType::RegularExpression => PathMatch::regex(value)
                    .map_err(|e| format!("{at}.path.value: invalid regular expression: {e}"))?,
                HttpRouteRulesMatchesPathType::Exact
                | HttpRouteRulesMatchesPathType::PathPrefix => {
                    if !value.starts_with('/') {
                        return Err(format!("{at}.path.value: {value:?} must start with \"/\""));
                    }
                    if value.contains("//") || value.contains("/./") || value.contains("/../") {
                        return Err(format!(
                            "{at}.path.value: {value:?} must be a normalised path"
                        ));
                    }
                    if kind == HttpRouteRulesMatchesPathType::Exact {
                        PathMatch::exact(value)
                    } else {
                        PathMatch::prefix(value)
                    }
                }
            }
        }
    };
    let mut headers = Vec::new();
    let mut seen_headers = Vec::new();
    for (i, header) in spec
        .headers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = http::HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            format!(
                "{at}.headers[{i}].name: {:?} is not a valid header name",
                header.name
            )
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
                .map_err(|e| format!("{at}.headers[{i}].value: invalid regular expression: {e}"))?,
        };
        headers.push(HeaderMatch { name, value });
    }
    let mut query = Vec::new();
    for (i, param) in spec
        .query_params
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
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
                    format!("{at}.queryParams[{i}].value: invalid regular expression: {e}")
                })?
            }
        };
        query.push(QueryMatch {
            name: param.name.as_str().into(),
            value,
        });
    }
    let method = spec.method.as_ref().map(|m| match m {
        HttpRouteRulesMatchesMethod::Get => http::Method::GET,
        HttpRouteRulesMatchesMethod::Head => http::Method::HEAD,
        HttpRouteRulesMatchesMethod::Post => http::Method::POST,
        HttpRouteRulesMatchesMethod::Put => http::Method::PUT,
        HttpRouteRulesMatchesMethod::Delete => http::Method::DELETE,
        HttpRouteRulesMatchesMethod::Connect => http::Method::CONNECT,
        HttpRouteRulesMatchesMethod::Options => http::Method::OPTIONS,
        HttpRouteRulesMatchesMethod::Trace => http::Method::TRACE,
        HttpRouteRulesMatchesMethod::Patch => http::Method::PATCH,
    });
    Ok(RuleMatch {
        path,
        method,
        headers,
        query,
    })
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
