//! [`FileSource::watch`]: rescans when the files change and publishes on a tokio watch channel.
//!
//! We watch the directory, never the file itself: editors and Kubernetes ConfigMap volumes
//! replace files by rename, which would leave a watch on the old inode. notify events only wake
//! the rescan thread, which lets the burst of events a save makes settle for the debounce time
//! and then rescans; the rescan decides whether anything changed. A slow timer rescans too, in
//! case the platform dropped an event.
//!
//! The debounce is ours rather than a notify debouncer's: those wake a thread every quarter of
//! the debounce time for the process's life (80 times a second at 50 ms), where this thread
//! sleeps until an event comes (or the safety net's timer).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::error::SourceError;
use crate::file_source::FileSource;
use crate::scan::is_hidden;
use crate::update::SourceUpdate;

/// How often we rescan without an event, as a safety net for missed events. This also bounds
/// how long the thread outlives the last receiver.
const SAFETY_NET_INTERVAL: Duration = Duration::from_secs(5);

impl FileSource {
    /// Watches the path and publishes every effective change (see [`FileSource::rescan`]) on the
    /// returned channel, starting with [`FileSource::current`].
    ///
    /// A directory is watched recursively. A single file is watched through its parent
    /// directory, keeping only events for that file name and for `..`-prefixed entries (a
    /// ConfigMap volume swaps its `..data` symlink rather than touching the file). Events are
    /// debounced by `debounce` (50–100 ms keeps changes live well within a second), and the tree
    /// is also rescanned every few seconds in case an event was missed.
    ///
    /// Rescans run on a dedicated thread, so parsing a large config never blocks an async
    /// runtime, and this works with or without one. The thread stops within a few seconds after
    /// every receiver is dropped.
    ///
    /// # Errors
    ///
    /// [`SourceError::Watch`] if the watcher cannot be set up, [`SourceError::Thread`] if the
    /// thread cannot be started.
    pub fn watch(
        self,
        debounce: Duration,
    ) -> Result<watch::Receiver<Arc<SourceUpdate>>, SourceError> {
        let target = WatchTarget::for_path(self.path());
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let filter = target.clone();
        let mut watcher = notify::recommended_watcher(move |result: notify::Result<Event>| {
            let is_relevant = match result {
                Ok(event) => filter.is_relevant(&event),
                Err(error) => {
                    warn!(%error, "config file watcher error; rescanning");
                    true
                }
            };
            if is_relevant {
                // A full channel means a rescan is already pending; it will see this change too.
                let _ = wake.try_send(());
            }
        })
        .map_err(|source| SourceError::Watch {
            path: target.directory.clone(),
            source,
        })?;
        watcher
            .watch(&target.directory, target.mode)
            .map_err(|source| SourceError::Watch {
                path: target.directory.clone(),
                source,
            })?;

        let (publish, receiver) = watch::channel(self.current());
        thread::Builder::new()
            .name("config-watch".to_owned())
            .spawn(move || {
                // Dropping the watcher stops the notify watch when this thread ends.
                let _watcher = watcher;
                run(self, &woken, &publish, debounce);
            })
            .map_err(SourceError::Thread)?;
        Ok(receiver)
    }
}

/// Rescans whenever woken (once the events have settled for `debounce`), or on the safety-net
/// timer, until nobody listens.
fn run(
    mut source: FileSource,
    woken: &mpsc::Receiver<()>,
    publish: &watch::Sender<Arc<SourceUpdate>>,
    debounce: Duration,
) {
    loop {
        // The first pass closes the window between `load` and the watch being in place.
        if let Some(update) = source.rescan() {
            debug!(generation = update.generation, kinds = ?update.changed_kinds, "config changed");
            if publish.send(update).is_err() {
                return;
            }
        }
        match woken.recv_timeout(SAFETY_NET_INTERVAL) {
            Ok(()) => {
                // A save is a burst of events (write, close, rename): wait until none came for
                // `debounce`, then rescan once.
                loop {
                    match woken.recv_timeout(debounce) {
                        Ok(()) => {}
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if publish.is_closed() {
            return;
        }
    }
}

/// What to hand to notify, and which events matter.
#[derive(Clone, Debug)]
struct WatchTarget {
    directory: PathBuf,
    mode: RecursiveMode,
    /// For a single-file config, its file name; `None` for a directory config.
    file_name: Option<OsString>,
}

impl WatchTarget {
    fn for_path(path: &Path) -> WatchTarget {
        if path.is_dir() {
            return WatchTarget {
                directory: path.to_path_buf(),
                mode: RecursiveMode::Recursive,
                file_name: None,
            };
        }
        let directory = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        WatchTarget {
            directory,
            mode: RecursiveMode::NonRecursive,
            file_name: path.file_name().map(OsString::from),
        }
    }

    fn is_relevant(&self, event: &Event) -> bool {
        let is_change = match event.kind {
            // Our own reads open and close the files; only a close after writing is a change.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
            _ => true,
        };
        let Some(file_name) = &self.file_name else {
            return is_change;
        };
        is_change
            && event
                .paths
                .iter()
                .filter_map(|path| path.file_name())
                .any(|name| {
                    name == file_name.as_os_str()
                        || (is_hidden(name) && name.as_encoded_bytes().starts_with(b".."))
                })
    }
}

#[cfg(test)]
mod tests;
