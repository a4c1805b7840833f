//! HTTPRoute: rule compilation (matches, backendRefs), attachment to listeners through
//! parentRefs, and route status.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use model::Store;
use model::gateway_api::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesFilters, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesMethod, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType, HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};
use router::{HeaderMatch, HostPattern, PathMatch, QueryMatch, RouteOrder, RuleMatch, ValueMatch};
use snapshot::{
    BackendChoice, BackendTarget, DirectResponse, Filters, PathModifier, RetryPolicy, RouteRule,
    RuleAction, Timeouts, WeightedBackend,
};

use crate::CompileOptions;
use crate::backend_ref::{BackendRefSpec, BackendTable, RefProblem, Referrer};
use crate::listener::Listeners;
use crate::status::{Condition, ObjectStatus, ParentReference, RouteParentStatus, StatusReport};
use crate::{duration, filter, hostname};

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;

/// One rule ready to be added to listeners.
struct CompiledRule {
    index: u32,
    matches: Vec<RuleMatch>,
    rule: Arc<RouteRule>,
}

/// What compiling a route's rules found.
#[derive(Default)]
struct RuleProblems {
    /// Rules dropped as invalid (field path + message).
    invalid: Vec<String>,
    /// backendRefs that do not resolve: the first reason wins the condition.
    refs: Vec<(String, RefProblem)>,
}

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
        let parents = route.spec.parent_refs.as_deref().unwrap_or_default();
        let ours: Vec<(usize, &HttpRouteParentRefs)> = parents
            .iter()
            .enumerate()
            .filter(|(_, p)| is_our_parent(store, options, namespace, p))
            .collect();
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
        let route_hostnames = route.spec.hostnames.clone().unwrap_or_default();
        let invalid_hostname = route_hostnames.iter().enumerate().find_map(|(i, h)| {
            hostname::validate(h)
                .err()
                .map(|e| format!("{label} spec.hostnames[{i}]: {e}"))
        });

        let mut object = ObjectStatus::new("HTTPRoute", namespace, name);
        object.problems.extend(invalid_hostname.iter().cloned());
        object.problems.extend(problems.invalid.iter().cloned());
        object.problems.extend(
            problems
                .refs
                .iter()
                .map(|(at, p)| format!("{at}: {} ({})", p.message, p.reason)),
        );
        for (index, parent) in ours {
            let parent_ref = normalise_parent(namespace, parent);
            let mut conditions = Vec::new();
            let accepted = if let Some(message) = &invalid_hostname {
                Err(("UnsupportedValue", message.clone()))
            } else if rules.is_empty() && !problems.invalid.is_empty() {
                Err((
                    "UnsupportedValue",
                    format!("no valid rule: {}", problems.invalid.join("; ")),
                ))
            } else {
                attach(
                    store,
                    listeners,
                    status,
                    namespace,
                    &route_hostnames,
                    &parent_ref,
                    &rules,
                    route,
                    &label,
                    index,
                )
            };
            match accepted {
                Ok(()) => {
                    conditions.push(Condition::yes("Accepted", "Accepted", "route is attached"))
                }
                Err((reason, message)) => {
                    conditions.push(Condition::no("Accepted", reason, message))
                }
            }
            match problems.refs.first() {
                None => conditions.push(Condition::yes(
                    "ResolvedRefs",
                    "ResolvedRefs",
                    "all references resolved",
                )),
                Some((_, first)) => {
                    let all: Vec<String> = problems
                        .refs
                        .iter()
                        .map(|(at, p)| format!("{at}: {} ({})", p.message, p.reason))
                        .collect();
                    conditions.push(Condition::no("ResolvedRefs", first.reason, all.join("; ")));
                }
            }
            if !problems.invalid.is_empty() && !rules.is_empty() {
                conditions.push(Condition::yes(
                    "PartiallyInvalid",
                    "UnsupportedValue",
                    format!("invalid rules dropped: {}", problems.invalid.join("; ")),
                ));
            }
            object.parents.push(RouteParentStatus {
                parent_ref,
                controller_name: options.controller_name.clone(),
                conditions,
            });
        }
        status.objects.push(object);
    }
}

/// Whether a parentRef points at a Gateway handled by us (existing or not: a ref to a missing
/// Gateway is reported, since we cannot tell whose it would be, but refs to Gateways of other
/// classes are left to their controllers).
fn is_our_parent(
    store: &Store,
    options: &CompileOptions,
    namespace: &str,
    parent: &HttpRouteParentRefs,
) -> bool {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return false;
    }
    let gateway_namespace = parent.namespace.as_deref().unwrap_or(namespace);
    match store
        .gateways
        .get(&(gateway_namespace.to_owned(), parent.name.clone()))
    {
        None => true,
        Some(gateway) => store
            .gateway_classes
            .get(&gateway.spec.gateway_class_name)
            .is_some_and(|class| class.spec.controller_name == options.controller_name),
    }
}

fn normalise_parent(namespace: &str, parent: &HttpRouteParentRefs) -> ParentReference {
    ParentReference {
        group: parent
            .group
            .clone()
            .unwrap_or_else(|| GATEWAY_GROUP.to_owned()),
        kind: parent.kind.clone().unwrap_or_else(|| "Gateway".to_owned()),
        namespace: parent
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned()),
        name: parent.name.clone(),
        section_name: parent.section_name.clone(),
        port: parent.port,
    }
}

/// Attaches the route's rules to the listeners one parentRef selects.
#[allow(clippy::too_many_arguments)]
fn attach(
    store: &Store,
    listeners: &mut Listeners,
    status: &mut StatusReport,
    route_namespace: &str,
    route_hostnames: &[String],
    parent: &ParentReference,
    rules: &[CompiledRule],
    route: &HttpRoute,
    label: &str,
    parent_index: usize,
) -> Result<(), (&'static str, String)> {
    let at = format!("{label} spec.parentRefs[{parent_index}]");
    let Some(slots) = listeners
        .by_gateway
        .get(&(parent.namespace.clone(), parent.name.clone()))
        .cloned()
    else {
        return Err((
            "NoMatchingParent",
            format!(
                "{at}: Gateway {}/{} not found",
                parent.namespace, parent.name
            ),
        ));
    };
    let selected: Vec<usize> = slots
        .into_iter()
        .filter(|&i| {
            let slot = &listeners.slots[i];
            parent.section_name.as_ref().is_none_or(|s| *s == slot.name)
                && parent.port.is_none_or(|p| i32::from(slot.port) == p)
        })
        .collect();
    if selected.is_empty() {
        return Err((
            "NoMatchingParent",
            format!("{at}: no listener matches sectionName/port"),
        ));
    }
    let labels = store.namespace_labels(route_namespace);
    let allowed: Vec<usize> = selected
        .into_iter()
        .filter(|&i| {
            let slot = &listeners.slots[i];
            slot.allows_kind("HTTPRoute")
                && slot
                    .allowed_namespaces
                    .allows(&slot.gateway_namespace, route_namespace, labels)
        })
        .collect();
    if allowed.is_empty() {
        return Err((
            "NotAllowedByListeners",
            format!(
                "{at}: the selected listeners do not allow HTTPRoutes from namespace {route_namespace}"
            ),
        ));
    }
    for &slot in &allowed {
        listeners.count_attached(slot, status);
    }
    let mut attached_any = false;
    let order_base = RouteOrder {
        created: route
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        route: format!(
            "{route_namespace}/{}",
            route.metadata.name.as_deref().unwrap_or("")
        )
        .into(),
        rule: 0,
        matching: 0,
    };
    for &index in &allowed {
        let slot = &mut listeners.slots[index];
        if !slot.usable {
            continue;
        }
        let Some(hosts) = hostname::intersect(slot.hostname.as_deref(), route_hostnames) else {
            continue;
        };
        attached_any = true;
        let patterns: Vec<HostPattern> = hosts.iter().map(|h| HostPattern::parse(h)).collect();
        for rule in rules {
            for (match_index, matching) in rule.matches.iter().enumerate() {
                let order = RouteOrder {
                    rule: rule.index,
                    matching: match_index as u32,
                    ..order_base.clone()
                };
                slot.builder
                    .add(&patterns, matching.clone(), order, Arc::clone(&rule.rule));
            }
        }
        slot.route_views.push(serde_json::json!({
            "route": label,
            "hostnames": hosts,
            "rules": rules.iter().map(|r| r.rule.name.to_string()).collect::<Vec<_>>(),
        }));
    }
    if !attached_any {
        return Err((
            "NoMatchingListenerHostname",
            format!("{at}: no listener hostname intersects the route's hostnames"),
        ));
    }
    Ok(())
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
        match compile_rule(store, &at, rule, &referrer, backends, problems) {
            Ok((matches, compiled_action)) => compiled.push(CompiledRule {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                matches,
                rule: Arc::new(RouteRule {
                    name: rule_name,
                    filters: compiled_action.filters,
                    timeouts: compiled_action.timeouts,
                    retry: compiled_action.retry,
                    action: compiled_action.action,
                }),
            }),
            Err(message) => problems.invalid.push(message),
        }
    }
    compiled
}

fn compile_rule(
    store: &Store,
    at: &str,
    rule: &HttpRouteRules,
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<(Vec<RuleMatch>, CompiledAction), String> {
    let filters = filter::compile_filters(at, rule.filters.as_deref().unwrap_or_default())?;
    let timeouts = compile_timeouts(at, rule.timeouts.as_ref())?;
    let retry = compile_retry(at, rule.retry.as_ref())?;
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
        let backend_filters = filter::compile_filters(&ref_at, &backend_filters)?;
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
        },
    ))
}

/// A rule's filters, timeouts and action.
struct CompiledAction {
    filters: Filters,
    timeouts: Timeouts,
    retry: Option<RetryPolicy>,
    action: RuleAction,
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
        None => None,
        Some(text) => Some(duration::parse(text).map_err(|e| format!("{at}.retry.backoff: {e}"))?),
    };
    Ok(Some(RetryPolicy {
        codes,
        attempts,
        backoff,
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

fn compile_match(at: &str, spec: &HttpRouteRulesMatches) -> Result<RuleMatch, String> {
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
