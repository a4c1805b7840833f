//! Scratch directories under the system temp dir, removed on drop.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

/// Makes directory and scratch-file names unique within this process.
static NEXT_UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A fresh number for a name that must not collide within this process.
fn next_unique() -> u64 {
    NEXT_UNIQUE.fetch_add(1, Ordering::SeqCst)
}

/// Creates a new, empty directory `<temp>/<prefix>-<pid>-<n>-<nanos>`.
///
/// `create_dir` (not `create_dir_all`) fails if the path exists, so two callers never share a directory.
pub(crate) fn create_unique_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    for _attempt in 0..16 {
        let path = base.join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            next_unique()
        ));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| format!("creating {}", path.display()));
            }
        }
    }
    bail!(
        "could not create a unique directory named {prefix}-* under {}",
        base.display()
    )
}

/// A directory of config files for one test, removed with everything in it on drop.
///
/// Writes are atomic (a dotfile in the same directory, then a rename), so a gateway watching the directory
/// never reads a half-written file.
#[derive(Debug)]
pub struct TempConfigDir {
    /// The directory; it exists until drop.
    path: PathBuf,
}

impl TempConfigDir {
    /// Creates a new, empty directory under [`std::env::temp_dir`].
    ///
    /// # Errors
    ///
    /// Fails when the directory cannot be created.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            path: create_unique_dir("portcullis-config")?,
        })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Atomically creates or replaces file `name` (which may contain `/` for subdirectories, created as needed)
    /// with `contents`, and returns its path.
    ///
    /// # Errors
    ///
    /// Fails when `name` is absolute or contains `..`, or on an I/O error.
    pub fn write(&self, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
        let target = self.child(name)?;
        let parent = target.parent().unwrap_or(&self.path);
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let file_name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scratch = parent.join(format!(".{file_name}.{}.tmp", next_unique()));
        fs::write(&scratch, contents).with_context(|| format!("writing {}", scratch.display()))?;
        fs::rename(&scratch, &target)
            .with_context(|| format!("renaming {} to {}", scratch.display(), target.display()))?;
        Ok(target)
    }

    /// Deletes file `name`.
    ///
    /// # Errors
    ///
    /// Fails when `name` is absolute or contains `..`, or when the file cannot be removed (a missing file
    /// included).
    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        let target = self.child(name)?;
        fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))
    }

    /// `name` resolved inside the directory, refusing paths that would leave it.
    fn child(&self, name: &str) -> anyhow::Result<PathBuf> {
        let relative = Path::new(name);
        let is_inside = relative.components().all(|component| {
            matches!(
                component,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if name.is_empty() || !is_inside {
            bail!("config file name {name:?} must be a relative path inside the directory");
        }
        Ok(self.path.join(relative))
    }
}

impl Drop for TempConfigDir {
    fn drop(&mut self) {
        let _ignored = fs::remove_dir_all(&self.path);
    }
}
