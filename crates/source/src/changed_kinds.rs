//! Which kinds differ between two stores: decides whether a change can take the endpoint fast
//! path (only EndpointSlices changed) or needs a full compile.

use std::collections::BTreeSet;

use model::{Kind, Store};

/// Kinds whose objects differ between `old` and `new`: a key was added or removed, or a value
/// differs. Values that are the same `Arc` are equal without comparing them, which is the common
/// case because unchanged files reuse their parsed objects.
pub fn changed_kinds(old: &Store, new: &Store) -> BTreeSet<Kind> {
    model::diff::changed_kinds(old, new, |_| true)
}

#[cfg(test)]
mod tests;
