//! The [`Store`]: every object we read, typed, keyed by namespace and name.
//!
//! Sources fill it; `compile` reads it. Values are `Arc`s, so rebuilding a store after a change
//! clones pointers, not objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::Name;
use crate::backend::Backend;
use crate::client_policy::ClientTrafficPolicy;
use crate::composition::Composition;
use crate::core::{ConfigMap, EndpointSlice, Labels, Namespace, Secret, Service};
use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TcpRoute, TlsRoute, UdpRoute,
};
use crate::kind::{Kind, Object, ObjectKey};
use crate::policy::BackendTrafficPolicy;
use crate::rate_limit_policy::RateLimitPolicy;
use crate::security_policy::SecurityPolicy;

/// `(namespace, name)`.
pub type NamespacedName = (Name, Name);

/// The key of the object `name` in `namespace`, as the store's maps are keyed.
pub fn key(namespace: &str, name: &str) -> NamespacedName {
    (Name::from(namespace), Name::from(name))
}

/// Label EndpointSlices carry to name their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Every object we read, by kind. Iteration order is by namespace then name (BTreeMap), which
/// makes compile output deterministic.
#[derive(Clone, Debug, Default)]
#[allow(missing_docs)] // one map per kind, named after it
pub struct Store {
    pub gateway_classes: BTreeMap<Name, Arc<GatewayClass>>,
    pub gateways: BTreeMap<NamespacedName, Arc<Gateway>>,
    pub listener_sets: BTreeMap<NamespacedName, Arc<ListenerSet>>,
    pub http_routes: BTreeMap<NamespacedName, Arc<HttpRoute>>,
    pub grpc_routes: BTreeMap<NamespacedName, Arc<GrpcRoute>>,
    pub tls_routes: BTreeMap<NamespacedName, Arc<TlsRoute>>,
    pub tcp_routes: BTreeMap<NamespacedName, Arc<TcpRoute>>,
    pub udp_routes: BTreeMap<NamespacedName, Arc<UdpRoute>>,
    pub reference_grants: BTreeMap<NamespacedName, Arc<ReferenceGrant>>,
    pub backend_tls_policies: BTreeMap<NamespacedName, Arc<BackendTlsPolicy>>,
    pub namespaces: BTreeMap<Name, Arc<Namespace>>,
    pub services: BTreeMap<NamespacedName, Arc<Service>>,
    pub endpoint_slices: BTreeMap<NamespacedName, Arc<EndpointSlice>>,
    pub secrets: BTreeMap<NamespacedName, Arc<Secret>>,
    pub config_maps: BTreeMap<NamespacedName, Arc<ConfigMap>>,
    pub backends: BTreeMap<NamespacedName, Arc<Backend>>,
    pub backend_traffic_policies: BTreeMap<NamespacedName, Arc<BackendTrafficPolicy>>,
    pub client_traffic_policies: BTreeMap<NamespacedName, Arc<ClientTrafficPolicy>>,
    pub security_policies: BTreeMap<NamespacedName, Arc<SecurityPolicy>>,
    pub rate_limit_policies: BTreeMap<NamespacedName, Arc<RateLimitPolicy>>,
    pub compositions: BTreeMap<NamespacedName, Arc<Composition>>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// Adds or replaces an object. Returns `true` when an object with the same key was replaced.
    pub fn insert(&mut self, object: Object) -> bool {
        let ObjectKey {
            namespace, name, ..
        } = object.key();
        let key = (namespace, name.clone());
        match object {
            Object::GatewayClass(o) => self.gateway_classes.insert(name, o).is_some(),
            Object::Namespace(o) => self.namespaces.insert(name, o).is_some(),
            Object::Gateway(o) => self.gateways.insert(key, o).is_some(),
            Object::ListenerSet(o) => self.listener_sets.insert(key, o).is_some(),
            Object::HttpRoute(o) => self.http_routes.insert(key, o).is_some(),
            Object::GrpcRoute(o) => self.grpc_routes.insert(key, o).is_some(),
            Object::TlsRoute(o) => self.tls_routes.insert(key, o).is_some(),
            Object::TcpRoute(o) => self.tcp_routes.insert(key, o).is_some(),
            Object::UdpRoute(o) => self.udp_routes.insert(key, o).is_some(),
            Object::ReferenceGrant(o) => self.reference_grants.insert(key, o).is_some(),
            Object::BackendTlsPolicy(o) => self.backend_tls_policies.insert(key, o).is_some(),
            Object::Service(o) => self.services.insert(key, o).is_some(),
            Object::EndpointSlice(o) => self.endpoint_slices.insert(key, o).is_some(),
            Object::Secret(o) => self.secrets.insert(key, o).is_some(),
            Object::ConfigMap(o) => self.config_maps.insert(key, o).is_some(),
            Object::Backend(o) => self.backends.insert(key, o).is_some(),
            Object::BackendTrafficPolicy(o) => {
                self.backend_traffic_policies.insert(key, o).is_some()
            }
            Object::ClientTrafficPolicy(o) => self.client_traffic_policies.insert(key, o).is_some(),
            Object::SecurityPolicy(o) => self.security_policies.insert(key, o).is_some(),
            Object::RateLimitPolicy(o) => self.rate_limit_policies.insert(key, o).is_some(),
            Object::Composition(o) => self.compositions.insert(key, o).is_some(),
        }
    }

    /// The object stored under `key`, if any (a clone of its `Arc`).
    pub fn get(&self, key: &ObjectKey) -> Option<Object> {
        let namespaced = (key.namespace.clone(), key.name.clone());
        let namespaced = &namespaced;
        let name = &key.name;
        Some(match key.kind {
            Kind::GatewayClass => Object::GatewayClass(Arc::clone(self.gateway_classes.get(name)?)),
            Kind::Namespace => Object::Namespace(Arc::clone(self.namespaces.get(name)?)),
            Kind::Gateway => Object::Gateway(Arc::clone(self.gateways.get(namespaced)?)),
            Kind::ListenerSet => {
                Object::ListenerSet(Arc::clone(self.listener_sets.get(namespaced)?))
            }
            Kind::HttpRoute => Object::HttpRoute(Arc::clone(self.http_routes.get(namespaced)?)),
            Kind::GrpcRoute => Object::GrpcRoute(Arc::clone(self.grpc_routes.get(namespaced)?)),
            Kind::TlsRoute => Object::TlsRoute(Arc::clone(self.tls_routes.get(namespaced)?)),
            Kind::TcpRoute => Object::TcpRoute(Arc::clone(self.tcp_routes.get(namespaced)?)),
            Kind::UdpRoute => Object::UdpRoute(Arc::clone(self.udp_routes.get(namespaced)?)),
            Kind::ReferenceGrant => {
                Object::ReferenceGrant(Arc::clone(self.reference_grants.get(namespaced)?))
            }
            Kind::BackendTlsPolicy => {
                Object::BackendTlsPolicy(Arc::clone(self.backend_tls_policies.get(namespaced)?))
            }
            Kind::Service => Object::Service(Arc::clone(self.services.get(namespaced)?)),
            Kind::EndpointSlice => {
                Object::EndpointSlice(Arc::clone(self.endpoint_slices.get(namespaced)?))
            }
            Kind::Secret => Object::Secret(Arc::clone(self.secrets.get(namespaced)?)),
            Kind::ConfigMap => Object::ConfigMap(Arc::clone(self.config_maps.get(namespaced)?)),
            Kind::Backend => Object::Backend(Arc::clone(self.backends.get(namespaced)?)),
            Kind::BackendTrafficPolicy => Object::BackendTrafficPolicy(Arc::clone(
                self.backend_traffic_policies.get(namespaced)?,
            )),
            Kind::ClientTrafficPolicy => Object::ClientTrafficPolicy(Arc::clone(
                self.client_traffic_policies.get(namespaced)?,
            )),
            Kind::SecurityPolicy => {
                Object::SecurityPolicy(Arc::clone(self.security_policies.get(namespaced)?))
            }
            Kind::RateLimitPolicy => {
                Object::RateLimitPolicy(Arc::clone(self.rate_limit_policies.get(namespaced)?))
            }
            Kind::Composition => {
                Object::Composition(Arc::clone(self.compositions.get(namespaced)?))
            }
        })
    }

    /// Removes the object stored under `key`. Returns `true` when there was one.
    pub fn remove(&mut self, key: &ObjectKey) -> bool {
        let namespaced = (key.namespace.clone(), key.name.clone());
        let namespaced = &namespaced;
        let name = &key.name;
        match key.kind {
            Kind::GatewayClass => self.gateway_classes.remove(name).is_some(),
            Kind::Namespace => self.namespaces.remove(name).is_some(),
            Kind::Gateway => self.gateways.remove(namespaced).is_some(),
            Kind::ListenerSet => self.listener_sets.remove(namespaced).is_some(),
            Kind::HttpRoute => self.http_routes.remove(namespaced).is_some(),
            Kind::GrpcRoute => self.grpc_routes.remove(namespaced).is_some(),
            Kind::TlsRoute => self.tls_routes.remove(namespaced).is_some(),
            Kind::TcpRoute => self.tcp_routes.remove(namespaced).is_some(),
            Kind::UdpRoute => self.udp_routes.remove(namespaced).is_some(),
            Kind::ReferenceGrant => self.reference_grants.remove(namespaced).is_some(),
            Kind::BackendTlsPolicy => self.backend_tls_policies.remove(namespaced).is_some(),
            Kind::Service => self.services.remove(namespaced).is_some(),
            Kind::EndpointSlice => self.endpoint_slices.remove(namespaced).is_some(),
            Kind::Secret => self.secrets.remove(namespaced).is_some(),
            Kind::ConfigMap => self.config_maps.remove(namespaced).is_some(),
            Kind::Backend => self.backends.remove(namespaced).is_some(),
            Kind::BackendTrafficPolicy => {
                self.backend_traffic_policies.remove(namespaced).is_some()
            }
            Kind::ClientTrafficPolicy => self.client_traffic_policies.remove(namespaced).is_some(),
            Kind::SecurityPolicy => self.security_policies.remove(namespaced).is_some(),
            Kind::RateLimitPolicy => self.rate_limit_policies.remove(namespaced).is_some(),
            Kind::Composition => self.compositions.remove(namespaced).is_some(),
        }
    }

    /// Every object, kind by kind (in [`Kind`] order), then by namespace and name.
    pub fn objects(&self) -> impl Iterator<Item = Object> + '_ {
        fn each<'a, K: 'a, T: 'a>(
            map: &'a BTreeMap<K, Arc<T>>,
            wrap: fn(Arc<T>) -> Object,
        ) -> impl Iterator<Item = Object> + 'a {
            map.values().map(move |value| wrap(Arc::clone(value)))
        }
        each(&self.gateway_classes, Object::GatewayClass)
            .chain(each(&self.gateways, Object::Gateway))
            .chain(each(&self.listener_sets, Object::ListenerSet))
            .chain(each(&self.http_routes, Object::HttpRoute))
            .chain(each(&self.grpc_routes, Object::GrpcRoute))
            .chain(each(&self.tls_routes, Object::TlsRoute))
            .chain(each(&self.tcp_routes, Object::TcpRoute))
            .chain(each(&self.udp_routes, Object::UdpRoute))
            .chain(each(&self.reference_grants, Object::ReferenceGrant))
            .chain(each(&self.backend_tls_policies, Object::BackendTlsPolicy))
            .chain(each(&self.namespaces, Object::Namespace))
            .chain(each(&self.services, Object::Service))
            .chain(each(&self.endpoint_slices, Object::EndpointSlice))
            .chain(each(&self.secrets, Object::Secret))
            .chain(each(&self.config_maps, Object::ConfigMap))
            .chain(each(&self.backends, Object::Backend))
            .chain(each(
                &self.backend_traffic_policies,
                Object::BackendTrafficPolicy,
            ))
            .chain(each(
                &self.client_traffic_policies,
                Object::ClientTrafficPolicy,
            ))
            .chain(each(&self.security_policies, Object::SecurityPolicy))
            .chain(each(&self.rate_limit_policies, Object::RateLimitPolicy))
            .chain(each(&self.compositions, Object::Composition))
    }

    /// The labels of a namespace. A namespace that has no Namespace object exists implicitly,
    /// without labels.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces
            .get(namespace)
            .and_then(|ns| ns.metadata.labels.as_ref())
    }

    /// Total number of objects.
    pub fn len(&self) -> usize {
        self.gateway_classes.len()
            + self.gateways.len()
            + self.listener_sets.len()
            + self.http_routes.len()
            + self.grpc_routes.len()
            + self.tls_routes.len()
            + self.tcp_routes.len()
            + self.udp_routes.len()
            + self.reference_grants.len()
            + self.backend_tls_policies.len()
            + self.namespaces.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.secrets.len()
            + self.config_maps.len()
            + self.backends.len()
            + self.backend_traffic_policies.len()
            + self.client_traffic_policies.len()
            + self.security_policies.len()
            + self.rate_limit_policies.len()
            + self.compositions.len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
