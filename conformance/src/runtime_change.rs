//! Changes some tests make to the cluster while they run, which static manifests cannot express.
//!
//! The runner applies them by rewriting the gateway's config file (the gateway watches it) right before the
//! case that depends on them; such tests run their cases one after another.
//!
//! - `HTTPRouteReferenceGrant`: the suite deletes the test's ReferenceGrant after the first case, and the second
//!   case (the same request, expecting 500) checks that the cross-namespace backendRef is no longer allowed.
//!   `cases.json` carries no note for this; the second case cannot pass any other way.

use serde_json::Value;

use crate::cases::TestSpec;
use crate::manifests::{kind, name, namespace};

/// Removing objects from the config before a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deletion {
    /// The index of the first case that must see the change.
    pub(crate) before_case: usize,
    /// The kind of the objects to remove.
    pub(crate) kind: &'static str,
    /// Only objects from this manifest (relative to `manifests/`) are removed.
    pub(crate) manifest: String,
}

/// The deletions `test` needs, in case order (none for most tests).
pub(crate) fn deletions(test: &TestSpec) -> Vec<Deletion> {
    match test.name.as_str() {
        "HTTPRouteReferenceGrant" if test.cases.len() > 1 => test
            .manifests
            .iter()
            .map(|manifest| Deletion {
                before_case: 1,
                kind: "ReferenceGrant",
                manifest: manifest.clone(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Removes from `documents` the objects of kind `deletion.kind` that appear in `manifest_objects` (the
/// objects read from `deletion.manifest`), matching by namespace and name. Returns how many were removed.
pub(crate) fn apply(
    deletion: &Deletion,
    manifest_objects: &[Value],
    documents: &mut Vec<Value>,
) -> usize {
    let doomed: Vec<(String, String)> = manifest_objects
        .iter()
        .filter(|object| kind(object) == deletion.kind)
        .map(|object| (namespace(object).to_owned(), name(object).to_owned()))
        .collect();
    let before = documents.len();
    documents.retain(|object| {
        kind(object) != deletion.kind
            || !doomed.contains(&(namespace(object).to_owned(), name(object).to_owned()))
    });
    before - documents.len()
}
