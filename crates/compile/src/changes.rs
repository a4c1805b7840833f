//! [`StoreChanges`]: which objects differ between two stores, key by key: what the incremental
//! compiler needs to know to recompile only what a change affects.
//!
//! The walk is `model::diff`'s: one pass over both stores in key order.

use model::diff::{changed_keys, changed_kinds};
use model::{Kind, ObjectKey, Store};

/// `(namespace, name)`.
pub(crate) type Key = model::NamespacedName;

/// The keys that differ (added, removed or changed) between two stores, for the kinds the
/// incremental compiler follows one by one; any other kind that differs is in `other`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct StoreChanges {
    pub(crate) http_routes: Vec<Key>,
    pub(crate) grpc_routes: Vec<Key>,
    pub(crate) services: Vec<Key>,
    pub(crate) backends: Vec<Key>,
    /// Compositions: the routes that looked them up are compiled again, and every
    /// Composition's status.
    pub(crate) compositions: Vec<Key>,
    pub(crate) endpoint_slices: Vec<Key>,
    pub(crate) reference_grants: Vec<Key>,
    /// Namespaces, by name.
    pub(crate) namespaces: Vec<model::Name>,
    /// Whether a Secret or ConfigMap differs: certificates, keys and CA bundles, which only
    /// the context (listeners, policies) reads.
    pub(crate) certificates: bool,
    /// Other kinds with a difference.
    pub(crate) other: Vec<Kind>,
}

impl StoreChanges {
    /// The differences from `old` to `new`.
    pub(crate) fn between(old: &Store, new: &Store) -> StoreChanges {
        /// The kinds followed key by key.
        const BY_KEY: [Kind; 8] = [
            Kind::HttpRoute,
            Kind::GrpcRoute,
            Kind::Service,
            Kind::Backend,
            Kind::Composition,
            Kind::EndpointSlice,
            Kind::ReferenceGrant,
            Kind::Namespace,
        ];
        // One walk over every other kind; Secrets and ConfigMaps are told apart from the rest.
        let (certificates, other): (Vec<Kind>, Vec<Kind>) =
            changed_kinds(old, new, |kind| !BY_KEY.contains(&kind))
                .into_iter()
                .partition(|kind| matches!(kind, Kind::Secret | Kind::ConfigMap));
        StoreChanges {
            http_routes: changed_keys(&old.http_routes, &new.http_routes),
            grpc_routes: changed_keys(&old.grpc_routes, &new.grpc_routes),
            services: changed_keys(&old.services, &new.services),
            backends: changed_keys(&old.backends, &new.backends),
            compositions: changed_keys(&old.compositions, &new.compositions),
            endpoint_slices: changed_keys(&old.endpoint_slices, &new.endpoint_slices),
            reference_grants: changed_keys(&old.reference_grants, &new.reference_grants),
            namespaces: changed_keys(&old.namespaces, &new.namespaces),
            certificates: !certificates.is_empty(),
            other,
        }
    }

    /// The differences named by `keys`: the keys of every object that differs between the
    /// two stores, each once, as the source that made the new store from the old one knows
    /// them. Equal to [`StoreChanges::between`] of those stores, in time proportional to the
    /// change rather than to the stores.
    pub(crate) fn of_keys(keys: &[ObjectKey]) -> StoreChanges {
        let mut changes = StoreChanges::default();
        for key in keys {
            let pair = || (key.namespace.clone(), key.name.clone());
            match key.kind {
                Kind::HttpRoute => changes.http_routes.push(pair()),
                Kind::GrpcRoute => changes.grpc_routes.push(pair()),
                Kind::Service => changes.services.push(pair()),
                Kind::Backend => changes.backends.push(pair()),
                Kind::Composition => changes.compositions.push(pair()),
                Kind::EndpointSlice => changes.endpoint_slices.push(pair()),
                Kind::ReferenceGrant => changes.reference_grants.push(pair()),
                Kind::Namespace => changes.namespaces.push(key.name.clone()),
                Kind::Secret | Kind::ConfigMap => changes.certificates = true,
                other => changes.other.push(other),
            }
        }
        // In key order, each once, as `between` gives them.
        for list in [
            &mut changes.http_routes,
            &mut changes.grpc_routes,
            &mut changes.services,
            &mut changes.backends,
            &mut changes.compositions,
            &mut changes.endpoint_slices,
            &mut changes.reference_grants,
        ] {
            list.sort_unstable();
            list.dedup();
        }
        changes.namespaces.sort_unstable();
        changes.namespaces.dedup();
        changes.other.sort_unstable();
        changes.other.dedup();
        changes
    }

    /// Whether something only the context and the units' lookups through it read differs
    /// (ReferenceGrants, Namespaces, Secrets, ConfigMaps).
    pub(crate) fn touches_context(&self) -> bool {
        self.certificates || !self.reference_grants.is_empty() || !self.namespaces.is_empty()
    }

    /// Whether only EndpointSlices differ, if anything does (the fast path: nothing is
    /// compiled).
    pub(crate) fn is_endpoints_only(&self) -> bool {
        !self.touches_context()
            && self.other.is_empty()
            && self.http_routes.is_empty()
            && self.grpc_routes.is_empty()
            && self.services.is_empty()
            && self.backends.is_empty()
            && self.compositions.is_empty()
    }

    /// Whether nothing differs.
    pub(crate) fn is_empty(&self) -> bool {
        self.is_endpoints_only() && self.endpoint_slices.is_empty()
    }
}
