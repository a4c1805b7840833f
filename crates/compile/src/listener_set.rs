//! ListenerSets (GEP-1713): extra listeners a Gateway admits from other objects, their
//! validation, conflicts with the Gateway's own listeners, and their status.
//!
//! A ListenerSet names its Gateway in `spec.parentRef`. The Gateway admits it through
//! `spec.allowedListeners.namespaces.from`: `None` (the default: no ListenerSets), `Same`, `All`
//! or `Selector`. An admitted ListenerSet's listeners are compiled like the Gateway's own and
//! bind on the Gateway's addresses; routes reach them only through a parentRef of kind
//! `ListenerSet` (a parentRef to the Gateway selects the Gateway's own listeners only), and
//! their `allowedRoutes` `from: Same` means the ListenerSet's namespace.
//!
//! Conflicts: the Gateway's own listeners (and every Gateway's, since Gateways are compiled
//! first) take precedence, then ListenerSets by creation time, then `namespace/name`. A
//! ListenerSet listener that loses a (socket, hostname) or uses another protocol on a port is
//! `Conflicted` and does not serve; the ListenerSet stays accepted if another listener is valid.
//!
//! It does not attach routes (that is `attachment`). It counts each Gateway's accepted
//! ListenerSets in the Gateway's `attachedListenerSets`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use model::Store;
use model::gateway_api::{
    Gateway, GatewayAllowedListenersNamespacesFrom, GatewayListeners, ListenerSet,
};

use crate::CompileOptions;
use crate::filter;
use crate::gateway::{
    ListenerOwner, Transport, compile_listener, gateway_addresses, mark_conflicted,
};
use crate::listener::{ListenerSlot, Listeners};
use crate::problems::{FieldPath, Problem};
use crate::selector::{self, Expression};
use crate::status::{Condition, ConditionStatus, ListenerStatus, ObjectStatus, StatusReport};

#[cfg(test)]
mod tests;

const GATEWAY_GROUP: &str = model::kind::GATEWAY_GROUP;

/// The kind, as status and parentRefs spell it.
const KIND: &str = "ListenerSet";

/// Whose (socket, hostname) pair is whose: the index of the slot serving it.
type Claims = HashMap<(SocketAddr, Option<String>), usize>;

/// Validates every ListenerSet whose parent Gateway is ours and adds the listeners of the
/// admitted ones to `listeners`, after the Gateways' own (which `gateway::compile_gateways`
/// produced).
pub(crate) fn compile_listener_sets(
    store: &Store,
    options: &CompileOptions,
    listeners: &mut Listeners,
    status: &mut StatusReport,
) {
    let mut sets: Vec<(&model::NamespacedName, &ListenerSet)> = store
        .listener_sets
        .iter()
        .filter(|(key, set)| {
            parent_gateway(&key.0, set).is_some_and(|g| is_ours(store, options, g))
        })
        .map(|(key, set)| (key, set.as_ref()))
        .collect();
    sets.sort_by_key(|((namespace, name), set)| {
        (
            set.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            namespace.clone(),
            name.clone(),
        )
    });

    let mut claims: Claims = HashMap::new();
    for (index, slot) in listeners.slots.iter().enumerate() {
        if slot.usable {
            for socket in &slot.sockets {
                claims
                    .entry((*socket, slot.hostname.clone()))
                    .or_insert(index);
            }
        }
    }
    for ((namespace, name), set) in &sets {
        compile_listener_set(
            store,
            options,
            (namespace, name),
            set,
            listeners,
            &mut claims,
            status,
        );
    }
    count_attached(&sets, status);
}

/// Sets `attachedListenerSets` on every Gateway of ours: its accepted ListenerSets.
fn count_attached(sets: &[(&model::NamespacedName, &ListenerSet)], status: &mut StatusReport) {
    let mut attached: HashMap<model::NamespacedName, u32> = HashMap::new();
    for ((namespace, name), set) in sets {
        let key = ((*namespace).clone(), (*name).clone());
        if is_accepted(status, KIND, &key)
            && let Some(gateway) = parent_gateway(namespace, set)
        {
            *attached.entry(gateway).or_default() += 1;
        }
    }
    for object in &mut status.objects {
        if object.kind == "Gateway" {
            let key = (object.namespace.clone(), object.name.clone());
            object.attached_listener_sets = Some(attached.get(&key).copied().unwrap_or(0));
        }
    }
}

/// `(namespace, name)` of the Gateway a ListenerSet names, when it names one.
pub(crate) fn parent_gateway(namespace: &str, set: &ListenerSet) -> Option<model::NamespacedName> {
    let parent = &set.spec.parent_ref;
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let gateway_namespace = parent.namespace.as_deref().unwrap_or(namespace);
    Some(model::key(gateway_namespace, &parent.name))
}

/// Whether the named Gateway is ours. A missing Gateway counts as ours, so the ListenerSet's
/// status says it is missing (as for routes: we cannot tell whose it would be).
fn is_ours(store: &Store, options: &CompileOptions, gateway: model::NamespacedName) -> bool {
    match store.gateways.get(&gateway) {
        None => true,
        Some(gateway) => store
            .gateway_classes
            .get(gateway.spec.gateway_class_name.as_str())
            .is_some_and(|class| *class.spec.controller_name == *options.controller_name),
    }
}

/// One ListenerSet being compiled: who it is and where its status goes.
struct Underway<'a> {
    namespace: &'a str,
    name: &'a str,
    set: &'a ListenerSet,
    /// `ListenerSet ns/name`.
    path: FieldPath,
    /// Index its status will have in the report.
    object_index: usize,
}

/// One ListenerSet: admitted by its Gateway, its listeners compiled and checked against the
/// listeners already placed, its conditions. The listeners of an accepted ListenerSet go to
/// `listeners`.
fn compile_listener_set(
    store: &Store,
    options: &CompileOptions,
    (namespace, name): (&str, &str),
    set: &ListenerSet,
    listeners: &mut Listeners,
    claims: &mut Claims,
    status: &mut StatusReport,
) {
    let underway = Underway {
        namespace,
        name,
        set,
        path: FieldPath::object(KIND, namespace, name),
        object_index: status.objects.len(),
    };
    let mut object = ObjectStatus::new(KIND, namespace, name);
    let admitted = admission(store, options, status, &underway).and_then(|(addresses, gateway)| {
        let (statuses, slots) = compile_listeners(store, &underway, &addresses, listeners, claims)?;
        object.listeners = statuses;
        Ok((gateway, slots))
    });
    let (gateway, slots) = match admitted {
        Ok(admitted) => admitted,
        Err(problem) => {
            status.objects.push(rejected(object, &problem));
            return;
        }
    };
    match set_conditions(&underway.path, &gateway, &slots) {
        Ok(conditions) => object.conditions.extend(conditions),
        Err(problem) => {
            // Nothing to serve; routes naming this ListenerSet find no parent.
            status.objects.push(rejected(object, &problem));
            return;
        }
    }
    status.objects.push(object);

    let first = listeners.slots.len();
    listeners.by_listener_set.insert(
        model::key(namespace, name),
        (first..first + slots.len()).collect(),
    );
    listeners.slots.extend(slots);
}

/// An admitted ListenerSet's `Accepted` and `Programmed`: accepted while any listener is
/// usable (reason `ListenersNotValid` unless all are). `Err` when none is.
fn set_conditions(
    set: &FieldPath,
    gateway: &FieldPath,
    slots: &[ListenerSlot],
) -> Result<[Condition; 2], Problem> {
    let valid = slots.iter().filter(|slot| slot.usable).count();
    if valid == 0 {
        return Err(set
            .problem("no listener is valid; see their conditions")
            .because("ListenersNotValid"));
    }
    let accepted = if valid == slots.len() {
        Condition::yes(
            "Accepted",
            "Accepted",
            format!("{set} is accepted by {gateway}"),
        )
    } else {
        let problem = set.problem("some listeners are not valid; see their conditions");
        Condition::yes("Accepted", "ListenersNotValid", problem.to_string())
    };
    let programmed = Condition::yes("Programmed", "Programmed", "listeners are bound");
    Ok([accepted, programmed])
}

/// A rejected ListenerSet's status: `Accepted` and `Programmed` False with the problem's
/// reason and message.
fn rejected(mut object: ObjectStatus, problem: &Problem) -> ObjectStatus {
    let reason = problem.reason_or("ListenersNotValid");
    object
        .conditions
        .push(Condition::no("Accepted", reason, problem.to_string()));
    object
        .conditions
        .push(Condition::no("Programmed", reason, problem.to_string()));
    object
}

/// Whether the parent Gateway exists, is accepted and admits this ListenerSet: its addresses
/// and path, or the problem with its reason (`ParentNotAccepted`, `NotAllowed`).
fn admission(
    store: &Store,
    options: &CompileOptions,
    status: &StatusReport,
    underway: &Underway<'_>,
) -> Result<(Vec<IpAddr>, FieldPath), Problem> {
    let parent_ref = underway.path.field("spec.parentRef");
    let not_accepted = |message: String| parent_ref.problem(message).because("ParentNotAccepted");
    let Some(gateway_key) = parent_gateway(underway.namespace, underway.set) else {
        return Err(not_accepted("only a Gateway can be a parent".to_owned()));
    };
    let gateway_path = FieldPath::object("Gateway", &gateway_key.0, &gateway_key.1);
    let Some(gateway) = store.gateways.get(&gateway_key) else {
        return Err(not_accepted(format!("{gateway_path} not found")));
    };
    if !gateway_accepted(status, &gateway_key) {
        return Err(not_accepted(format!("{gateway_path} is not accepted")));
    }
    if let Err(message) = admits(store, gateway, &gateway_key.0, underway.namespace) {
        return Err(underway
            .path
            .problem(format!("{gateway_path} {message}"))
            .because("NotAllowed"));
    }
    match gateway_addresses(&gateway_path, gateway, options) {
        Ok(addresses) => Ok((addresses, gateway_path)),
        Err(_) => Err(not_accepted(format!(
            "{gateway_path} has no usable address"
        ))),
    }
}

/// Compiles the listeners like a Gateway's, then marks those that conflict with listeners
/// already placed, and claims (socket, hostname) for the others. `Err` when the listener list
/// cannot be read as Gateway listeners.
fn compile_listeners(
    store: &Store,
    underway: &Underway<'_>,
    addresses: &[IpAddr],
    listeners: &Listeners,
    claims: &mut Claims,
) -> Result<(Vec<ListenerStatus>, Vec<ListenerSlot>), Problem> {
    // ListenerSet listeners have the Gateway listener schema, field for field.
    let specs: Vec<GatewayListeners> = filter::convert(
        &underway.path.field("spec.listeners"),
        &underway.set.spec.listeners,
    )
    .map_err(|problem| problem.because("ListenersNotValid"))?;
    let owner = ListenerOwner {
        kind: KIND,
        path: underway.path.clone(),
        namespace: underway.namespace,
        name: underway.name,
        listeners: &specs,
        addresses,
        object_index: underway.object_index,
    };
    let mut statuses = Vec::new();
    let mut slots = Vec::new();
    for index in 0..specs.len() {
        let (mut listener_status, mut slot) = compile_listener(store, &owner, index);
        if slot.usable {
            let at = underway.path.field("spec.listeners").index(index);
            if let Some((reason, problem)) = conflict(&at, listeners, claims, &slot) {
                slot.usable = false;
                mark_conflicted(&mut listener_status, reason, &problem.to_string());
            }
        }
        if slot.usable {
            // The slot's index once the caller appends this set's slots.
            let slot_index = listeners.slots.len() + index;
            for socket in &slot.sockets {
                claims.insert((*socket, slot.hostname.clone()), slot_index);
            }
        }
        statuses.push(listener_status);
        slots.push(slot);
    }
    Ok((statuses, slots))
}

/// Whether the Gateway's status (computed before ListenerSets) says it is accepted.
fn gateway_accepted(status: &StatusReport, key: &model::NamespacedName) -> bool {
    is_accepted(status, "Gateway", key)
}

/// Whether the status of object `kind` `namespace/name` has `Accepted` True.
fn is_accepted(
    status: &StatusReport,
    kind: &str,
    (namespace, name): &model::NamespacedName,
) -> bool {
    status.objects.iter().any(|object| {
        object.kind == kind
            && object.namespace == *namespace
            && object.name == *name
            && object
                .conditions
                .iter()
                .any(|c| c.kind == "Accepted" && c.status == ConditionStatus::True)
    })
}

/// Whether `spec.allowedListeners` of the Gateway (in `gateway_namespace`) admits ListenerSets
/// from `namespace`.
fn admits(
    store: &Store,
    gateway: &Gateway,
    gateway_namespace: &str,
    namespace: &str,
) -> Result<(), String> {
    let allowed = gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let from = allowed.and_then(|n| n.from.clone());
    match from {
        None | Some(GatewayAllowedListenersNamespacesFrom::None) => Err(
            "does not allow ListenerSets (spec.allowedListeners.namespaces.from is None)"
                .to_owned(),
        ),
        Some(GatewayAllowedListenersNamespacesFrom::All) => Ok(()),
        Some(GatewayAllowedListenersNamespacesFrom::Same) => {
            if gateway_namespace == namespace {
                Ok(())
            } else {
                Err(format!(
                    "only allows ListenerSets from its own namespace {gateway_namespace}"
                ))
            }
        }
        Some(GatewayAllowedListenersNamespacesFrom::Selector) => {
            let selector = allowed.and_then(|n| n.selector.as_ref());
            let expressions: Vec<Expression<'_>> = selector
                .and_then(|s| s.match_expressions.as_deref())
                .unwrap_or_default()
                .iter()
                .map(|e| Expression {
                    key: &e.key,
                    operator: &e.operator,
                    values: e.values.as_deref().unwrap_or_default(),
                })
                .collect();
            let labels = store.namespace_labels(namespace);
            let match_labels = selector.and_then(|s| s.match_labels.as_ref());
            if selector::matches(labels, match_labels, &expressions) {
                Ok(())
            } else {
                Err(format!(
                    "does not select namespace {namespace} in spec.allowedListeners.namespaces.selector"
                ))
            }
        }
    }
}

/// Why a ListenerSet listener (`at`) cannot serve next to the listeners already placed:
/// another protocol on its socket, or its (socket, hostname) already served. The reason is
/// its `Conflicted` reason.
fn conflict(
    at: &FieldPath,
    listeners: &Listeners,
    claims: &Claims,
    slot: &ListenerSlot,
) -> Option<(&'static str, Problem)> {
    // Claims of this ListenerSet's own earlier listeners name slots not placed yet (`get`
    // finds nothing): compile_listener already checked those against each other.
    let scheme_clash = claims.iter().find_map(|((socket, _), &other)| {
        let other = listeners.slots.get(other)?;
        (slot.sockets.contains(socket)
            && other.scheme != slot.scheme
            && Transport::of(other.scheme) == Transport::of(slot.scheme))
        .then(|| other.label())
    });
    if let Some(other) = scheme_clash {
        return Some((
            "ProtocolConflict",
            at.problem(format!(
                "{other} uses the same address and port with another protocol"
            )),
        ));
    }
    let taken = slot.sockets.iter().find_map(|socket| {
        claims
            .get(&(*socket, slot.hostname.clone()))
            .and_then(|&other| listeners.slots.get(other))
            // A UDP listener and a TCP one share a port number without sharing a socket.
            .filter(|other| Transport::of(other.scheme) == Transport::of(slot.scheme))
            .map(ListenerSlot::label)
    });
    taken.map(|other| {
        (
            "HostnameConflict",
            at.problem(format!(
                "{other} on the same address, port and hostname already serves this"
            )),
        )
    })
}
