//! `RateLimitPolicy` (`portcullis.dev/v1alpha1`): how many requests a Gateway, a listener, a
//! route or a route rule admits (GEP-713 `targetRefs`; the most specific wins, whole).
//!
//! Field names follow Envoy Gateway's `BackendTrafficPolicy.rateLimit` (`clientSelectors`,
//! `limit: {requests, unit}`, `type: Distinct`), lifted into a kind of its own with `local`
//! and `global` side by side. `global` counts in Redis (`--redis URL`), shared by every
//! replica; `failureMode` says what happens while Redis cannot answer.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;
use crate::policy::PolicyTargetRef;
use crate::schema::{DURATION_PATTERN, MAX_TARGET_REFS};
use crate::security_policy::ROUTE_POLICY_TARGETS_RULE;

/// A `RateLimitPolicy` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimitPolicy {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: RateLimitPolicySpec,
}

/// `RateLimitPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("required" = ["targetRefs"]))]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.local) || has(self.global)",
    "message": "at least one of local and global is required"
}]))]
pub struct RateLimitPolicySpec {
    /// What the policy applies to: a Gateway (a listener by `sectionName`), an HTTPRoute or a
    /// GRPCRoute (a rule by `sectionName`).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_TARGET_REFS))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": ROUTE_POLICY_TARGETS_RULE,
        "message": "each target must be a gateway.networking.k8s.io Gateway, HTTPRoute or GRPCRoute"
    }]))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// Limits each replica enforces on its own.
    #[serde(default)]
    pub local: Option<LocalRateLimit>,
    /// Limits shared by every replica, counted in Redis.
    #[serde(default)]
    pub global: Option<GlobalRateLimit>,
}

/// `local`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRateLimit {
    /// Every rule whose selectors match a request applies to it.
    #[schemars(length(min = 1, max = 64))]
    pub rules: Vec<RateLimitRule>,
}

/// `global`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalRateLimit {
    /// Every rule whose selectors match a request applies to it.
    #[schemars(length(min = 1, max = 64))]
    pub rules: Vec<RateLimitRule>,
    /// `FailOpen` (default: admit) or `FailClosed` (503) while Redis cannot answer.
    #[serde(default)]
    #[schemars(extend("enum" = ["FailOpen", "FailClosed"]))]
    pub failure_mode: Option<String>,
    /// How long a decision waits for Redis before the failure mode applies (default `50ms`).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
}

/// `rules[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitRule {
    /// Name (part of the counters' identity, metrics).
    #[serde(default)]
    pub name: Option<String>,
    /// The requests the rule counts: every selector must match (none: every request).
    #[serde(default)]
    pub client_selectors: Vec<ClientSelector>,
    /// The limit.
    pub limit: Limit,
    /// Count and report, never refuse.
    #[serde(default)]
    pub shadow_mode: Option<bool>,
}

/// `clientSelectors[]`: each field set must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSelector {
    /// Request headers.
    #[serde(default)]
    pub headers: Vec<HeaderSelector>,
    /// The client address.
    #[serde(default, rename = "sourceCIDR")]
    pub source_cidr: Option<SourceCidr>,
    /// Claims of the request's JWT.
    #[serde(default)]
    pub jwt_claims: Vec<ClaimSelector>,
    /// The API-key or basic-auth client.
    #[serde(default)]
    pub client: Option<ValueSelector>,
    /// The request path.
    #[serde(default)]
    pub path: Option<PathSelector>,
    /// Request methods.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `headers[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderSelector {
    /// Header name.
    pub name: String,
    /// `Exact` (default), `RegularExpression` or `Distinct`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Exact", "RegularExpression", "Distinct"]))]
    pub kind: Option<String>,
    /// The value (`Exact`, `RegularExpression`).
    #[serde(default)]
    pub value: Option<String>,
    /// Select requests that do NOT match (with no value: requests without the header).
    #[serde(default)]
    pub invert: Option<bool>,
}

/// `jwtClaims[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimSelector {
    /// Claim name (a dot walks into nested objects).
    pub name: String,
    /// `Exact` (default), `RegularExpression` or `Distinct`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Exact", "RegularExpression", "Distinct"]))]
    pub kind: Option<String>,
    /// The value (`Exact`, `RegularExpression`).
    #[serde(default)]
    pub value: Option<String>,
}

/// A value matched `Exact`, by `RegularExpression`, or `Distinct`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueSelector {
    /// `Exact` (default), `RegularExpression` or `Distinct`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Exact", "RegularExpression", "Distinct"]))]
    pub kind: Option<String>,
    /// The value (`Exact`, `RegularExpression`).
    #[serde(default)]
    pub value: Option<String>,
}

/// `sourceCIDR`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceCidr {
    /// `Exact` (default: one bucket for the network) or `Distinct` (one per address).
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["Exact", "Distinct"]))]
    pub kind: Option<String>,
    /// The network (`10.0.0.0/8`, `::/0`).
    pub value: String,
}

/// `path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathSelector {
    /// `PathPrefix` (default), `Exact` or `Distinct`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["PathPrefix", "Exact", "Distinct"]))]
    pub kind: Option<String>,
    /// The path (`PathPrefix`, `Exact`).
    #[serde(default)]
    pub value: Option<String>,
}

/// `limit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limit {
    /// Requests per `unit`.
    #[schemars(range(min = 1))]
    pub requests: u64,
    /// `Second`, `Minute`, `Hour` or `Day`.
    #[schemars(extend("enum" = ["Second", "Minute", "Hour", "Day"]))]
    pub unit: String,
    /// Requests admitted at once above the steady rate (default `requests`).
    #[serde(default)]
    pub burst: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set (also applied to a real API server by the e2e tests).
    const EXAMPLE: &str = include_str!("../../../examples/policies/rate-limit-policy.yaml");

    #[test]
    fn the_documented_example_parses() {
        let policy: RateLimitPolicy = serde_saphyr::from_str(EXAMPLE).expect("example parses");
        let local = policy.spec.local.expect("local");
        assert_eq!(local.rules[0].limit.burst, Some(20));
        let global = policy.spec.global.expect("global");
        assert_eq!(global.failure_mode.as_deref(), Some("FailOpen"));
        let cidr = global.rules[0].client_selectors[0]
            .source_cidr
            .as_ref()
            .expect("sourceCIDR");
        assert_eq!(cidr.kind.as_deref(), Some("Distinct"));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let text = "metadata: {name: x}\nspec: {local: {rules: [], typo: 1}}\n";
        assert!(serde_saphyr::from_str::<RateLimitPolicy>(text).is_err());
    }
}
