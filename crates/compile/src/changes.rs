//! [`StoreChanges`]: which objects differ between two stores, key by key: what the incremental
//! compiler needs to know to recompile only what a change affects.
//!
//! The walk is `model::diff`'s: one pass over both stores in key order.

use model::diff::{changed_keys, differ};
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
        // Destructured without `..` so that adding a map to `Store` fails to compile here
        // until it is compared too.
        let Store {
            gateway_classes,
            gateways,
            listener_sets,
            http_routes,
            grpc_routes,
            tls_routes,
            reference_grants,
            backend_tls_policies,
            namespaces,
            services,
            endpoint_slices,
            secrets,
            config_maps,
            backends,
            backend_traffic_policies,
            client_traffic_policies,
        } = new;
        let mut changes = StoreChanges {
            http_routes: changed_keys(&old.http_routes, http_routes),
            grpc_routes: changed_keys(&old.grpc_routes, grpc_routes),
            services: changed_keys(&old.services, services),
            backends: changed_keys(&old.backends, backends),
            endpoint_slices: changed_keys(&old.endpoint_slices, endpoint_slices),
            other: Vec::new(),
        };
        let others = [
            (
                Kind::GatewayClass,
                differ(&old.gateway_classes, gateway_classes),
            ),
            (Kind::Gateway, differ(&old.gateways, gateways)),
            (Kind::ListenerSet, differ(&old.listener_sets, listener_sets)),
            (Kind::TlsRoute, differ(&old.tls_routes, tls_routes)),
            (
                Kind::ReferenceGrant,
                differ(&old.reference_grants, reference_grants),
            ),
            (
                Kind::BackendTlsPolicy,
                differ(&old.backend_tls_policies, backend_tls_policies),
            ),
            (Kind::Namespace, differ(&old.namespaces, namespaces)),
            (Kind::Secret, differ(&old.secrets, secrets)),
            (Kind::ConfigMap, differ(&old.config_maps, config_maps)),
            (
                Kind::BackendTrafficPolicy,
                differ(&old.backend_traffic_policies, backend_traffic_policies),
            ),
            (
                Kind::ClientTrafficPolicy,
                differ(&old.client_traffic_policies, client_traffic_policies),
            ),
        ];
        changes.other = others
            .into_iter()
            .filter(|(_, differs)| *differs)
            .map(|(kind, _)| kind)
            .collect();
        changes
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
