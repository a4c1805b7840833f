//! The kinds we read, one [`Object`] enum over them, and the [`ObjectKey`] that names an object.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::Name;
use crate::backend::Backend;
use crate::client_policy::ClientTrafficPolicy;
use crate::composition::Composition;
use crate::core::{ConfigMap, EndpointSlice, Namespace, ObjectMeta, Secret, Service};
use crate::gateway_api::{
    BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, HttpRoute, ListenerSet, ReferenceGrant,
    TcpRoute, TlsRoute, UdpRoute,
};
use crate::policy::BackendTrafficPolicy;
use crate::rate_limit_policy::RateLimitPolicy;
use crate::security_policy::SecurityPolicy;

/// Group of the Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// Group of our own kinds.
pub const PORTCULLIS_GROUP: &str = "portcullis.dev";

/// A kind Portcullis understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Kind {
    /// `gateway.networking.k8s.io` GatewayClass (cluster scoped).
    GatewayClass,
    /// `gateway.networking.k8s.io` Gateway.
    Gateway,
    /// `gateway.networking.k8s.io` ListenerSet.
    ListenerSet,
    /// `gateway.networking.k8s.io` HTTPRoute.
    HttpRoute,
    /// `gateway.networking.k8s.io` GRPCRoute.
    GrpcRoute,
    /// `gateway.networking.k8s.io` TLSRoute.
    TlsRoute,
    /// `gateway.networking.k8s.io` TCPRoute.
    TcpRoute,
    /// `gateway.networking.k8s.io` UDPRoute.
    UdpRoute,
    /// `gateway.networking.k8s.io` ReferenceGrant.
    ReferenceGrant,
    /// `gateway.networking.k8s.io` BackendTLSPolicy.
    BackendTlsPolicy,
    /// core Namespace (cluster scoped).
    Namespace,
    /// core Service.
    Service,
    /// `discovery.k8s.io` EndpointSlice.
    EndpointSlice,
    /// core Secret.
    Secret,
    /// core ConfigMap.
    ConfigMap,
    /// `portcullis.dev` Backend.
    Backend,
    /// `portcullis.dev` BackendTrafficPolicy.
    BackendTrafficPolicy,
    /// `portcullis.dev` ClientTrafficPolicy.
    ClientTrafficPolicy,
    /// `portcullis.dev` SecurityPolicy.
    SecurityPolicy,
    /// `portcullis.dev` RateLimitPolicy.
    RateLimitPolicy,
    /// `portcullis.dev` Composition.
    Composition,
}

impl Kind {
    /// The kind as Kubernetes spells it (`HTTPRoute`, `EndpointSlice`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GatewayClass => "GatewayClass",
            Kind::Gateway => "Gateway",
            Kind::ListenerSet => "ListenerSet",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::UdpRoute => "UDPRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::BackendTlsPolicy => "BackendTLSPolicy",
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Secret => "Secret",
            Kind::ConfigMap => "ConfigMap",
            Kind::Backend => "Backend",
            Kind::BackendTrafficPolicy => "BackendTrafficPolicy",
            Kind::ClientTrafficPolicy => "ClientTrafficPolicy",
            Kind::SecurityPolicy => "SecurityPolicy",
            Kind::RateLimitPolicy => "RateLimitPolicy",
            Kind::Composition => "Composition",
        }
    }

    /// The API group ("" for core).
    pub fn group(self) -> &'static str {
        match self {
            Kind::GatewayClass
            | Kind::Gateway
            | Kind::ListenerSet
            | Kind::HttpRoute
            | Kind::GrpcRoute
            | Kind::TlsRoute
            | Kind::TcpRoute
            | Kind::UdpRoute
            | Kind::ReferenceGrant
            | Kind::BackendTlsPolicy => GATEWAY_GROUP,
            Kind::Namespace | Kind::Service | Kind::Secret | Kind::ConfigMap => "",
            Kind::EndpointSlice => "discovery.k8s.io",
            Kind::Backend
            | Kind::BackendTrafficPolicy
            | Kind::ClientTrafficPolicy
            | Kind::SecurityPolicy
            | Kind::RateLimitPolicy
            | Kind::Composition => PORTCULLIS_GROUP,
        }
    }

    /// Whether objects of this kind have no namespace.
    pub fn is_cluster_scoped(self) -> bool {
        matches!(self, Kind::GatewayClass | Kind::Namespace)
    }

    /// Whether a change to objects of this kind only affects endpoint sets (the fast path),
    /// never route tables or status.
    pub fn is_endpoint_only(self) -> bool {
        matches!(self, Kind::EndpointSlice)
    }

    /// Maps `apiVersion` + `kind` to a kind we read. `None` for anything else (the caller skips it).
    /// Versions are not checked beyond the group: Gateway API `v1`, `v1beta1` and `v1alpha2`
    /// objects share one schema for the fields we read.
    pub fn from_api(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let found = match (group, kind) {
            (GATEWAY_GROUP, "GatewayClass") => Kind::GatewayClass,
            (GATEWAY_GROUP, "Gateway") => Kind::Gateway,
            (GATEWAY_GROUP, "ListenerSet" | "XListenerSet") => Kind::ListenerSet,
            (GATEWAY_GROUP, "HTTPRoute") => Kind::HttpRoute,
            (GATEWAY_GROUP, "GRPCRoute") => Kind::GrpcRoute,
            (GATEWAY_GROUP, "TLSRoute") => Kind::TlsRoute,
            (GATEWAY_GROUP, "TCPRoute") => Kind::TcpRoute,
            (GATEWAY_GROUP, "UDPRoute") => Kind::UdpRoute,
            (GATEWAY_GROUP, "ReferenceGrant") => Kind::ReferenceGrant,
            (GATEWAY_GROUP, "BackendTLSPolicy") => Kind::BackendTlsPolicy,
            ("", "Namespace") => Kind::Namespace,
            ("", "Service") => Kind::Service,
            ("", "Secret") => Kind::Secret,
            ("", "ConfigMap") => Kind::ConfigMap,
            ("discovery.k8s.io", "EndpointSlice") => Kind::EndpointSlice,
            (PORTCULLIS_GROUP, "Backend") => Kind::Backend,
            (PORTCULLIS_GROUP, "BackendTrafficPolicy") => Kind::BackendTrafficPolicy,
            (PORTCULLIS_GROUP, "ClientTrafficPolicy") => Kind::ClientTrafficPolicy,
            (PORTCULLIS_GROUP, "SecurityPolicy") => Kind::SecurityPolicy,
            (PORTCULLIS_GROUP, "RateLimitPolicy") => Kind::RateLimitPolicy,
            (PORTCULLIS_GROUP, "Composition") => Kind::Composition,
            _ => return None,
        };
        Some(found)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one object: kind, namespace ("" for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectKey {
    /// The kind.
    pub kind: Kind,
    /// The namespace; empty for cluster-scoped kinds.
    pub namespace: Name,
    /// The name.
    pub name: Name,
}

impl ObjectKey {
    /// A key for a namespaced object.
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    /// `HTTPRoute shop/cart`, or `GatewayClass portcullis` for cluster-scoped kinds: the prefix
    /// of every config error message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One typed object of a kind we read. Equal when the kinds match and the objects are equal.
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs)] // one variant per kind, named after it
pub enum Object {
    GatewayClass(Arc<GatewayClass>),
    Gateway(Arc<Gateway>),
    ListenerSet(Arc<ListenerSet>),
    HttpRoute(Arc<HttpRoute>),
    GrpcRoute(Arc<GrpcRoute>),
    TlsRoute(Arc<TlsRoute>),
    TcpRoute(Arc<TcpRoute>),
    UdpRoute(Arc<UdpRoute>),
    ReferenceGrant(Arc<ReferenceGrant>),
    BackendTlsPolicy(Arc<BackendTlsPolicy>),
    Namespace(Arc<Namespace>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
    Backend(Arc<Backend>),
    BackendTrafficPolicy(Arc<BackendTrafficPolicy>),
    ClientTrafficPolicy(Arc<ClientTrafficPolicy>),
    SecurityPolicy(Arc<SecurityPolicy>),
    RateLimitPolicy(Arc<RateLimitPolicy>),
    Composition(Arc<Composition>),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::GatewayClass(_) => Kind::GatewayClass,
            Object::Gateway(_) => Kind::Gateway,
            Object::ListenerSet(_) => Kind::ListenerSet,
            Object::HttpRoute(_) => Kind::HttpRoute,
            Object::GrpcRoute(_) => Kind::GrpcRoute,
            Object::TlsRoute(_) => Kind::TlsRoute,
            Object::TcpRoute(_) => Kind::TcpRoute,
            Object::UdpRoute(_) => Kind::UdpRoute,
            Object::ReferenceGrant(_) => Kind::ReferenceGrant,
            Object::BackendTlsPolicy(_) => Kind::BackendTlsPolicy,
            Object::Namespace(_) => Kind::Namespace,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Secret(_) => Kind::Secret,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::Backend(_) => Kind::Backend,
            Object::BackendTrafficPolicy(_) => Kind::BackendTrafficPolicy,
            Object::ClientTrafficPolicy(_) => Kind::ClientTrafficPolicy,
            Object::SecurityPolicy(_) => Kind::SecurityPolicy,
            Object::RateLimitPolicy(_) => Kind::RateLimitPolicy,
            Object::Composition(_) => Kind::Composition,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::GatewayClass(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::ListenerSet(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::GrpcRoute(o) => &o.metadata,
            Object::TlsRoute(o) => &o.metadata,
            Object::TcpRoute(o) => &o.metadata,
            Object::UdpRoute(o) => &o.metadata,
            Object::ReferenceGrant(o) => &o.metadata,
            Object::BackendTlsPolicy(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Backend(o) => &o.metadata,
            Object::BackendTrafficPolicy(o) => &o.metadata,
            Object::ClientTrafficPolicy(o) => &o.metadata,
            Object::SecurityPolicy(o) => &o.metadata,
            Object::RateLimitPolicy(o) => &o.metadata,
            Object::Composition(o) => &o.metadata,
        }
    }

    /// The object's metadata, mutable.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::GatewayClass(o) => &mut Arc::make_mut(o).metadata,
            Object::Gateway(o) => &mut Arc::make_mut(o).metadata,
            Object::ListenerSet(o) => &mut Arc::make_mut(o).metadata,
            Object::HttpRoute(o) => &mut Arc::make_mut(o).metadata,
            Object::GrpcRoute(o) => &mut Arc::make_mut(o).metadata,
            Object::TlsRoute(o) => &mut Arc::make_mut(o).metadata,
            Object::TcpRoute(o) => &mut Arc::make_mut(o).metadata,
            Object::UdpRoute(o) => &mut Arc::make_mut(o).metadata,
            Object::ReferenceGrant(o) => &mut Arc::make_mut(o).metadata,
            Object::BackendTlsPolicy(o) => &mut Arc::make_mut(o).metadata,
            Object::Namespace(o) => &mut Arc::make_mut(o).metadata,
            Object::Service(o) => &mut Arc::make_mut(o).metadata,
            Object::EndpointSlice(o) => &mut Arc::make_mut(o).metadata,
            Object::Secret(o) => &mut Arc::make_mut(o).metadata,
            Object::ConfigMap(o) => &mut Arc::make_mut(o).metadata,
            Object::Backend(o) => &mut Arc::make_mut(o).metadata,
            Object::BackendTrafficPolicy(o) => &mut Arc::make_mut(o).metadata,
            Object::ClientTrafficPolicy(o) => &mut Arc::make_mut(o).metadata,
            Object::SecurityPolicy(o) => &mut Arc::make_mut(o).metadata,
            Object::RateLimitPolicy(o) => &mut Arc::make_mut(o).metadata,
            Object::Composition(o) => &mut Arc::make_mut(o).metadata,
        }
    }

    /// The object's key. Objects without `metadata.namespace` are in `default`, as with kubectl;
    /// cluster-scoped kinds have an empty namespace.
    pub fn key(&self) -> ObjectKey {
        let kind = self.kind();
        let meta = self.metadata();
        let namespace = if kind.is_cluster_scoped() {
            Name::default()
        } else {
            meta.namespace
                .clone()
                .unwrap_or_else(|| Name::const_new("default"))
        };
        ObjectKey {
            kind,
            namespace,
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}
