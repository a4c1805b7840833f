//! What the file source publishes: [`SourceUpdate`] and its per-file [`FileReport`]s.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

/// One file's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The file, as found below the configured path.
    pub path: PathBuf,
    /// How many objects this file contributes to the store (its last good parse).
    pub objects: usize,
    /// `apiVersion kind name` of each document skipped because we do not read its kind.
    pub skipped: Vec<String>,
    /// Why the current content could not be used. The file's last good objects (if any) are
    /// still in the store.
    pub error: Option<String>,
    /// Non-fatal problems, such as an object that another file also defines.
    pub warnings: Vec<String>,
}

/// What the source publishes after every effective change.
#[derive(Clone, Debug)]
pub struct SourceUpdate {
    /// Every object from every file. Later files (by path) win over earlier ones on duplicate keys.
    pub store: Arc<model::Store>,
    /// One report per file, sorted by path.
    pub files: Vec<FileReport>,
    /// Starts at 1 for the initial load and grows by one with each published update.
    pub generation: u64,
    /// Kinds whose objects differ from the previous update; on the first update, every kind
    /// that has objects. Empty when only the file reports changed.
    pub changed_kinds: BTreeSet<model::Kind>,
    /// The key of every object that differs (added, removed, changed) from the previous
    /// update's store, each once, when the source knows them; `None` when it does not (the
    /// first update). It may also name an object that changed and changed back between two
    /// updates (the Kubernetes mirror does): that costs a recompile, never a missed change. A consumer that applied the previous update can use them instead of
    /// comparing the two stores, whose cost grows with the config.
    pub changed: Option<Arc<[model::ObjectKey]>>,
}
