use std::time::Duration;

use super::*;
use crate::test_dir::TestDir;

const DEBOUNCE: Duration = Duration::from_millis(50);
const LIVE_WITHIN: Duration = Duration::from_secs(1);

fn backend(name: &str) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {{name: {name}}}\nspec:\n  endpoints: [{{ip: 127.0.0.1, port: 80}}]\n"
    )
}

fn has_backend(update: &SourceUpdate, name: &str) -> bool {
    update
        .store
        .backends
        .contains_key(&model::key("default", name))
}

async fn wait_for_backend(
    receiver: &mut watch::Receiver<Arc<SourceUpdate>>,
    name: &str,
) -> Arc<SourceUpdate> {
    let update = tokio::time::timeout(
        LIVE_WITHIN,
        receiver.wait_for(|update| has_backend(update, name)),
    )
    .await
    .unwrap_or_else(|_| panic!("backend {name} not live within {LIVE_WITHIN:?}"))
    .expect("the watch thread is running");
    Arc::clone(&update)
}

#[tokio::test]
async fn a_new_file_is_live_within_a_second() {
    let dir = TestDir::new();
    dir.write("a.yaml", &backend("one"));
    let mut receiver = FileSource::load(dir.path())
        .expect("load")
        .watch(DEBOUNCE)
        .expect("watch");
    assert_eq!(receiver.borrow_and_update().generation, 1);

    dir.write("sub/b.yaml", &backend("two"));
    let update = wait_for_backend(&mut receiver, "two").await;
    assert!(has_backend(&update, "one"));
    assert!(update.generation > 1);
}

#[tokio::test]
async fn a_single_file_is_watched_through_its_directory() {
    let dir = TestDir::new();
    let path = dir.write("gateway.yaml", &backend("one"));
    let mut receiver = FileSource::load(&path)
        .expect("load")
        .watch(DEBOUNCE)
        .expect("watch");

    std::fs::write(&path, backend("two")).expect("rewrite in place");
    let update = wait_for_backend(&mut receiver, "two").await;
    assert!(!has_backend(&update, "one"));
}

#[tokio::test]
async fn an_atomic_rename_replacement_is_picked_up() {
    let dir = TestDir::new();
    let path = dir.write("gateway.yaml", &backend("one"));
    let mut receiver = FileSource::load(&path)
        .expect("load")
        .watch(DEBOUNCE)
        .expect("watch");

    // What editors and `kubectl cp`-style tools do: write elsewhere, rename over the file.
    let staged = dir.write(".gateway.yaml.tmp", &backend("two"));
    std::fs::rename(&staged, &path).expect("rename");
    wait_for_backend(&mut receiver, "two").await;

    // A second replacement: a watch on the first file's inode would miss this one.
    let staged = dir.write(".gateway.yaml.tmp", &backend("three"));
    std::fs::rename(&staged, &path).expect("rename");
    wait_for_backend(&mut receiver, "three").await;
}

#[cfg(unix)]
#[tokio::test]
async fn a_config_map_volume_swap_is_picked_up() {
    use std::os::unix::fs::symlink;

    // The layout kubelet writes: gateway.yaml -> ..data/gateway.yaml, ..data -> ..v1; an update
    // writes ..v2 and renames a new ..data symlink over the old one.
    let dir = TestDir::new();
    dir.write("..v1/gateway.yaml", &backend("one"));
    symlink("..v1", dir.path().join("..data")).expect("symlink");
    symlink("..data/gateway.yaml", dir.path().join("gateway.yaml")).expect("symlink");
    let mut receiver = FileSource::load(dir.path())
        .expect("load")
        .watch(DEBOUNCE)
        .expect("watch");
    assert!(has_backend(&receiver.borrow_and_update(), "one"));

    dir.write("..v2/gateway.yaml", &backend("two"));
    symlink("..v2", dir.path().join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("swap");
    let update = wait_for_backend(&mut receiver, "two").await;
    assert_eq!(
        update.files.len(),
        1,
        "the ..v1/..v2 directories are hidden"
    );
}

#[test]
fn only_events_for_the_watched_file_are_relevant() {
    use notify::event::{CreateKind, Event};

    let target = WatchTarget::for_path(Path::new("/etc/portcullis/gateway.yaml"));
    let paths =
        |path: &str| target.config_paths(&Event::new(EventKind::Any).add_path(PathBuf::from(path)));
    assert_eq!(
        paths("/etc/portcullis/gateway.yaml"),
        vec![PathBuf::from("/etc/portcullis/gateway.yaml")]
    );
    assert_eq!(
        paths("/etc/portcullis/..data"),
        vec![PathBuf::from("/etc/portcullis/..data")]
    );
    assert!(paths("/etc/portcullis/other.yaml").is_empty());
    assert!(paths("/etc/portcullis/.gateway.yaml.swp").is_empty());

    let create = EventKind::Create(CreateKind::File);
    assert_eq!(writer_of(&create), Some(Writer::Done));
    let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
    assert_eq!(writer_of(&open), None);
    let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
    assert_eq!(writer_of(&read), None);
    let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
    assert_eq!(writer_of(&written), Some(Writer::Closed));
}

#[test]
fn renames_removals_and_metadata_are_done_data_changes_are_writing() {
    use notify::event::{DataChange, ModifyKind, RemoveKind, RenameMode};

    for closed in [
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
    ] {
        assert_eq!(writer_of(&closed), Some(Writer::Closed), "{closed:?}");
    }
    for done in [
        EventKind::Modify(ModifyKind::Name(RenameMode::From)),
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime)),
        EventKind::Remove(RemoveKind::File),
    ] {
        assert_eq!(writer_of(&done), Some(Writer::Done), "{done:?}");
    }
    for writing in [
        EventKind::Modify(ModifyKind::Data(DataChange::Content)),
        EventKind::Modify(ModifyKind::Any),
        EventKind::Any,
    ] {
        assert_eq!(writer_of(&writing), Some(Writer::Writing), "{writing:?}");
    }
    assert_eq!(
        writer_of(&EventKind::Modify(ModifyKind::Metadata(
            MetadataKind::AccessTime
        ))),
        None
    );
}

#[test]
fn a_directory_names_files_as_the_source_does_and_skips_hidden_entries() {
    let dir = TestDir::new();
    let target = WatchTarget::for_path(dir.path());
    let event = |path: PathBuf| Event::new(EventKind::Any).add_path(path);
    let file = dir.path().join("sub/routes.yaml");
    assert_eq!(target.config_paths(&event(file.clone())), vec![file]);
    assert!(
        target
            .config_paths(&event(dir.path().join(".routes.yaml.tmp")))
            .is_empty()
    );
    assert!(
        target
            .config_paths(&event(dir.path().join(".git/index")))
            .is_empty()
    );
    let swap = dir.path().join("..data");
    assert_eq!(target.config_paths(&event(swap.clone())), vec![swap]);
}

/// Long enough that a change seen well within it cannot have waited for it.
const LONG_DEBOUNCE: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_closed_write_is_live_without_waiting_for_the_debounce() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one"));
    let mut receiver = FileSource::load(dir.path())
        .expect("load")
        .watch(LONG_DEBOUNCE)
        .expect("watch");

    let started = std::time::Instant::now();
    std::fs::write(&path, backend("two")).expect("write and close");
    wait_for_backend(&mut receiver, "two").await;
    assert!(
        started.elapsed() < LONG_DEBOUNCE / 3,
        "{:?}",
        started.elapsed()
    );

    // A rename into place, as the benchmark and editors do, is as quick.
    let started = std::time::Instant::now();
    let staged = dir.write(".a.yaml.tmp", &backend("three"));
    std::fs::rename(&staged, &path).expect("rename");
    wait_for_backend(&mut receiver, "three").await;
    assert!(
        started.elapsed() < LONG_DEBOUNCE / 3,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_file_still_open_for_writing_waits_for_the_debounce() {
    use std::io::Write;

    const DEBOUNCE: Duration = Duration::from_millis(600);
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one"));
    let mut receiver = FileSource::load(dir.path())
        .expect("load")
        .watch(DEBOUNCE)
        .expect("watch");
    // Once this is live, the watch thread has made its first pass, which reads whatever changed
    // since the load.
    std::fs::write(&path, backend("zero")).expect("write and close");
    wait_for_backend(&mut receiver, "zero").await;
    // The first pass may have read "zero" before the thread took its events, which then make
    // one more rescan: let it pass, so that it does not meet the write below half done.
    tokio::time::sleep(Duration::from_millis(100)).await;

    // A writer that has written everything but not closed the file yet.
    let mut writer = std::fs::File::create(&path).expect("open for writing");
    writer.write_all(backend("two").as_bytes()).expect("write");
    writer.flush().expect("flush");
    let started = std::time::Instant::now();
    tokio::time::sleep(DEBOUNCE / 3).await;
    assert!(
        !has_backend(&receiver.borrow_and_update(), "two"),
        "read before its writer was done or quiet"
    );
    assert!(has_backend(&receiver.borrow(), "zero"));

    let update = tokio::time::timeout(
        DEBOUNCE + LIVE_WITHIN,
        receiver.wait_for(|update| has_backend(update, "two")),
    )
    .await
    .expect("live once quiet for the debounce")
    .expect("the watch thread is running");
    assert!(!has_backend(&update, "zero"));
    assert!(started.elapsed() >= DEBOUNCE / 2, "{:?}", started.elapsed());
    drop(writer);
}
