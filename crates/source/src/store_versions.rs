//! [`StoreVersions`]: builds each published store from the one before without copying it,
//! when it can.
//!
//! A published store is shared (`Arc<Store>`) with the controller, which keeps it at least until
//! the next one arrives, so the next store cannot be edited in place. Copying the whole store
//! costs in proportion to the config (two strings per key). Instead we keep the store published
//! before the last one with the edits made since: by the time we publish again, the controller
//! has usually let it go, and catching it up costs in proportion to the last two changes. When
//! someone still holds it, or its catch-up would cost about as much, the last store is copied.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::{Kind, Object, ObjectKey, Store};

use crate::merge::StoreEdit;
use crate::store_entry::remove;

/// The store published before the last one, and the edits that made the last one from it.
#[derive(Debug, Default)]
pub struct StoreVersions {
    spare: Option<(Arc<Store>, Vec<StoreEdit>)>,
}

impl StoreVersions {
    /// Lets the spare store go: it holds every key and tree node of the config a second time
    /// (1.3 MB at 5,000 routes while names were `String`s) and only saves the next change a
    /// copy of the store. Call when changes
    /// have stopped for a while (the file watcher does after a second of quiet); the next
    /// change then copies the last store.
    pub fn forget_spare(&mut self) {
        self.spare = None;
    }

    /// The store after `edits` to `current` (the last published store), to publish next.
    pub fn next(&mut self, current: &Arc<Store>, edits: Vec<StoreEdit>) -> Arc<Store> {
        if current.is_empty() {
            // The first load: every object is new. Sorted maps are built in one go from the
            // edits' own keys, far quicker than inserting them one by one.
            self.spare = None;
            return Arc::new(built(edits));
        }
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

/// A store of the objects `edits` add (removals have nothing to remove).
fn built(edits: Vec<StoreEdit>) -> Store {
    // Each list allocated once, at its size: grown by doubling, the lists of the big kinds
    // would leave the buffers they replaced as holes in the allocator's large pages.
    let mut counts: BTreeMap<Kind, usize> = BTreeMap::new();
    for (key, object) in &edits {
        if object.is_some() {
            *counts.entry(key.kind).or_default() += 1;
        }
    }
    let count = |kind| counts.get(&kind).copied().unwrap_or(0);
    let mut gateway_classes = Vec::with_capacity(count(Kind::GatewayClass));
    let mut gateways = Vec::with_capacity(count(Kind::Gateway));
    let mut listener_sets = Vec::with_capacity(count(Kind::ListenerSet));
    let mut http_routes = Vec::with_capacity(count(Kind::HttpRoute));
    let mut grpc_routes = Vec::with_capacity(count(Kind::GrpcRoute));
    let mut tls_routes = Vec::with_capacity(count(Kind::TlsRoute));
    let mut tcp_routes = Vec::with_capacity(count(Kind::TcpRoute));
    let mut udp_routes = Vec::with_capacity(count(Kind::UdpRoute));
    let mut reference_grants = Vec::with_capacity(count(Kind::ReferenceGrant));
    let mut backend_tls_policies = Vec::with_capacity(count(Kind::BackendTlsPolicy));
    let mut namespaces = Vec::with_capacity(count(Kind::Namespace));
    let mut services = Vec::with_capacity(count(Kind::Service));
    let mut endpoint_slices = Vec::with_capacity(count(Kind::EndpointSlice));
    let mut secrets = Vec::with_capacity(count(Kind::Secret));
    let mut config_maps = Vec::with_capacity(count(Kind::ConfigMap));
    let mut backends = Vec::with_capacity(count(Kind::Backend));
    let mut backend_traffic_policies = Vec::with_capacity(count(Kind::BackendTrafficPolicy));
    let mut client_traffic_policies = Vec::with_capacity(count(Kind::ClientTrafficPolicy));
    let mut security_policies = Vec::with_capacity(count(Kind::SecurityPolicy));
    let mut rate_limit_policies = Vec::with_capacity(count(Kind::RateLimitPolicy));
    let mut compositions = Vec::with_capacity(count(Kind::Composition));
    for (key, object) in edits {
        let Some(object) = object else {
            continue;
        };
        let ObjectKey {
            namespace, name, ..
        } = key;
        let pair = (namespace, name);
        match object {
            Object::GatewayClass(o) => gateway_classes.push((pair.1, o)),
            Object::Namespace(o) => namespaces.push((pair.1, o)),
            Object::Gateway(o) => gateways.push((pair, o)),
            Object::ListenerSet(o) => listener_sets.push((pair, o)),
            Object::HttpRoute(o) => http_routes.push((pair, o)),
            Object::GrpcRoute(o) => grpc_routes.push((pair, o)),
            Object::TlsRoute(o) => tls_routes.push((pair, o)),
            Object::TcpRoute(o) => tcp_routes.push((pair, o)),
            Object::UdpRoute(o) => udp_routes.push((pair, o)),
            Object::ReferenceGrant(o) => reference_grants.push((pair, o)),
            Object::BackendTlsPolicy(o) => backend_tls_policies.push((pair, o)),
            Object::Service(o) => services.push((pair, o)),
            Object::EndpointSlice(o) => endpoint_slices.push((pair, o)),
            Object::Secret(o) => secrets.push((pair, o)),
            Object::ConfigMap(o) => config_maps.push((pair, o)),
            Object::Backend(o) => backends.push((pair, o)),
            Object::BackendTrafficPolicy(o) => backend_traffic_policies.push((pair, o)),
            Object::ClientTrafficPolicy(o) => client_traffic_policies.push((pair, o)),
            Object::SecurityPolicy(o) => security_policies.push((pair, o)),
            Object::RateLimitPolicy(o) => rate_limit_policies.push((pair, o)),
            Object::Composition(o) => compositions.push((pair, o)),
        }
    }
    // `BTreeMap: FromIterator` sorts, then builds the tree bottom up.
    Store {
        gateway_classes: gateway_classes.into_iter().collect(),
        gateways: gateways.into_iter().collect(),
        listener_sets: listener_sets.into_iter().collect(),
        http_routes: http_routes.into_iter().collect(),
        grpc_routes: grpc_routes.into_iter().collect(),
        tls_routes: tls_routes.into_iter().collect(),
        tcp_routes: tcp_routes.into_iter().collect(),
        udp_routes: udp_routes.into_iter().collect(),
        reference_grants: reference_grants.into_iter().collect(),
        backend_tls_policies: backend_tls_policies.into_iter().collect(),
        namespaces: namespaces.into_iter().collect(),
        services: services.into_iter().collect(),
        endpoint_slices: endpoint_slices.into_iter().collect(),
        secrets: secrets.into_iter().collect(),
        config_maps: config_maps.into_iter().collect(),
        backends: backends.into_iter().collect(),
        backend_traffic_policies: backend_traffic_policies.into_iter().collect(),
        client_traffic_policies: client_traffic_policies.into_iter().collect(),
        security_policies: security_policies.into_iter().collect(),
        rate_limit_policies: rate_limit_policies.into_iter().collect(),
        compositions: compositions.into_iter().collect(),
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
