//! Compiles the [`model::Store`] into a [`snapshot::Snapshot`] plus Gateway API status.
//!
//! [`compile`] is pure: no I/O, no tasks, no clocks. It validates every object, resolves
//! references (ReferenceGrant, Services, our `Backend` kind), attaches routes to listeners and
//! policies to their targets, computes status conditions with the spec's reasons, and builds
//! the route tables. An invalid
//! object (or rule) is rejected alone, with a condition naming the object and field; everything
//! valid keeps working. Endpoint sets are not part of the snapshot: compile returns an
//! [`EndpointPlan`] that says where each backend's endpoints come from, and
//! [`EndpointPlan::resolve`] turns the store's EndpointSlices into endpoint targets. That second
//! step is the fast path the runtime runs alone when only EndpointSlices change.

mod ancestors;
mod attachment;
mod backend_ref;
mod backend_tls;
mod byte_size;
mod ca_certificate;
mod changes;
mod client_certificate;
mod client_policy;
mod composition;
mod cors;
mod duration;
pub mod endpoints;
pub mod explain;
mod external_auth;
mod features;
mod filter;
mod frontend_tls;
mod gateway;
mod grpc_route;
mod hostname;
mod http_route;
pub mod incremental;
mod l4_route;
mod listener;
mod listener_set;
mod mirror;
mod problems;
mod rate_limit_policy;
mod route_policy;
mod route_unit;
mod security_policy;
mod selector;
mod session;
pub mod status;
mod tls;
mod tls_listener;
mod tls_route;
mod traffic_policy;

use std::net::IpAddr;
use std::sync::Arc;

use model::Store;
use snapshot::Snapshot;

pub use endpoints::{EndpointPlan, EndpointSource};
pub use explain::{ExplainError, ExplainRequest, Explanation};
pub use features::SUPPORTED_FEATURES;
pub use incremental::{Compiler, Step};
pub use status::{Condition, ConditionStatus, ObjectStatus, StatusChange, StatusReport};

/// Default GatewayClass controller name.
pub const DEFAULT_CONTROLLER_NAME: &str = "portcullis.dev/gateway-controller";

/// Inputs of compile besides the store.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// GatewayClasses with this `spec.controllerName` are ours. Shared by the status of every
    /// route and policy.
    pub controller_name: std::sync::Arc<str>,
    /// Where listeners of Gateways without `spec.addresses` bind.
    pub default_addresses: Vec<IpAddr>,
    /// Generation stamped on the snapshot.
    pub generation: u64,
    /// The platform's CA certificates, for BackendTLSPolicy `wellKnownCACertificates: System`
    /// (loaded once at startup, see `upstream::load_system_roots`: compile does no I/O).
    /// `None`: policies asking for them are not accepted.
    pub system_roots: Option<Arc<rustls::RootCertStore>>,
    /// Whether a Redis server is configured (`--redis`): RateLimitPolicies with `global`
    /// limits are refused without one.
    pub redis: bool,
}

impl Default for CompileOptions {
    fn default() -> CompileOptions {
        CompileOptions {
            controller_name: DEFAULT_CONTROLLER_NAME.into(),
            default_addresses: vec![IpAddr::from([0, 0, 0, 0])],
            generation: 0,
            system_roots: None,
            redis: false,
        }
    }
}

/// Everything compile produces.
#[derive(Debug)]
pub struct Compiled {
    /// The data-plane snapshot.
    pub snapshot: Arc<Snapshot>,
    /// Where each backend of the snapshot gets its endpoints (index-aligned with
    /// `snapshot.backends`).
    pub endpoints: EndpointPlan,
    /// Status of every object we own.
    pub status: StatusReport,
    /// A JSON description of the compiled config for `/config`.
    pub config_view: serde_json::Value,
}

/// Compiles a store. Never fails: problems are reported in [`Compiled::status`].
///
/// The reference for [`Compiler`], which applies later changes incrementally.
pub fn compile(store: &Store, options: &CompileOptions) -> Compiled {
    let compiler = Compiler::build(store, options.clone());
    let listeners = compiler.config_view();
    Compiled {
        snapshot: Arc::clone(compiler.snapshot()),
        endpoints: compiler.endpoint_plan(),
        status: compiler.status(),
        config_view: listeners,
    }
}

#[cfg(test)]
mod tests;
