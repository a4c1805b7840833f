//! TLSRoute (GEP-2643): weighted backends by SNI hostname on TLS listeners.
//!
//! A TLSRoute has no matches: its `hostnames` (SNI names, `*.` wildcards allowed) are all it
//! selects on, and its one rule's `backendRefs` (Service or our `Backend`, weighted) are where
//! the connections go. Attachment (parentRefs with sectionName/port, allowedRoutes, hostname
//! intersection with the listener's hostname, status) is `attachment`'s, shared with HTTPRoute
//! and GRPCRoute; backendRefs resolve through `backend_ref` exactly as HTTPRoute's do, with
//! ReferenceGrants naming `from.kind: TLSRoute`.
//!
//! Decisions the spec leaves to us:
//! - Two TLSRoutes claiming the same hostname on one listener: the older route keeps it
//!   (creation time, then `namespace/name`), as with conflicting listeners; the other route
//!   still serves its other hostnames, and `/config` lists what it lost.
//! - TLSRoute v1 allows exactly one rule. Older versions allowed several, but without matches
//!   a second rule could never be chosen: rules after the first are reported as invalid
//!   (`PartiallyInvalid`) and ignored.
//! - A backendRef that does not resolve keeps its weight: the connections it draws are closed
//!   (the TCP counterpart of HTTP's 500), and `ResolvedRefs` says why.

use std::sync::Arc;

use model::Store;
use model::gateway_api::TlsRoute;
use router::RouteOrder;
use snapshot::l4::Forward;

use crate::CompileOptions;
use crate::attachment::{self, RouteAttachment, RouteEntries, RuleProblems};
use crate::backend_ref::{BackendTable, Referrer};
use crate::l4_route::{self, BackendRefView};
use crate::listener::{ListenerSlot, Listeners};
use crate::problems::FieldPath;
use crate::status::StatusReport;

#[cfg(test)]
mod tests;

/// The kind, as status and ReferenceGrants spell it.
const KIND: &str = "TLSRoute";

/// Attaches every TLSRoute to the TLS listeners its parentRefs select, oldest route first so
/// that the older of two routes claiming one hostname keeps it.
pub(crate) fn attach_tls_routes(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    backends: &mut BackendTable,
    status: &mut StatusReport,
) {
    let mut routes: Vec<(&model::NamespacedName, &TlsRoute)> = store
        .tls_routes
        .iter()
        .map(|(key, route)| (key, route.as_ref()))
        .collect();
    routes.sort_by_key(|((namespace, name), route)| (created(route), namespace, name));
    for ((namespace, name), route) in routes {
        let parents = attachment::normalise_parents(namespace, route.spec.parent_refs.as_deref());
        let ours = attachment::our_parents(store, options, parents);
        if ours.is_empty() {
            continue; // not attached to any Gateway of ours: not our business
        }
        let mut problems = RuleProblems::default();
        let entry = TlsRouteEntry {
            forward: compile_forward(store, namespace, name, route, backends, &mut problems)
                .map(Arc::new),
        };
        let attaching = RouteAttachment {
            kind: KIND,
            namespace,
            name,
            hostnames: &route.spec.hostnames,
            created: created(route),
            parents: ours,
        };
        attachment::attach_route(
            store, options, listeners, status, attaching, &entry, &problems,
        );
    }
}

/// `metadata.creationTimestamp` in unix seconds.
fn created(route: &TlsRoute) -> Option<i64> {
    route
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
}

/// A compiled TLSRoute as attachment hands it to listeners.
struct TlsRouteEntry {
    /// `None` when the route has no usable rule.
    forward: Option<Arc<Forward>>,
}

impl RouteEntries for TlsRouteEntry {
    fn is_empty(&self) -> bool {
        self.forward.is_none()
    }

    fn add_to(&self, slot: &mut ListenerSlot, hosts: &[String], _: &RouteOrder) -> Vec<String> {
        // Only TLS listeners allow TLSRoutes, and only they have a TLS table.
        match (&mut slot.tls, &self.forward) {
            (Some(tls), Some(forward)) => tls.add(hosts, forward),
            _ => Vec::new(),
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
    route: &TlsRoute,
    backends: &mut BackendTable,
    problems: &mut RuleProblems,
) -> Option<Forward> {
    let route_at = FieldPath::object(KIND, namespace, name);
    let rules = route_at.field("rules");
    for index in 1..route.spec.rules.len() {
        problems.invalid.report(rules.index(index).problem(
            "a TLSRoute has one rule (TLSRoute v1); without matches this rule could never be chosen, so it is ignored",
        ));
    }
    let Some(rule) = route.spec.rules.first() else {
        problems.invalid.report(
            route_at
                .field("spec.rules")
                .problem("a TLSRoute needs one rule"),
        );
        return None;
    };
    let at = rules.index(0);
    let rule_name: Arc<str> = match &rule.name {
        Some(rule_name) => format!("{at} ({rule_name})").into(),
        None => at.to_string().into(),
    };
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: KIND,
        namespace,
    };
    let refs: Vec<BackendRefView<'_>> = rule.backend_refs.iter().map(Into::into).collect();
    Some(Forward {
        name: rule_name,
        backends: l4_route::compile_backends(store, &at, &refs, &referrer, backends, problems),
    })
}
