//! SecurityPolicy and RateLimitPolicy through the real binary: external authorization against
//! a real HTTP authorization service, local limits, and global limits shared by two gateway
//! processes through a real `redis-server`.

mod authn;
mod ext_auth;
mod ext_auth_grpc;
mod oidc;
mod rate_limit;

use serde_json::{Value, json};

use crate::fixture::manifest::{GATEWAY, NS};

/// A `portcullis.dev/v1alpha1` policy of `kind` in [`NS`] with `spec` (its `targetRefs` added:
/// HTTPRoute `route`, or the test Gateway when `route` is `None`).
pub(crate) fn policy(kind: &str, name: &str, route: Option<&str>, mut spec: Value) -> Value {
    spec["targetRefs"] = match route {
        Some(route) => {
            json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}])
        }
        None => json!([{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY}]),
    };
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}
