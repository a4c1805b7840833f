use std::time::{Duration, SystemTime};

use super::*;
use crate::test_dir::TestDir;

fn stamp_of(path: &std::path::Path) -> FileStamp {
    FileStamp::of(&std::fs::metadata(path).expect("metadata"))
}

#[test]
fn a_rename_over_the_file_changes_the_stamp_even_with_the_same_size_and_time() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", "one\n");
    let before = stamp_of(&path);
    assert_eq!(before, stamp_of(&path));
    assert_eq!(before.len(), 4);

    let staged = dir.write(".a.yaml.tmp", "two\n");
    let file = std::fs::File::open(&path).expect("open");
    let modified = file
        .metadata()
        .expect("metadata")
        .modified()
        .expect("mtime");
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .and_then(|staged| staged.set_modified(modified))
        .expect("set mtime");
    std::fs::rename(&staged, &path).expect("rename");
    assert_ne!(before, stamp_of(&path));
}

#[test]
fn a_growing_file_changes_the_stamp() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", "one\n");
    let before = stamp_of(&path);
    dir.write("a.yaml", "one\ntwo\n");
    assert_ne!(before, stamp_of(&path));
}

#[cfg(unix)]
#[test]
fn only_recently_changed_files_are_recent() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", "one\n");
    let now = SystemTime::now();
    assert!(stamp_of(&path).is_recent(now));
    // An old modification time: still recent while the inode change (setting it) is.
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(now - Duration::from_secs(60)))
        .expect("set mtime");
    let stamp = stamp_of(&path);
    assert!(stamp.is_recent(now));
    assert!(!stamp.is_recent(now + Duration::from_secs(60)));
    assert!(
        stamp.is_recent(now - Duration::from_secs(120)),
        "a change after `now` (a clock step) is recent"
    );
}
