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
        .contains_key(&("default".to_owned(), name.to_owned()))
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
    let event = |kind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
    let create = EventKind::Create(CreateKind::File);
    assert!(target.is_relevant(&event(create, "/etc/portcullis/gateway.yaml")));
    assert!(target.is_relevant(&event(create, "/etc/portcullis/..data")));
    assert!(!target.is_relevant(&event(create, "/etc/portcullis/other.yaml")));
    let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
    assert!(!target.is_relevant(&event(open, "/etc/portcullis/gateway.yaml")));
    let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
    assert!(target.is_relevant(&event(written, "/etc/portcullis/gateway.yaml")));
}
