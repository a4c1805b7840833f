//! Which Secrets and ConfigMaps the store's objects reference: the only ones the Kubernetes
//! source reads (a gateway has no business reading every Secret of a cluster).
//!
//! References are found by field name in the objects' JSON, so every place the Gateway API puts
//! a certificate or CA reference is covered without naming each type's path:
//! `certificateRefs` (Gateway and ListenerSet listeners' TLS: Secrets by default),
//! `caCertificateRefs` (Gateway frontend validation, BackendTLSPolicy: ConfigMaps or Secrets, kind
//! given), and `clientCertificateRef` (Gateway backend TLS: a Secret by default); in
//! SecurityPolicies, `credentialRefs` (API keys), `users` (htpasswd) and `clientSecret` (OIDC),
//! all Secrets. A reference
//! without `namespace` is in its object's namespace. Whether a cross-namespace reference is
//! allowed (ReferenceGrant) is `compile`'s question: the object is read either way.

use std::collections::BTreeSet;

use model::{Kind, ObjectKey, Store};
use serde::Serialize;
use serde_json::Value;

/// The Secrets and ConfigMaps that Gateways, ListenerSets, BackendTLSPolicies and
/// SecurityPolicies reference.
pub(crate) fn referenced(store: &Store) -> BTreeSet<ObjectKey> {
    let mut found = BTreeSet::new();
    for ((namespace, _), gateway) in &store.gateways {
        collect(&**gateway, namespace, &mut found);
    }
    for ((namespace, _), listener_set) in &store.listener_sets {
        collect(&**listener_set, namespace, &mut found);
    }
    for ((namespace, _), policy) in &store.backend_tls_policies {
        collect(&**policy, namespace, &mut found);
    }
    for ((namespace, _), policy) in &store.security_policies {
        collect(&**policy, namespace, &mut found);
    }
    found
}

fn collect(object: &impl Serialize, namespace: &str, found: &mut BTreeSet<ObjectKey>) {
    // The model types serialise back to the API's JSON; one that does not has no reference
    // we could read anyway.
    if let Ok(value) = serde_json::to_value(object) {
        walk(&value["spec"], namespace, found);
    }
}

fn walk(value: &Value, namespace: &str, found: &mut BTreeSet<ObjectKey>) {
    match value {
        Value::Object(map) => {
            for (field, value) in map {
                match field.as_str() {
                    "certificateRefs" | "caCertificateRefs" | "credentialRefs" => {
                        for reference in value.as_array().into_iter().flatten() {
                            add(reference, namespace, found);
                        }
                    }
                    "clientCertificateRef" | "users" | "clientSecret" => {
                        add(value, namespace, found)
                    }
                    _ => walk(value, namespace, found),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, namespace, found);
            }
        }
        _ => {}
    }
}

/// Adds a core-group Secret or ConfigMap reference (a kind left out means Secret).
fn add(reference: &Value, namespace: &str, found: &mut BTreeSet<ObjectKey>) {
    let group = reference["group"].as_str().unwrap_or("");
    let kind = match reference["kind"].as_str().unwrap_or("Secret") {
        "Secret" => Kind::Secret,
        "ConfigMap" => Kind::ConfigMap,
        _ => return,
    };
    let Some(name) = reference["name"].as_str() else {
        return;
    };
    if !group.is_empty() && group != "core" {
        return;
    }
    let namespace = reference["namespace"].as_str().unwrap_or(namespace);
    found.insert(ObjectKey::new(kind, namespace, name));
}

#[cfg(test)]
mod tests;
