//! When to rescan, and what to tell the rescan, from the watch events seen so far.
//!
//! The notify callback records each event in [`Pending`] (per path: is its writer done, or
//! still writing?); the rescan thread moves that into its [`Schedule`], which decides: paths
//! whose writer is done are read at once; a path still being written is left alone until it
//! has had no write event for the debounce time (or its writer closes it).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::file_source::Changes;

/// What an event says about the writer of the paths it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Writer {
    /// The save is complete: the file was closed after writing, or renamed into place. Nothing
    /// more comes from that writer.
    Closed,
    /// The writer is done, but more events of the same save may follow: created (a write
    /// usually follows), removed, metadata changed.
    Done,
    /// The writer may still be writing: data changed, and no close came yet.
    Writing,
}

/// Events recorded by the notify callback and not yet taken by the rescan thread.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// Per path, the meaning of its latest event and when it came.
    paths: HashMap<PathBuf, (Writer, Instant)>,
    /// When the watcher last said events were lost (or failed): read every file.
    everything: Option<Instant>,
}

impl Pending {
    /// Records an event on `path`; a later event on the same path replaces an earlier one.
    pub(super) fn record(&mut self, path: PathBuf, writer: Writer, at: Instant) {
        self.paths.insert(path, (writer, at));
    }

    /// Records that events were lost.
    pub(super) fn record_lost(&mut self, at: Instant) {
        self.everything = Some(at);
    }

    /// Whether every path's latest event completed its save ([`Writer::Closed`]) and no event
    /// was lost: the rescan need not wait for more of the same save.
    pub(super) fn is_settled(&self) -> bool {
        self.everything.is_none()
            && !self.paths.is_empty()
            && self
                .paths
                .values()
                .all(|(writer, _)| *writer == Writer::Closed)
    }
}

/// The rescan thread's view of the events: what to read, and what waits for its writer.
#[derive(Debug, Default)]
pub(super) struct Schedule {
    /// Paths named by events and not read since.
    named: HashSet<PathBuf>,
    /// Paths with a write in progress, by the time of their latest write event.
    writing: HashMap<PathBuf, Instant>,
    /// Since when every file must be read (events were lost).
    everything: Option<Instant>,
}

impl Schedule {
    /// Moves the pending events in.
    pub(super) fn take(&mut self, pending: &mut Pending) {
        for (path, (writer, at)) in pending.paths.drain() {
            match writer {
                Writer::Closed | Writer::Done => {
                    self.writing.remove(&path);
                }
                Writer::Writing => {
                    self.writing.insert(path.clone(), at);
                }
            }
            self.named.insert(path);
        }
        if let Some(at) = pending.everything.take() {
            self.everything = Some(self.everything.map_or(at, |since| since.max(at)));
        }
    }

    /// What a rescan at `now` should do, if one is due: some named path's writer is done (or
    /// has been quiet for `debounce`), or lost events have been quiet for `debounce`. Takes
    /// the paths it returns; paths still being written stay, deferred.
    pub(super) fn due(&mut self, now: Instant, debounce: Duration) -> Option<Changes> {
        self.writing
            .retain(|_, at| now.saturating_duration_since(*at) < debounce);
        let everything = self
            .everything
            .is_some_and(|since| now.saturating_duration_since(since) >= debounce);
        let writing = &self.writing;
        let ready: HashSet<PathBuf> = self
            .named
            .iter()
            .filter(|path| !writing.contains_key(*path))
            .cloned()
            .collect();
        if ready.is_empty() && !everything {
            return None;
        }
        self.named.retain(|path| !ready.contains(path));
        if everything {
            self.everything = None;
        }
        Some(Changes {
            named: ready,
            deferred: self.deferred(),
            everything,
        })
    }

    /// What the safety-net rescan should do: read what changed, leaving paths being written.
    pub(super) fn safety_net(&self) -> Changes {
        Changes {
            deferred: self.deferred(),
            ..Changes::default()
        }
    }

    /// When the next rescan falls due if no event comes: a write going quiet, or lost events.
    pub(super) fn next_due(&self, debounce: Duration) -> Option<Instant> {
        self.writing
            .values()
            .chain(&self.everything)
            .min()
            .map(|at| *at + debounce)
    }

    fn deferred(&self) -> HashSet<PathBuf> {
        self.writing.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
