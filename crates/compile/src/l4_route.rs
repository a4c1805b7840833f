//! TCPRoute and UDPRoute: weighted backends for TCP and UDP listeners (Gateway API v1.6
//! standard; `v1alpha2` objects are read the same way).
//!
//! A TCP or UDP route has no matches and no hostnames: its one rule's `backendRefs` (Service or
//! our `Backend`, weighted) are where a listener's connections or flows go. Attachment
//! (parentRefs with sectionName/port, allowedRoutes namespaces and kinds, status) is
//! `attachment`'s, shared with every route kind; backendRefs resolve through `backend_ref` as
//! HTTPRoute's do, with ReferenceGrants naming `from.kind: TCPRoute` / `UDPRoute`.
//!
//! Decisions the spec leaves to us, or states in its conformance tests:
//! - Several routes on one TCP or UDP listener: each is `Accepted` and counted in the
//!   listener's `attachedRoutes`, and the oldest (creation time, then `namespace/name`) is the
//!   one that serves (the Gateway API's conflict rule; upstream test
//!   `TCPRouteMultipleRoutesAttachment`). `/config` marks the others as held by an older route.
//! - v1 allows exactly one rule (`maxItems: 1`); older objects may have more, which could never
//!   be chosen: rules after the first are reported invalid (`PartiallyInvalid`) and ignored,
//!   as for TLSRoute.
//! - A backendRef that does not resolve keeps its weight: the connections (or new flows) it
//!   draws are closed (dropped), and `ResolvedRefs` says why.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use model::Store;
use model::gateway_api::{
    TcpRoute, TcpRouteRulesBackendRefs, TlsRouteRulesBackendRefs, UdpRoute,
    UdpRouteRulesBackendRefs,
};
use router::RouteOrder;
use snapshot::l4::Forward;
use snapshot::{BackendChoice, BackendTarget, DirectResponse, WeightedBackend};

use crate::CompileOptions;
use crate::attachment::{self, RouteAttachment, RouteEntries, RuleProblems};
use crate::backend_ref::{BackendRefSpec, BackendTable, Referrer};
use crate::listener::{ListenerSlot, Listeners};
use crate::problems::FieldPath;
use crate::status::StatusReport;

#[cfg(test)]
mod tests;

/// Route kinds a TCP listener accepts.
pub(crate) const TCP_ROUTE_KINDS: &[&str] = &["TCPRoute"];
/// Route kinds a UDP listener accepts.
pub(crate) const UDP_ROUTE_KINDS: &[&str] = &["UDPRoute"];

/// The route side of one TCP or UDP listener while routes attach.
#[derive(Default)]
pub(crate) struct L4Slot {
    /// The route serving the listener: the first to attach (routes attach oldest first).
    pub(crate) route: Option<Arc<Forward>>,
}

/// A stream or datagram route as this module reads it, whatever its kind.
struct L4Route<'a> {
    /// `TCPRoute` or `UDPRoute`.
    kind: &'static str,
    metadata: &'a model::core::ObjectMeta,
    parents: Vec<crate::status::ParentReference>,
    /// Each rule's name and backendRefs.
    rules: Vec<(Option<&'a str>, Vec<BackendRefView<'a>>)>,
}

/// The fields of a backendRef, the same in the TCP, UDP and TLS route kinds' generated types.
pub(crate) struct BackendRefView<'a> {
    group: Option<&'a str>,
    kind: Option<&'a str>,
    name: &'a str,
    namespace: Option<&'a str>,
    port: Option<i32>,
    weight: Option<i32>,
}

/// `From` for each route kind's generated backendRef type (the same fields in each).
macro_rules! backend_ref_view {
    ($($kind:ty),*) => {$(
        impl<'a> From<&'a $kind> for BackendRefView<'a> {
            fn from(r: &'a $kind) -> BackendRefView<'a> {
                BackendRefView {
                    group: r.group.as_deref(),
                    kind: r.kind.as_deref(),
                    name: &r.name,
                    namespace: r.namespace.as_deref(),
                    port: r.port,
                    weight: r.weight,
                }
            }
        }
    )*};
}

backend_ref_view!(
    TcpRouteRulesBackendRefs,
    TlsRouteRulesBackendRefs,
    UdpRouteRulesBackendRefs
);

/// The [`L4Route`] view of a TCPRoute or UDPRoute (`$route`, in `$namespace`): their specs
/// have the same fields in types of their own.
macro_rules! l4_view {
    ($kind:literal, $namespace:expr, $route:expr) => {{
        let route = $route;
        L4Route {
            kind: $kind,
            metadata: &route.metadata,
            parents: attachment::normalise_parents($namespace, route.spec.parent_refs.as_deref()),
            rules: route
                .spec
                .rules
                .iter()
                .map(|rule| {
                    let refs = rule.backend_refs.iter().map(BackendRefView::from).collect();
                    (rule.name.as_deref(), refs)
                })
                .collect(),
        }
    }};
}

fn tcp_view<'a>(namespace: &str, route: &'a TcpRoute) -> L4Route<'a> {
    l4_view!("TCPRoute", namespace, route)
}

fn udp_view<'a>(namespace: &str, route: &'a UdpRoute) -> L4Route<'a> {
    l4_view!("UDPRoute", namespace, route)
}

/// Attaches every TCPRoute and UDPRoute to the listeners its parentRefs select, oldest route
/// first (per kind) so that the oldest route on a listener serves it.
pub(crate) fn attach_l4_routes(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    backends: &mut BackendTable,
    status: &mut StatusReport,
) {
    let tcp = store
        .tcp_routes
        .iter()
        .map(|((namespace, name), route)| (namespace, name, tcp_view(namespace, route)));
    attach_all(store, options, listeners, backends, status, tcp.collect());
    let udp = store
        .udp_routes
        .iter()
        .map(|((namespace, name), route)| (namespace, name, udp_view(namespace, route)));
    attach_all(store, options, listeners, backends, status, udp.collect());
}

/// Attaches routes of one kind, oldest first.
fn attach_all(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    backends: &mut BackendTable,
    status: &mut StatusReport,
    mut routes: Vec<(&model::Name, &model::Name, L4Route<'_>)>,
) {
    routes.sort_by_key(|(namespace, name, route)| {
        (
            attachment::created_seconds(route.metadata),
            *namespace,
            *name,
        )
    });
    for (namespace, name, route) in routes {
        let ours = attachment::our_parents(store, options, route.parents.clone());
        if ours.is_empty() {
            continue; // not attached to any Gateway of ours: not our business
        }
        let mut problems = RuleProblems::default();
        let entry = L4RouteEntry {
            forward: compile_forward(store, namespace, name, &route, backends, &mut problems)
                .map(Arc::new),
        };
        let attaching = RouteAttachment {
            kind: route.kind,
            namespace,
            name,
            hostnames: &[],
            created: attachment::created_seconds(route.metadata),
            parents: ours,
        };
        attachment::attach_route(
            store, options, listeners, status, attaching, &entry, &problems,
        );
    }
}

/// A compiled TCP or UDP route as attachment hands it to listeners.
struct L4RouteEntry {
    /// `None` when the route has no usable rule.
    forward: Option<Arc<Forward>>,
}

impl RouteEntries for L4RouteEntry {
    fn is_empty(&self) -> bool {
        self.forward.is_none()
    }

    fn add_to(&self, slot: &mut ListenerSlot, _: &[String], _: &RouteOrder) -> Vec<String> {
        // Only TCP and UDP listeners allow these kinds, and only they have an L4 slot.
        let (Some(l4), Some(forward)) = (&mut slot.l4, &self.forward) else {
            return Vec::new();
        };
        match &l4.route {
            None => {
                l4.route = Some(Arc::clone(forward));
                Vec::new()
            }
            // The listener's one "hostname" (any) is held by an older route.
            Some(_) => vec!["*".to_owned()],
        }
    }

    fn names(&self) -> Vec<String> {
        self.forward.iter().map(|f| f.name.to_string()).collect()
    }
}

/// Compiles the route's rule. `None` (with the reason in `problems`) when it has none.
fn compile_forward(
    store: &Store,
    namespace: &str,
    name: &str,
    route: &L4Route<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Option<Forward> {
    let route_at = FieldPath::object(route.kind, namespace, name);
    let rules = route_at.field("rules");
    for index in 1..route.rules.len() {
        problems.invalid.report(rules.index(index).problem(format!(
            "a {} has one rule (v1); without matches this rule could never be chosen, so it is ignored",
            route.kind
        )));
    }
    let Some((rule_name, refs)) = route.rules.first() else {
        problems.invalid.report(
            route_at
                .field("spec.rules")
                .problem(format!("a {} needs one rule", route.kind)),
        );
        return None;
    };
    let at = rules.index(0);
    let forward_name: Arc<str> = match rule_name {
        Some(rule_name) => format!("{at} ({rule_name})").into(),
        None => at.to_string().into(),
    };
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: route.kind,
        namespace,
    };
    Some(Forward {
        name: forward_name,
        backends: compile_backends(store, &at, refs, &referrer, backends, problems),
    })
}

/// A stream or datagram route rule's weighted backends (TLSRoute's too); `None` when no
/// backendRef has a non-zero weight.
pub(crate) fn compile_backends(
    store: &Store,
    at: &FieldPath,
    refs: &[BackendRefView<'_>],
    referrer: &Referrer<'_>,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Option<BackendChoice> {
    let mut candidates = Vec::new();
    let list = at.field("backendRefs");
    for (index, backend_ref) in refs.iter().enumerate() {
        let ref_at = list.index(index);
        let spec = BackendRefSpec {
            group: backend_ref.group.unwrap_or(""),
            kind: backend_ref.kind.unwrap_or("Service"),
            name: backend_ref.name,
            namespace: backend_ref.namespace.unwrap_or(referrer.namespace),
            port: backend_ref.port,
        };
        let target = match backends.resolve(store, referrer, &spec, &ref_at) {
            Ok(index) => BackendTarget::Backend(index),
            Err(problem) => {
                // Never answered (there is no HTTP here): it tells the proxy why it closes.
                let refused = DirectResponse {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    body: Bytes::from(problem.to_string()),
                };
                problems.refs.report(problem);
                BackendTarget::Invalid(refused)
            }
        };
        let weight = u64::try_from(backend_ref.weight.unwrap_or(1)).unwrap_or(0);
        if weight > 0 {
            candidates.push(WeightedBackend {
                weight,
                target,
                filters: None,
            });
        }
    }
    let total_weight: u64 = candidates.iter().map(|c| c.weight).sum();
    (total_weight > 0).then_some(BackendChoice {
        candidates,
        total_weight,
    })
}
