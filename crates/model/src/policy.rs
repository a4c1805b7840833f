//! Our policy kinds (`portcullis.dev/v1alpha1`), attached with `spec.targetRefs` (GEP-713).
//!
//! `BackendTrafficPolicy` carries the resilience settings: load balancing, health checks
//! (active and passive/outlier), circuit breaking, retries with budget and backoff, and
//! upstream timeouts. Field names follow Envoy Gateway's BackendTrafficPolicy where the concept
//! is the same. Durations are GEP-2257 strings (`500ms`, `30s`, `1m`), validated by `compile`.
//! Unknown fields are rejected so a typo is an error, not a silently ignored setting.
//!
//! The `schemars` attributes are the CRD's checks ahead of `compile` (see [`crate::schema`]):
//! enumerations, bounds, GEP-2257 duration patterns, and CEL rules over several fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;
use crate::schema::{DURATION_PATTERN, MAX_NAME_LENGTH, MAX_TARGET_REFS};

/// A `BackendTrafficPolicy` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendTrafficPolicy {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: BackendTrafficPolicySpec,
}

/// A reference to the object a policy applies to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetRef {
    /// API group ("" for core Services, `gateway.networking.k8s.io`, `portcullis.dev`).
    #[serde(default)]
    #[schemars(extend("enum" = ["", "gateway.networking.k8s.io", "portcullis.dev"]))]
    pub group: String,
    /// Gateway, HTTPRoute, GRPCRoute, Service or Backend.
    #[schemars(extend("enum" = ["Gateway", "HTTPRoute", "GRPCRoute", "Service", "Backend"]))]
    pub kind: String,
    /// Name, in the policy's namespace.
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub name: String,
    /// Listener name (Gateway), rule name (routes) or port name (Service).
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_NAME_LENGTH))]
    pub section_name: Option<String>,
}

/// `BackendTrafficPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// `targetRefs` defaults to empty for serde (compile reports it); the API server requires it.
#[schemars(extend("required" = ["targetRefs"]))]
pub struct BackendTrafficPolicySpec {
    /// What the policy applies to; the most specific attachment wins.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_TARGET_REFS))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(t, has(t.group) && t.group != '' ? (t.group == 'portcullis.dev' && t.kind == 'Backend') || (t.group == 'gateway.networking.k8s.io' && t.kind in ['Gateway', 'HTTPRoute', 'GRPCRoute']) : t.kind == 'Service')",
        "message": "each target must be a core Service, a portcullis.dev Backend, or a gateway.networking.k8s.io Gateway, HTTPRoute or GRPCRoute"
    }]))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// Endpoint selection.
    #[serde(default)]
    pub load_balancer: Option<LoadBalancer>,
    /// Active and passive health checking.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Concurrency limits and the error-rate breaker.
    #[serde(default)]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Retries.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Upstream connection timeouts.
    #[serde(default)]
    pub timeout: Option<Timeout>,
    /// A PROXY protocol header at the start of each connection to the backend, telling it the
    /// client's address (TCPRoute and TLSRoute connections; HTTP routes' pooled connections
    /// carry many clients and never send one).
    #[serde(default)]
    pub proxy_protocol: Option<UpstreamProxyProtocol>,
}

/// `proxyProtocol`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamProxyProtocol {
    /// `V1` (text) or `V2` (binary).
    #[schemars(extend("enum" = ["V1", "V2"]))]
    pub version: String,
}

/// `loadBalancer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.type) || self.type != 'ConsistentHash' || has(self.consistentHash)",
    "message": "consistentHash is required when type is ConsistentHash"
}]))]
pub struct LoadBalancer {
    /// `PeakEWMA` (default), `RoundRobin`, `Random`, `LeastRequest`, `ConsistentHash`.
    #[serde(default, rename = "type")]
    #[schemars(extend("enum" = ["PeakEWMA", "RoundRobin", "Random", "LeastRequest", "ConsistentHash"]))]
    pub kind: Option<String>,
    /// Hash input for `ConsistentHash`.
    #[serde(default)]
    pub consistent_hash: Option<ConsistentHash>,
    /// Ramp new endpoints up over a window.
    #[serde(default)]
    pub slow_start: Option<SlowStart>,
}

/// `loadBalancer.consistentHash`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type != 'Header' || has(self.header)", "message": "header is required when type is Header"},
    {"rule": "self.type != 'Cookie' || has(self.cookie)", "message": "cookie is required when type is Cookie"}
]))]
pub struct ConsistentHash {
    /// `Header`, `SourceIP` or `Cookie`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["Header", "SourceIP", "Cookie"]))]
    pub kind: String,
    /// For `Header`.
    #[serde(default)]
    pub header: Option<NamedHeader>,
    /// For `Cookie`: the cookie's name and, when the gateway sets it, its lifetime.
    #[serde(default)]
    pub cookie: Option<HashCookie>,
}

/// A header name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedHeader {
    /// The header.
    #[schemars(regex(pattern = "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"), length(max = 256))]
    pub name: String,
}

/// The cookie hashed on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashCookie {
    /// Cookie name.
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    /// Lifetime of the cookie the gateway sets when the client has none.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub ttl: Option<String>,
}

/// `loadBalancer.slowStart`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowStart {
    /// Ramp-up window.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: String,
}

/// `healthCheck`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Probes sent by the gateway.
    #[serde(default)]
    pub active: Option<ActiveHealthCheck>,
    /// Outlier detection on live traffic.
    #[serde(default)]
    pub passive: Option<PassiveHealthCheck>,
}

/// `healthCheck.active`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.type != 'HTTP' || has(self.http)", "message": "http (with a path) is required when type is HTTP"},
    {"rule": "!has(self.timeout) || !has(self.interval) || duration(self.timeout) <= duration(self.interval)", "message": "timeout must not exceed interval"}
]))]
pub struct ActiveHealthCheck {
    /// `HTTP`, `TCP` or `GRPC` (grpc.health.v1).
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["HTTP", "TCP", "GRPC"]))]
    pub kind: String,
    /// Time between probes.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// Probe timeout.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Failed probes before an endpoint is unhealthy.
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
    /// Passed probes before an unhealthy endpoint is healthy again.
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    /// HTTP probe settings.
    #[serde(default)]
    pub http: Option<HttpHealthCheck>,
    /// gRPC probe settings.
    #[serde(default)]
    pub grpc: Option<GrpcHealthCheck>,
}

/// `healthCheck.active.http`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHealthCheck {
    /// Path probed.
    #[schemars(regex(pattern = "^/"), length(max = 1024))]
    pub path: String,
    /// Statuses that count as healthy (default 200).
    #[serde(default)]
    #[schemars(inner(range(min = 100, max = 599)), length(max = 32))]
    pub expected_statuses: Vec<u16>,
    /// Host header of the probe (default: the endpoint address).
    #[serde(default)]
    pub hostname: Option<String>,
}

/// `healthCheck.active.grpc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheck {
    /// `HealthCheckRequest.service` (default "").
    #[serde(default)]
    pub service: Option<String>,
}

/// `healthCheck.passive`: outlier detection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassiveHealthCheck {
    /// Consecutive 5xx responses that eject an endpoint (`consecutive5XxErrors`, as Envoy
    /// Gateway spells it).
    #[serde(default, rename = "consecutive5XxErrors")]
    pub consecutive_5xx_errors: Option<u32>,
    /// Consecutive gateway errors (502, 503, 504, connect failures, resets) that eject.
    #[serde(default)]
    pub consecutive_gateway_errors: Option<u32>,
    /// How often ejections are reconsidered.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    /// First ejection time; doubles with each repeated ejection.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub base_ejection_time: Option<String>,
    /// At most this share of a backend's endpoints is ejected at once.
    #[serde(default)]
    #[schemars(range(max = 100))]
    pub max_ejection_percent: Option<u32>,
    /// Latency outliers.
    #[serde(default)]
    pub latency: Option<LatencyOutlier>,
}

/// `healthCheck.passive.latency`: eject endpoints far slower than their peers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyOutlier {
    /// An endpoint is an outlier when its latency exceeds this multiple of the median's.
    #[schemars(extend("minimum" = 1, "exclusiveMinimum" = true))]
    pub threshold: f64,
    /// Requests an endpoint needs in the interval before it is judged.
    #[serde(default)]
    pub min_requests: Option<u32>,
}

/// `circuitBreaker`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Open upstream connections per backend.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Requests waiting for a connection per backend.
    #[serde(default)]
    pub max_pending_requests: Option<u32>,
    /// Requests in flight per backend.
    #[serde(default)]
    pub max_parallel_requests: Option<u32>,
    /// The error-rate breaker.
    #[serde(default)]
    pub error_rate: Option<ErrorRateBreaker>,
}

/// `circuitBreaker.errorRate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorRateBreaker {
    /// Error share (0..1) that opens the breaker.
    #[schemars(extend("minimum" = 0, "exclusiveMinimum" = true, "maximum" = 1))]
    pub threshold: f64,
    /// Requests in the window before the share counts.
    #[serde(default)]
    pub min_requests: Option<u32>,
    /// Sliding window.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub window: Option<String>,
    /// How long the breaker stays open before probing.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub open_for: Option<String>,
    /// Probe requests allowed while half-open.
    #[serde(default)]
    pub half_open_requests: Option<u32>,
}

/// `retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Retries after the first attempt.
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// What is retried.
    #[serde(default)]
    pub retry_on: Option<RetryOn>,
    /// Per-attempt timeout and backoff.
    #[serde(default)]
    pub per_retry: Option<PerRetry>,
    /// Retry budget.
    #[serde(default)]
    pub budget: Option<RetryBudget>,
}

/// `retry.retryOn`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.triggers) || !('retriable-status-codes' in self.triggers) || (has(self.httpStatusCodes) && size(self.httpStatusCodes) > 0)",
    "message": "retriable-status-codes needs at least one code in httpStatusCodes"
}]))]
pub struct RetryOn {
    /// `connect-failure`, `reset`, `timeout`, `retriable-status-codes`, `5xx`, `gateway-error`.
    #[serde(default)]
    #[schemars(length(max = 6))]
    #[schemars(extend("items" = {
        "type": "string",
        "enum": ["connect-failure", "reset", "timeout", "retriable-status-codes", "5xx", "gateway-error"]
    }))]
    pub triggers: Vec<String>,
    /// Codes for `retriable-status-codes` (4xx or 5xx).
    #[serde(default)]
    #[schemars(inner(range(min = 400, max = 599)), length(max = 32))]
    pub http_status_codes: Vec<u16>,
}

/// `retry.perRetry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerRetry {
    /// Timeout of each attempt.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// Exponential, jittered backoff.
    #[serde(default)]
    pub back_off: Option<BackOff>,
}

/// `retry.perRetry.backOff`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.baseInterval) || !has(self.maxInterval) || duration(self.maxInterval) >= duration(self.baseInterval)",
    "message": "maxInterval must not be shorter than baseInterval"
}]))]
pub struct BackOff {
    /// First pause.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub base_interval: Option<String>,
    /// Longest pause.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_interval: Option<String>,
}

/// `retry.budget`: retries may add at most `percent` of the requests, plus a floor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Retries as a share of requests (percent).
    #[schemars(range(min = 1, max = 100))]
    pub percent: u32,
    /// Retries always allowed per second.
    #[serde(default)]
    pub min_retries_per_second: Option<u32>,
}

/// `timeout`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeout {
    /// TCP settings.
    #[serde(default)]
    pub tcp: Option<TcpTimeout>,
    /// HTTP connection settings.
    #[serde(default)]
    pub http: Option<HttpTimeout>,
}

/// `timeout.tcp`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTimeout {
    /// Connect timeout.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub connect_timeout: Option<String>,
}

/// `timeout.http`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTimeout {
    /// Idle pooled connections are closed after this.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub connection_idle_timeout: Option<String>,
    /// Connections are closed after this age (0s = no limit).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_connection_duration: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the resilience issue (also applied to a real API server by the e2e tests).
    const EXAMPLE: &str = include_str!("../../../examples/policies/backend-traffic-policy.yaml");

    #[test]
    fn the_documented_example_parses() {
        let policy: BackendTrafficPolicy = serde_saphyr::from_str(EXAMPLE).expect("example parses");
        assert_eq!(policy.spec.target_refs[0].kind, "Service");
        let passive = policy
            .spec
            .health_check
            .and_then(|h| h.passive)
            .expect("passive");
        assert_eq!(passive.consecutive_5xx_errors, Some(5));
        assert_eq!(passive.latency.map(|l| l.threshold), Some(3.0));
        let retry = policy.spec.retry.expect("retry");
        assert_eq!(retry.budget.map(|b| b.percent), Some(20));
    }

    #[test]
    fn unknown_fields_are_errors() {
        let text = "metadata: {name: x}\nspec: {loadBalancer: {typo: 1}}\n";
        assert!(serde_saphyr::from_str::<BackendTrafficPolicy>(text).is_err());
    }
}
