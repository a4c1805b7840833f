//! The [`Store`]: every object we read, typed, keyed by namespace and name.
//!
//! Sources fill it; `compile` reads it. Values are `Arc`s, so rebuilding a store after a change
//! clones pointers, not objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::backend::Backend;
use crate::client_policy::ClientTrafficPolicy;
use crate::core::{ConfigMap, EndpointSlice, Namespace, Secret, Service};
use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TlsRoute,
};
use crate::kind::{Object, ObjectKey};
use crate::policy::BackendTrafficPolicy;

/// `(namespace, name)`.
pub type NamespacedName = (String, String);

/// Label EndpointSlices carry to name their Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Every object we read, by kind. Iteration order is by namespace then name (BTreeMap), which
/// makes compile output deterministic.
#[derive(Clone, Debug, Default)]
#[allow(missing_docs)] // one map per kind, named after it
pub struct Store {
    pub gateway_classes: BTreeMap<String, Arc<GatewayClass>>,
    pub gateways: BTreeMap<NamespacedName, Arc<Gateway>>,
    pub listener_sets: BTreeMap<NamespacedName, Arc<ListenerSet>>,
    pub http_routes: BTreeMap<NamespacedName, Arc<HttpRoute>>,
    pub grpc_routes: BTreeMap<NamespacedName, Arc<GrpcRoute>>,
    pub tls_routes: BTreeMap<NamespacedName, Arc<TlsRoute>>,
    pub reference_grants: BTreeMap<NamespacedName, Arc<ReferenceGrant>>,
    pub backend_tls_policies: BTreeMap<NamespacedName, Arc<BackendTlsPolicy>>,
    pub namespaces: BTreeMap<String, Arc<Namespace>>,
    pub services: BTreeMap<NamespacedName, Arc<Service>>,
    pub endpoint_slices: BTreeMap<NamespacedName, Arc<EndpointSlice>>,
    pub secrets: BTreeMap<NamespacedName, Arc<Secret>>,
    pub config_maps: BTreeMap<NamespacedName, Arc<ConfigMap>>,
    pub backends: BTreeMap<NamespacedName, Arc<Backend>>,
    pub backend_traffic_policies: BTreeMap<NamespacedName, Arc<BackendTrafficPolicy>>,
    pub client_traffic_policies: BTreeMap<NamespacedName, Arc<ClientTrafficPolicy>>,
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
        }
    }

    /// The labels of a namespace. A namespace that has no Namespace object exists implicitly,
    /// without labels.
    pub fn namespace_labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
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
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
