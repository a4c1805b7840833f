//! What the writer has been handed: the status changes the controller hands over
//! ([`Handed`], summed until the writer task takes them), and the writer's own view of every
//! object's status with the objects that may need writing ([`Known`]). No I/O.
//!
//! A full report replaces everything; an incremental step's change touches only its objects,
//! so a route edit costs the writer that route (and the Gateways counting it), not a pass over
//! every object. An object deleted is gone when its step says so (routes) or at the next full
//! report (a Gateway deleted in an incremental step keeps its last status here until then; it
//! is never written, the store no longer holding it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use compile::{ObjectStatus, StatusChange};
use model::{Kind, ObjectKey, Store};

use super::desired::kind_of;

#[cfg(test)]
mod tests;

/// Changes handed over and not yet taken by the writer task.
#[derive(Default)]
pub(super) struct Handed {
    /// A full report came: `changed` holds every object, and those not in it are gone.
    is_full: bool,
    /// Per object its new status, or `None` when it has none any more.
    changed: BTreeMap<ObjectKey, Option<ObjectStatus>>,
    /// The store of the latest change.
    store: Option<Arc<Store>>,
}

impl Handed {
    /// Adds `change`, compiled from `store`, to what is waiting.
    pub(super) fn add(&mut self, change: StatusChange, store: Arc<Store>) {
        match change {
            StatusChange::Full(report) => {
                self.is_full = true;
                self.changed = report
                    .objects
                    .into_iter()
                    .filter_map(|status| Some((key_of(&status)?, Some(status))))
                    .collect();
            }
            StatusChange::Partial {
                statuses,
                recompiled,
            } => {
                // Gone unless the step has a status for it (inserted after, so it wins).
                for label in &recompiled {
                    if let Some(key) = parse_label(label) {
                        self.changed.insert(key, None);
                    }
                }
                for status in statuses {
                    if let Some(key) = key_of(&status) {
                        self.changed.insert(key, Some(status));
                    }
                }
            }
        }
        self.store = Some(store);
    }
}

/// Every object's status as handed over (the sum of the changes), the store of the latest,
/// and the objects whose status may differ from what was last written.
pub(super) struct Known {
    /// Status per object.
    pub(super) statuses: BTreeMap<ObjectKey, ObjectStatus>,
    /// Objects to compare with what was written, in the next round.
    pub(super) dirty: BTreeSet<ObjectKey>,
    /// The store the latest change was compiled from (generations, classes).
    pub(super) store: Arc<Store>,
}

impl Default for Known {
    fn default() -> Known {
        Known {
            statuses: BTreeMap::new(),
            dirty: BTreeSet::new(),
            store: Arc::new(Store::new()),
        }
    }
}

impl Known {
    /// Takes `handed` in: its objects become dirty. Returns the objects that are gone, for the
    /// caller to forget what it wrote of them.
    pub(super) fn take(&mut self, handed: Handed) -> Vec<ObjectKey> {
        if let Some(store) = handed.store {
            self.store = store;
        }
        if handed.is_full {
            let statuses: BTreeMap<ObjectKey, ObjectStatus> = handed
                .changed
                .into_iter()
                .filter_map(|(key, status)| Some((key, status?)))
                .collect();
            let gone = self
                .statuses
                .keys()
                .filter(|key| !statuses.contains_key(*key))
                .cloned()
                .collect();
            self.statuses = statuses;
            self.dirty = self.statuses.keys().cloned().collect();
            return gone;
        }
        let mut gone = Vec::new();
        for (key, status) in handed.changed {
            match status {
                Some(status) => {
                    self.statuses.insert(key.clone(), status);
                    self.dirty.insert(key);
                }
                None => {
                    self.statuses.remove(&key);
                    self.dirty.remove(&key);
                    gone.push(key);
                }
            }
        }
        gone
    }

    /// Marks every object dirty (a new leader compares everything with the API server).
    pub(super) fn mark_all(&mut self) {
        self.dirty = self.statuses.keys().cloned().collect();
    }

    /// Marks every object of `kind` dirty (found by range: keys sort by kind first).
    pub(super) fn mark_kind(&mut self, kind: Kind) {
        let first = ObjectKey::new(kind, "", "");
        let keys = self
            .statuses
            .range(first..)
            .map(|(key, _)| key)
            .take_while(|key| key.kind == kind)
            .cloned();
        self.dirty.extend(keys);
    }
}

/// The object a `Kind namespace/name` label ([`compile::Step::recompiled`]) names.
fn parse_label(label: &str) -> Option<ObjectKey> {
    let (kind, path) = label.split_once(' ')?;
    let kind = kind_of(kind)?;
    let (namespace, name) = if kind.is_cluster_scoped() {
        ("", path)
    } else {
        path.split_once('/')?
    };
    Some(ObjectKey::new(kind, namespace, name))
}

/// The object `status` is about.
pub(super) fn key_of(status: &ObjectStatus) -> Option<ObjectKey> {
    Some(ObjectKey::new(
        kind_of(status.kind)?,
        &status.namespace,
        &status.name,
    ))
}
