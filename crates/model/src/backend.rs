//! Our own `Backend` kind (`portcullis.dev/v1alpha1`): endpoints listed directly.
//!
//! For standalone users who do not want to write a Service plus EndpointSlices. A `backendRef`
//! with `group: portcullis.dev, kind: Backend` points at it; the endpoints carry their own ports,
//! so the backendRef's `port` is optional and ignored.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;
use crate::schema::MAX_NAME_LENGTH;

/// A `Backend` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    /// Standard object metadata (name, namespace, labels).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The desired endpoints.
    #[serde(default)]
    pub spec: BackendSpec,
}

/// `Backend.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    /// The endpoints traffic is balanced over.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub endpoints: Vec<BackendEndpoint>,
    /// Upstream protocol for every endpoint unless an endpoint overrides it:
    /// absent or `http` = HTTP/1.1, `kubernetes.io/h2c` = HTTP/2 cleartext,
    /// `kubernetes.io/ws` = HTTP/1.1 with WebSocket upgrades.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    pub app_protocol: Option<String>,
}

/// One endpoint of a `Backend`: exactly one of `ip` and `hostname`, and a port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.ip) != has(self.hostname)", "message": "exactly one of ip and hostname is required"},
    {"rule": "!has(self.ip) || isIP(self.ip)", "message": "ip must be an IPv4 or IPv6 address"}
]))]
pub struct BackendEndpoint {
    /// An IPv4 or IPv6 address.
    #[serde(default)]
    #[schemars(length(max = 45))]
    pub ip: Option<String>,
    /// A DNS name, re-resolved on its TTL.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub hostname: Option<String>,
    /// The TCP port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Relative weight among the endpoints (default 1; 0 takes it out of rotation).
    #[serde(default)]
    pub weight: Option<u32>,
}
