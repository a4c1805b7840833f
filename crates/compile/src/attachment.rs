//! Route attachment shared by every route kind (HTTP, GRPC, TLS, TCP and UDP routes): which
//! parentRefs are ours, which listeners a parentRef selects (sectionName, port, allowedRoutes
//! namespaces and kinds, hostname intersection), adding compiled rules to those listeners'
//! tables, and the route's per-parent status (`Accepted`, `ResolvedRefs`, `PartiallyInvalid`).
//!
//! It does not compile rules: each route kind turns its own rules into [`RouteEntries`]
//! ([`CompiledRule`]s for the HTTP route table, a TLSRoute's backends for the SNI table) and
//! hands them over with a [`RouteAttachment`] describing the route.

use std::borrow::Cow;
use std::sync::Arc;

use model::Store;
use model::gateway_api::{
    GrpcRouteParentRefs, HttpRouteParentRefs, TcpRouteParentRefs, TlsRouteParentRefs,
    UdpRouteParentRefs,
};
use router::{RouteOrder, RuleMatch};
use snapshot::RouteRule;

use crate::CompileOptions;
use crate::hostname;
use crate::listener::{AllowedNamespaces, ListenerSlot, Listeners};
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ObjectStatus, ParentReference, RouteParentStatus, StatusReport};

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;

/// Parent kinds a route may attach to.
const GATEWAY_KIND: &str = "Gateway";
const LISTENER_SET_KIND: &str = "ListenerSet";

/// One rule ready to be added to listeners.
pub(crate) struct CompiledRule {
    /// Index of the rule in the route's `rules`.
    pub(crate) index: u32,
    /// Its matches, each added to the table with its own precedence.
    pub(crate) matches: Vec<RuleMatch>,
    /// What the data plane does with a request the rule matched.
    pub(crate) rule: Arc<RouteRule>,
}

/// What a route adds to each listener it attaches to, whatever its kind.
pub(crate) trait RouteEntries {
    /// Whether no valid rule is left to attach.
    fn is_empty(&self) -> bool;
    /// Adds the route to one listener for its effective hostnames (`[]` = any host).
    /// `order` is the route's precedence tie-breaker with `rule`/`matching` at 0. Returns the
    /// hostnames the route does not get there because an older route holds them.
    fn add_to(&self, slot: &mut ListenerSlot, hosts: &[String], order: &RouteOrder) -> Vec<String>;
    /// Rule names, for `/config`.
    fn names(&self) -> Vec<String>;
}

/// What compiling a route's rules found.
#[derive(Default)]
pub(crate) struct RuleProblems {
    /// Why rules were dropped as invalid (`Accepted`/`PartiallyInvalid`).
    pub(crate) invalid: Problems,
    /// backendRefs that do not resolve, each with its `ResolvedRefs` reason; the first reason
    /// wins the condition.
    pub(crate) refs: Problems,
}

/// `metadata.creationTimestamp` in unix seconds: the age tie-breaker of route and policy
/// precedence (`None` in standalone YAML without timestamps, which sorts last).
pub(crate) fn created_seconds(meta: &model::core::ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_second())
}

/// A route as attachment sees it, whatever its kind.
pub(crate) struct RouteAttachment<'a> {
    /// `HTTPRoute`, `GRPCRoute`, `TLSRoute`, `TCPRoute` or `UDPRoute`: the status kind and
    /// the kind listeners must allow.
    pub(crate) kind: &'static str,
    /// Namespace of the route.
    pub(crate) namespace: &'a str,
    /// Name of the route.
    pub(crate) name: &'a str,
    /// `spec.hostnames`.
    pub(crate) hostnames: &'a [String],
    /// `metadata.creationTimestamp`, unix seconds: a precedence tie-breaker.
    pub(crate) created: Option<i64>,
    /// The parentRefs of ours (see [`our_parents`]) with their index in `spec.parentRefs`.
    pub(crate) parents: Vec<(usize, ParentReference)>,
}

impl RouteAttachment<'_> {
    /// `HTTPRoute ns/name`: the root of every field path of this route.
    pub(crate) fn path(&self) -> FieldPath {
        FieldPath::object(self.kind, self.namespace, self.name)
    }

    /// The route's precedence tie-breaker, with `rule`/`matching` at 0.
    pub(crate) fn order(&self) -> RouteOrder {
        RouteOrder {
            created: self.created,
            route: format!("{}/{}", self.namespace, self.name).into(),
            rule: 0,
            matching: 0,
        }
    }
}

/// The parentRefs of a route's `spec.parentRefs`, defaults filled in (see [`normalise_parent`]).
pub(crate) fn normalise_parents<P: RouteParentRef>(
    route_namespace: &str,
    parents: Option<&[P]>,
) -> Vec<ParentReference> {
    parents
        .unwrap_or_default()
        .iter()
        .map(|parent| parent.normalise(route_namespace))
        .collect()
}

/// A route kind's parentRef type: HTTPRoute, GRPCRoute and TLSRoute have the same fields in
/// types of their own (generated from the CRDs).
pub(crate) trait RouteParentRef {
    /// The parentRef with defaults filled in (group, kind `Gateway`, the route's namespace).
    fn normalise(&self, route_namespace: &str) -> ParentReference;
}

macro_rules! route_parent_ref {
    ($($kind:ty),*) => {$(
        impl RouteParentRef for $kind {
            fn normalise(&self, route_namespace: &str) -> ParentReference {
                ParentReference {
                    group: known(self.group.as_deref(), &[GATEWAY_GROUP]),
                    kind: known(self.kind.as_deref(), &[GATEWAY_KIND, LISTENER_SET_KIND]),
                    namespace: self
                        .namespace
                        .as_deref()
                        .unwrap_or(route_namespace)
                        .into(),
                    name: self.name.as_str().into(),
                    section_name: self.section_name.clone(),
                    port: self.port,
                }
            }
        }
    )*};
}

route_parent_ref!(
    HttpRouteParentRefs,
    GrpcRouteParentRefs,
    TlsRouteParentRefs,
    TcpRouteParentRefs,
    UdpRouteParentRefs
);

/// `value` (the first of `known` when absent), borrowed when it is one of `known`: every
/// route's status names its parents' group and kind, nearly always the same few.
fn known(value: Option<&str>, known: &[&'static str]) -> Cow<'static, str> {
    let value = value.unwrap_or(known[0]);
    match known.iter().find(|k| **k == value) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(value.to_owned()),
    }
}

/// The parentRefs (with their index in `spec.parentRefs`) that point at a Gateway, or a
/// ListenerSet of a Gateway, handled by us. A ref to a missing parent is ours to report, since
/// we cannot tell whose it would be; refs to parents of other classes are left to their
/// controllers.
pub(crate) fn our_parents(
    store: &Store,
    options: &CompileOptions,
    parents: Vec<ParentReference>,
) -> Vec<(usize, ParentReference)> {
    parents
        .into_iter()
        .enumerate()
        .filter(|(_, parent)| is_our_parent(store, options, parent))
        .collect()
}

fn is_our_parent(store: &Store, options: &CompileOptions, parent: &ParentReference) -> bool {
    if parent.group != GATEWAY_GROUP {
        return false;
    }
    let gateway_key = match &*parent.kind {
        GATEWAY_KIND => (parent.namespace.clone(), parent.name.clone()),
        LISTENER_SET_KIND => {
            let key = (parent.namespace.clone(), parent.name.clone());
            let Some(set) = store.listener_sets.get(&key) else {
                return true;
            };
            let gateway = &set.spec.parent_ref;
            if gateway.group.as_deref().unwrap_or(GATEWAY_GROUP) != GATEWAY_GROUP
                || gateway.kind.as_deref().unwrap_or(GATEWAY_KIND) != GATEWAY_KIND
            {
                return false;
            }
            let namespace = gateway.namespace.as_deref().unwrap_or(&parent.namespace);
            model::key(namespace, &gateway.name)
        }
        _ => return false,
    };
    match store.gateways.get(&gateway_key) {
        None => true,
        Some(gateway) => store
            .gateway_classes
            .get(gateway.spec.gateway_class_name.as_str())
            .is_some_and(|class| *class.spec.controller_name == *options.controller_name),
    }
}

/// Where a route attaches, before anything is added to listeners: its status (one entry per
/// parentRef of ours, in spec order), the listener slots that count it as attached, and the
/// slots it is added to with its effective hostnames there.
pub(crate) struct AttachPlan {
    pub(crate) status: ObjectStatus,
    /// Slots counting the route in their `attachedRoutes` (once per parentRef selecting
    /// them).
    pub(crate) counted: Vec<usize>,
    /// Usable slots the route is added to, with its hostnames there (`[]` = any host).
    pub(crate) attached: Vec<(usize, Vec<String>)>,
    /// Whether a listener it selects allows routes by namespace labels: the plan then depends
    /// on the labels of the route's Namespace.
    pub(crate) reads_namespace: bool,
}

/// Attaches a route's compiled rules to the listeners each of its parentRefs selects, and
/// records the route's status (one entry per parentRef of ours, in spec order).
pub(crate) fn attach_route(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    status: &mut StatusReport,
    route: RouteAttachment<'_>,
    rules: &(impl RouteEntries + ?Sized),
    problems: &RuleProblems,
) {
    let plan = plan_route(
        store,
        options,
        listeners,
        &route,
        rules.is_empty(),
        problems,
    );
    for &slot in &plan.counted {
        listeners.count_attached(slot, status);
    }
    let order = route.order();
    let label = route.path().to_string();
    for (slot, hosts) in &plan.attached {
        let slot = &mut listeners.slots[*slot];
        let held_by_older = rules.add_to(slot, hosts, &order);
        let mut view = route_view(&label, hosts, &rules.names());
        if !held_by_older.is_empty() {
            view["hostnamesHeldByOlderRoutes"] = serde_json::json!(held_by_older);
        }
        slot.route_views.push(view);
    }
    status.objects.push(plan.status);
}

/// A route on one listener, for `/config`.
pub(crate) fn route_view<Name: AsRef<str>>(
    label: &str,
    hosts: &[String],
    rules: &[Name],
) -> serde_json::Value {
    let rules: Vec<&str> = rules.iter().map(AsRef::as_ref).collect();
    serde_json::json!({
        "route": label,
        "hostnames": hosts,
        "rules": rules,
    })
}

/// Where a route attaches and its status (see [`AttachPlan`]); `no_rules`: no valid rule is
/// left to attach.
pub(crate) fn plan_route(
    store: &Store,
    options: &CompileOptions,
    listeners: &Listeners,
    route: &RouteAttachment<'_>,
    no_rules: bool,
    problems: &RuleProblems,
) -> AttachPlan {
    let path = route.path();
    // The first invalid hostname rejects the route (later ones are not reported yet).
    let invalid_hostname = route.hostnames.iter().enumerate().find_map(|(i, h)| {
        hostname::validate(h)
            .err()
            .map(|e| path.field("spec.hostnames").index(i).problem(e))
    });

    let mut plan = AttachPlan {
        status: ObjectStatus::new(route.kind, route.namespace, route.name),
        counted: Vec::new(),
        attached: Vec::new(),
        reads_namespace: false,
    };
    let object = &mut plan.status;
    object
        .problems
        .extend(invalid_hostname.iter().map(Problem::line));
    object.problems.extend(problems.invalid.lines());
    object.problems.extend(problems.refs.lines());
    for (index, parent_ref) in &route.parents {
        let accepted = if let Some(problem) = &invalid_hostname {
            Condition::no("Accepted", "UnsupportedValue", problem.to_string())
        } else if no_rules && !problems.invalid.is_empty() {
            // Each dropped rule's problem names its own field.
            Condition::no(
                "Accepted",
                "UnsupportedValue",
                format!("no valid rule: {}", problems.invalid.join()),
            )
        } else {
            let at = path.field("spec.parentRefs").index(*index);
            let found = attach(
                store,
                listeners,
                route,
                (&at, parent_ref),
                &mut plan.reads_namespace,
            );
            match found {
                Ok((counted, attached)) => {
                    plan.counted.extend(counted);
                    plan.attached.extend(attached);
                    Condition::yes("Accepted", "Accepted", "route is attached")
                }
                Err((counted, problem)) => {
                    plan.counted.extend(counted);
                    Condition::no(
                        "Accepted",
                        // Every attachment problem carries its reason.
                        problem.reason_or("NoMatchingParent"),
                        problem.to_string(),
                    )
                }
            }
        };
        plan.status.parents.push(RouteParentStatus {
            parent_ref: parent_ref.clone(),
            controller_name: options.controller_name.clone(),
            conditions: parent_conditions(accepted, no_rules, problems),
        });
    }
    // Kept for the life of the config: no spare room.
    plan.status.parents.shrink_to_fit();
    plan.status.problems.shrink_to_fit();
    plan
}

/// The route's conditions towards one parent: `Accepted` (as given), `ResolvedRefs`, and
/// `PartiallyInvalid` when some rules were dropped but others serve.
fn parent_conditions(
    accepted: Condition,
    no_rules: bool,
    problems: &RuleProblems,
) -> Vec<Condition> {
    let mut conditions = vec![accepted];
    match problems.refs.first() {
        None => conditions.push(Condition::yes(
            "ResolvedRefs",
            "ResolvedRefs",
            "all references resolved",
        )),
        Some(first) => conditions.push(Condition::no(
            "ResolvedRefs",
            // Every backendRef problem carries its reason (see `BackendTable::resolve`).
            first.reason_or("BackendNotFound"),
            problems.refs.join_lines(),
        )),
    }
    if !problems.invalid.is_empty() && !no_rules {
        conditions.push(Condition::yes(
            "PartiallyInvalid",
            "UnsupportedValue",
            format!("invalid rules dropped: {}", problems.invalid.join()),
        ));
    }
    conditions.shrink_to_fit();
    conditions
}

/// The listener slots a parentRef names before sectionName/port filtering: a Gateway's own
/// listeners, or an accepted ListenerSet's.
fn parent_slots(
    listeners: &Listeners,
    at: &FieldPath,
    parent: &ParentReference,
) -> Result<Vec<usize>, Problem> {
    let key = (parent.namespace.clone(), parent.name.clone());
    let found = if parent.kind == LISTENER_SET_KIND {
        listeners.by_listener_set.get(&key)
    } else {
        listeners.by_gateway.get(&key)
    };
    found.cloned().ok_or_else(|| {
        let why = if parent.kind == LISTENER_SET_KIND {
            "not found or not accepted by its Gateway (see its status)"
        } else {
            "not found"
        };
        at.problem(format!(
            "{} {}/{} {why}",
            parent.kind, parent.namespace, parent.name
        ))
        .because("NoMatchingParent")
    })
}

/// The listeners one parentRef selects (`at` is the parentRef's path): the slots that count
/// the route as attached, and the usable ones it is added to with its hostnames there. An
/// error still carries the counted slots (a listener counts a route it allows even when no
/// hostname intersects). Sets `reads_labels` when the namespace labels were looked at.
#[allow(clippy::type_complexity)] // (counted, attached) pairs, named in `AttachPlan`
fn attach(
    store: &Store,
    listeners: &Listeners,
    route: &RouteAttachment<'_>,
    (at, parent): (&FieldPath, &ParentReference),
    reads_labels: &mut bool,
) -> Result<(Vec<usize>, Vec<(usize, Vec<String>)>), (Vec<usize>, Problem)> {
    let allowed = allowed_slots(store, listeners, route, (at, parent), reads_labels)
        .map_err(|p| (Vec::new(), p))?;
    let mut attached = Vec::new();
    for &index in &allowed {
        let slot = &listeners.slots[index];
        if !slot.usable {
            continue;
        }
        let Some(hosts) = hostname::intersect(slot.hostname.as_deref(), route.hostnames) else {
            continue;
        };
        attached.push((index, hosts));
    }
    if attached.is_empty() {
        return Err((
            allowed,
            at.problem("no listener hostname intersects the route's hostnames")
                .because("NoMatchingListenerHostname"),
        ));
    }
    Ok((allowed, attached))
}

/// The listeners a parentRef selects (sectionName, port) that allow the route (kind,
/// namespace): where it attaches and counts as attached, whatever their hostnames. Sets
/// `reads_labels` when one of them selects namespaces by label.
fn allowed_slots(
    store: &Store,
    listeners: &Listeners,
    route: &RouteAttachment<'_>,
    (at, parent): (&FieldPath, &ParentReference),
    reads_labels: &mut bool,
) -> Result<Vec<usize>, Problem> {
    let slots = parent_slots(listeners, at, parent)?;
    let selected: Vec<usize> = slots
        .into_iter()
        .filter(|&i| {
            let slot = &listeners.slots[i];
            parent.section_name.as_ref().is_none_or(|s| *s == slot.name)
                && parent.port.is_none_or(|p| i32::from(slot.port) == p)
        })
        .collect();
    if selected.is_empty() {
        return Err(at
            .problem("no listener matches sectionName/port")
            .because("NoMatchingParent"));
    }
    *reads_labels |= selected.iter().any(|&i| {
        matches!(
            listeners.slots[i].allowed_namespaces,
            AllowedNamespaces::Selector { .. }
        )
    });
    let labels = store.namespace_labels(route.namespace);
    let allowed: Vec<usize> = selected
        .into_iter()
        .filter(|&i| {
            let slot = &listeners.slots[i];
            slot.allows_kind(route.kind)
                && slot
                    .allowed_namespaces
                    .allows(&slot.gateway_namespace, route.namespace, labels)
        })
        .collect();
    if allowed.is_empty() {
        return Err(at
            .problem(format!(
                "the selected listeners do not allow {}s from namespace {}",
                route.kind, route.namespace
            ))
            .because("NotAllowedByListeners"));
    }
    Ok(allowed)
}
