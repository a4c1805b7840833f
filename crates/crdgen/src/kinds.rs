//! The `CustomResource` around each model spec type. The spec types are `model`'s own (the
//! serde the file source and the Kubernetes source read with); a newtype here carries kube's
//! derive, which needs a type of this crate, and is transparent to serde and schemars, so the
//! CRD's `spec` schema is exactly the model type's.

// The derive's root structs and constructors are not used: only `crd()` is.
#![allow(dead_code)]

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::PolicyStatus;

/// `Backend`: endpoints listed directly, for a `backendRef` with `group: portcullis.dev`.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "Backend",
    namespaced,
    category = "portcullis",
    doc = "A set of endpoints (IP or DNS name, and port) a Gateway API backendRef can name."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct BackendSpec(model::BackendSpec);

/// `BackendTrafficPolicy`: balancing, health checks, breakers, retries and timeouts of the
/// backends its targets reach.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "BackendTrafficPolicy",
    namespaced,
    status = "PolicyStatus",
    category = "portcullis",
    printcolumn = r#"{"name": "Accepted", "type": "string", "jsonPath": ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "How the backends reached through its targets are balanced, checked, broken and retried."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct BackendTrafficPolicySpec(model::policy::BackendTrafficPolicySpec);

/// `ClientTrafficPolicy`: what a Gateway or one of its listeners allows its clients.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "ClientTrafficPolicy",
    namespaced,
    status = "PolicyStatus",
    category = "portcullis",
    printcolumn = r#"{"name": "Accepted", "type": "string", "jsonPath": ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "What a Gateway, or one of its listeners, allows its clients: limits, timeouts, HTTP/2, TLS."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct ClientTrafficPolicySpec(model::client_policy::ClientTrafficPolicySpec);

/// `SecurityPolicy`: authentication and authorization of the requests through its targets.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "SecurityPolicy",
    namespaced,
    status = "PolicyStatus",
    category = "portcullis",
    printcolumn = r#"{"name": "Accepted", "type": "string", "jsonPath": ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "Who may send requests through a Gateway, listener, route or rule: JWT, OIDC, API keys, basic auth, external authorization, allow/deny rules."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct SecurityPolicySpec(model::security_policy::SecurityPolicySpec);

/// `RateLimitPolicy`: how many requests its targets admit, per replica and across replicas.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "RateLimitPolicy",
    namespaced,
    status = "PolicyStatus",
    category = "portcullis",
    printcolumn = r#"{"name": "Accepted", "type": "string", "jsonPath": ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "How many requests a Gateway, listener, route or rule admits: local limits per replica, global limits shared through Redis."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct RateLimitPolicySpec(model::rate_limit_policy::RateLimitPolicySpec);

/// `Composition`: one response merged from several backend requests, named by an HTTPRoute
/// rule's `ExtensionRef` filter. Its status has the policies' shape: per Gateway whose routes
/// use it, `Accepted` and `ResolvedRefs`.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "portcullis.dev",
    version = "v1alpha1",
    kind = "Composition",
    namespaced,
    status = "PolicyStatus",
    category = "portcullis",
    printcolumn = r#"{"name": "Accepted", "type": "string", "jsonPath": ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#,
    doc = "One JSON response merged from several backend requests (parts), for the HTTPRoute rules that name it with an ExtensionRef filter."
)]
#[serde(transparent)]
#[schemars(transparent)]
pub(crate) struct CompositionSpec(model::composition::CompositionSpec);
