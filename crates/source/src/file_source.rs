//! [`FileSource`]: the config files below one path, parsed, merged into one store, and rescanned
//! on demand.
//!
//! Owns the per-file bookkeeping: each file's bytes, its last good objects and its report. A
//! rescan only re-parses files whose bytes changed, so unchanged objects keep their `Arc` and
//! compare equal by pointer. Watching for changes lives in [`crate::watch`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use model::{Object, ObjectKey, Store};
use tracing::{debug, info, warn};

use crate::changed_kinds::changed_kinds;
use crate::error::SourceError;
use crate::scan::config_files;
use crate::update::{FileReport, SourceUpdate};

/// The config files below one path (a file, or a directory of `*.yaml` / `*.yml` files).
///
/// Not shared between threads: one owner calls [`FileSource::rescan`], or hands the source to
/// [`FileSource::watch`], which does so on its own thread.
#[derive(Debug)]
pub struct FileSource {
    root: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    current: Arc<SourceUpdate>,
    /// The last rescan error, logged once until it changes or a rescan succeeds (at the file
    /// descriptor limit every rescan fails the same way).
    rescan_error: Option<String>,
}

/// What we know about one file.
#[derive(Debug, Default)]
struct FileState {
    /// The bytes last read; `None` when the last read failed, so the next read parses again.
    content: Option<Vec<u8>>,
    /// The objects of the last content that parsed.
    objects: Vec<Object>,
    /// Skipped documents of the last content that parsed.
    skipped: Vec<String>,
    /// Why the current content is not in use.
    error: Option<String>,
}

impl FileSource {
    /// Initial scan of a file or a directory: every `*.yaml` / `*.yml` file below it,
    /// recursively, sorted by path; entries whose name starts with `.` are ignored. A file that
    /// does not parse is reported in its [`FileReport`], not as an error.
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
        };
        let mut source = FileSource {
            root: path.to_path_buf(),
            files: BTreeMap::new(),
            current: Arc::new(initial),
            rescan_error: None,
        };
        source.scan()?;
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

    /// Re-reads the tree. Files with the same bytes as before reuse their parsed objects; a file
    /// that no longer parses keeps its last good objects and reports the error; deleted files
    /// drop their objects.
    ///
    /// Returns `None` when the store and every file report are unchanged. If the path itself (or
    /// a directory below it) cannot be listed, this logs a warning and returns `None`, keeping
    /// every object: a config that vanishes for a moment must not tear down the gateway.
    pub fn rescan(&mut self) -> Option<Arc<SourceUpdate>> {
        match self.scan() {
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

    fn scan(&mut self) -> Result<Option<Arc<SourceUpdate>>, SourceError> {
        let paths = config_files(&self.root)?;
        let mut previous = std::mem::take(&mut self.files);
        for path in paths {
            let old = previous.remove(&path);
            if let Some(state) = read_file(&path, old) {
                self.files.insert(path, state);
            }
        }
        for removed in previous.keys() {
            info!(path = %removed.display(), "config file removed");
        }

        let (store, files) = self.assemble();
        let changed_kinds = changed_kinds(&self.current.store, &store);
        let is_first = self.current.generation == 0;
        if !is_first && changed_kinds.is_empty() && files == self.current.files {
            return Ok(None);
        }
        log_new_warnings(&self.current.files, &files);
        let update = Arc::new(SourceUpdate {
            store: Arc::new(store),
            files,
            generation: self.current.generation + 1,
            changed_kinds,
        });
        self.current = Arc::clone(&update);
        Ok(Some(update))
    }

    /// Merges every file's objects in path order (a later file wins a duplicate key) and writes
    /// each file's report.
    fn assemble(&self) -> (Store, Vec<FileReport>) {
        let mut store = Store::new();
        let mut owners: HashMap<ObjectKey, &Path> = HashMap::new();
        let mut reports = Vec::with_capacity(self.files.len());
        for (path, state) in &self.files {
            let mut warnings = Vec::new();
            for object in &state.objects {
                match owners.entry(object.key()) {
                    Entry::Vacant(entry) => {
                        entry.insert(path);
                    }
                    Entry::Occupied(mut entry) => {
                        let earlier = entry.insert(path);
                        warnings.push(duplicate_warning(entry.key(), earlier, path));
                    }
                }
                store.insert(object.clone());
            }
            reports.push(FileReport {
                path: path.clone(),
                objects: state.objects.len(),
                skipped: state.skipped.clone(),
                error: state.error.clone(),
                warnings,
            });
        }
        (store, reports)
    }
}

/// Reads and, if its bytes changed, parses one file. `None` when the file is gone.
fn read_file(path: &Path, old: Option<FileState>) -> Option<FileState> {
    let content = match fs::read(path) {
        Ok(content) => content,
        // Deleted between listing and reading: treat as deleted.
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            warn!(path = %path.display(), %error, "cannot read config file; keeping its last good objects");
            let mut state = old.unwrap_or_default();
            state.content = None;
            state.error = Some(format!("cannot read: {error}"));
            return Some(state);
        }
    };
    let old = match old {
        // Same bytes: same objects (the same `Arc`s) and the same report.
        Some(old) if old.content.as_deref() == Some(content.as_slice()) => return Some(old),
        old => old,
    };
    let parsed = std::str::from_utf8(&content)
        .map_err(|error| format!("not UTF-8: {error}"))
        .and_then(|text| model::parse_documents(text).map_err(|error| error.to_string()));
    match parsed {
        Ok(parsed) => {
            for document in &parsed.skipped {
                debug!(path = %path.display(), %document, "skipping a kind Portcullis does not read");
            }
            Some(FileState {
                content: Some(content),
                objects: parsed.objects,
                skipped: parsed.skipped,
                error: None,
            })
        }
        Err(error) => {
            warn!(path = %path.display(), %error, "config file does not parse; keeping its last good objects");
            let old = old.unwrap_or_default();
            Some(FileState {
                content: Some(content),
                objects: old.objects,
                skipped: old.skipped,
                error: Some(error),
            })
        }
    }
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

/// Logs each warning once, when it first appears, not on every rescan.
fn log_new_warnings(previous: &[FileReport], current: &[FileReport]) {
    for report in current {
        let before = previous
            .binary_search_by(|old| old.path.cmp(&report.path))
            .ok()
            .map(|index| &previous[index].warnings);
        for warning in &report.warnings {
            if before.is_none_or(|old| !old.contains(warning)) {
                warn!(path = %report.path.display(), "{warning}");
            }
        }
    }
}

#[cfg(test)]
mod tests;
