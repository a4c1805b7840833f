//! Upstream side of the data plane: the runtime state of backends. The endpoint registry, load
//! balancing, connection pools, health checking, outlier detection, circuit breakers and retry
//! budgets.
//!
//! Everything here outlives a config reload. The [`Registry`] keeps one [`BackendRuntime`] per
//! [`BackendId`](snapshot::backend::BackendId); a new snapshot is *linked* to the registry ([`Registry::link`]), which reuses the
//! runtimes (and so their endpoints, counters and pooled connections) of backends that stay.
//! Endpoint sets change on their own fast path ([`Registry::set_endpoints`]) without touching
//! route tables. The settings this state follows are plain data in `snapshot::backend`
//! ([`CompiledBackend`](snapshot::backend::CompiledBackend), `BackendPolicy`, `UpstreamTls`), built by `compile`; this crate does not
//! know about Gateway API objects.

mod backend_pool;
mod balance;
pub mod breaker;
mod dns;
pub mod endpoint;
mod h1_client;
pub mod header_names;
pub mod health;
mod http1_pool;
pub mod pool;
pub mod registry;
mod request_body;
pub mod retry_budget;
mod spare_buffers;
pub mod stream;
mod system_roots;
mod tls_pool;

pub use balance::PickContext;
pub use endpoint::{EndpointRuntime, EndpointSet};
pub use h1_client::{Forwarded, HostField, Http1Request, RawHead, UpstreamBody, UpstreamUpgraded};
pub use pool::{ClientBodyError, Pools, RequestBody, UpstreamError};
pub use registry::{BackendRuntime, Registry};
pub use retry_budget::RetryBudgetWindow;
pub use stream::{StreamConnectError, StreamTls, UpstreamStream};
pub use system_roots::load_system_roots;
