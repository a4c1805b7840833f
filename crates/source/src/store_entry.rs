//! One object of a [`Store`] by its key: read it, remove it; and whether two objects are the
//! same `Arc` or equal values.
//!
//! `Store` keeps a map per kind; these pick the map from the key's kind, so the merge can edit
//! the store one key at a time.

use std::sync::Arc;

use model::{Kind, Object, ObjectKey, Store};

/// The object stored under `key`, if any (a clone of its `Arc`).
///
/// The store's maps are keyed by owned `(namespace, name)` pairs; the lookup borrows the key's
/// strings for the pair and gives them back, so that it copies no string.
pub(crate) fn stored(store: &Store, key: &mut ObjectKey) -> Option<Object> {
    let pair = (
        std::mem::take(&mut key.namespace),
        std::mem::take(&mut key.name),
    );
    let found = lookup(store, key.kind, &pair);
    (key.namespace, key.name) = pair;
    found
}

fn lookup(store: &Store, kind: Kind, pair: &model::NamespacedName) -> Option<Object> {
    let name = &pair.1;
    match kind {
        Kind::GatewayClass => store
            .gateway_classes
            .get(name)
            .cloned()
            .map(Object::GatewayClass),
        Kind::Namespace => store.namespaces.get(name).cloned().map(Object::Namespace),
        Kind::Gateway => store.gateways.get(pair).cloned().map(Object::Gateway),
        Kind::ListenerSet => store
            .listener_sets
            .get(pair)
            .cloned()
            .map(Object::ListenerSet),
        Kind::HttpRoute => store.http_routes.get(pair).cloned().map(Object::HttpRoute),
        Kind::GrpcRoute => store.grpc_routes.get(pair).cloned().map(Object::GrpcRoute),
        Kind::TlsRoute => store.tls_routes.get(pair).cloned().map(Object::TlsRoute),
        Kind::TcpRoute => store.tcp_routes.get(pair).cloned().map(Object::TcpRoute),
        Kind::UdpRoute => store.udp_routes.get(pair).cloned().map(Object::UdpRoute),
        Kind::ReferenceGrant => store
            .reference_grants
            .get(pair)
            .cloned()
            .map(Object::ReferenceGrant),
        Kind::BackendTlsPolicy => store
            .backend_tls_policies
            .get(pair)
            .cloned()
            .map(Object::BackendTlsPolicy),
        Kind::Service => store.services.get(pair).cloned().map(Object::Service),
        Kind::EndpointSlice => store
            .endpoint_slices
            .get(pair)
            .cloned()
            .map(Object::EndpointSlice),
        Kind::Secret => store.secrets.get(pair).cloned().map(Object::Secret),
        Kind::ConfigMap => store.config_maps.get(pair).cloned().map(Object::ConfigMap),
        Kind::Backend => store.backends.get(pair).cloned().map(Object::Backend),
        Kind::BackendTrafficPolicy => store
            .backend_traffic_policies
            .get(pair)
            .cloned()
            .map(Object::BackendTrafficPolicy),
        Kind::ClientTrafficPolicy => store
            .client_traffic_policies
            .get(pair)
            .cloned()
            .map(Object::ClientTrafficPolicy),
        Kind::SecurityPolicy => store
            .security_policies
            .get(pair)
            .cloned()
            .map(Object::SecurityPolicy),
        Kind::RateLimitPolicy => store
            .rate_limit_policies
            .get(pair)
            .cloned()
            .map(Object::RateLimitPolicy),
        Kind::Composition => store
            .compositions
            .get(pair)
            .cloned()
            .map(Object::Composition),
    }
}

/// Removes the object stored under `key`, if any.
pub(crate) fn remove(store: &mut Store, key: &ObjectKey) {
    let pair = || (key.namespace.clone(), key.name.clone());
    // The removed value is dropped: the caller knows what it replaces.
    let _ = match key.kind {
        Kind::GatewayClass => store.gateway_classes.remove(&key.name).is_some(),
        Kind::Namespace => store.namespaces.remove(&key.name).is_some(),
        Kind::Gateway => store.gateways.remove(&pair()).is_some(),
        Kind::ListenerSet => store.listener_sets.remove(&pair()).is_some(),
        Kind::HttpRoute => store.http_routes.remove(&pair()).is_some(),
        Kind::GrpcRoute => store.grpc_routes.remove(&pair()).is_some(),
        Kind::TlsRoute => store.tls_routes.remove(&pair()).is_some(),
        Kind::TcpRoute => store.tcp_routes.remove(&pair()).is_some(),
        Kind::UdpRoute => store.udp_routes.remove(&pair()).is_some(),
        Kind::ReferenceGrant => store.reference_grants.remove(&pair()).is_some(),
        Kind::BackendTlsPolicy => store.backend_tls_policies.remove(&pair()).is_some(),
        Kind::Service => store.services.remove(&pair()).is_some(),
        Kind::EndpointSlice => store.endpoint_slices.remove(&pair()).is_some(),
        Kind::Secret => store.secrets.remove(&pair()).is_some(),
        Kind::ConfigMap => store.config_maps.remove(&pair()).is_some(),
        Kind::Backend => store.backends.remove(&pair()).is_some(),
        Kind::BackendTrafficPolicy => store.backend_traffic_policies.remove(&pair()).is_some(),
        Kind::ClientTrafficPolicy => store.client_traffic_policies.remove(&pair()).is_some(),
        Kind::SecurityPolicy => store.security_policies.remove(&pair()).is_some(),
        Kind::RateLimitPolicy => store.rate_limit_policies.remove(&pair()).is_some(),
        Kind::Composition => store.compositions.remove(&pair()).is_some(),
    };
}

/// Whether `a` and `b` are the same object: the same `Arc`.
pub(crate) fn is_same(a: &Object, b: &Object) -> bool {
    a.kind() == b.kind() && address(a) == address(b)
}

/// The address of an object's value, which identifies its `Arc`.
fn address(object: &Object) -> *const () {
    match object {
        Object::GatewayClass(o) => Arc::as_ptr(o).cast(),
        Object::Gateway(o) => Arc::as_ptr(o).cast(),
        Object::ListenerSet(o) => Arc::as_ptr(o).cast(),
        Object::HttpRoute(o) => Arc::as_ptr(o).cast(),
        Object::GrpcRoute(o) => Arc::as_ptr(o).cast(),
        Object::TlsRoute(o) => Arc::as_ptr(o).cast(),
        Object::TcpRoute(o) => Arc::as_ptr(o).cast(),
        Object::UdpRoute(o) => Arc::as_ptr(o).cast(),
        Object::ReferenceGrant(o) => Arc::as_ptr(o).cast(),
        Object::BackendTlsPolicy(o) => Arc::as_ptr(o).cast(),
        Object::Namespace(o) => Arc::as_ptr(o).cast(),
        Object::Service(o) => Arc::as_ptr(o).cast(),
        Object::EndpointSlice(o) => Arc::as_ptr(o).cast(),
        Object::Secret(o) => Arc::as_ptr(o).cast(),
        Object::ConfigMap(o) => Arc::as_ptr(o).cast(),
        Object::Backend(o) => Arc::as_ptr(o).cast(),
        Object::BackendTrafficPolicy(o) => Arc::as_ptr(o).cast(),
        Object::ClientTrafficPolicy(o) => Arc::as_ptr(o).cast(),
        Object::SecurityPolicy(o) => Arc::as_ptr(o).cast(),
        Object::RateLimitPolicy(o) => Arc::as_ptr(o).cast(),
        Object::Composition(o) => Arc::as_ptr(o).cast(),
    }
}

/// Whether `a` and `b` are equal: the same `Arc`, or equal values of the same kind.
pub(crate) fn is_equal(a: &Object, b: &Object) -> bool {
    if is_same(a, b) {
        return true;
    }
    match (a, b) {
        (Object::GatewayClass(a), Object::GatewayClass(b)) => a == b,
        (Object::Gateway(a), Object::Gateway(b)) => a == b,
        (Object::ListenerSet(a), Object::ListenerSet(b)) => a == b,
        (Object::HttpRoute(a), Object::HttpRoute(b)) => a == b,
        (Object::GrpcRoute(a), Object::GrpcRoute(b)) => a == b,
        (Object::TlsRoute(a), Object::TlsRoute(b)) => a == b,
        (Object::TcpRoute(a), Object::TcpRoute(b)) => a == b,
        (Object::UdpRoute(a), Object::UdpRoute(b)) => a == b,
        (Object::ReferenceGrant(a), Object::ReferenceGrant(b)) => a == b,
        (Object::BackendTlsPolicy(a), Object::BackendTlsPolicy(b)) => a == b,
        (Object::Namespace(a), Object::Namespace(b)) => a == b,
        (Object::Service(a), Object::Service(b)) => a == b,
        (Object::EndpointSlice(a), Object::EndpointSlice(b)) => a == b,
        (Object::Secret(a), Object::Secret(b)) => a == b,
        (Object::ConfigMap(a), Object::ConfigMap(b)) => a == b,
        (Object::Backend(a), Object::Backend(b)) => a == b,
        (Object::BackendTrafficPolicy(a), Object::BackendTrafficPolicy(b)) => a == b,
        (Object::ClientTrafficPolicy(a), Object::ClientTrafficPolicy(b)) => a == b,
        (Object::SecurityPolicy(a), Object::SecurityPolicy(b)) => a == b,
        (Object::RateLimitPolicy(a), Object::RateLimitPolicy(b)) => a == b,
        (Object::Composition(a), Object::Composition(b)) => a == b,
        _ => false,
    }
}

/// Whether `object.key()` is `key`, without building the key.
pub(crate) fn has_key(object: &Object, key: &ObjectKey) -> bool {
    let kind = object.kind();
    if kind != key.kind {
        return false;
    }
    let metadata = object.metadata();
    if metadata.name.as_deref().unwrap_or("") != key.name {
        return false;
    }
    // As `Object::key`: no namespace for cluster-scoped kinds, `default` when absent.
    if kind.is_cluster_scoped() {
        key.namespace.is_empty()
    } else {
        metadata.namespace.as_deref().unwrap_or("default") == key.namespace
    }
}

#[cfg(test)]
mod tests;
