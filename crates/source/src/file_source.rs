//! [`FileSource`]: the config files below one path, parsed, merged into one store, and rescanned
//! on demand.
//!
//! A rescan costs in proportion to what changed. It lists the files (their metadata come with
//! the listing) and reads only those whose metadata moved, that a watch event named, or that
//! are stale (see `stamp`); it parses only the documents whose text changed (see
//! `file_state`), so unchanged objects keep their `Arc` and compare equal by pointer; and it
//! changes the merged store only where objects changed (see `merge` and `store_versions`).
//! Many files, or the many documents of a big file, are read and parsed on several threads
//! (see `parallel`). Watching for changes lives in [`crate::watch`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use model::parse::{FileBudget, ParsedDocument, parse_document};
use model::{Kind, Object};
use tracing::{debug, info, warn};

use crate::content_hash::{ContentHashMap, ContentHasher};
use crate::error::SourceError;
use crate::file_state::{FileState, Reading};
use crate::merge::{Merge, StoreEdit};
use crate::parallel::map_in_parallel;
use crate::scan::config_files;
use crate::stamp::FileStamp;
use crate::store_versions::StoreVersions;
use crate::update::SourceUpdate;

/// The config files below one path (a file, or a directory of `*.yaml` / `*.yml` files).
///
/// Not shared between threads: one owner calls [`FileSource::rescan`], or hands the source to
/// [`FileSource::watch`], which does so on its own thread.
#[derive(Debug)]
pub struct FileSource {
    root: PathBuf,
    files: BTreeMap<Arc<Path>, FileState>,
    merge: Merge,
    versions: StoreVersions,
    hasher: ContentHasher,
    current: Arc<SourceUpdate>,
    /// The last rescan error, logged once until it changes or a rescan succeeds (at the file
    /// descriptor limit every rescan fails the same way).
    rescan_error: Option<String>,
    /// Whether the last rescan read a file (rather than only listing the tree): what the
    /// tests check a rescan did.
    #[cfg(test)]
    read_files: bool,
}

/// What the watcher knows before a rescan.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Files that watch events named since the last rescan: read whatever their metadata.
    pub(crate) named: HashSet<PathBuf>,
    /// Files still being written: left as they are until their writer is done.
    pub(crate) deferred: HashSet<PathBuf>,
    /// Read every file: events may have been lost.
    pub(crate) everything: bool,
}

/// Config files with their metadata, as listed.
type Listing = Vec<(PathBuf, Metadata)>;

/// One file to read: its path and the metadata it was listed with.
type ToRead = (Arc<Path>, FileStamp);

/// What merging a rescan's changes gives: the store's edits, the kinds they change, and
/// whether any file's warnings changed.
type MergeOutcome = (Vec<StoreEdit>, BTreeSet<Kind>, bool);

impl FileSource {
    /// Initial scan of a file or a directory: every `*.yaml` / `*.yml` file below it,
    /// recursively, sorted by path; entries whose name starts with `.` are ignored. A file that
    /// does not parse is reported in its [`FileReport`](crate::FileReport), not as an error.
    /// Files are read and parsed on as many threads as the machine has cores.
    ///
    /// # Errors
    ///
    /// [`SourceError::Read`] if the path does not exist or it, or a directory below it, cannot be
    /// read.
    pub fn load(path: &Path) -> Result<FileSource, SourceError> {
        let initial = SourceUpdate {
            store: Arc::default(),
            files: Vec::new(),
            generation: 0,
            changed_kinds: BTreeSet::new(),
            changed: None,
        };
        let mut source = FileSource {
            root: path.to_path_buf(),
            files: BTreeMap::new(),
            merge: Merge::default(),
            versions: StoreVersions::default(),
            hasher: ContentHasher::new(),
            current: Arc::new(initial),
            rescan_error: None,
            #[cfg(test)]
            read_files: false,
        };
        source.scan(&Changes::default())?;
        Ok(source)
    }

    /// The configured path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The latest update (generation 1 right after [`FileSource::load`]).
    pub fn current(&self) -> Arc<SourceUpdate> {
        Arc::clone(&self.current)
    }

    /// Re-reads the tree: lists it and reads the files whose metadata (size, times, inode)
    /// changed since they were last read, and new files. Documents whose text did not change
    /// keep their parsed objects; a file that no longer parses keeps its last good objects and
    /// reports the error; deleted files drop their objects.
    ///
    /// Returns `None` when the store and every file report are unchanged. If the path itself (or
    /// a directory below it) cannot be listed, this logs a warning and returns `None`, keeping
    /// every object: a config that vanishes for a moment must not tear down the gateway.
    pub fn rescan(&mut self) -> Option<Arc<SourceUpdate>> {
        self.rescan_with(&Changes::default())
    }

    /// [`FileSource::rescan`], also reading the files `changes` names and leaving those it
    /// defers.
    pub(crate) fn rescan_with(&mut self, changes: &Changes) -> Option<Arc<SourceUpdate>> {
        match self.scan(changes) {
            Ok(update) => {
                self.rescan_error = None;
                update
            }
            Err(error) => {
                let text = error.to_string();
                if self.rescan_error.as_deref() == Some(text.as_str()) {
                    debug!(%error, "cannot rescan the config (again)");
                } else {
                    warn!(%error, "cannot rescan the config; keeping the current objects");
                    self.rescan_error = Some(text);
                }
                None
            }
        }
    }

    /// Lets the store kept to make the next store from go (see [`StoreVersions::forget_spare`]).
    pub(crate) fn forget_spare_store(&mut self) {
        self.versions.forget_spare();
    }

    /// Whether the last rescan read a file: a file is read again when its metadata changed, or
    /// once more when it was written too recently for its metadata to tell a later write.
    #[cfg(test)]
    pub(crate) fn last_rescan_read(&self) -> bool {
        self.read_files
    }

    fn scan(&mut self, changes: &Changes) -> Result<Option<Arc<SourceUpdate>>, SourceError> {
        #[cfg(test)]
        {
            self.read_files = false;
        }
        let now = SystemTime::now();
        let (listing, removed) = match self.named_files(changes) {
            Some(found) => found,
            None => {
                let listing = config_files(&self.root)?;
                let listed: HashSet<&Path> =
                    listing.iter().map(|(path, _)| path.as_path()).collect();
                let removed: Vec<Arc<Path>> = self
                    .files
                    .keys()
                    .filter(|path| !listed.contains(path.as_ref()))
                    .cloned()
                    .collect();
                (listing, removed)
            }
        };
        let mut reports_changed = self.current.generation == 0;
        // Files whose objects changed, with their previous objects.
        let mut replaced: Vec<(Arc<Path>, Vec<Object>)> = Vec::new();
        for path in removed {
            self.remove_file(path, &mut replaced);
            reports_changed = true;
        }

        let to_read = self.files_to_read(listing, changes);
        #[cfg(test)]
        {
            self.read_files = !to_read.is_empty();
        }
        let hasher = &self.hasher;
        let readings = map_in_parallel(
            &to_read,
            |(_, stamp)| usize::try_from(stamp.len()).unwrap_or(usize::MAX),
            |(path, _)| Reading::of(path, hasher),
        );
        let parsed = self.parse_new_documents(&to_read, &readings);
        for ((path, stamp), (reading, mut parsed)) in
            to_read.into_iter().zip(readings.into_iter().zip(parsed))
        {
            if matches!(reading, Reading::Gone) {
                // Deleted between listing and reading.
                if self.files.contains_key(&path) {
                    self.remove_file(path, &mut replaced);
                    reports_changed = true;
                }
                continue;
            }
            let state = self.files.entry(Arc::clone(&path)).or_insert_with(|| {
                reports_changed = true;
                FileState::default()
            });
            let before = state.outcome();
            if let Some(old) = state.take_reading(&path, reading, stamp, now, &mut parsed) {
                replaced.push((path, old));
            }
            reports_changed |= state.outcome() != before;
        }

        let merged = self.merge_files(&replaced);
        Ok(self.publish(merged, reports_changed))
    }

    /// The files `changes` names with their metadata, and those of them that are gone, when
    /// the events named only files already read (saved, renamed into place, deleted): nothing
    /// else below the root changed by what they say, so the tree is not listed (a stat per
    /// file of a big directory costs more than reading the one edited). `None` when the tree
    /// must be listed: events were lost, nothing is named (the safety net, which also catches
    /// what an event missed), or a path is new or not a file (a new file, a directory, a
    /// ConfigMap volume's swap).
    fn named_files(&self, changes: &Changes) -> Option<(Listing, Vec<Arc<Path>>)> {
        if changes.everything || changes.named.is_empty() {
            return None;
        }
        let mut listing = Vec::with_capacity(changes.named.len());
        let mut removed = Vec::new();
        for path in &changes.named {
            let (known, _) = self.files.get_key_value(path.as_path())?;
            match std::fs::metadata(path) {
                Ok(metadata) if metadata.is_file() => listing.push((path.clone(), metadata)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    removed.push(Arc::clone(known));
                }
                // A directory now, or unreadable: the listing decides (and reports).
                _ => return None,
            }
        }
        Some((listing, removed))
    }

    /// The listed files to read: new ones, and those whose metadata changed, that are stale, or
    /// that `changes` names (or all, if it says so), less those it defers.
    fn files_to_read(
        &self,
        listing: Vec<(PathBuf, std::fs::Metadata)>,
        changes: &Changes,
    ) -> Vec<ToRead> {
        listing
            .into_iter()
            .filter(|(path, _)| !changes.deferred.contains(path))
            .filter_map(|(path, metadata)| {
                let stamp = FileStamp::of(&metadata);
                match self.files.get_key_value(path.as_path()) {
                    None => Some((Arc::from(path), stamp)),
                    Some((known, state)) => (changes.everything
                        || state.needs_reading(&stamp)
                        || changes.named.contains(&path))
                    .then(|| (Arc::clone(known), stamp)),
                }
            })
            .collect()
    }

    /// Parses the documents of `readings` that their files do not hold yet: all together, on
    /// several threads when there are many. One map per file, by hash of the document text.
    fn parse_new_documents(
        &self,
        to_read: &[ToRead],
        readings: &[Reading],
    ) -> Vec<ContentHashMap<Box<ParsedDocument>>> {
        let mut jobs = Vec::new();
        for (index, ((path, _), reading)) in to_read.iter().zip(readings).enumerate() {
            if let Reading::Text(text) = reading {
                let pieces = text.unparsed(self.files.get(path));
                jobs.extend(pieces.into_iter().map(|(piece, hash)| (index, piece, hash)));
            }
        }
        let budgets: Vec<FileBudget> = readings.iter().map(|_| FileBudget::new()).collect();
        let documents = map_in_parallel(
            &jobs,
            |(_, piece, _)| piece.len(),
            |(index, piece, _)| Box::new(parse_document(piece, &budgets[*index])),
        );
        let mut parsed: Vec<ContentHashMap<Box<ParsedDocument>>> =
            readings.iter().map(|_| ContentHashMap::default()).collect();
        for ((index, _, hash), document) in jobs.iter().zip(documents) {
            parsed[*index].insert(*hash, document);
        }
        parsed
    }

    /// Tells the merge which files' objects changed (`replaced`, with their previous objects)
    /// and writes again the warnings that may have changed. Returns how the published store
    /// must change, the kinds that change, and whether any file's warnings changed.
    fn merge_files(&mut self, replaced: &[(Arc<Path>, Vec<Object>)]) -> MergeOutcome {
        if self.merge.is_empty() {
            // The first scan: every file is new. All at once, without per-file bookkeeping.
            let files = self
                .files
                .iter()
                .map(|(path, state)| (path, state.objects.as_slice()));
            let (edits, kinds, duplicated) = self.merge.load(files);
            let warnings_changed = self.rewarn(duplicated);
            return (edits, kinds, warnings_changed);
        }
        let mut keys = HashSet::new();
        let mut rewarn = BTreeSet::new();
        for (path, old) in replaced {
            let state = self.files.get(path);
            let new = state.map_or(&[][..], |state| state.objects.as_slice());
            let had_warnings = state.is_some_and(|state| !state.warnings.is_empty());
            let merged = self.merge.replace_file(path, old, new, had_warnings);
            keys.reserve(merged.keys.len());
            keys.extend(merged.keys);
            if merged.rewarn {
                rewarn.insert(Arc::clone(path));
            }
            rewarn.extend(merged.followers);
        }
        let warnings_changed = self.rewarn(rewarn);
        let (edits, kinds) = self.merge.store_edits(&self.current.store, keys);
        (edits, kinds, warnings_changed)
    }

    /// Writes again the warnings of `files`; whether any changed.
    fn rewarn(&mut self, files: BTreeSet<Arc<Path>>) -> bool {
        let mut warnings_changed = false;
        for path in files {
            // A removed file has no warnings to write.
            let Some(state) = self.files.get_mut(&path) else {
                continue;
            };
            let warnings = self.merge.warnings(&path, &state.objects);
            if warnings != state.warnings {
                log_new_warnings(&path, &state.warnings, &warnings);
                state.warnings = warnings;
                warnings_changed = true;
            }
        }
        warnings_changed
    }

    /// Publishes the store after `edits`, with every file's report, unless neither changed (the
    /// first scan always publishes).
    fn publish(
        &mut self,
        (edits, changed_kinds, warnings_changed): MergeOutcome,
        reports_changed: bool,
    ) -> Option<Arc<SourceUpdate>> {
        let is_first = self.current.generation == 0;
        if !is_first && edits.is_empty() && !reports_changed && !warnings_changed {
            return None;
        }
        let changed = (!is_first).then(|| edits.iter().map(|(key, _)| key.clone()).collect());
        let store = if edits.is_empty() {
            Arc::clone(&self.current.store)
        } else {
            self.versions.next(&self.current.store, edits)
        };
        let update = Arc::new(SourceUpdate {
            store,
            files: self
                .files
                .iter()
                .map(|(path, state)| state.report(path))
                .collect(),
            generation: self.current.generation + 1,
            changed_kinds,
            changed,
        });
        self.current = Arc::clone(&update);
        Some(update)
    }

    fn remove_file(&mut self, path: Arc<Path>, replaced: &mut Vec<(Arc<Path>, Vec<Object>)>) {
        if let Some(state) = self.files.remove(&path) {
            info!(path = %path.display(), "config file removed");
            replaced.push((path, state.objects));
        }
    }
}

/// Logs each warning once, when it first appears, not on every rescan.
fn log_new_warnings(path: &Path, previous: &[String], current: &[String]) {
    for warning in current {
        if !previous.contains(warning) {
            warn!(path = %path.display(), "{warning}");
        }
    }
}

#[cfg(test)]
mod tests;
