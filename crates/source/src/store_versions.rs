//! [`StoreVersions`]: builds each published store from the one before without copying it,
//! when it can.
//!
//! A published store is shared (`Arc<Store>`) with the controller, which keeps it at least until
//! the next one arrives, so the next store cannot be edited in place. Copying the whole store
//! costs in proportion to the config (two strings per key). Instead we keep the store published
//! before the last one with the edits made since: by the time we publish again, the controller
//! has usually let it go, and catching it up costs in proportion to the last two changes. When
//! someone still holds it, or its catch-up would cost about as much, the last store is copied.

use std::sync::Arc;

use model::Store;

use crate::merge::StoreEdit;
use crate::store_entry::remove;

/// The store published before the last one, and the edits that made the last one from it.
#[derive(Debug, Default)]
pub(crate) struct StoreVersions {
    spare: Option<(Arc<Store>, Vec<StoreEdit>)>,
}

impl StoreVersions {
    /// The store after `edits` to `current` (the last published store), to publish next.
    pub(crate) fn next(&mut self, current: &Arc<Store>, edits: Vec<StoreEdit>) -> Arc<Store> {
        let reused = self.spare.take().and_then(|(mut spare, earlier)| {
            // Replaying a long edit list (the first load's) costs more than a copy.
            if earlier.len() > current.len() / 4 {
                return None;
            }
            let store = Arc::get_mut(&mut spare)?;
            apply(store, &earlier);
            Some(spare)
        });
        let mut next = reused.unwrap_or_else(|| Arc::new(Store::clone(current)));
        match Arc::get_mut(&mut next) {
            Some(store) => apply(store, &edits),
            // Unreachable: `next` is a fresh copy or a spare nobody else holds, and it has not
            // been handed out yet. Copy rather than panic.
            None => {
                let mut store = Store::clone(&next);
                apply(&mut store, &edits);
                next = Arc::new(store);
            }
        }
        // A long edit list would not be replayed (see above): keep no spare rather than it.
        self.spare = (edits.len() <= next.len() / 4).then(|| (Arc::clone(current), edits));
        next
    }
}

fn apply(store: &mut Store, edits: &[StoreEdit]) {
    for (key, object) in edits {
        match object {
            Some(object) => {
                store.insert(object.clone());
            }
            None => remove(store, key),
        }
    }
}

#[cfg(test)]
mod tests;
