//! Backends as compiled settings: identity, protocol, endpoint targets, TLS origination and
//! resilience settings ([`CompiledBackend`]).
//!
//! Plain data that `compile` builds and the runtime reads. The state these settings govern
//! (endpoints, pools, balancers, health, breakers) lives in `upstream`, keyed by [`BackendId`],
//! so that it outlives a reload; nothing here changes after a snapshot is built.

pub mod policy;
pub mod tls;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use policy::BackendPolicy;
use tls::UpstreamTls;

/// Stable identity of a backend across reloads, also its metrics label:
/// `Service shop/cart:8080` or `Backend shop/direct`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BackendId(Arc<str>);

impl BackendId {
    /// Wraps an identity string.
    pub fn new(id: impl Into<Arc<str>>) -> BackendId {
        BackendId(id.into())
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string, for labels that must not allocate per request.
    pub fn as_shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The protocol spoken to a backend's endpoints (Service port `appProtocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub enum AppProtocol {
    /// HTTP/1.1 (the default).
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (`kubernetes.io/h2c`).
    H2c,
    /// HTTP/1.1 with WebSocket upgrades (`kubernetes.io/ws`).
    WebSocket,
}

impl AppProtocol {
    /// Maps a Kubernetes `appProtocol` value. Unknown values mean HTTP/1.1, as a Service port
    /// without `appProtocol` does.
    pub fn from_app_protocol(value: Option<&str>) -> AppProtocol {
        match value {
            Some("kubernetes.io/h2c") => AppProtocol::H2c,
            Some("kubernetes.io/ws" | "kubernetes.io/wss") => AppProtocol::WebSocket,
            _ => AppProtocol::Http1,
        }
    }
}

/// What the data plane needs to know about a backend besides its endpoints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompiledBackend {
    /// Identity (registry key and metrics label).
    pub id: BackendId,
    /// Protocol to the endpoints.
    pub protocol: AppProtocol,
    /// TLS to the endpoints (a BackendTLSPolicy applies); `None` is cleartext.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Arc<UpstreamTls>>,
    /// Resilience settings (a BackendTrafficPolicy, or the defaults).
    pub policy: Arc<BackendPolicy>,
}

/// Where an endpoint lives before resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TargetAddress {
    /// A literal address.
    Ip(IpAddr),
    /// A DNS name, resolved and re-resolved on its TTL.
    Dns(Arc<str>),
}

/// One desired endpoint of a backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct EndpointTarget {
    /// Address or DNS name.
    pub address: TargetAddress,
    /// TCP port.
    pub port: u16,
    /// Relative weight; 0 keeps the endpoint out of rotation.
    pub weight: u32,
}
