//! [`StatusWriter`]: writes the status `compile` computed back to the API server.
//!
//! Only for objects of our GatewayClasses: GatewayClasses whose `controllerName` is ours, their
//! Gateways, and the `status.parents` entries of routes whose `controllerName` is ours (other
//! controllers' entries are kept as they are). Through the status subresource with server-side
//! apply (field manager `portcullis`), with `observedGeneration` on every condition, and only when
//! something changed: a status equal to the one last written, or to the one the API server
//! already holds (timestamps aside), is not written. A condition keeps its
//! `lastTransitionTime` while its status stays the same.
//!
//! `status.parents` of a route is an atomic list in the Gateway API CRDs: applying it replaces
//! the whole list. So the object is read first, other controllers' entries are carried over,
//! and the apply names the `resourceVersion` read; a concurrent write makes it fail with a
//! conflict, and the object is written again on the next round.
//!
//! Writes are coalesced: the writer takes the latest report, writes what changed, then waits at
//! least [`MIN_INTERVAL`] before the next round. A round with failed writes (a conflict, the API
//! server away) is run again after 1 s, doubling up to 30 s, or sooner when a new report comes. It does not elect a leader yet: with several
//! replicas, each writes (the same status, so after the first the others find it equal).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use compile::{Condition, ObjectStatus, StatusReport};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use model::{Kind, Object, ObjectKey, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

/// The least time between two rounds of writes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// The first delay before failed writes are tried again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest delay before failed writes are tried again.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "portcullis";

/// The longest condition message the Gateway API schema accepts.
const MAX_MESSAGE: usize = 32_768;

/// A status report and the store it was compiled from (for generations and classes).
type Pending = Option<Arc<(StatusReport, Arc<Store>)>>;

/// Hands status reports to the writer task; dropping it stops the task.
pub struct StatusWriter {
    reports: watch::Sender<Pending>,
}

impl StatusWriter {
    /// Starts the writer task. `resources` are the served API resources by kind (from
    /// discovery); `controller_name` is ours. Must run inside a tokio runtime.
    pub(crate) fn start(
        client: kube::Client,
        resources: BTreeMap<Kind, ApiResource>,
        controller_name: String,
        is_leader: watch::Receiver<bool>,
    ) -> StatusWriter {
        let (reports, received) = watch::channel(None);
        let task = Task {
            client,
            resources,
            controller_name,
            written: BTreeMap::new(),
        };
        tokio::spawn(task.run(received, is_leader));
        StatusWriter { reports }
    }

    /// Queues the status of `store` for writing; a report not yet written is replaced.
    pub fn publish(&self, report: StatusReport, store: Arc<Store>) {
        self.reports.send_replace(Some(Arc::new((report, store))));
    }
}

struct Task {
    client: kube::Client,
    resources: BTreeMap<Kind, ApiResource>,
    controller_name: String,
    /// The status last written (or found) per object, without timestamps.
    written: BTreeMap<ObjectKey, Value>,
}

impl Task {
    /// Writes the latest report while `is_leader` says so; ends when either channel closes.
    async fn run(
        mut self,
        mut received: watch::Receiver<Pending>,
        mut is_leader: watch::Receiver<bool>,
    ) {
        let mut retry = RETRY_FIRST;
        let mut has_failed = false;
        loop {
            tokio::select! {
                changed = received.changed() => if changed.is_err() { return },
                changed = is_leader.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Another replica may have written meanwhile: compare with the API again.
                    self.written.clear();
                }
                // Failed writes are tried again after a backoff, or sooner with a new report.
                () = tokio::time::sleep(retry), if has_failed => retry = (retry * 2).min(RETRY_MAX),
            }
            if !*is_leader.borrow_and_update() {
                has_failed = false;
                continue;
            }
            let latest = received.borrow_and_update().clone();
            if let Some(latest) = latest {
                let (report, store) = &*latest;
                has_failed = !self.write_round(report, store).await;
                if !has_failed {
                    retry = RETRY_FIRST;
                }
            }
            tokio::time::sleep(MIN_INTERVAL).await;
        }
    }

    /// Writes what changed; `false` when some write failed.
    async fn write_round(&mut self, report: &StatusReport, store: &Store) -> bool {
        let mut is_complete = true;
        let mut seen = BTreeSet::new();
        for status in &report.objects {
            let Some((key, desired)) = self.desired(status, store) else {
                continue;
            };
            seen.insert(key.clone());
            if self.written.get(&key) == Some(&desired) {
                continue;
            }
            match self.write(&key, &desired).await {
                Ok(()) => {
                    self.written.insert(key, desired);
                }
                Err(error) => {
                    tracing::warn!(object = %key, %error, "status not written; retried with backoff");
                    self.written.remove(&key);
                    is_complete = false;
                }
            }
        }
        // Forget objects that are gone, so that one created again is written again.
        self.written.retain(|key, _| seen.contains(key));
        is_complete
    }

    /// The key and the status (without timestamps) we own for `status`, if any.
    fn desired(&self, status: &ObjectStatus, store: &Store) -> Option<(ObjectKey, Value)> {
        let kind = Kind::from_api(&format!("{}/v1", kind_group(status.kind)), status.kind)?;
        let key = ObjectKey::new(kind, &status.namespace, &status.name);
        let object = store.get(&key)?;
        let generation = object.metadata().generation.unwrap_or(0);
        let is_ours = |class_name: &str| {
            store
                .gateway_classes
                .get(class_name)
                .is_some_and(|class| class.spec.controller_name == self.controller_name)
        };
        let desired = match &object {
            Object::GatewayClass(class) if class.spec.controller_name == self.controller_name => {
                json!({"conditions": conditions(&status.conditions, generation)})
            }
            Object::Gateway(gateway) if is_ours(&gateway.spec.gateway_class_name) => {
                gateway_status(status, generation)
            }
            Object::HttpRoute(_) | Object::GrpcRoute(_) | Object::TlsRoute(_) => {
                route_status(status, generation, &self.controller_name)?
            }
            _ => return None,
        };
        Some((key, desired))
    }

    /// Reads the object, merges what others own, keeps unchanged conditions' timestamps, and
    /// applies the result unless the API server holds it already.
    async fn write(&self, key: &ObjectKey, desired: &Value) -> Result<(), kube::Error> {
        let Some(resource) = self.resources.get(&key.kind) else {
            return Ok(());
        };
        let api: Api<DynamicObject> = if key.kind.is_cluster_scoped() {
            Api::all_with(self.client.clone(), resource)
        } else {
            Api::namespaced_with(self.client.clone(), &key.namespace, resource)
        };
        let current = api.get_status(&key.name).await?;
        let current_status = current.data.get("status").cloned().unwrap_or(Value::Null);
        let mut status = desired.clone();
        if let Some(parents) = status.get_mut("parents").and_then(Value::as_array_mut) {
            // Others' entries first, as they were; then ours.
            let others: Vec<Value> = current_status["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parent| parent["controllerName"] != self.controller_name.as_str())
                .cloned()
                .collect();
            let ours = std::mem::take(parents);
            *parents = others.into_iter().chain(ours).collect();
        }
        stamp(&mut status, &current_status, &now());
        if without_timestamps(&current_status) == without_timestamps(&status) {
            return Ok(());
        }
        let mut metadata = json!({"name": key.name});
        if !key.namespace.is_empty() {
            metadata["namespace"] = json!(key.namespace);
        }
        if let Some(version) = &current.metadata.resource_version {
            metadata["resourceVersion"] = json!(version);
        }
        let patch = json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": metadata,
            "status": status,
        });
        api.patch_status(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        tracing::debug!(object = %key, "status written");
        Ok(())
    }
}

/// Conditions as the API shows them (see [`condition`]).
fn conditions(conditions: &[Condition], generation: i64) -> Value {
    Value::Array(
        conditions
            .iter()
            .map(|c| condition(c, generation))
            .collect(),
    )
}

/// A Gateway's `status`: conditions, listeners, and the addresses clients reach it on.
fn gateway_status(status: &ObjectStatus, generation: i64) -> Value {
    // The wildcard bind addresses (a Gateway without spec.addresses) are where we listen, not
    // where clients reach us: not written.
    let addresses: Vec<Value> = status
        .addresses
        .iter()
        .filter_map(|address| match address.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_unspecified() => None,
            Ok(_) => Some(json!({"type": "IPAddress", "value": address})),
            Err(_) => Some(json!({"type": "Hostname", "value": address})),
        })
        .collect();
    let listeners: Vec<Value> = status
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
        .collect();
    let mut desired = json!({
        "conditions": conditions(&status.conditions, generation),
        "listeners": listeners,
    });
    if !addresses.is_empty() {
        desired["addresses"] = Value::Array(addresses);
    }
    desired
}

/// A route's `status` as far as it is ours: the `parents` entries of `controller_name`; `None`
/// when it has none.
fn route_status(status: &ObjectStatus, generation: i64, controller_name: &str) -> Option<Value> {
    let parents: Vec<Value> = status
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
        .collect();
    (!parents.is_empty()).then(|| json!({"parents": parents}))
}

/// The group of a kind name as compile spells it.
fn kind_group(kind: &str) -> &'static str {
    match kind {
        "GatewayClass" | "Gateway" | "HTTPRoute" | "GRPCRoute" | "TLSRoute" => {
            model::kind::GATEWAY_GROUP
        }
        _ => "",
    }
}

/// A condition as the API shows it, without its `lastTransitionTime` (see [`stamp`]).
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

/// Gives every condition in `status` a `lastTransitionTime`: the one of the same condition
/// (same place, same type) in `current` when its status did not change, else `now`.
fn stamp(status: &mut Value, current: &Value, now: &str) {
    match status {
        Value::Object(map) => {
            if map.contains_key("conditions") {
                let previous: BTreeMap<String, (Value, Value)> = current["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        Some((
                            c["type"].as_str()?.to_owned(),
                            (c["status"].clone(), c["lastTransitionTime"].clone()),
                        ))
                    })
                    .collect();
                if let Some(conditions) = map.get_mut("conditions").and_then(Value::as_array_mut) {
                    for condition in conditions {
                        let time = match condition["type"].as_str().and_then(|t| previous.get(t)) {
                            Some((status, time))
                                if *status == condition["status"] && time.is_string() =>
                            {
                                time.clone()
                            }
                            _ => json!(now),
                        };
                        condition["lastTransitionTime"] = time;
                    }
                }
            }
            for (field, value) in map.iter_mut() {
                if field == "conditions" {
                    continue;
                }
                stamp(value, &current[field.as_str()], now);
            }
        }
        Value::Array(items) => {
            for item in items {
                // Lists are matched by their map key: `name` (listeners) or `parentRef` (parents).
                let matching = current
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|candidate| {
                        (item.get("name").is_some() && candidate.get("name") == item.get("name"))
                            || (item.get("parentRef").is_some()
                                && candidate.get("parentRef") == item.get("parentRef")
                                && candidate.get("controllerName") == item.get("controllerName"))
                    })
                    .cloned()
                    .unwrap_or(Value::Null);
                stamp(item, &matching, now);
            }
        }
        _ => {}
    }
}

/// `value` without any `lastTransitionTime`, for comparing statuses.
fn without_timestamps(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(field, _)| *field != "lastTransitionTime")
                .map(|(field, value)| (field.clone(), without_timestamps(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_timestamps).collect()),
        other => other.clone(),
    }
}

/// The current time as RFC 3339 (seconds), as `metav1.Time` is written.
fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map_or_else(
            |_| k8s_openapi::jiff::Timestamp::now().to_string(),
            |t| t.to_string(),
        )
}

#[cfg(test)]
mod tests;
