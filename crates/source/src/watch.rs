//! [`FileSource::watch`]: rescans when the files change and publishes on a tokio watch channel.
//!
//! We watch the directory, never the file itself: editors and Kubernetes ConfigMap volumes
//! replace files by rename, which would leave a watch on the old inode. The notify callback
//! only records which paths events named and what the event says about their writer (see
//! `schedule`), and wakes the rescan thread.
//!
//! **No fixed wait when the writer is done.** An event that means the writer has finished (a
//! close after writing, a rename into place, a create, a remove) makes the rescan run at once,
//! after gathering only the events already queued or arriving within a millisecond (the rest
//! of the same save); when every event so far completed its save (a close after writing, a
//! rename into place), without even that millisecond. A save through an editor, `kubectl cp`,
//! a ConfigMap update or a script's write-and-rename is live in the time the rescan takes.
//! Only a data change without a close (a writer still writing, or holding the file open: on
//! platforms without close events too) waits until that file had no event for the debounce
//! time, so a half-written file is not read; files whose writer is done are read meanwhile. A create is "done" even though a write
//! usually follows: the write's own event, seen in the same millisecond or at the next rescan,
//! makes the file wait again, and reading an empty or partial new file at worst reports it
//! until its close event. As with any debounce, a write that starts after the rescan took its
//! events can still be met half done; writing a temporary and renaming it into place (what
//! kubelet, many editors and the benchmark do) never is.
//!
//! A rescan reads the files events named and the files whose metadata changed (it lists the
//! tree anyway); a slow timer rescans too, comparing metadata, in case the platform dropped an
//! event, and lost events (an overflowed kernel queue) make the next rescan read every file.
//!
//! The debounce is ours rather than a notify debouncer's: those wake a thread every quarter of
//! the debounce time for the process's life (80 times a second at 50 ms), where this thread
//! sleeps until an event comes (or the safety net's timer).

mod schedule;

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::watch;
use tracing::{debug, error, warn};

use self::schedule::{Pending, Schedule, Writer};
use crate::error::SourceError;
use crate::file_source::FileSource;
use crate::scan::is_hidden;
use crate::update::SourceUpdate;

/// How often we rescan without an event, as a safety net for missed events. This also bounds
/// how long the thread outlives the last receiver.
const SAFETY_NET_INTERVAL: Duration = Duration::from_secs(5);

/// How long the config must be quiet before this thread's heap is collected.
const COLLECT_QUIET: Duration = Duration::from_secs(1);

/// How long a burst of events may go quiet before the rescan runs: the events of one save
/// arrive together, well within this.
const GATHER_QUIET: Duration = Duration::from_millis(1);

/// The longest a burst of events may delay a due rescan.
const GATHER_LIMIT: Duration = Duration::from_millis(10);

impl FileSource {
    /// Watches the path and publishes every effective change (see [`FileSource::rescan`]) on the
    /// returned channel, starting with [`FileSource::current`].
    ///
    /// A directory is watched recursively. A single file is watched through its parent
    /// directory, keeping only events for that file name and for `..`-prefixed entries (a
    /// ConfigMap volume swaps its `..data` symlink rather than touching the file). A file
    /// whose writer is done (closed after writing, renamed into place, created or removed) is
    /// read at once; a file with data changes but no close yet is read once it had no event for
    /// `debounce` (50–100 ms keeps changes live well within a second). The tree is also
    /// rescanned every few seconds in case an event was missed.
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
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let recorder = Arc::clone(&pending);
        let filter = target.clone();
        let mut watcher = notify::recommended_watcher(move |result: notify::Result<Event>| {
            let now = Instant::now();
            let mut recorded = false;
            {
                let mut pending = recorder.lock().unwrap_or_else(PoisonError::into_inner);
                match result {
                    Ok(event) if event.need_rescan() => {
                        warn!("config file events were lost; reading every file");
                        pending.record_lost(now);
                        recorded = true;
                    }
                    Ok(event) => {
                        if let Some(writer) = writer_of(&event.kind) {
                            for path in filter.config_paths(&event) {
                                pending.record(path, writer, now);
                                recorded = true;
                            }
                        }
                    }
                    Err(error) => {
                        warn!(%error, "config file watcher error; reading every file");
                        pending.record_lost(now);
                        recorded = true;
                    }
                }
            }
            if recorded {
                // A full channel means the thread is already woken; it takes this event too.
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
                run(self, &pending, &woken, &publish, debounce);
            })
            .map_err(SourceError::Thread)?;
        Ok(receiver)
    }
}

/// Rescans whenever the schedule says so (at once for finished writes, after `debounce` for
/// writes in progress), or on the safety-net timer, until nobody listens.
fn run(
    mut source: FileSource,
    pending: &Mutex<Pending>,
    woken: &mpsc::Receiver<()>,
    publish: &watch::Sender<Arc<SourceUpdate>>,
    debounce: Duration,
) {
    let mut schedule = Schedule::default();
    // The first pass, at once, closes the window between `load` and the watch being in place.
    let mut safety_net = Instant::now();
    let mut collect_at = None;
    // Whether a rescan published nothing since the code was last released.
    let mut release_code = false;
    loop {
        // Taken right before deciding, so that a write that started since the last wake is
        // deferred rather than read half done.
        schedule.take(&mut pending.lock().unwrap_or_else(PoisonError::into_inner));
        let now = Instant::now();
        let changes = match schedule.due(now, debounce) {
            Some(changes) => Some(changes),
            None if now >= safety_net => Some(schedule.safety_net()),
            None => None,
        };
        if let Some(changes) = changes {
            if let Some(update) = source.rescan_with(&changes) {
                debug!(generation = update.generation, kinds = ?update.changed_kinds, "config changed");
                if publish.send(update).is_err() {
                    return;
                }
            } else {
                // Nothing to publish: the rescan's code (reading and hashing files when it read
                // any, listing and comparing metadata when it did not) is resident until
                // released, about 1 MiB. Released after every rescan, the safety net's too:
                // the request path's code pages go with it (the release is per mapping) and
                // come back from the page cache on the next requests, a few hundred minor
                // faults every five seconds.
                release_code = true;
            }
            safety_net = Instant::now() + SAFETY_NET_INTERVAL;
            collect_at = Some(Instant::now() + COLLECT_QUIET);
        }
        if publish.is_closed() {
            return;
        }
        // This thread allocated the objects of every store; the controller frees the old ones
        // on its own thread, which hands the pages back to this thread's heap, and a thread
        // that sleeps never takes them in. Taking them in once the config has been quiet for a
        // while returns them to the system (see `memory`). Not right after a rescan: the
        // pages it returns cost every core a TLB flush while the controller applies the
        // change and the workers serve.
        let now = Instant::now();
        if collect_at.is_some_and(|at| now >= at) {
            let freeing = memory::allocator::purge_eagerly();
            source.forget_spare_store();
            memory::allocator::collect();
            drop(freeing);
            collect_at = None;
            // A rescan with nothing to publish (see above). A change that was published is
            // released by the control loop once applied (`portcullis::run`).
            if release_code {
                release_code = false;
                match memory::release_control_plane_code() {
                    Ok(bytes) => debug!(bytes, "code of a config rescan released"),
                    Err(error) => debug!(%error, "code of a config rescan not released"),
                }
            }
        }
        let wake_at = [schedule.next_due(debounce), collect_at]
            .into_iter()
            .flatten()
            .fold(safety_net, Instant::min);
        match woken.recv_timeout(wake_at.saturating_duration_since(Instant::now())) {
            Ok(()) => {
                // A save that ended in a close or a rename into place is complete: rescan at
                // once. Otherwise the rest of the save may still be coming: gather it.
                let settled = pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_settled();
                if !settled && !gather(woken) {
                    error!("the config file watcher's events ended; no more changes are read");
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // The notify watcher dropped its handler: nothing will wake this thread again.
                error!("the config file watcher's events ended; no more changes are read");
                return;
            }
        }
    }
}

/// Waits while events keep coming (a gap of [`GATHER_QUIET`] ends the burst, and the wait
/// never exceeds [`GATHER_LIMIT`]), so one save makes one rescan. `false` when the watcher is
/// gone.
fn gather(woken: &mpsc::Receiver<()>) -> bool {
    let limit = Instant::now() + GATHER_LIMIT;
    loop {
        match woken.recv_timeout(GATHER_QUIET) {
            Ok(()) if Instant::now() < limit => {}
            Ok(()) | Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}

/// What an event says about the writer of the paths it names; `None` for events that change
/// nothing (our own reads open and close the files; access times).
fn writer_of(kind: &EventKind) -> Option<Writer> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => {
            Some(Writer::Closed)
        }
        EventKind::Access(_)
        | EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => None,
        EventKind::Modify(ModifyKind::Name(_) | ModifyKind::Metadata(_))
        | EventKind::Create(_)
        | EventKind::Remove(_) => Some(Writer::Done),
        // Data changes without a close, and whatever a platform cannot say more precisely.
        EventKind::Modify(_) | EventKind::Any | EventKind::Other => Some(Writer::Writing),
    }
}

/// What to hand to notify, and which event paths matter.
#[derive(Clone, Debug)]
struct WatchTarget {
    directory: PathBuf,
    /// `directory` as notify reports paths below it: made absolute against the working
    /// directory, not resolved.
    absolute: PathBuf,
    mode: RecursiveMode,
    /// For a single-file config: the configured path and its file name.
    file: Option<(PathBuf, OsString)>,
}

impl WatchTarget {
    fn for_path(path: &Path) -> WatchTarget {
        let (directory, mode, file) = if path.is_dir() {
            (path.to_path_buf(), RecursiveMode::Recursive, None)
        } else {
            let directory = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            let file = path
                .file_name()
                .map(|name| (path.to_path_buf(), OsString::from(name)));
            (directory, RecursiveMode::NonRecursive, file)
        };
        let absolute = std::env::current_dir()
            .map_or_else(|_| directory.clone(), |current| current.join(&directory));
        WatchTarget {
            directory,
            absolute,
            mode,
            file,
        }
    }

    /// The paths of `event` that may change the config, as the file source names them (below
    /// the configured path). Hidden entries (editor swap files, a temporary renamed into place
    /// later) are left out, except `..`-prefixed ones: a ConfigMap volume's `..data` swap.
    fn config_paths(&self, event: &Event) -> Vec<PathBuf> {
        event
            .paths
            .iter()
            .filter_map(|path| self.config_path(path))
            .collect()
    }

    fn config_path(&self, path: &Path) -> Option<PathBuf> {
        let name = path.file_name();
        if let Some((file, file_name)) = &self.file {
            return match name {
                Some(name) if name == file_name.as_os_str() => Some(file.clone()),
                Some(name) if is_swap_entry(name) => Some(path.to_path_buf()),
                _ => None,
            };
        }
        let Some(relative) = path
            .strip_prefix(&self.absolute)
            .or_else(|_| path.strip_prefix(&self.directory))
            .ok()
        else {
            // Not below the watched directory as we know it: keep it, the rescan decides.
            return Some(path.to_path_buf());
        };
        let is_hidden_entry = relative.components().any(|component| {
            matches!(component, Component::Normal(name) if is_hidden(name) && !is_swap_entry(name))
        });
        (!is_hidden_entry).then(|| self.directory.join(relative))
    }
}

/// Whether `name` is one of the `..`-prefixed entries a ConfigMap volume swaps.
fn is_swap_entry(name: &std::ffi::OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b"..")
}

#[cfg(test)]
mod tests;
