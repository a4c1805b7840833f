//! Upstream side of the data plane: backend identities, the endpoint registry, load balancing
//! and connection pools.
//!
//! Everything here outlives a config reload. The [`Registry`] keeps one [`BackendRuntime`] per
//! [`BackendId`]; a new snapshot is *linked* to the registry ([`Registry::link`]), which reuses the
//! runtimes (and so their endpoints, counters and pooled connections) of backends that stay.
//! Endpoint sets change on their own fast path ([`Registry::set_endpoints`]) without touching
//! route tables. This crate does not know about Gateway API objects: `compile` turns Services,
//! EndpointSlices and `Backend` objects into [`BackendSpec`]s and [`EndpointTarget`]s, and
//! BackendTLSPolicies into [`UpstreamTls`] settings that [`Pools`] honour.

pub mod backend;
mod backend_pool;
mod balance;
pub mod breaker;
mod dns;
pub mod endpoint;
pub mod fast_hash;
pub mod health;
mod http1_pool;
pub mod policy;
pub mod pool;
pub mod registry;
mod response_body;
pub mod tls;
mod tls_pool;

pub use backend::{AppProtocol, BackendId, BackendSpec, EndpointTarget, TargetAddress};
pub use balance::PickContext;
pub use endpoint::{EndpointRuntime, EndpointSet};
pub use policy::BackendPolicy;
pub use pool::{ClientBodyError, Pools, RequestBody, UpstreamError};
pub use registry::{BackendRuntime, Registry};
pub use response_body::UpstreamBody;
pub use tls::{ClientCertificate, UpstreamTls};
