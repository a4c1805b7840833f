//! The `status` of our policy kinds, as their CRDs declare it (the status subresource): per
//! ancestor (the Gateway, or route, a target belongs to), the conditions each controller
//! reports, the shape GEP-713 gives every policy (a `Composition` has it too: its ancestors
//! are the Gateways of the routes that name it). Portcullis computes these conditions in
//! `compile`; the status writer writes them here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `status` of a `BackendTrafficPolicy` or `ClientTrafficPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// One entry per ancestor and controller: where the policy applies (or was refused) and
    /// why. A controller writes only its own entries.
    #[serde(default)]
    #[schemars(length(max = 16))]
    pub ancestors: Vec<PolicyAncestorStatus>,
}

/// One ancestor's entry in [`PolicyStatus`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    /// The object the conditions are about.
    pub ancestor_ref: AncestorRef,
    /// The controller that wrote this entry (`portcullis.dev/gateway-controller` for ours).
    #[schemars(length(min = 1, max = 253))]
    pub controller_name: String,
    /// `Accepted` (and `Conflicted`), with the reason and a message naming the field.
    #[serde(default)]
    #[schemars(length(max = 8))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A reference to an ancestor of a policy's target: a Gateway (or one listener), a route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AncestorRef {
    /// API group ("" for core).
    #[serde(default)]
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (the policy's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Listener or rule name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}
