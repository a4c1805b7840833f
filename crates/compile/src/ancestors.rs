//! Policy ancestors (GEP-713 `status.ancestors`): the Gateways of ours a policy target sits
//! under. A Gateway is its own ancestor; a route's are the Gateways its parentRefs reach
//! (through a ListenerSet too); a Service's or `Backend`'s are those of the routes whose
//! backendRefs name it.
//!
//! It only answers "which Gateways"; each policy kind decides its conditions per ancestor.

use std::sync::Arc;

use model::Store;

use crate::backend_tls::TargetKind;
use crate::listener::Listeners;
use crate::status::{Condition, ParentReference, PolicyAncestorStatus};

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;
const PORTCULLIS_GROUP: &str = model::kind::PORTCULLIS_GROUP;

/// An ancestor entry for a Gateway (one listener when `section_name` is set).
pub(crate) fn gateway_ancestor(
    (namespace, name): model::NamespacedName,
    section_name: Option<String>,
    controller_name: &Arc<str>,
    conditions: Vec<Condition>,
) -> PolicyAncestorStatus {
    PolicyAncestorStatus {
        ancestor_ref: ParentReference {
            group: GATEWAY_GROUP.into(),
            kind: "Gateway".into(),
            namespace,
            name,
            section_name,
            port: None,
        },
        controller_name: Arc::clone(controller_name),
        conditions,
    }
}

/// A reference's parts: a parentRef's (no port) or a backendRef's. Every route kind's
/// parentRef and backendRef types have these fields, each type of its own.
macro_rules! ref_parts {
    ($reference:expr, $port:expr) => {
        RefParts::new(
            $reference.group.as_deref(),
            $reference.kind.as_deref(),
            &$reference.name,
            $reference.namespace.as_deref(),
            $port,
        )
    };
}

/// The Gateways of ours an HTTPRoute or GRPCRoute (`kind`) attaches to, by its parentRefs;
/// none when the route does not exist.
pub(crate) fn route_gateways(
    store: &Store,
    listeners: &Listeners,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Vec<model::NamespacedName> {
    let key = model::key(namespace, name);
    macro_rules! parents_of {
        ($route:expr) => {
            $route
                .spec
                .parent_refs
                .iter()
                .flatten()
                .map(|p| ref_parts!(p, None))
                .collect::<Vec<_>>()
        };
    }
    let parents = match kind {
        "HTTPRoute" => store.http_routes.get(&key).map(|r| parents_of!(r)),
        "GRPCRoute" => store.grpc_routes.get(&key).map(|r| parents_of!(r)),
        _ => None,
    };
    parents
        .map(|parents| parent_gateways(store, listeners, namespace, &parents))
        .unwrap_or_default()
}

/// One backendRef of a route of ours: the backend it names and the Gateways the route's
/// parentRefs reach.
pub(crate) struct BackendUse {
    pub(crate) kind: TargetKind,
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The Service port's name, when the ref names a Service port that has one.
    pub(crate) port_name: Option<String>,
    /// The Gateways of ours the route attaches to.
    pub(crate) gateways: Vec<model::NamespacedName>,
}

impl BackendUse {
    /// Whether this use is of the target `kind namespace/name`, whole (`section` `None`) or
    /// the Service port named `section`.
    pub(crate) fn is_of(
        &self,
        kind: TargetKind,
        namespace: &str,
        name: &str,
        section: Option<&str>,
    ) -> bool {
        let matches_section = match (section, &self.port_name) {
            (None, _) => true,
            (Some(section), Some(port)) => section == port,
            (Some(_), None) => false,
        };
        self.kind == kind && self.namespace == namespace && self.name == name && matches_section
    }
}

/// Every backendRef of the HTTPRoutes, GRPCRoutes and TCPRoutes attached to Gateways of ours
/// (directly or through a ListenerSet), their filters' backendRefs (`requestMirror`,
/// `externalAuth`) included, for policy ancestors.
pub(crate) fn backend_uses(store: &Store, listeners: &Listeners) -> Vec<BackendUse> {
    let mut uses = Vec::new();
    let mut add = |route_namespace: &str, parents: Vec<RefParts<'_>>, refs: Vec<RefParts<'_>>| {
        let gateways = parent_gateways(store, listeners, route_namespace, &parents);
        if gateways.is_empty() {
            return;
        }
        for backend in refs {
            let namespace = backend.namespace.unwrap_or(route_namespace);
            let kind = match (
                backend.group.unwrap_or(""),
                backend.kind.unwrap_or("Service"),
            ) {
                ("", "Service") => TargetKind::Service,
                (PORTCULLIS_GROUP, "Backend") => TargetKind::Backend,
                _ => continue,
            };
            let port_name = match kind {
                TargetKind::Service => {
                    service_port_name(store, namespace, backend.name, backend.port)
                }
                TargetKind::Backend => None,
            };
            uses.push(BackendUse {
                kind,
                namespace: namespace.to_owned(),
                name: backend.name.to_owned(),
                port_name,
                gateways: gateways.clone(),
            });
        }
    };
    // HTTPRoute and GRPCRoute: the same fields in types of their own. A filter's backendRef
    // (`requestMirror`, and HTTPRoute's `externalAuth`) is a use too: Gateway API v1.6 names
    // "filters that need a backend of type Service, like Mirror and External Authorization" among
    // BackendTLSPolicy's extended uses, and those backends resolve (with their TLS) like the
    // rule's own backendRefs do.
    macro_rules! backend_parts {
        ($backend:expr) => {
            ref_parts!($backend, $backend.port)
        };
    }
    macro_rules! filter_refs {
        ($filters:expr, $refs:ident) => {
            for filter in $filters.iter().flatten() {
                if let Some(mirror) = &filter.request_mirror {
                    $refs.push(backend_parts!(mirror.backend_ref));
                }
            }
        };
        ($filters:expr, $refs:ident, external_auth) => {
            filter_refs!($filters, $refs);
            for filter in $filters.iter().flatten() {
                if let Some(auth) = &filter.external_auth {
                    $refs.push(backend_parts!(auth.backend_ref));
                }
            }
        };
    }
    macro_rules! uses_of {
        ($routes:expr $(, $auth:ident)?) => {
            for ((namespace, _), route) in $routes {
                let parents = route
                    .spec
                    .parent_refs
                    .iter()
                    .flatten()
                    .map(|p| ref_parts!(p, None))
                    .collect();
                let mut refs = Vec::new();
                for rule in route.spec.rules.iter().flatten() {
                    filter_refs!(rule.filters, refs $(, $auth)?);
                    for backend in rule.backend_refs.iter().flatten() {
                        refs.push(backend_parts!(backend));
                        filter_refs!(backend.filters, refs $(, $auth)?);
                    }
                }
                add(namespace, parents, refs);
            }
        };
    }
    uses_of!(&store.http_routes, external_auth);
    uses_of!(&store.grpc_routes);
    // TCPRoutes reach a backend with a BackendTLSPolicy over TLS too (`proxy/src/l4.rs`).
    // TLSRoutes are not counted: a passed-through session does not use the policy, and which
    // of a TLSRoute's listeners terminate is not known here.
    for ((namespace, _), route) in &store.tcp_routes {
        let parents = route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .map(|p| ref_parts!(p, None))
            .collect();
        let refs = route
            .spec
            .rules
            .iter()
            .flat_map(|rule| &rule.backend_refs)
            .map(|backend| backend_parts!(backend))
            .collect();
        add(namespace, parents, refs);
    }
    uses
}

/// The fields of a parentRef or backendRef, whatever generated type carries them.
struct RefParts<'a> {
    group: Option<&'a str>,
    kind: Option<&'a str>,
    name: &'a str,
    namespace: Option<&'a str>,
    port: Option<i32>,
}

impl<'a> RefParts<'a> {
    fn new(
        group: Option<&'a str>,
        kind: Option<&'a str>,
        name: &'a str,
        namespace: Option<&'a str>,
        port: Option<i32>,
    ) -> RefParts<'a> {
        RefParts {
            group,
            kind,
            name,
            namespace,
            port,
        }
    }
}

/// The Gateways of ours a route's parentRefs reach (a ListenerSet parent reaches its Gateway).
fn parent_gateways(
    store: &Store,
    listeners: &Listeners,
    route_namespace: &str,
    parents: &[RefParts<'_>],
) -> Vec<model::NamespacedName> {
    let mut gateways = Vec::new();
    for parent in parents {
        if parent.group.unwrap_or(GATEWAY_GROUP) != GATEWAY_GROUP {
            continue;
        }
        let namespace = parent.namespace.unwrap_or(route_namespace);
        let gateway = match parent.kind.unwrap_or("Gateway") {
            "Gateway" => model::key(namespace, parent.name),
            "ListenerSet" => {
                let Some(set) = store.listener_sets.get(&model::key(namespace, parent.name)) else {
                    continue;
                };
                let gateway = &set.spec.parent_ref;
                let gateway_namespace = gateway.namespace.as_deref().unwrap_or(namespace);
                model::key(gateway_namespace, &gateway.name)
            }
            _ => continue,
        };
        if listeners.by_gateway.contains_key(&gateway) && !gateways.contains(&gateway) {
            gateways.push(gateway);
        }
    }
    gateways
}

fn service_port_name(
    store: &Store,
    namespace: &str,
    name: &str,
    port: Option<i32>,
) -> Option<String> {
    let port = port?;
    let service = store.services.get(&model::key(namespace, name))?;
    service
        .spec
        .as_ref()?
        .ports
        .as_ref()?
        .iter()
        .find(|p| p.port == port)?
        .name
        .as_deref()
        .map(str::to_owned)
}
