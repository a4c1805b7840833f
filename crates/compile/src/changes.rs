//! [`StoreChanges`]: which objects differ between two stores, key by key: what the incremental
//! compiler needs to know to recompile only what a change affects.
//!
//! The walk is `model::diff`'s: one pass over both stores in key order.

use model::diff::{changed_keys, changed_kinds};
use model::{Kind, Store};

/// `(namespace, name)`.
pub(crate) type Key = (String, String);

/// The keys that differ (added, removed or changed) between two stores, for the kinds the
/// incremental compiler follows one by one; any other kind that differs is in `other`.
#[derive(Debug, Default)]
pub(crate) struct StoreChanges {
    pub(crate) http_routes: Vec<Key>,
    pub(crate) grpc_routes: Vec<Key>,
    pub(crate) services: Vec<Key>,
    pub(crate) backends: Vec<Key>,
    pub(crate) endpoint_slices: Vec<Key>,
    /// Other kinds with a difference.
    pub(crate) other: Vec<Kind>,
}

impl StoreChanges {
    /// The differences from `old` to `new`.
    pub(crate) fn between(old: &Store, new: &Store) -> StoreChanges {
        const FOLLOWED: [Kind; 5] = [
            Kind::HttpRoute,
            Kind::GrpcRoute,
            Kind::Service,
            Kind::Backend,
            Kind::EndpointSlice,
        ];
        StoreChanges {
            http_routes: changed_keys(&old.http_routes, &new.http_routes),
            grpc_routes: changed_keys(&old.grpc_routes, &new.grpc_routes),
            services: changed_keys(&old.services, &new.services),
            backends: changed_keys(&old.backends, &new.backends),
            endpoint_slices: changed_keys(&old.endpoint_slices, &new.endpoint_slices),
            other: changed_kinds(old, new, |kind| !FOLLOWED.contains(&kind))
                .into_iter()
                .collect(),
        }
    }

    /// Whether nothing differs.
    pub(crate) fn is_empty(&self) -> bool {
        self.other.is_empty()
            && self.http_routes.is_empty()
            && self.grpc_routes.is_empty()
            && self.services.is_empty()
            && self.backends.is_empty()
            && self.endpoint_slices.is_empty()
    }
}
