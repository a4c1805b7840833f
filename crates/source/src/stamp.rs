//! [`FileStamp`]: a file's metadata as a cheap "may have changed" test, so that a rescan reads
//! only the files whose metadata moved (or that a watch event named).
//!
//! The stamp is size, modification time and, on Unix, change time, device and inode: a rename
//! over the file (a new inode), a write (mtime, ctime) or a `touch` all change it. A write
//! within the file system's timestamp granularity of the stamp can leave it unchanged, so a
//! file whose modification time is that recent when read is marked stale and read again on the
//! next rescan (git's "racy clean" rule).

use std::fs::Metadata;
use std::time::{Duration, SystemTime};

/// How close to "now" a modification time must be for the stamp not to prove that a later
/// write would change it: above the timestamp granularity of the file systems in use (a few
/// milliseconds on Linux's, one or two seconds on FAT and some network file systems).
const TIMESTAMP_GRANULARITY: Duration = Duration::from_secs(2);

/// A file's metadata, compared between rescans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    unix: UnixStamp,
}

#[cfg(unix)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UnixStamp {
    changed: (i64, i64),
    device: u64,
    inode: u64,
}

impl FileStamp {
    /// The stamp of a file's metadata (of the file a symlink points to, as read).
    pub(crate) fn of(metadata: &Metadata) -> FileStamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            unix: UnixStamp {
                changed: (metadata.ctime(), metadata.ctime_nsec()),
                device: metadata.dev(),
                inode: metadata.ino(),
            },
        }
    }

    /// The file's size in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file was modified (or, on Unix, its inode changed) so shortly before `now`,
    /// or after it (a clock step), that another write could leave this stamp unchanged. The
    /// change time counts because tools such as `tar` set an old modification time.
    pub(crate) fn is_recent(&self, now: SystemTime) -> bool {
        let is_recent = |time: SystemTime| {
            time > now
                || now
                    .duration_since(time)
                    .is_ok_and(|age| age < TIMESTAMP_GRANULARITY)
        };
        #[cfg(unix)]
        {
            let (seconds, nanoseconds) = self.unix.changed;
            let changed = u64::try_from(seconds).ok().map(|seconds| {
                let nanoseconds = u32::try_from(nanoseconds).unwrap_or(0);
                SystemTime::UNIX_EPOCH + Duration::new(seconds, nanoseconds)
            });
            if changed.is_none_or(is_recent) {
                return true;
            }
        }
        self.modified.is_none_or(is_recent)
    }
}

#[cfg(test)]
mod tests;
