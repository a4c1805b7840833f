//! GRPCRoute (GEP-1016): rule compilation and attachment to listeners.
//!
//! A gRPC call is an HTTP/2 POST to `/<service>/<method>`, so a GRPCRoute compiles to the same
//! route table entries as an HTTPRoute: method matches become path matches, header matches stay
//! header matches. Filters and backendRefs have HTTPRoute's schema (GRPCRoute's filter types
//! are a subset), so they are converted and compiled by `http_route::compile_rule`: weights,
//! backendRef filters, ReferenceGrant checks (`from.kind: GRPCRoute`) and the 500 for refs that
//! do not resolve behave exactly as for HTTPRoute. Attachment and status are `attachment`'s.
//!
//! Method match → path match, and the precedence that follows from the router's HTTPRoute
//! ranking (Exact path, then RegularExpression, then longest PathPrefix, then more headers):
//!
//! | `method` match                   | path match                         | rank             |
//! |----------------------------------|------------------------------------|------------------|
//! | Exact, service and method        | Exact `/svc/method`                | 1st              |
//! | Exact, method only (impl.-spec.) | RegularExpression `/[^/]+/method`  | 2nd              |
//! | RegularExpression (impl.-spec.)  | RegularExpression `/(svc)/(meth)`  | 2nd, longer 1st  |
//! | Exact, service only              | PathPrefix `/svc` (whole segments) | 3rd, longer 1st  |
//! | none                             | PathPrefix `/`                     | last             |
//!
//! This gives the spec's order for its core cases (an exact method beats a service-only match,
//! which beats no method match; the longest service wins; then the most header matches; then
//! the oldest route, then `namespace/name`). The implementation-specific kinds rank as regular
//! expressions do for HTTPRoute, so a method-only match ranks above a service-only one (the
//! spec's "longest matching service" would put it below). gRPC requests are always POST; the
//! HTTP method is not matched.
//!
//! Backends of a GRPCRoute, its mirrors' included, are always spoken to over h2c (gRPC needs
//! HTTP/2), whatever the Service port's `appProtocol` says.

use std::sync::Arc;

use model::Store;
use model::gateway_api::{
    GrpcRoute, GrpcRouteRules, GrpcRouteRulesMatches, GrpcRouteRulesMatchesMethodType,
    HttpRouteRules, HttpRouteRulesMatches,
};
use router::{PathMatch, RuleMatch};
use snapshot::{BackendTarget, RuleAction};

use crate::CompileOptions;
use crate::attachment::{self, CompiledRule, RuleProblems};
use crate::backend_ref::{BackendTable, Referrer};
use crate::filter;
use crate::http_route::{self, CompiledAction};
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem, Problems};
use crate::route_unit::{RouteSpec, RouteUnit};

#[cfg(test)]
mod tests;

/// The kind, as status and ReferenceGrants spell it.
const KIND: &str = "GRPCRoute";

/// What a path segment matches when the service or the method is left out.
const ANY_SEGMENT: &str = "[^/]+";

/// Compiles one GRPCRoute into the rules it adds and where it attaches. `None` when no
/// parentRef of the route is ours.
pub(crate) fn compile_route(
    store: &Store,
    options: &CompileOptions,
    listeners: &Listeners,
    backends: &mut BackendTable,
    (namespace, name): (&str, &str),
    route: &GrpcRoute,
) -> Option<RouteUnit> {
    let spec = RouteSpec {
        kind: KIND,
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

/// Compiles every rule of a route. Invalid rules are left out and reported.
fn compile_rules(
    store: &Store,
    namespace: &str,
    name: &str,
    route: &GrpcRoute,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Vec<CompiledRule> {
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: KIND,
        namespace,
    };
    let mut compiled = Vec::new();
    let rules = route.spec.rules.as_deref().unwrap_or_default();
    let list = FieldPath::object(KIND, namespace, name).field("rules");
    for (index, rule) in rules.iter().enumerate() {
        let at = list.index(index);
        let rule_name: Arc<str> = match &rule.name {
            Some(rule_name) => format!("{at} ({rule_name})").into(),
            None => at.to_string().into(),
        };
        let gateway = route
            .spec
            .parent_refs
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|p| {
                p.group.as_deref().unwrap_or(model::kind::GATEWAY_GROUP)
                    == model::kind::GATEWAY_GROUP
                    && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
            });
        let scope = backends.traffic().for_rule(
            KIND,
            namespace,
            name,
            rule.name.as_deref(),
            gateway.map(|p| {
                (
                    p.namespace.as_deref().unwrap_or(namespace),
                    p.name.as_str(),
                    p.section_name.as_deref(),
                )
            }),
        );
        backends.enter_rule(scope);
        let compiled_rule = compile_rule(store, &at, rule, &referrer, backends, problems);
        backends.enter_rule(None);
        match compiled_rule {
            Ok((matches, action)) => {
                compiled.push(CompiledRule {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    matches,
                    rule: Arc::new(action.into_rule(
                        rule_name,
                        backends.route_policies().for_rule(
                            KIND,
                            namespace,
                            name,
                            rule.name.as_deref(),
                        ),
                    )),
                })
            }
            Err(found) => problems.invalid.extend(found),
        }
    }
    compiled
}

/// Compiles one rule (`at` is its path): its method and header matches here, the rest as an
/// HTTPRoute rule. `Err` drops the rule.
fn compile_rule(
    store: &Store,
    at: &FieldPath,
    rule: &GrpcRouteRules,
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Result<(Vec<RuleMatch>, CompiledAction), Problems> {
    let matches = match rule.matches.as_deref() {
        None | Some([]) => vec![RuleMatch::default()],
        Some(matches) => {
            let list = at.field("matches");
            matches
                .iter()
                .enumerate()
                .map(|(i, m)| compile_match(&list.index(i), m))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    // Filters and backendRefs: GRPCRoute's are a subset of HTTPRoute's, field for field.
    let as_http = HttpRouteRules {
        name: rule.name.clone(),
        filters: filter::convert(&at.field("filters"), &rule.filters)?,
        backend_refs: filter::convert(&at.field("backendRefs"), &rule.backend_refs)?,
        session_persistence: filter::convert(
            &at.field("sessionPersistence"),
            &rule.session_persistence,
        )?,
        ..HttpRouteRules::default()
    };
    let (_, mut action) =
        http_route::compile_rule(store, at, &as_http, referrer, backends, problems)?;
    // Mirrors get gRPC too, so their backends speak h2c like the rule's.
    for mirror in &mut action.filters.mirrors {
        mirror.backend = backends.as_h2c(mirror.backend);
    }
    if let RuleAction::Forward(choice) = &mut action.action {
        for candidate in &mut choice.candidates {
            if let BackendTarget::Backend(index) = candidate.target {
                candidate.target = BackendTarget::Backend(backends.as_h2c(index));
            }
            let mirrors = candidate.filters.iter_mut().flat_map(|f| &mut f.mirrors);
            for mirror in mirrors {
                mirror.backend = backends.as_h2c(mirror.backend);
            }
        }
    }
    Ok((matches, action))
}

/// One `GRPCRouteMatch`: the method as a path match (see the module table), headers as for
/// HTTPRoute.
fn compile_match(at: &FieldPath, spec: &GrpcRouteRulesMatches) -> Result<RuleMatch, Problem> {
    let headers = HttpRouteRulesMatches {
        headers: filter::convert(&at.field("headers"), &spec.headers)?,
        ..HttpRouteRulesMatches::default()
    };
    let mut matching = http_route::compile_match(at, &headers)?;
    if let Some(method) = &spec.method {
        let service = method.service.as_deref().filter(|s| !s.is_empty());
        let name = method.method.as_deref().filter(|m| !m.is_empty());
        let kind = method
            .r#type
            .clone()
            .unwrap_or(GrpcRouteRulesMatchesMethodType::Exact);
        matching.path = method_path(&at.field("method"), kind, service, name)?;
    }
    Ok(matching)
}

/// The path match for a `GRPCMethodMatch`.
fn method_path(
    at: &FieldPath,
    kind: GrpcRouteRulesMatchesMethodType,
    service: Option<&str>,
    method: Option<&str>,
) -> Result<PathMatch, Problem> {
    if service.is_none() && method.is_none() {
        return Err(at.problem("one or both of service and method must be set"));
    }
    match kind {
        GrpcRouteRulesMatchesMethodType::Exact => {
            let valid_service = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
            let valid_method = |c: char| c.is_ascii_alphanumeric() || c == '_';
            if let Some(service) = service.filter(|s| !s.chars().all(valid_service)) {
                return Err(at
                    .field("service")
                    .problem(format!("{service:?} is not a valid gRPC service name")));
            }
            if let Some(method) = method.filter(|m| !m.chars().all(valid_method)) {
                return Err(at
                    .field("method")
                    .problem(format!("{method:?} is not a valid gRPC method name")));
            }
            Ok(match (service, method) {
                (Some(service), Some(method)) => PathMatch::exact(&format!("/{service}/{method}")),
                // Prefix matching is per path segment: `/svc` matches `/svc/Any`, not `/svcX/Any`.
                (Some(service), None) => PathMatch::prefix(&format!("/{service}")),
                (None, method) => {
                    let method = regex::escape(method.unwrap_or_default());
                    PathMatch::regex(&format!("/{ANY_SEGMENT}/{method}"))
                        .map_err(|e| at.field("method").problem(e.to_string()))?
                }
            })
        }
        GrpcRouteRulesMatchesMethodType::RegularExpression => {
            // Each part is checked alone first, so the error names the field that is wrong.
            for (field, value) in [("service", service), ("method", method)] {
                if let Some(value) = value {
                    regex::Regex::new(value).map_err(|e| {
                        at.field(field)
                            .problem(format!("invalid regular expression: {e}"))
                    })?;
                }
            }
            let service = service.unwrap_or(ANY_SEGMENT);
            let method = method.unwrap_or(ANY_SEGMENT);
            PathMatch::regex(&format!("/(?:{service})/(?:{method})"))
                .map_err(|e| at.problem(format!("invalid regular expression: {e}")))
        }
    }
}
