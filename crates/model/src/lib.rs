//! The resource kinds Portcullis reads, and the [`Store`] that holds them.
//!
//! This crate is plain data: Gateway API types come from the `gateway-api` crate (the experimental
//! channel tree, which is a superset of the standard one; HTTPRoute's containers are our own
//! compact ones, see `http_route.rs`), core Kubernetes types from `k8s-openapi` (the kinds
//! themselves are our own slim ones, `core_slim.rs`, with our compact [`object_meta`]),
//! and our own kinds (`portcullis.dev/v1alpha1`) are defined in [`backend`], [`policy`],
//! [`client_policy`], [`security_policy`], [`rate_limit_policy`] and [`composition`]. It parses multi-document
//! YAML into typed objects ([`parse`]) and keeps them in a [`Store`] keyed by kind, namespace and name.
//! It has no behaviour beyond that: validation and reference resolution belong to `compile`.

/// A name or a namespace: held inline up to 24 bytes, as nearly every Kubernetes name and
/// namespace is, so a key or a reference to an object allocates nothing of its own (the same
/// 24 bytes as a `String`, which allocates for every name: at 5,000 routes about 200,000
/// small blocks between the store and the compiler).
pub type Name = compact_str::CompactString;

pub mod backend;
pub mod client_policy;
pub mod composition;
mod core_slim;
pub mod diff;
mod gateway_roots;
mod http_route;
pub mod kind;
pub mod object_meta;
pub mod parse;
pub mod policy;
pub mod rate_limit_policy;
pub mod schema;
pub mod security_policy;
pub mod store;

pub use backend::{Backend, BackendEndpoint, BackendSpec};
pub use client_policy::ClientTrafficPolicy;
pub use composition::Composition;
pub use kind::{Kind, Object, ObjectKey};
pub use parse::{ParseError, Parsed, parse_documents};
pub use policy::BackendTrafficPolicy;
pub use rate_limit_policy::RateLimitPolicy;
pub use security_policy::SecurityPolicy;
pub use store::{NamespacedName, Store, key};

/// Gateway API types used by Portcullis (experimental channel, a superset of standard).
///
/// The root of every kind (metadata and spec, see `gateway_roots.rs`) and HTTPRoute's
/// containers (`HttpRoute`, `HttpRouteSpec`, `HttpRouteRules`, `HttpRouteRulesBackendRefs`,
/// `HttpRouteRulesFilters`, see `http_route.rs`) are our own compact ones; named items take
/// precedence over the glob, so they stand in for the generated types of the same names.
pub mod gateway_api {
    pub use crate::gateway_roots::{
        BackendTlsPolicy, Gateway, GatewayClass, GrpcRoute, ListenerSet, ReferenceGrant, TcpRoute,
        TlsRoute, UdpRoute,
    };
    pub use crate::http_route::{
        HttpRoute, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesFilters, HttpRouteSpec,
    };
    pub use ::gateway_api::apis::standard::backendtlspolicies::*;
    pub use ::gateway_api::experimental::gatewayclasses::*;
    pub use ::gateway_api::experimental::gateways::*;
    pub use ::gateway_api::experimental::grpcroutes::*;
    pub use ::gateway_api::experimental::httproutes::*;
    pub use ::gateway_api::experimental::listenersets::*;
    pub use ::gateway_api::experimental::referencegrants::*;
    pub use ::gateway_api::experimental::tcproutes::*;
    pub use ::gateway_api::experimental::tlsroutes::*;
    pub use ::gateway_api::experimental::udproutes::*;
}

/// Core Kubernetes types used by Portcullis.
pub mod core {
    pub use crate::core_slim::{
        ConfigMap, Endpoint, EndpointConditions, EndpointPort, EndpointSlice, Namespace, Secret,
        Service, ServicePort, ServiceSpec,
    };
    pub use crate::object_meta::{Labels, ObjectMeta};
    pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
}
