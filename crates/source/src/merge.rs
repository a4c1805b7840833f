//! [`Merge`]: the files' objects merged into one store, kept between rescans and changed in
//! proportion to what changed.
//!
//! Owns the key → defining files bookkeeping: for every key, each file that defines it (in path
//! order) with that file's definition (its last document with the key). The store holds, for
//! every key, the definition of the last of those files: files merge in path order and a later
//! file wins a duplicate key, and when the winning file drops the key, the definition of the
//! file before it comes back. Also writes each file's duplicate warnings, the same as merging
//! every file from scratch would.
//!
//! It does not read files or own the store: [`Merge::store_edits`] says how the published store
//! must change, and `store_versions` applies that.
//!
//! Keys are kept as their 128-bit [`ContentHash`] (a per-source random key, as for the files'
//! bytes), not as `ObjectKey`s: an entry of the map is 40 bytes rather than 80 plus the key's
//! two strings, which the store holds already. A key is known again from its definitions'
//! objects.
//!
//! The map is a `BTreeMap`, built in one sorted pass by [`Merge::load`]: its nodes are full, 40
//! bytes an entry, where a hash table of 15,000 keys has 32,768 buckets (46 % used). At 5,000
//! routes (15,000 keys) it holds 0.7 MB instead of 1.3 (and 3.6 with `ObjectKey`s). A lookup
//! compares a dozen 128-bit keys; a rescan looks up only the keys of the objects it changed.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use model::{Kind, Object, ObjectKey, Store};

use crate::content_hash::{ContentHash, ContentHasher};
use crate::store_entry::{has_key, is_equal, is_same, stored};

/// One change to the store: the key's new object, or `None` to remove it.
pub type StoreEdit = (ObjectKey, Option<Object>);

/// Every key's defining files, in path order.
#[derive(Debug, Default)]
pub(crate) struct Merge {
    /// By the hash of the key (see the module doc); a list is never empty.
    definitions: BTreeMap<ContentHash, Vec<Definition>>,
    /// Hashes the keys.
    hasher: ContentHasher,
}

/// One file's definition of a key.
#[derive(Debug)]
struct Definition {
    file: Arc<Path>,
    object: Object,
}

/// What replacing a file's objects touched.
#[derive(Debug, Default)]
pub(crate) struct FileMerge {
    /// Keys whose definitions changed: their store entry may change.
    pub(crate) keys: Vec<ObjectKey>,
    /// Whether the file's own warnings must be written again: it had warnings, or a touched key
    /// is defined more than once.
    pub(crate) rewarn: bool,
    /// Later files whose definition of a touched key now follows a different file: their
    /// warnings must be written again.
    pub(crate) followers: Vec<Arc<Path>>,
}

impl Merge {
    /// Whether no file has been merged yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// The map's key for `key`.
    fn hash(&self, key: &ObjectKey) -> ContentHash {
        self.hasher.hash_key(key)
    }

    /// Merges every file of the first scan at once: `files` in path order, into an empty merge.
    /// Returns the store's edits (every key's winner), their kinds, and the files that define
    /// a key again (a later document of the file, or a later file): their warnings must be
    /// written. The same as [`Merge::replace_file`] for each file in turn, with less
    /// bookkeeping: each key is built and hashed once.
    pub(crate) fn load<'a>(
        &mut self,
        files: impl IntoIterator<Item = (&'a Arc<Path>, &'a [Object])>,
    ) -> (Vec<StoreEdit>, BTreeSet<Kind>, BTreeSet<Arc<Path>>) {
        debug_assert!(
            self.definitions.is_empty(),
            "load merges into an empty merge"
        );
        let mut duplicated = BTreeSet::new();
        let files: Vec<_> = files.into_iter().collect();
        let mut all: Vec<(ContentHash, Definition)> =
            Vec::with_capacity(files.iter().map(|(_, objects)| objects.len()).sum());
        for (file, objects) in files {
            all.extend(objects.iter().map(|object| {
                let definition = Definition {
                    file: Arc::clone(file),
                    object: object.clone(),
                };
                (self.hasher.hash_key(&object.key()), definition)
            }));
        }
        // Stable: a key's definitions stay in path order, and in document order within a file.
        all.sort_by_key(|(hash, _)| *hash);
        let mut grouped: Vec<(ContentHash, Vec<Definition>)> = Vec::with_capacity(all.len());
        for (hash, definition) in all {
            match grouped.last_mut() {
                Some((last, list)) if *last == hash => {
                    duplicated.insert(Arc::clone(&definition.file));
                    match list.last_mut() {
                        // A later document of the same file wins.
                        Some(last) if last.file == definition.file => {
                            last.object = definition.object;
                        }
                        // Files come in path order: this one is later.
                        _ => list.push(definition),
                    }
                }
                _ => grouped.push((hash, vec![definition])),
            }
        }
        // Sorted and unique: built leaf by leaf, every node full.
        self.definitions = grouped.into_iter().collect();
        let mut kinds = BTreeSet::new();
        let edits = self
            .definitions
            .values()
            .filter_map(|list| {
                let winner = list.last()?;
                let key = winner.object.key();
                kinds.insert(key.kind);
                Some((key, Some(winner.object.clone())))
            })
            .collect();
        (edits, kinds, duplicated)
    }

    /// Records that `file`'s objects changed from `old` to `new` (either may be empty: a new or
    /// a removed file). `had_warnings` is whether the file's last warnings were not empty.
    ///
    /// Costs a pointer comparison per object plus work per changed object: objects that are the
    /// same `Arc` at the start and end of both lists are known unchanged.
    pub(crate) fn replace_file(
        &mut self,
        file: &Arc<Path>,
        old: &[Object],
        new: &[Object],
        had_warnings: bool,
    ) -> FileMerge {
        let (old_changed, new_changed) = changed_middle(old, new);
        let touched = touched_keys(old_changed, new_changed, new);
        let mut merged = FileMerge {
            rewarn: had_warnings,
            keys: Vec::with_capacity(touched.len()),
            followers: Vec::new(),
        };
        for (key, definition, count) in touched {
            // One lookup for a key already defined (an edit).
            let hash = self.hash(&key);
            let placed = match self.definitions.get_mut(&hash) {
                Some(list) => {
                    let placed = place(list, file, definition);
                    if list.is_empty() {
                        self.definitions.remove(&hash);
                    }
                    placed
                }
                None => {
                    let mut list = Vec::new();
                    let placed = place(&mut list, file, definition);
                    if !list.is_empty() {
                        self.definitions.insert(hash, list);
                    }
                    placed
                }
            };
            merged.followers.extend(placed.follower);
            merged.rewarn |= count > 1 || placed.has_others;
            merged.keys.push(key);
        }
        merged
    }

    /// How `store` (the last published store) must change for `keys`, whose definitions
    /// changed, and the kinds that changed. A key whose winning definition equals the stored
    /// object by value keeps the stored `Arc`.
    pub(crate) fn store_edits(
        &self,
        store: &Store,
        keys: HashSet<ObjectKey>,
    ) -> (Vec<StoreEdit>, BTreeSet<Kind>) {
        let mut edits = Vec::new();
        let mut kinds = BTreeSet::new();
        for mut key in keys {
            let winner = self
                .definitions
                .get(&self.hash(&key))
                .and_then(|list| list.last())
                .map(|definition| &definition.object);
            let current = stored(store, &mut key);
            let is_unchanged = match (&current, winner) {
                (None, None) => true,
                (Some(current), Some(winner)) => is_equal(current, winner),
                _ => false,
            };
            if !is_unchanged {
                kinds.insert(key.kind);
                edits.push((key, winner.cloned()));
            }
        }
        (edits, kinds)
    }

    /// `file`'s warnings, given its objects in document order: a key defined again later in
    /// the file, or also defined by an earlier file, in document order.
    pub(crate) fn warnings(&self, file: &Path, objects: &[Object]) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut warnings = Vec::new();
        for object in objects {
            let key = object.key();
            if seen.contains(&key) {
                warnings.push(duplicate_warning(&key, file, file));
                continue;
            }
            let earlier = self.definitions.get(&self.hash(&key)).and_then(|list| {
                list.iter()
                    .rev()
                    .find(|definition| *definition.file < *file)
            });
            if let Some(earlier) = earlier {
                warnings.push(duplicate_warning(&key, &earlier.file, file));
            }
            seen.insert(key);
        }
        warnings
    }
}

/// The parts of `old` and `new` between their common start and end, comparing by `Arc`: the
/// objects outside them are unchanged, and in the same order.
fn changed_middle<'a>(old: &'a [Object], new: &'a [Object]) -> (&'a [Object], &'a [Object]) {
    let start = old
        .iter()
        .zip(new)
        .take_while(|(old, new)| is_same(old, new))
        .count();
    let (old, new) = (&old[start..], &new[start..]);
    let end = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(old, new)| is_same(old, new))
        .count();
    (&old[..old.len() - end], &new[..new.len() - end])
}

/// Where a file's definition of a key went in the key's list, and what that means for
/// warnings.
struct Placed {
    /// The file after this one in the list: its definition now follows a different file.
    follower: Option<Arc<Path>>,
    /// Whether another file defines the key too.
    has_others: bool,
}

/// Puts `file`'s `definition` of a key (or its absence) in the key's list, kept in path order.
fn place(list: &mut Vec<Definition>, file: &Arc<Path>, definition: Option<&Object>) -> Placed {
    let position = list.binary_search_by(|d| d.file.as_ref().cmp(file.as_ref()));
    let after = match (position, definition) {
        (Ok(index), Some(object)) => {
            list[index].object = object.clone();
            index + 1
        }
        (Ok(index), None) => {
            list.remove(index);
            index
        }
        (Err(index), Some(object)) => {
            list.insert(
                index,
                Definition {
                    file: Arc::clone(file),
                    object: object.clone(),
                },
            );
            index + 1
        }
        (Err(index), None) => index,
    };
    Placed {
        follower: list.get(after).map(|follower| Arc::clone(&follower.file)),
        has_others: list.iter().any(|d| *d.file != **file),
    }
}

/// The keys of the changed objects, each once, with the file's definition of each (the last of
/// `new` with the key) and how many of `new` have it.
fn touched_keys<'a>(
    old_changed: &[Object],
    new_changed: &[Object],
    new: &'a [Object],
) -> Vec<(ObjectKey, Option<&'a Object>, usize)> {
    let count = |slot: &mut (Option<&'a Object>, usize), object: &'a Object| {
        slot.0.get_or_insert(object);
        slot.1 += 1;
    };
    let changed = old_changed.iter().chain(new_changed);
    // Few keys (an edit): compare in place, building no key per object of the file.
    if old_changed.len() + new_changed.len() <= 8 {
        let mut keys: Vec<ObjectKey> = changed.map(Object::key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut found: Vec<(Option<&Object>, usize)> = vec![(None, 0); keys.len()];
        for object in new.iter().rev() {
            for (slot, key) in found.iter_mut().zip(&keys) {
                if has_key(object, key) {
                    count(slot, object);
                }
            }
        }
        return keys
            .into_iter()
            .zip(found)
            .map(|(key, (definition, count))| (key, definition, count))
            .collect();
    }
    // Many: one lookup per object of the file. When all of `new` changed (a new file: the
    // first load), its objects' keys are the ones looked up, computed once.
    let mut found: HashMap<ObjectKey, (Option<&Object>, usize)> = HashMap::new();
    if new_changed.len() == new.len() {
        for object in new.iter().rev() {
            count(found.entry(object.key()).or_insert((None, 0)), object);
        }
        for object in old_changed {
            found.entry(object.key()).or_insert((None, 0));
        }
    } else {
        found = changed.map(|object| (object.key(), (None, 0))).collect();
        for object in new.iter().rev() {
            if let Some(slot) = found.get_mut(&object.key()) {
                count(slot, object);
            }
        }
    }
    found
        .into_iter()
        .map(|(key, (definition, count))| (key, definition, count))
        .collect()
}

fn duplicate_warning(key: &ObjectKey, earlier: &Path, later: &Path) -> String {
    if earlier == later {
        format!("{key} is defined more than once in this file; the later document wins")
    } else {
        format!(
            "{key} also defined in {}; the later file wins",
            earlier.display()
        )
    }
}

#[cfg(test)]
mod tests;
