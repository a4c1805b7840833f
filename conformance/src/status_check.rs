//! Status assertions: the conditions, parents and listener counts the Go tests wait for through the Kubernetes
//! API (`TCPRouteMustHaveCondition`, `UDPRouteMustHaveParents`, `GatewayStatusMustHaveListeners`,
//! `GatewayMustHaveZeroRoutes`, the checks inside `GatewayAndTCPRoutesMustBeAccepted`, ...).
//!
//! Owns reading an object's status and the helpers' matching rules, transcribed: a condition matches on type,
//! and on status and reason unless the expectation leaves them empty; an expected parent entry must be our
//! controller's, name the Gateway by group, kind and name, and name its namespace (or, unless required, none);
//! expected listeners must be exactly the listeners in status, each with at least the expected supported kinds
//! (group defaulting to `gateway.networking.k8s.io`). Each assertion is polled until it holds or the case
//! deadline passes. In standalone mode the status comes from the gateway's admin `/status` (the same shapes
//! Kubernetes shows); in Kubernetes mode from the API server. Not checked here: `observedGeneration` (the
//! Kubernetes mode already compares it for every object, `kubernetes::written_status`).

use std::time::Duration;

use serde_json::{Value, json};
use testkit::GatewayProcess;
use tokio::time::Instant;

use crate::cases::{ConditionSpec, ListenerSpec, ParentSpec, StatusAssertion};
use crate::convergence::CASE_DEADLINE;
use crate::kubernetes::Cluster;
use crate::manifests::{CONTROLLER_NAME, kind, name, namespace};

/// The Gateway API group: the default of `parentRef.group` and `supportedKinds[].group`.
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// How often a failing assertion is read again (`DefaultPollInterval`).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where status is read from.
pub(crate) enum StatusSource<'a> {
    /// Standalone mode: the gateway's admin `/status`.
    Admin(&'a GatewayProcess),
    /// Kubernetes mode: the API server; `documents` (the test's objects) give each object's `apiVersion`.
    Cluster(&'a Cluster, &'a [Value]),
}

impl StatusSource<'_> {
    /// The status of object `kind namespace/name` (`None` when the object has none yet).
    async fn status_of(
        &self,
        object_kind: &str,
        (object_namespace, object_name): (&str, &str),
    ) -> Result<Option<Value>, String> {
        match self {
            StatusSource::Admin(gateway) => {
                let (code, body) = gateway
                    .get_admin("/status")
                    .await
                    .map_err(|error| format!("reading /status: {error:#}"))?;
                if !code.is_success() {
                    return Err(format!("/status answered {code}"));
                }
                let document: Value = serde_json::from_str(&body)
                    .map_err(|error| format!("/status is not JSON: {error}"))?;
                Ok(document
                    .get("objects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|object| {
                        kind(object) == object_kind
                            && object.get("namespace").and_then(Value::as_str)
                                == Some(object_namespace)
                            && object.get("name").and_then(Value::as_str) == Some(object_name)
                    })
                    .cloned())
            }
            StatusSource::Cluster(cluster, documents) => {
                let api_version = documents
                    .iter()
                    .find(|object| {
                        kind(object) == object_kind
                            && namespace(object) == object_namespace
                            && name(object) == object_name
                    })
                    .and_then(|object| object.get("apiVersion").cloned())
                    .unwrap_or_else(|| json!(format!("{GATEWAY_GROUP}/v1")));
                let reference = json!({
                    "apiVersion": api_version,
                    "kind": object_kind,
                    "metadata": { "namespace": object_namespace, "name": object_name },
                });
                let object = cluster
                    .get(&reference)
                    .await
                    .map_err(|error| format!("{error:#}"))?;
                Ok(object.and_then(|object| object.get("status").cloned()))
            }
        }
    }
}

/// Polls every assertion until it holds; the error names the first one that did not within the case deadline.
pub(crate) async fn expect_all(
    source: &StatusSource<'_>,
    assertions: &[StatusAssertion],
) -> Result<(), String> {
    let give_up = Instant::now() + CASE_DEADLINE;
    for assertion in assertions {
        let (object_kind, object) = subject(assertion);
        let (object_namespace, object_name) = split_reference(object)?;
        loop {
            let outcome = match source
                .status_of(object_kind, (object_namespace, object_name))
                .await
            {
                Ok(Some(status)) => check(assertion, &status).map_err(|reason| {
                    format!("{object_kind} {object}: {reason}; status: {status}")
                }),
                Ok(None) => Err(format!("{object_kind} {object} has no status")),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => break,
                Err(failure) if Instant::now() >= give_up => {
                    return Err(format!("after {CASE_DEADLINE:?}: {failure}"));
                }
                Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }
    Ok(())
}

/// The object an assertion reads: its kind and `namespace/name`.
fn subject(assertion: &StatusAssertion) -> (&str, &str) {
    match assertion {
        StatusAssertion::RouteCondition { kind, route, .. }
        | StatusAssertion::RouteParents { kind, route, .. } => (kind, route),
        StatusAssertion::Listeners { gateway, .. }
        | StatusAssertion::ListenerConditions { gateway, .. }
        | StatusAssertion::ZeroRoutes { gateway }
        | StatusAssertion::GatewayAddress { gateway } => ("Gateway", gateway),
    }
}

/// `namespace/name` split in two.
fn split_reference(reference: &str) -> Result<(&str, &str), String> {
    reference
        .split_once('/')
        .ok_or_else(|| format!("{reference:?} is not namespace/name"))
}

/// Whether `status` (an object's `status`, or its `/status` entry) satisfies `assertion`; the error says why
/// not.
pub(crate) fn check(assertion: &StatusAssertion, status: &Value) -> Result<(), String> {
    match assertion {
        StatusAssertion::RouteCondition {
            gateway, condition, ..
        } => {
            let (gateway_namespace, gateway_name) = split_reference(gateway)?;
            let found = array(status, "parents").any(|parent| {
                let reference = &parent["parentRef"];
                let names_gateway = reference.get("name").and_then(Value::as_str)
                    == Some(gateway_name)
                    && reference
                        .get("namespace")
                        .and_then(Value::as_str)
                        .is_none_or(|namespace| namespace == gateway_namespace);
                names_gateway && has_condition(parent.get("conditions"), condition)
            });
            if found {
                Ok(())
            } else {
                Err(format!(
                    "no parent entry for Gateway {gateway} has {}",
                    describe(condition)
                ))
            }
        }
        StatusAssertion::RouteParents {
            parents,
            namespace_required,
            ..
        } => parents
            .iter()
            .try_for_each(|expected| expect_parent(status, expected, *namespace_required)),
        StatusAssertion::Listeners { listeners, .. } => expect_listeners(status, listeners),
        StatusAssertion::ListenerConditions { conditions, .. } => {
            // Like the Go helper: every listener in status must have every condition (none in status passes).
            for listener in array(status, "listeners") {
                for condition in conditions {
                    if !has_condition(listener.get("conditions"), condition) {
                        return Err(format!(
                            "listener {} lacks {}",
                            listener["name"],
                            describe(condition)
                        ));
                    }
                }
            }
            Ok(())
        }
        StatusAssertion::ZeroRoutes { .. } => {
            let listeners: Vec<&Value> = array(status, "listeners").collect();
            match listeners.as_slice() {
                [] => Ok(()),
                [only] if only.get("attachedRoutes").and_then(Value::as_u64) == Some(0) => Ok(()),
                _ => Err(
                    "want no listener in status, or exactly one with 0 attachedRoutes".to_owned(),
                ),
            }
        }
        StatusAssertion::GatewayAddress { .. } => {
            if array(status, "addresses").next().is_some() {
                Ok(())
            } else {
                Err("no address in status".to_owned())
            }
        }
    }
}

/// `parentsForRouteMatch` for one expected parent.
fn expect_parent(
    status: &Value,
    expected: &ParentSpec,
    namespace_required: bool,
) -> Result<(), String> {
    let (gateway_namespace, gateway_name) = split_reference(&expected.gateway)?;
    let matched = array(status, "parents").any(|actual| {
        let reference = &actual["parentRef"];
        let field = |key: &str| reference.get(key).and_then(Value::as_str);
        let namespace_matches = match field("namespace") {
            Some(namespace) => namespace == gateway_namespace,
            None => !namespace_required,
        };
        actual.get("controllerName").and_then(Value::as_str) == Some(CONTROLLER_NAME)
            && field("group") == Some(GATEWAY_GROUP)
            && field("kind") == Some("Gateway")
            && field("name") == Some(gateway_name)
            && namespace_matches
            && expected
                .conditions
                .iter()
                .all(|condition| has_condition(actual.get("conditions"), condition))
    });
    if matched {
        Ok(())
    } else {
        let wanted: Vec<String> = expected.conditions.iter().map(describe).collect();
        Err(format!(
            "no parent entry of {CONTROLLER_NAME} for Gateway {} with {}",
            expected.gateway,
            wanted.join(", ")
        ))
    }
}

/// `gatewayListenersMatch`.
fn expect_listeners(status: &Value, expected: &[ListenerSpec]) -> Result<(), String> {
    let actual: Vec<&Value> = array(status, "listeners").collect();
    if actual.len() != expected.len() {
        return Err(format!(
            "expected {} listeners in status, got {}",
            expected.len(),
            actual.len()
        ));
    }
    for listener in expected {
        let Some(found) = actual.iter().find(|candidate| {
            candidate.get("name").and_then(Value::as_str) == Some(&listener.name)
        }) else {
            return Err(format!("no status for listener {}", listener.name));
        };
        for wanted_kind in &listener.supported_kinds {
            let is_supported = array(found, "supportedKinds").any(|supported| {
                let group = supported
                    .get("group")
                    .and_then(Value::as_str)
                    .unwrap_or(GATEWAY_GROUP);
                group == GATEWAY_GROUP
                    && supported.get("kind").and_then(Value::as_str) == Some(wanted_kind)
            });
            if !is_supported {
                return Err(format!(
                    "listener {}: {wanted_kind} is not in supportedKinds",
                    listener.name
                ));
            }
        }
        let attached = found.get("attachedRoutes").and_then(Value::as_u64);
        if attached != Some(listener.attached_routes) {
            return Err(format!(
                "listener {}: attachedRoutes {}, want {}",
                listener.name,
                attached.map_or_else(|| "missing".to_owned(), |count| count.to_string()),
                listener.attached_routes
            ));
        }
        for condition in &listener.conditions {
            if !has_condition(found.get("conditions"), condition) {
                return Err(format!(
                    "listener {} lacks {}",
                    listener.name,
                    describe(condition)
                ));
            }
        }
    }
    Ok(())
}

/// `findConditionInList`: a condition of this type with this status and reason (empty ones match any).
fn has_condition(conditions: Option<&Value>, expected: &ConditionSpec) -> bool {
    conditions
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|condition| {
            let field = |key: &str| condition.get(key).and_then(Value::as_str).unwrap_or("");
            field("type") == expected.kind
                && (expected.status.is_empty() || field("status") == expected.status)
                && (expected.reason.is_empty() || field("reason") == expected.reason)
        })
}

/// `Type=Status (Reason)` for messages.
fn describe(condition: &ConditionSpec) -> String {
    let status = if condition.status.is_empty() {
        "any"
    } else {
        &condition.status
    };
    let reason = if condition.reason.is_empty() {
        "any reason"
    } else {
        &condition.reason
    };
    format!("{}={status} ({reason})", condition.kind)
}

/// The entries of array `field` of `value` (none when missing).
fn array<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests;
