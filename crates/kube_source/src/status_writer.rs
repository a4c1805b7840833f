//! [`StatusWriter`]: writes the status `compile` computed back to the API server.
//!
//! Only for objects of our GatewayClasses: GatewayClasses whose `controllerName` is ours
//! (conditions, `supportedFeatures`), their Gateways (conditions, listeners, addresses,
//! `attachedListenerSets`) and ListenerSets (conditions, listeners), the `status.parents`
//! entries of routes and the `status.ancestors` entries of policies whose `controllerName` is
//! ours (other controllers' entries are kept as they are). What we own of each object is built
//! in `desired.rs`. Through the status subresource with server-side apply (field manager
//! `portcullis`), with `observedGeneration` on every condition, and only when something
//! changed: a status equal to the one last written, or to the one the API server already holds
//! (timestamps aside), is not written. A condition keeps its `lastTransitionTime` while its
//! status stays the same.
//!
//! `status.parents` and `status.ancestors` are atomic lists in the Gateway API CRDs: applying
//! one replaces the whole list. So the object is read first, other controllers' entries are
//! carried over, and the apply names the `resourceVersion` read; a concurrent write makes it
//! fail with a conflict, and the object is written again on the next round. When a route or
//! policy no longer has entries of ours, the entries this writer wrote are removed; entries a
//! previous leader wrote for an object that lost them meanwhile are not looked for (that would
//! be a read of every route in the cluster at each takeover).
//!
//! Gateways without `spec.addresses` report the addresses of the `--gateway-service` Service
//! when one is given (`gateway_service.rs`); a change of those addresses runs a round.
//!
//! The controller hands over what changed ([`StatusChange`]: every status after a full
//! compile, only those an incremental step compiled again otherwise), summed until the task
//! takes them (`pending.rs`). A round looks only at the objects changed since the last one, so
//! a route edit costs that route and the Gateways counting it, not a pass over every object.
//! Rounds are coalesced: at least [`MIN_INTERVAL`] apart. A round with failed writes (a
//! conflict, the API server away) is run again after 1 s, doubling up to 30 s, or sooner when a
//! new change comes. It writes only while its replica holds the Lease (`lease.rs`); a new
//! leader compares every object with the API server again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use compile::StatusChange;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use model::{Kind, ObjectKey, Store};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::gateway_service::{GatewayService, watch_addresses};

mod desired;
mod pending;
#[cfg(test)]
mod tests;

use desired::{Owner, SHARED_LISTS, claims_nothing, desired, merged_list};
use pending::{Handed, Known};

/// The least time between two rounds of writes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// The first delay before failed writes are tried again; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest delay before failed writes are tried again.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "portcullis";

/// The `--gateway-service` Service's addresses, once listed (see `gateway_service.rs`).
type ServiceAddresses = watch::Receiver<Option<Vec<Value>>>;

/// What the status writer writes for whom.
#[derive(Clone, Debug)]
pub struct StatusOptions {
    /// Our `controllerName`: the GatewayClasses whose objects are written.
    pub controller_name: String,
    /// The Service whose addresses Gateways without `spec.addresses` report; `None`: those
    /// Gateways report the addresses they bind (none for the wildcard addresses).
    pub gateway_service: Option<GatewayService>,
}

/// Hands status changes to the writer task; dropping it stops the task.
pub struct StatusWriter {
    handed: Arc<Mutex<Handed>>,
    wake: watch::Sender<()>,
}

impl StatusWriter {
    /// Starts the writer task (and the watch of the gateway Service, if any). `resources` are
    /// the served API resources by kind (from discovery). Writes while `is_leader` is true.
    /// Must run inside a tokio runtime.
    pub(crate) fn start(
        client: kube::Client,
        resources: BTreeMap<Kind, ApiResource>,
        options: StatusOptions,
        is_leader: watch::Receiver<bool>,
    ) -> StatusWriter {
        let (wake, woken) = watch::channel(());
        let handed = Arc::new(Mutex::new(Handed::default()));
        let service_addresses = options
            .gateway_service
            .map(|service| watch_addresses(client.clone(), service));
        let task = Task {
            client,
            resources,
            controller_name: options.controller_name,
            handed: Arc::clone(&handed),
            known: Known::default(),
            written: BTreeMap::new(),
        };
        tokio::spawn(task.run(woken, is_leader, service_addresses));
        StatusWriter { handed, wake }
    }

    /// Hands over a status change compiled from `store` (changes are summed until the writer
    /// takes them, so none is lost). Never blocks on I/O.
    pub fn publish(&self, change: StatusChange, store: Arc<Store>) {
        lock(&self.handed).add(change, store);
        self.wake.send_replace(());
    }
}

/// The handed-over changes; plain data, consistent at every step, so a poisoned lock is
/// still usable.
fn lock(handed: &Mutex<Handed>) -> std::sync::MutexGuard<'_, Handed> {
    handed
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Task {
    client: kube::Client,
    resources: BTreeMap<Kind, ApiResource>,
    controller_name: String,
    /// Changes handed over, not yet taken into `known`.
    handed: Arc<Mutex<Handed>>,
    /// Every object's status, and which may need writing.
    known: Known,
    /// The status last written (or found) per object, without timestamps.
    written: BTreeMap<ObjectKey, Value>,
}

impl Task {
    /// Writes what changed while `is_leader` says so, again when the gateway Service's
    /// addresses change; ends when a channel closes.
    async fn run(
        mut self,
        mut woken: watch::Receiver<()>,
        mut is_leader: watch::Receiver<bool>,
        mut service_addresses: Option<ServiceAddresses>,
    ) {
        let mut retry = RETRY_FIRST;
        let mut has_failed = false;
        let mut seen = Seen::default();
        loop {
            tokio::select! {
                changed = woken.changed() => if changed.is_err() { return },
                changed = is_leader.changed() => if changed.is_err() { return },
                changed = async { service_addresses.as_mut()?.changed().await.ok() },
                    if service_addresses.is_some() =>
                {
                    if changed.is_none() {
                        return;
                    }
                }
                // Failed writes are tried again after a backoff, or sooner with a new change.
                () = tokio::time::sleep(retry), if has_failed => retry = (retry * 2).min(RETRY_MAX),
            }
            let handed = std::mem::take(&mut *lock(&self.handed));
            for gone in self.known.take(handed) {
                self.written.remove(&gone);
            }
            let is_leader_now = *is_leader.borrow_and_update();
            let addresses = service_addresses
                .as_mut()
                .map(|addresses| addresses.borrow_and_update().clone());
            let news = seen.note(is_leader_now, &addresses);
            if news.became_leader {
                // Another replica may have written meanwhile: compare with the API again.
                self.written.clear();
                self.known.mark_all();
            }
            if news.addresses_changed {
                self.known.mark_kind(Kind::Gateway);
            }
            if !is_leader_now {
                has_failed = false;
                continue;
            }
            has_failed = !self.write_round(addresses.as_ref()).await;
            if !has_failed {
                retry = RETRY_FIRST;
            }
            tokio::time::sleep(MIN_INTERVAL).await;
        }
    }

    /// Writes the dirty objects' status where it changed; `false` when some write failed
    /// (those stay dirty). `service` is `None` without `--gateway-service`, else the
    /// Service's addresses once listed: until then Gateways wait, so that they are not
    /// written twice at start.
    async fn write_round(&mut self, service: Option<&Option<Vec<Value>>>) -> bool {
        let dirty = std::mem::take(&mut self.known.dirty);
        let owner = Owner {
            controller_name: &self.controller_name,
            service_addresses: service.and_then(Option::as_deref),
        };
        let mut changed = Vec::new();
        for key in dirty {
            if key.kind == Kind::Gateway && service.is_some_and(Option::is_none) {
                self.known.dirty.insert(key);
                continue;
            }
            let Some(status) = self.known.statuses.get(&key) else {
                continue;
            };
            let Some((_, desired)) = desired(status, &self.known.store, &owner) else {
                // Not ours, or no longer in the store: nothing to write.
                self.written.remove(&key);
                continue;
            };
            if self.written.get(&key) == Some(&desired)
                // Nothing of ours, and nothing written by us to remove: no read needed.
                || (claims_nothing(&desired) && !self.written.contains_key(&key))
            {
                continue;
            }
            changed.push((key, desired));
        }
        let mut is_complete = true;
        let mut count = 0;
        for (key, desired) in changed {
            match self.write(&key, &desired).await {
                Ok(is_written) => {
                    count += usize::from(is_written);
                    self.written.insert(key, desired);
                }
                Err(error) => {
                    tracing::warn!(object = %key, %error, "status not written; retried with backoff");
                    self.written.remove(&key);
                    self.known.dirty.insert(key);
                    is_complete = false;
                }
            }
        }
        if count > 0 {
            tracing::info!(objects = count, "status written");
        }
        is_complete
    }

    /// Reads the object, merges what others own, keeps unchanged conditions' timestamps, and
    /// applies the result unless the API server holds it already. `true` when it wrote.
    async fn write(&self, key: &ObjectKey, desired: &Value) -> Result<bool, kube::Error> {
        let Some(resource) = self.resources.get(&key.kind) else {
            return Ok(false);
        };
        let api: Api<DynamicObject> = if key.kind.is_cluster_scoped() {
            Api::all_with(self.client.clone(), resource)
        } else {
            Api::namespaced_with(self.client.clone(), &key.namespace, resource)
        };
        let current = api.get_status(&key.name).await?;
        let current_status = current.data.get("status").cloned().unwrap_or(Value::Null);
        let mut status = desired.clone();
        for list in SHARED_LISTS {
            if let Some(entries) = status.get_mut(list).and_then(Value::as_array_mut) {
                let ours = std::mem::take(entries);
                *entries = merged_list(list, &current_status, ours, &self.controller_name);
            }
        }
        stamp(&mut status, &current_status, &now());
        if without_timestamps(&current_status) == without_timestamps(&status)
            // An absent list and an empty one are the same status.
            || is_empty_as(&current_status, &status)
        {
            return Ok(false);
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
        tracing::debug!(object = %key, "status of one object written");
        Ok(true)
    }
}

/// What the writer last saw of its leadership and of the gateway Service's addresses.
///
/// Compared after every wake-up, whichever `select!` branch woke it: a wake-up by a handed
/// change reads (`borrow_and_update`) a leadership or address change that arrived at the same
/// time, whose own branch then never fires; acting only in that branch lost such changes (a
/// load balancer assigned while a route changed left Gateways with the old addresses).
#[derive(Debug, Default)]
struct Seen {
    is_leader: bool,
    /// `None` before the first look; then `None` without `--gateway-service`, else the
    /// Service's addresses (`None` until listed).
    addresses: Option<Option<Option<Vec<Value>>>>,
}

/// What changed since the previous look ([`Seen::note`]).
#[derive(Debug, PartialEq, Eq)]
struct News {
    /// This replica holds the Lease now and did not before.
    became_leader: bool,
    /// The gateway Service's addresses differ from the previous look (or this is the first).
    addresses_changed: bool,
}

impl Seen {
    /// Notes the current leadership and addresses; says what changed.
    fn note(&mut self, is_leader: bool, addresses: &Option<Option<Vec<Value>>>) -> News {
        let became_leader = is_leader && !self.is_leader;
        self.is_leader = is_leader;
        let addresses_changed = self.addresses.as_ref() != Some(addresses);
        if addresses_changed {
            self.addresses = Some(addresses.clone());
        }
        News {
            became_leader,
            addresses_changed,
        }
    }
}

/// Whether `status` only holds empty shared lists and `current` has none of them (nothing of
/// ours to write, nothing of ours to remove).
fn is_empty_as(current: &Value, status: &Value) -> bool {
    status.as_object().is_some_and(|fields| {
        fields.iter().all(|(field, value)| {
            value.as_array().is_some_and(Vec::is_empty)
                && current[field.as_str()].as_array().is_none_or(Vec::is_empty)
        })
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
                // Lists are matched by their map key: `name` (listeners), `parentRef` (parents)
                // or `ancestorRef` (ancestors), with the controller for the shared lists.
                let matching = current
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|candidate| {
                        (item.get("name").is_some() && candidate.get("name") == item.get("name"))
                            || ["parentRef", "ancestorRef"].iter().any(|reference| {
                                item.get(reference).is_some()
                                    && candidate.get(reference) == item.get(reference)
                                    && candidate.get("controllerName") == item.get("controllerName")
                            })
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
