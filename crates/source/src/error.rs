//! The source's errors: only the ones that stop it from starting.
//!
//! A file that does not parse is not an error here; it is reported in its
//! [`FileReport`](crate::FileReport) and its last good objects stay in the store.

use std::path::PathBuf;

/// Why a [`FileSource`](crate::FileSource) could not load or watch its path.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The config path, or a directory below it, could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file watcher could not be set up.
    #[error("cannot watch {path}: {source}")]
    Watch {
        /// The directory we tried to watch.
        path: PathBuf,
        /// The underlying notify error.
        #[source]
        source: notify::Error,
    },
    /// The thread that rescans on changes could not be started.
    #[error("cannot start the file watch thread: {0}")]
    Thread(#[source] std::io::Error),
}
