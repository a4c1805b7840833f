//! Checks that the status the gateway wrote back to the API server equals what `portcullis check` prints for
//! the same objects.
//!
//! "The same objects" are the test's objects as the API server holds them (read back after the cases, so with
//! the API server's defaults), without `status` and server-set metadata, written to a temporary config
//! directory for `portcullis check --json`. For every object `check` reports, the status must hold, compared
//! after sorting (entries by identity, conditions by type):
//!
//! - object conditions (GatewayClass, Gateway, ListenerSet, ...): type, status, reason and message;
//! - listeners: name, `attachedRoutes`, `supportedKinds`, and their conditions as above;
//! - `parents` (routes) and `ancestors` (policies): the entries of our controller, by `parentRef` /
//!   `ancestorRef`, with their conditions as above (other controllers' entries are not ours to compare);
//! - and every condition written must carry `observedGeneration` equal to the object's `metadata.generation`.
//!
//! Left out: `lastTransitionTime` (a time), Gateway `addresses` (what `check` prints are the bound addresses;
//! the writer leaves out wildcard ones, and where clients reach a Gateway is the status writer's own rule) and
//! GatewayClass `supportedFeatures` (not part of `check`'s report).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::cluster::{Cluster, describe};
use crate::config_dir;
use crate::manifests::{CONTROLLER_NAME, kind, name, namespace};

/// How long the written status may take to equal `check`'s (the writer runs a round at most every 250 ms, after
/// the gateway's Lease is taken).
const DEADLINE: Duration = Duration::from_secs(15);

/// Waits until the status written for `documents` equals `portcullis check`'s (run with `binary`) and returns
/// how many objects were compared; the error lists the differences still there at the deadline.
pub(crate) async fn compare(
    cluster: &Cluster,
    binary: &Path,
    documents: &[Value],
) -> anyhow::Result<usize> {
    let stored = read_back(cluster, documents).await?;
    let expected = expected_status(binary, &stored).await?;
    let deadline = Instant::now() + DEADLINE;
    loop {
        let stored = read_back(cluster, documents).await?;
        let differences = differences(&expected, &stored);
        if differences.is_empty() {
            return Ok(expected.len());
        }
        if Instant::now() >= deadline {
            let lines: Vec<&str> = differences.iter().map(|(_, line)| line.as_str()).collect();
            bail!(
                "the status written back differs from `portcullis check` after {DEADLINE:?} ({} differences): {}",
                lines.len(),
                lines.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `(kind, namespace, name)` of an object (namespace "" when cluster-scoped in `check`'s report).
type ObjectId = (String, String, String);

/// Every document as the API server holds it now (status included), by identity.
async fn read_back(
    cluster: &Cluster,
    documents: &[Value],
) -> anyhow::Result<Vec<(ObjectId, Value)>> {
    let mut stored = Vec::new();
    for document in documents {
        let object = cluster
            .get(document)
            .await?
            .with_context(|| format!("{} is not in the API server", describe(document)))?;
        let is_namespaced = object.pointer("/metadata/namespace").is_some();
        let id = (
            kind(document).to_owned(),
            if is_namespaced {
                namespace(document).to_owned()
            } else {
                String::new()
            },
            name(document).to_owned(),
        );
        stored.push((id, object));
    }
    Ok(stored)
}

/// What `portcullis check --json` reports for `stored` (status and server metadata removed), canonical, by
/// identity; objects it reports nothing comparable for are left out.
async fn expected_status(
    binary: &Path,
    stored: &[(ObjectId, Value)],
) -> anyhow::Result<Vec<(ObjectId, Value)>> {
    let inputs: Vec<Value> = stored
        .iter()
        .map(|(_, object)| without_server_fields(object))
        .collect();
    let directory = config_dir::write(&inputs)?;
    let mut command = std::process::Command::new(binary);
    command
        .args(["check", "--json", "--config"])
        .arg(directory.path());
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .context("the `portcullis check` task failed")?
        .with_context(|| format!("running {} check", binary.display()))?;
    // `check` exits 1 when an object is unhealthy, which the suite's invalid-reference tests mean to be.
    let report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "`portcullis check --json` printed no JSON ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    // A file `check` cannot read would leave its objects out, and the comparison with them.
    let unread: Vec<&Value> = array(&report, "files")
        .filter_map(|file| file.get("error").filter(|error| !error.is_null()))
        .collect();
    if !unread.is_empty() {
        bail!(
            "`portcullis check` could not read the objects as the API server holds them: {unread:?}"
        );
    }
    let objects = report
        .get("objects")
        .and_then(Value::as_array)
        .context("`portcullis check --json` printed no `objects`")?;
    Ok(objects
        .iter()
        .filter_map(|object| {
            let id = (
                string(object, "kind"),
                string(object, "namespace"),
                string(object, "name"),
            );
            let canonical = canonical(object);
            (canonical != json!({})).then_some((id, canonical))
        })
        .collect())
}

/// A copy of `object` without `status` and the metadata the API server sets.
fn without_server_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(fields) = copy.as_object_mut() {
        fields.remove("status");
    }
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
        ] {
            metadata.remove(field);
        }
    }
    copy
}

/// Per expected object, what the stored one's status lacks or has differently.
fn differences(
    expected: &[(ObjectId, Value)],
    stored: &[(ObjectId, Value)],
) -> Vec<(ObjectId, String)> {
    let mut differences = Vec::new();
    for (id, wanted) in expected {
        let label = format!("{} {}/{}", id.0, id.1, id.2);
        let Some((_, object)) = stored.iter().find(|(stored_id, _)| stored_id == id) else {
            differences.push((
                id.clone(),
                format!("{label}: `check` reports it, the API server has no such object"),
            ));
            continue;
        };
        let status = object.get("status").cloned().unwrap_or(Value::Null);
        let written = canonical(&status);
        for field in ["conditions", "listeners", "parents", "ancestors"] {
            if wanted.get(field) != written.get(field) {
                differences.push((
                    id.clone(),
                    format!(
                        "{label}: {field}: written {}, `check` {}",
                        written.get(field).unwrap_or(&Value::Null),
                        wanted.get(field).unwrap_or(&Value::Null)
                    ),
                ));
            }
        }
        let generation = object
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(Value::Null);
        if let Some(stale) = stale_generation(&status, &generation) {
            differences.push((id.clone(), format!(
                "{label}: observedGeneration {stale} on a condition, metadata.generation {generation}"
            )));
        }
    }
    differences
}

/// The first `observedGeneration` of a condition of ours that is not `generation` (a missing one counts).
fn stale_generation(status: &Value, generation: &Value) -> Option<Value> {
    let ours = array(status, "parents")
        .chain(array(status, "ancestors"))
        .filter(|entry| {
            entry.get("controllerName").and_then(Value::as_str) == Some(CONTROLLER_NAME)
        });
    let mut conditions: Vec<&Value> = array(status, "conditions").collect();
    for holder in array(status, "listeners").chain(ours) {
        conditions.extend(array(holder, "conditions"));
    }
    conditions.into_iter().find_map(|condition| {
        let observed = condition
            .get("observedGeneration")
            .cloned()
            .unwrap_or(Value::Null);
        (observed != *generation).then_some(observed)
    })
}

/// The comparable part of a status (written) or of an object of `check`'s report: only fields present and
/// non-empty, entries sorted. See the module doc for what is compared.
fn canonical(status: &Value) -> Value {
    let mut canonical = Map::new();
    let own = conditions(status.get("conditions"));
    if !own.is_empty() {
        canonical.insert("conditions".to_owned(), Value::Array(own));
    }
    let mut listeners: Vec<Value> = array(status, "listeners")
        .map(|listener| {
            json!({
                "name": listener.get("name"),
                "attachedRoutes": listener.get("attachedRoutes"),
                "supportedKinds": listener.get("supportedKinds").map(without_nulls),
                "conditions": conditions(listener.get("conditions")),
            })
        })
        .collect();
    listeners.sort_by_key(Value::to_string);
    if !listeners.is_empty() {
        canonical.insert("listeners".to_owned(), Value::Array(listeners));
    }
    for (field, reference) in [("parents", "parentRef"), ("ancestors", "ancestorRef")] {
        let mut entries: Vec<Value> = array(status, field)
            .filter(|entry| {
                entry.get("controllerName").and_then(Value::as_str) == Some(CONTROLLER_NAME)
            })
            .map(|entry| {
                json!({
                    reference: entry.get(reference).map(without_nulls),
                    "conditions": conditions(entry.get("conditions")),
                })
            })
            .collect();
        entries.sort_by_key(Value::to_string);
        if !entries.is_empty() {
            canonical.insert(field.to_owned(), Value::Array(entries));
        }
    }
    Value::Object(canonical)
}

/// `[type, status, reason, message]` of each condition, sorted by type.
fn conditions(list: Option<&Value>) -> Vec<Value> {
    let mut conditions: Vec<Value> = list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|condition| {
            json!([
                condition.get("type"),
                condition.get("status"),
                condition.get("reason"),
                condition.get("message"),
            ])
        })
        .collect();
    conditions.sort_by_key(Value::to_string);
    conditions
}

/// The entries of array `field` of `value` (none when missing).
fn array<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// `value` with every `null` member removed, at any depth.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(_, field)| !field.is_null())
                .map(|(key, field)| (key.clone(), without_nulls(field)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// A string field of `value` ("" when missing).
fn string(value: &Value, field: &str) -> String {
    value
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

#[cfg(test)]
mod tests;
