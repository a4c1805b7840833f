//! [`Mirror`]: the Kubernetes source's store, fed one watch event at a time.
//!
//! It owns the store being built and, per watched stream, the keys that stream holds, whether it
//! has listed once, and the buffer of a list in progress. It does no I/O, so every readiness
//! and relist rule is unit-tested without an API server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use kube::runtime::watcher::Event;
use model::{Kind, Object, ObjectKey, Store};
use source::{FileReport, SourceUpdate, StoreEdit, StoreVersions};

use crate::convert::Converted;
use crate::discovery::WatchedStream;

/// The store the watch events build, and what to publish next.
pub(crate) struct Mirror {
    /// The store as of the last flush: shared with the last published update, so it is
    /// never edited in place.
    store: Arc<Store>,
    /// The changes since the last flush, by key (the latest of each): applied by
    /// [`Mirror::flush`] through `versions`, which makes the next store from a spare one in
    /// proportion to the change rather than copying the store (an EndpointSlice event in a
    /// cluster of 15,000 objects copied all their keys).
    pending: BTreeMap<ObjectKey, Option<Object>>,
    versions: StoreVersions,
    streams: BTreeMap<WatchedStream, StreamState>,
    /// Keys of the objects stored or removed since the last publication (in kind order: the
    /// kinds that changed are read off them).
    changed_keys: BTreeSet<ObjectKey>,
    /// Objects the API server served that are not valid for their kind, with the reason.
    rejected: BTreeMap<ObjectKey, String>,
    rejected_changed: bool,
    generation: u64,
}

/// One stream's bookkeeping.
#[derive(Default)]
struct StreamState {
    /// Whether publishing waits for this stream's first list: the streams the mirror starts
    /// with, and those added before the first publication; not those added later (a referenced
    /// Secret that cannot be read must not stop every other change).
    is_required: bool,
    /// Whether the stream has completed a list (its first sync) at least once.
    is_synced: bool,
    /// The keys of the objects this stream contributes to the store.
    keys: BTreeSet<ObjectKey>,
    /// A list in progress: what it has returned so far (`None`: an invalid object, whose last
    /// good version, if any, is kept). Replaces the stream's objects when the list is done.
    relist: Option<BTreeMap<ObjectKey, Option<Object>>>,
}

impl Mirror {
    /// An empty mirror waiting for the first list of each of `streams`.
    pub(crate) fn new(streams: impl IntoIterator<Item = WatchedStream>) -> Mirror {
        Mirror {
            store: Arc::new(Store::new()),
            pending: BTreeMap::new(),
            versions: StoreVersions::default(),
            streams: streams
                .into_iter()
                .map(|stream| {
                    let state = StreamState {
                        is_required: true,
                        ..StreamState::default()
                    };
                    (stream, state)
                })
                .collect(),
            changed_keys: BTreeSet::new(),
            rejected: BTreeMap::new(),
            rejected_changed: false,
            generation: 0,
        }
    }

    /// Whether every required stream has listed its objects at least once.
    pub(crate) fn is_synced(&self) -> bool {
        self.streams
            .values()
            .all(|state| state.is_synced || !state.is_required)
    }

    /// Whether every stream of a whole kind (not of one object) the mirror started with has
    /// listed once: then the references to Secrets and ConfigMaps are known. A kind watched
    /// later (its CRD installed after the start) does not count: if it can never be listed,
    /// references must still be followed; its objects' references are followed when its list
    /// arrives (a change of its kind).
    pub(crate) fn are_kinds_listed(&self) -> bool {
        self.streams
            .iter()
            .all(|(stream, state)| state.is_synced || stream.name.is_some() || !state.is_required)
    }

    /// The required streams that have not listed yet.
    pub(crate) fn unsynced(&self) -> impl Iterator<Item = &WatchedStream> {
        self.streams
            .iter()
            .filter(|(_, state)| state.is_required && !state.is_synced)
            .map(|(stream, _)| stream)
    }

    /// The store as of the last event.
    pub(crate) fn store(&mut self) -> &Store {
        self.flush();
        &self.store
    }

    /// Applies the pending changes to the store.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let edits: Vec<StoreEdit> = std::mem::take(&mut self.pending).into_iter().collect();
        self.store = self.versions.next(&self.store, edits);
    }

    /// The object stored under `key` as of the last event.
    fn current(&self, key: &ObjectKey) -> Option<Object> {
        match self.pending.get(key) {
            Some(pending) => pending.clone(),
            None => self.store.get(key),
        }
    }

    /// Whether objects of `kind` changed since the last publication.
    pub(crate) fn has_changed(&self, kind: Kind) -> bool {
        self.changed_keys
            .range(ObjectKey::new(kind, "", "")..)
            .next()
            .is_some_and(|key| key.kind == kind)
    }

    /// The streams of single objects (referenced Secrets and ConfigMaps).
    pub(crate) fn object_streams(&self) -> impl Iterator<Item = &WatchedStream> {
        self.streams.keys().filter(|stream| stream.name.is_some())
    }

    /// Adds a stream; publishing waits for its first list only before the first publication.
    pub(crate) fn add_stream(&mut self, stream: WatchedStream) {
        let is_required = self.generation == 0;
        self.streams.entry(stream).or_insert_with(|| StreamState {
            is_required,
            ..StreamState::default()
        });
    }

    /// Removes a stream and the objects it contributed.
    pub(crate) fn remove_stream(&mut self, stream: &WatchedStream) {
        let Some(state) = self.streams.remove(stream) else {
            return;
        };
        for key in &state.keys {
            if self.rejected.remove(key).is_some() {
                self.rejected_changed = true;
            }
            self.remove(key);
        }
    }

    /// Applies one event of `stream`. An event of a stream the mirror was not built with is
    /// ignored.
    pub(crate) fn apply(&mut self, stream: &WatchedStream, event: Event<Converted>) {
        let Some(mut state) = self.streams.remove(stream) else {
            return;
        };
        match event {
            Event::Init => state.relist = Some(BTreeMap::new()),
            Event::InitApply(converted) => {
                let key = converted.key.clone();
                let object = self.accept(converted);
                match &mut state.relist {
                    Some(relist) => {
                        relist.insert(key, object);
                    }
                    // Not announced by `Init`: taken as a plain change.
                    None => {
                        state.keys.insert(key);
                        if let Some(object) = object {
                            self.upsert(object);
                        }
                    }
                }
            }
            Event::InitDone => {
                let listed = state.relist.take().unwrap_or_default();
                for key in &state.keys {
                    if !listed.contains_key(key) {
                        self.remove(key);
                    }
                }
                state.keys = listed.keys().cloned().collect();
                for object in listed.into_values().flatten() {
                    self.upsert(object);
                }
                state.is_synced = true;
            }
            Event::Apply(converted) => {
                state.keys.insert(converted.key.clone());
                if let Some(object) = self.accept(converted) {
                    self.upsert(object);
                }
            }
            Event::Delete(converted) => {
                state.keys.remove(&converted.key);
                if self.rejected.remove(&converted.key).is_some() {
                    self.rejected_changed = true;
                }
                self.remove(&converted.key);
            }
        }
        self.streams.insert(stream.clone(), state);
    }

    /// The object of `converted` if valid; else `None`, after recording why (an invalid
    /// object's last good version stays in the store, as a file's does).
    fn accept(&mut self, converted: Converted) -> Option<Object> {
        match converted.object {
            Ok(object) => {
                if self.rejected.remove(&converted.key).is_some() {
                    self.rejected_changed = true;
                }
                Some(object)
            }
            Err(message) => {
                tracing::error!(object = %converted.key, error = %message, "object rejected; its last good version (if any) keeps serving");
                if self.rejected.get(&converted.key) != Some(&message) {
                    self.rejected.insert(converted.key, message);
                    self.rejected_changed = true;
                }
                None
            }
        }
    }

    /// Stores `object` unless an equal one is stored already.
    fn upsert(&mut self, object: Object) {
        let key = object.key();
        if self.current(&key).as_ref() == Some(&object) {
            return;
        }
        self.changed_keys.insert(key.clone());
        self.pending.insert(key, Some(object));
    }

    fn remove(&mut self, key: &ObjectKey) {
        if self.current(key).is_some() {
            self.changed_keys.insert(key.clone());
            self.pending.insert(key.clone(), None);
        }
    }

    /// The update to publish, if any: `None` until every stream has listed once, and then
    /// when nothing changed since the last one. The first update lists every kind that has
    /// objects as changed.
    pub(crate) fn publish(&mut self) -> Option<SourceUpdate> {
        if !self.is_synced() {
            return None;
        }
        let is_first = self.generation == 0;
        if !is_first && self.changed_keys.is_empty() && !self.rejected_changed {
            return None;
        }
        self.flush();
        self.generation += 1;
        self.rejected_changed = false;
        let changed_keys = std::mem::take(&mut self.changed_keys);
        Some(SourceUpdate {
            store: Arc::clone(&self.store),
            files: self.reports(),
            generation: self.generation,
            changed_kinds: changed_keys.iter().map(|key| key.kind).collect(),
            // An object changed and changed back is named too: compiled again, to no effect.
            changed: (!is_first).then(|| changed_keys.into_iter().collect()),
        })
    }

    /// One report per rejected object, named `kubernetes/Kind/namespace/name`, so that `/status`
    /// shows it as it shows a file that does not parse.
    fn reports(&self) -> Vec<FileReport> {
        self.rejected
            .iter()
            .map(|(key, error)| FileReport {
                path: PathBuf::from(format!(
                    "kubernetes/{}/{}/{}",
                    key.kind, key.namespace, key.name
                )),
                objects: 0,
                skipped: Vec::new(),
                error: Some(error.clone()),
                warnings: Vec::new(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
