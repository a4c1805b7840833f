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
use crate::gateway::{compile_listener, gateway_addresses, mark_conflicted};
use crate::listener::{ListenerSlot, Listeners};
use crate::problems::FieldPath;
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
    let mut sets: Vec<(&(String, String), &ListenerSet)> = store
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
fn count_attached(sets: &[(&(String, String), &ListenerSet)], status: &mut StatusReport) {
    let mut attached: HashMap<(String, String), u32> = HashMap::new();
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
fn parent_gateway(namespace: &str, set: &ListenerSet) -> Option<(String, String)> {
    let parent = &set.spec.parent_ref;
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let gateway_namespace = parent.namespace.as_deref().unwrap_or(namespace);
    Some((gateway_namespace.to_owned(), parent.name.clone()))
}

/// Whether the named Gateway is ours. A missing Gateway counts as ours, so the ListenerSet's
/// status says it is missing (as for routes: we cannot tell whose it would be).
fn is_ours(store: &Store, options: &CompileOptions, gateway: (String, String)) -> bool {
    match store.gateways.get(&gateway) {
        None => true,
        Some(gateway) => store
            .gateway_classes
            .get(&gateway.spec.gateway_class_name)
            .is_some_and(|class| class.spec.controller_name == options.controller_name),
    }
}

/// One ListenerSet being compiled: who it is and where its status goes.
struct Underway<'a> {
    namespace: &'a str,
    name: &'a str,
    set: &'a ListenerSet,
    /// `ListenerSet ns/name`.
    label: String,
    /// Index its status will have in the report.
    object_index: usize,
}

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
        label: format!("{KIND} {namespace}/{name}"),
        object_index: status.objects.len(),
    };
    let label = &underway.label;
    let mut object = ObjectStatus::new(KIND, namespace, name);
    let (addresses, gateway_label) = match admission(store, options, status, &underway) {
        Ok(admitted) => admitted,
        Err((reason, message)) => {
            status.objects.push(rejected(object, reason, message));
            return;
        }
    };
    let slots = match compile_listeners(store, &underway, &addresses, listeners, claims) {
        Ok((statuses, slots)) => {
            object.listeners = statuses;
            slots
        }
        Err(message) => {
            status
                .objects
                .push(rejected(object, "ListenersNotValid", message));
            return;
        }
    };

    let valid = slots.iter().filter(|slot| slot.usable).count();
    if valid == 0 {
        let message = format!("{label}: no listener is valid; see their conditions");
        status
            .objects
            .push(rejected(object, "ListenersNotValid", message));
        // Nothing to serve; routes naming this ListenerSet find no parent.
        return;
    }
    let (reason, message) = if valid == slots.len() {
        (
            "Accepted",
            format!("{label} is accepted by {gateway_label}"),
        )
    } else {
        (
            "ListenersNotValid",
            format!("{label}: some listeners are not valid; see their conditions"),
        )
    };
    object
        .conditions
        .push(Condition::yes("Accepted", reason, message));
    object.conditions.push(Condition::yes(
        "Programmed",
        "Programmed",
        "listeners are bound",
    ));
    status.objects.push(object);

    let first = listeners.slots.len();
    listeners.by_listener_set.insert(
        (namespace.to_owned(), name.to_owned()),
        (first..first + slots.len()).collect(),
    );
    listeners.slots.extend(slots);
}

/// A rejected ListenerSet's status: `Accepted` and `Programmed` False with the same reason.
fn rejected(mut object: ObjectStatus, reason: &'static str, message: String) -> ObjectStatus {
    object
        .conditions
        .push(Condition::no("Accepted", reason, message.clone()));
    object
        .conditions
        .push(Condition::no("Programmed", reason, message));
    object
}

/// Whether the parent Gateway exists, is accepted and admits this ListenerSet: its addresses
/// and label, or the rejection reason (`ParentNotAccepted`, `NotAllowed`) and message.
fn admission(
    store: &Store,
    options: &CompileOptions,
    status: &StatusReport,
    underway: &Underway<'_>,
) -> Result<(Vec<IpAddr>, String), (&'static str, String)> {
    let label = &underway.label;
    let Some(gateway_key) = parent_gateway(underway.namespace, underway.set) else {
        let message = format!("{label} spec.parentRef: only a Gateway can be a parent");
        return Err(("ParentNotAccepted", message));
    };
    let gateway_label = format!("Gateway {}/{}", gateway_key.0, gateway_key.1);
    let Some(gateway) = store.gateways.get(&gateway_key) else {
        let message = format!("{label} spec.parentRef: {gateway_label} not found");
        return Err(("ParentNotAccepted", message));
    };
    if !gateway_accepted(status, &gateway_key) {
        let message = format!("{label} spec.parentRef: {gateway_label} is not accepted");
        return Err(("ParentNotAccepted", message));
    }
    if let Err(message) = admits(store, gateway, &gateway_key.0, underway.namespace) {
        return Err(("NotAllowed", format!("{label}: {gateway_label} {message}")));
    }
    match gateway_addresses(gateway, options) {
        Ok(addresses) => Ok((addresses, gateway_label)),
        Err(_) => Err((
            "ParentNotAccepted",
            format!("{label} spec.parentRef: {gateway_label} has no usable address"),
        )),
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
) -> Result<(Vec<ListenerStatus>, Vec<ListenerSlot>), String> {
    // ListenerSet listeners have the Gateway listener schema, field for field.
    let set_path = FieldPath::object(KIND, underway.namespace, underway.name);
    let specs: Vec<GatewayListeners> = filter::convert(
        &set_path.field("spec.listeners"),
        &underway.set.spec.listeners,
    )
    .map_err(|problem| problem.to_string())?;
    let mut statuses = Vec::new();
    let mut slots = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let at = format!("{} spec.listeners[{index}]", underway.label);
        let (mut listener_status, mut slot) = compile_listener(
            store,
            underway.namespace,
            underway.name,
            &at,
            spec,
            &specs,
            addresses,
            (underway.object_index, index),
        );
        slot.owner_kind = KIND;
        if slot.usable
            && let Some((reason, message)) = conflict(listeners, claims, &slot)
        {
            slot.usable = false;
            mark_conflicted(&mut listener_status, reason, &format!("{at}: {message}"));
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
fn gateway_accepted(status: &StatusReport, key: &(String, String)) -> bool {
    is_accepted(status, "Gateway", key)
}

/// Whether the status of object `kind` `namespace/name` has `Accepted` True.
fn is_accepted(status: &StatusReport, kind: &str, (namespace, name): &(String, String)) -> bool {
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

/// Why a ListenerSet listener cannot serve next to the listeners already placed: another
/// protocol on its socket, or its (socket, hostname) already served.
fn conflict(
    listeners: &Listeners,
    claims: &Claims,
    slot: &ListenerSlot,
) -> Option<(&'static str, String)> {
    // Claims of this ListenerSet's own earlier listeners name slots not placed yet (`get`
    // finds nothing): compile_listener already checked those against each other.
    let scheme_clash = claims.iter().find_map(|((socket, _), &other)| {
        let other = listeners.slots.get(other)?;
        (slot.sockets.contains(socket) && other.scheme != slot.scheme).then(|| other.label())
    });
    if let Some(other) = scheme_clash {
        return Some((
            "ProtocolConflict",
            format!("{other} uses the same address and port with another protocol"),
        ));
    }
    let taken = slot.sockets.iter().find_map(|socket| {
        claims
            .get(&(*socket, slot.hostname.clone()))
            .and_then(|&other| listeners.slots.get(other))
            .map(ListenerSlot::label)
    });
    taken.map(|other| {
        (
            "HostnameConflict",
            format!("{other} on the same address, port and hostname already serves this"),
        )
    })
}
