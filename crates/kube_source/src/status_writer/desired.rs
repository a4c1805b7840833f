//! What we own of an object's `status`, built from compile's [`ObjectStatus`] as the API shows
//! it (without `lastTransitionTime`, which the writer adds from what the API server holds).
//!
//! No I/O: the writer compares these values with what it last wrote and with the API server's.

use compile::{Condition, ObjectStatus};
use model::{Kind, Object, ObjectKey, Store};
use serde_json::{Value, json};

#[cfg(test)]
mod tests;

/// The longest condition message the Gateway API schema accepts.
const MAX_MESSAGE: usize = 32_768;

/// The lists of `status` whose entries carry a `controllerName` and are shared with other
/// controllers: routes' `parents`, policies' `ancestors`. Both are `atomic` lists in the
/// Gateway API CRDs, so an apply replaces the whole list and others' entries are carried over.
pub(super) const SHARED_LISTS: [&str; 2] = ["parents", "ancestors"];

/// The most entries the Gateway API schema accepts in a shared list: `parents` 32,
/// `ancestors` 16 (GEP-713; our policy CRDs too, `crdgen::PolicyStatus`).
fn max_entries(list: &str) -> usize {
    if list == "ancestors" { 16 } else { 32 }
}

/// A shared list as it is written: the entries of other controllers first, as they were, then
/// ours, cut at the schema's maximum (a longer list would be refused whole). GEP-713: a full
/// list gets no further entries, so ours are the ones left out.
pub(super) fn merged_list(
    list: &str,
    current: &Value,
    ours: Vec<Value>,
    controller_name: &str,
) -> Vec<Value> {
    let others = current[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["controllerName"] != controller_name)
        .cloned();
    others.chain(ours).take(max_entries(list)).collect()
}

/// What the writer needs besides the report: whose objects are ours, and where clients reach
/// Gateways that have no `spec.addresses`.
pub(super) struct Owner<'a> {
    /// Our `controllerName`.
    pub(super) controller_name: &'a str,
    /// The `--gateway-service` Service's addresses: `None` without the flag (or before the
    /// Service is first listed), then the `status.addresses` entries it gives.
    pub(super) service_addresses: Option<&'a [Value]>,
}

/// The key and the status (without timestamps) we own for `status`, if any: GatewayClasses
/// whose `controllerName` is ours, their Gateways and ListenerSets, and our entries of routes'
/// `status.parents` and of policies' and Compositions' `status.ancestors` (an empty list when
/// we have none: then the writer removes entries of ours it wrote earlier).
pub(super) fn desired(
    status: &ObjectStatus,
    store: &Store,
    owner: &Owner<'_>,
) -> Option<(ObjectKey, Value)> {
    let kind = kind_of(status.kind)?;
    let key = ObjectKey::new(kind, &status.namespace, &status.name);
    let object = store.get(&key)?;
    let generation = object.metadata().generation.unwrap_or(0);
    let is_ours = |class_name: &str| {
        store
            .gateway_classes
            .get(class_name)
            .is_some_and(|class| class.spec.controller_name == owner.controller_name)
    };
    let desired = match &object {
        Object::GatewayClass(class) if class.spec.controller_name == owner.controller_name => {
            gateway_class_status(status, generation)
        }
        Object::Gateway(gateway) if is_ours(&gateway.spec.gateway_class_name) => {
            let has_spec_addresses = gateway
                .spec
                .addresses
                .as_ref()
                .is_some_and(|addresses| !addresses.is_empty());
            let addresses = match owner.service_addresses {
                // `spec.addresses` win: those are the addresses the Gateway asked for and the
                // ones we bind. Otherwise the Service clients reach us through.
                Some(service) if !has_spec_addresses => service.to_vec(),
                _ => compiled_addresses(status),
            };
            gateway_status(status, addresses, generation)
        }
        // Compile reports only the ListenerSets whose parent Gateway is ours.
        Object::ListenerSet(_) => json!({
            "conditions": conditions(&status.conditions, generation),
            "listeners": listeners(status, generation),
        }),
        Object::HttpRoute(_)
        | Object::GrpcRoute(_)
        | Object::TlsRoute(_)
        | Object::TcpRoute(_)
        | Object::UdpRoute(_) => {
            json!({"parents": parents(status, generation, owner.controller_name)})
        }
        Object::BackendTlsPolicy(_)
        | Object::BackendTrafficPolicy(_)
        | Object::ClientTrafficPolicy(_)
        | Object::SecurityPolicy(_)
        | Object::RateLimitPolicy(_)
        | Object::Composition(_)
        | Object::Backend(_) => {
            json!({"ancestors": ancestors(status, generation, owner.controller_name)})
        }
        _ => return None,
    };
    Some((key, desired))
}

/// The kind compile names `kind` (status kinds are unique across our groups).
pub(super) fn kind_of(kind: &str) -> Option<Kind> {
    [model::kind::GATEWAY_GROUP, model::kind::PORTCULLIS_GROUP]
        .into_iter()
        .find_map(|group| Kind::from_api(&format!("{group}/v1"), kind))
}

/// Whether `desired` claims nothing: a shared list (`parents`, `ancestors`) without entries
/// of ours.
pub(super) fn claims_nothing(desired: &Value) -> bool {
    SHARED_LISTS
        .iter()
        .any(|list| desired[*list].as_array().is_some_and(Vec::is_empty))
}

/// A GatewayClass's `status`: conditions and the features we support, as `{name}` objects.
fn gateway_class_status(status: &ObjectStatus, generation: i64) -> Value {
    let mut desired = json!({"conditions": conditions(&status.conditions, generation)});
    if !status.supported_features.is_empty() {
        let features: Vec<Value> = status
            .supported_features
            .iter()
            .map(|name| json!({"name": name}))
            .collect();
        desired["supportedFeatures"] = Value::Array(features);
    }
    desired
}

/// The addresses compile reports for a Gateway (its `spec.addresses`, else the bind
/// addresses), without the wildcard bind addresses: those are where we listen, not where
/// clients reach us.
fn compiled_addresses(status: &ObjectStatus) -> Vec<Value> {
    status
        .addresses
        .iter()
        .filter_map(|address| match address.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => None,
            Ok(_) => Some(json!({"type": "IPAddress", "value": address})),
            Err(_) => Some(json!({"type": "Hostname", "value": address})),
        })
        .collect()
}

/// A Gateway's `status`: conditions, listeners, the addresses clients reach it on, and how
/// many ListenerSets it admitted.
fn gateway_status(status: &ObjectStatus, addresses: Vec<Value>, generation: i64) -> Value {
    let mut desired = json!({
        "conditions": conditions(&status.conditions, generation),
        "listeners": listeners(status, generation),
    });
    if !addresses.is_empty() {
        desired["addresses"] = Value::Array(addresses);
    }
    if let Some(count) = status.attached_listener_sets {
        desired["attachedListenerSets"] = json!(count);
    }
    desired
}

/// The `status.listeners` of a Gateway or ListenerSet.
fn listeners(status: &ObjectStatus, generation: i64) -> Vec<Value> {
    status
        .listeners
        .iter()
        .map(|listener| {
            json!({
                "name": listener.name,
                "attachedRoutes": listener.attached_routes,
                "supportedKinds": listener.supported_kinds,
                "conditions": conditions(&listener.conditions, generation),
            })
        })
        .collect()
}

/// A route's `status.parents` entries of `controller_name`.
fn parents(status: &ObjectStatus, generation: i64, controller_name: &str) -> Vec<Value> {
    status
        .parents
        .iter()
        // Compared as `str`: the report may hold the name as `String` or `Arc<str>`.
        .filter(|parent| &*parent.controller_name == controller_name)
        .map(|parent| {
            json!({
                "parentRef": parent.parent_ref,
                "controllerName": parent.controller_name,
                "conditions": conditions(&parent.conditions, generation),
            })
        })
        .collect()
}

/// A policy's `status.ancestors` entries of `controller_name`.
fn ancestors(status: &ObjectStatus, generation: i64, controller_name: &str) -> Vec<Value> {
    status
        .ancestors
        .iter()
        .filter(|ancestor| &*ancestor.controller_name == controller_name)
        .map(|ancestor| {
            json!({
                "ancestorRef": ancestor.ancestor_ref,
                "controllerName": ancestor.controller_name,
                "conditions": conditions(&ancestor.conditions, generation),
            })
        })
        .collect()
}

/// Conditions as the API shows them (see [`condition`]).
pub(super) fn conditions(conditions: &[Condition], generation: i64) -> Value {
    Value::Array(
        conditions
            .iter()
            .map(|c| condition(c, generation))
            .collect(),
    )
}

/// A condition as the API shows it, without its `lastTransitionTime` (the writer's `stamp`
/// adds it).
fn condition(condition: &Condition, generation: i64) -> Value {
    let mut message = condition.message.to_string();
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    json!({
        "type": condition.kind,
        "status": condition.status,
        "reason": condition.reason,
        "message": message,
        "observedGeneration": generation,
    })
}
