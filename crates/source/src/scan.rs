//! Finds the config files below the configured path.
//!
//! A file path is used as is, whatever its extension. A directory contributes every `*.yaml` and
//! `*.yml` file below it, recursively, sorted by path. Entries whose name starts with `.` are
//! ignored: editor swap files, `.git`, and the `..data` / `..2024_...` directories of a
//! Kubernetes ConfigMap volume (its visible files are symlinks into them, which we follow).

use std::collections::HashSet;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::SourceError;

/// The config files below `root`, sorted by path, with their metadata (symlinks followed).
///
/// Fails if `root` or any directory below it cannot be read: a partial listing would look like
/// deleted files and drop their objects.
pub(crate) fn config_files(root: &Path) -> Result<Vec<(PathBuf, Metadata)>, SourceError> {
    let metadata = fs::metadata(root).map_err(read_error(root))?;
    if !metadata.is_dir() {
        return Ok(vec![(root.to_path_buf(), metadata)]);
    }
    let mut files = Vec::new();
    let mut visited = HashSet::new();
    walk(root, &mut files, &mut visited)?;
    files.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(files)
}

fn walk(
    directory: &Path,
    files: &mut Vec<(PathBuf, Metadata)>,
    visited: &mut HashSet<PathBuf>,
) -> Result<(), SourceError> {
    // Symlinked directories are followed, so remember where we have been to survive loops.
    let canonical = fs::canonicalize(directory).map_err(read_error(directory))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    for entry in fs::read_dir(directory).map_err(read_error(directory))? {
        let entry = entry.map_err(read_error(directory))?;
        if is_hidden(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            // Deleted while we list, or a dangling symlink: not a config file.
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(read_error(&path)(error)),
        };
        if metadata.is_dir() {
            walk(&path, files, visited)?;
        } else if metadata.is_file() && is_yaml(&path) {
            files.push((path, metadata));
        }
    }
    Ok(())
}

pub(crate) fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().first() == Some(&b'.')
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == "yaml" || extension == "yml")
}

fn read_error(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    }
}
