//! Changes some tests make to the cluster while they run, which static manifests cannot express.
//!
//! The runner applies them right before the case that depends on them (by rewriting the gateway's config file,
//! which the gateway watches, or through the API in Kubernetes mode); such tests run their cases one after
//! another.
//!
//! - `HTTPRouteReferenceGrant`: the suite deletes the test's ReferenceGrant after the first case, and the second
//!   case (the same request, expecting 500) checks that the cross-namespace backendRef is no longer allowed.
//!   `cases.json` carries no note for this; the second case cannot pass any other way.
//! - Tests with `runtime_changes` in `cases.json` (the TCPRoute and UDPRoute tests): deleting one object (a
//!   ReferenceGrant), or creating one the Go test builds in code (the newer route of the multiple-routes tests,
//!   after a pause so that it is strictly newer: `creationTimestamp` has second precision).

use std::time::Duration;

use serde_json::Value;

use crate::cases::{ObjectRefSpec, TestSpec};
use crate::manifests::{kind, name, namespace};

/// One change to the test's objects before a case.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RuntimeChange {
    /// The index of the first case that must see the change.
    pub(crate) before_case: usize,
    /// How long to wait before making it.
    pub(crate) pause: Duration,
    /// What changes.
    pub(crate) action: Action,
}

/// What a [`RuntimeChange`] does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Remove the objects of this kind that appear in this manifest (relative to `manifests/`).
    DeleteFromManifest {
        /// The kind of the objects to remove.
        kind: &'static str,
        /// Only objects from this manifest are removed.
        manifest: String,
    },
    /// Remove one object.
    Delete(ObjectRefSpec),
    /// Add one object.
    Create(Value),
}

/// The changes `test` needs, in case order (none for most tests).
pub(crate) fn changes(test: &TestSpec) -> Vec<RuntimeChange> {
    let mut changes: Vec<RuntimeChange> = match test.name.as_str() {
        "HTTPRouteReferenceGrant" if test.cases.len() > 1 => test
            .manifests
            .iter()
            .map(|manifest| RuntimeChange {
                before_case: 1,
                pause: Duration::ZERO,
                action: Action::DeleteFromManifest {
                    kind: "ReferenceGrant",
                    manifest: manifest.clone(),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    for change in &test.runtime_changes {
        // `Suite::load` checked that exactly one of the two is set.
        let action = match (&change.delete, &change.create) {
            (Some(reference), _) => Action::Delete(reference.clone()),
            (None, Some(object)) => Action::Create(object.clone()),
            (None, None) => continue,
        };
        changes.push(RuntimeChange {
            before_case: change.before_case,
            pause: Duration::from_secs(change.pause_seconds),
            action,
        });
    }
    changes.sort_by_key(|change| change.before_case);
    changes
}

/// Removes from `documents` the objects of kind `doomed_kind` that appear in `manifest_objects` (the objects
/// read from the change's manifest), matching by namespace and name. Returns how many were removed.
pub(crate) fn delete_from_manifest(
    doomed_kind: &str,
    manifest_objects: &[Value],
    documents: &mut Vec<Value>,
) -> usize {
    let doomed: Vec<(String, String)> = manifest_objects
        .iter()
        .filter(|object| kind(object) == doomed_kind)
        .map(|object| (namespace(object).to_owned(), name(object).to_owned()))
        .collect();
    let before = documents.len();
    documents.retain(|object| {
        kind(object) != doomed_kind
            || !doomed.contains(&(namespace(object).to_owned(), name(object).to_owned()))
    });
    before - documents.len()
}

/// Removes the object `reference` names from `documents`. Returns how many were removed (0 or 1).
pub(crate) fn delete(reference: &ObjectRefSpec, documents: &mut Vec<Value>) -> usize {
    let before = documents.len();
    documents.retain(|object| {
        kind(object) != reference.kind
            || namespace(object) != reference.namespace
            || name(object) != reference.name
    });
    before - documents.len()
}
