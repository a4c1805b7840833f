//! Local overrides: `--kubernetes` together with `--config`. The files' objects are laid over
//! the cluster's: an object defined in both (same kind, namespace and name) is the file's.
//! Files are the operator's explicit, local intent (a test route, a Secret that must not live in
//! the cluster); the cluster supplies everything else.

use std::sync::Arc;

use model::Store;
use source::SourceUpdate;
use tokio::sync::watch;

/// `cluster` with every object of `local` added, replacing the cluster's object of the same key.
/// Costs a copy of the cluster store's pointers plus one insert per local object.
pub fn overlay(cluster: &Store, local: &Store) -> Store {
    let mut merged = cluster.clone();
    for object in local.objects() {
        merged.insert(object);
    }
    merged
}

/// Follows both sources and publishes their [`overlay`]: the files' reports, one generation
/// counter of its own, and the kinds that differ from the previous merged store. The first
/// value is the overlay of both channels' current values. The returned channel closes when
/// either source stops. Must run inside a tokio runtime.
pub fn follow_with_local(
    mut cluster: watch::Receiver<Arc<SourceUpdate>>,
    mut local: watch::Receiver<Arc<SourceUpdate>>,
) -> watch::Receiver<Arc<SourceUpdate>> {
    let merge =
        |cluster: &SourceUpdate, local: &SourceUpdate, previous: Option<&Store>, generation| {
            let store = overlay(&cluster.store, &local.store);
            let changed_kinds = match previous {
                Some(previous) => source::changed_kinds(previous, &store),
                None => source::changed_kinds(&Store::new(), &store),
            };
            let mut files = cluster.files.clone();
            files.extend(local.files.iter().cloned());
            Arc::new(SourceUpdate {
                store: Arc::new(store),
                files,
                generation,
                changed_kinds,
                changed: None,
            })
        };
    let first = merge(
        &cluster.borrow_and_update(),
        &local.borrow_and_update(),
        None,
        1,
    );
    let (sender, receiver) = watch::channel(Arc::clone(&first));
    tokio::spawn(async move {
        let mut last = first;
        loop {
            tokio::select! {
                changed = cluster.changed() => if changed.is_err() { return },
                changed = local.changed() => if changed.is_err() { return },
            }
            let next = merge(
                &cluster.borrow_and_update(),
                &local.borrow_and_update(),
                Some(&last.store),
                last.generation + 1,
            );
            if next.changed_kinds.is_empty() && next.files == last.files {
                continue;
            }
            last = Arc::clone(&next);
            if sender.send(next).is_err() {
                return;
            }
        }
    });
    receiver
}

#[cfg(test)]
mod tests;
