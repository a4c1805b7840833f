//! Which kinds differ between two stores: decides whether a change can take the endpoint fast
//! path (only EndpointSlices changed) or needs a full compile.

use std::collections::BTreeSet;

use model::diff::differ;
use model::{Kind, Store};

/// Kinds whose objects differ between `old` and `new`: a key was added or removed, or a value
/// differs. Values that are the same `Arc` are equal without comparing them, which is the common
/// case because unchanged files reuse their parsed objects.
pub fn changed_kinds(old: &Store, new: &Store) -> BTreeSet<Kind> {
    // Destructured without `..` so that adding a map to `Store` fails to compile here until it
    // is compared too.
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
    let comparisons = [
        (
            Kind::GatewayClass,
            differ(&old.gateway_classes, gateway_classes),
        ),
        (Kind::Gateway, differ(&old.gateways, gateways)),
        (Kind::ListenerSet, differ(&old.listener_sets, listener_sets)),
        (Kind::HttpRoute, differ(&old.http_routes, http_routes)),
        (Kind::GrpcRoute, differ(&old.grpc_routes, grpc_routes)),
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
        (Kind::Service, differ(&old.services, services)),
        (
            Kind::EndpointSlice,
            differ(&old.endpoint_slices, endpoint_slices),
        ),
        (Kind::Secret, differ(&old.secrets, secrets)),
        (Kind::ConfigMap, differ(&old.config_maps, config_maps)),
        (Kind::Backend, differ(&old.backends, backends)),
        (
            Kind::BackendTrafficPolicy,
            differ(&old.backend_traffic_policies, backend_traffic_policies),
        ),
        (
            Kind::ClientTrafficPolicy,
            differ(&old.client_traffic_policies, client_traffic_policies),
        ),
    ];
    comparisons
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(kind, _)| kind)
        .collect()
}

#[cfg(test)]
mod tests;
