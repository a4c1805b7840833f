//! Our policy kinds (`portcullis.dev/v1alpha1`), attached with `spec.targetRefs` (GEP-713).
//!
//! `BackendTrafficPolicy` carries the resilience settings: load balancing, health checks
//! (active and passive/outlier), circuit breaking, retries with budget and backoff, and
//! upstream timeouts. Field names follow Envoy Gateway's BackendTrafficPolicy where the concept
//! is the same. Durations are GEP-2257 strings (`500ms`, `30s`, `1m`), validated by `compile`.
//! Unknown fields are rejected so a typo is an error, not a silently ignored setting.

use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;

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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetRef {
    /// API group ("" for core Services, `gateway.networking.k8s.io`, `portcullis.dev`).
    #[serde(default)]
    pub group: String,
    /// Gateway, HTTPRoute, GRPCRoute, Service or Backend.
    pub kind: String,
    /// Name, in the policy's namespace.
    pub name: String,
    /// Listener name (Gateway), rule name (routes) or port name (Service).
    #[serde(default)]
    pub section_name: Option<String>,
}

/// `BackendTrafficPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTrafficPolicySpec {
    /// What the policy applies to; the most specific attachment wins.
    #[serde(default)]
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
}

/// `loadBalancer`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    /// `PeakEWMA` (default), `RoundRobin`, `Random`, `LeastRequest`, `ConsistentHash`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Hash input for `ConsistentHash`.
    #[serde(default)]
    pub consistent_hash: Option<ConsistentHash>,
    /// Ramp new endpoints up over a window.
    #[serde(default)]
    pub slow_start: Option<SlowStart>,
}

/// `loadBalancer.consistentHash`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHash {
    /// `Header`, `SourceIP` or `Cookie`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `Header`.
    #[serde(default)]
    pub header: Option<NamedHeader>,
    /// For `Cookie`: the cookie's name and, when the gateway sets it, its lifetime.
    #[serde(default)]
    pub cookie: Option<HashCookie>,
}

/// A header name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedHeader {
    /// The header.
    pub name: String,
}

/// The cookie hashed on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashCookie {
    /// Cookie name.
    pub name: String,
    /// Lifetime of the cookie the gateway sets when the client has none.
    #[serde(default)]
    pub ttl: Option<String>,
}

/// `loadBalancer.slowStart`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowStart {
    /// Ramp-up window.
    pub window: String,
}

/// `healthCheck`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHealthCheck {
    /// `HTTP`, `TCP` or `GRPC` (grpc.health.v1).
    #[serde(rename = "type")]
    pub kind: String,
    /// Time between probes.
    #[serde(default)]
    pub interval: Option<String>,
    /// Probe timeout.
    #[serde(default)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHealthCheck {
    /// Path probed.
    pub path: String,
    /// Statuses that count as healthy (default 200).
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
    /// Host header of the probe (default: the endpoint address).
    #[serde(default)]
    pub hostname: Option<String>,
}

/// `healthCheck.active.grpc`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcHealthCheck {
    /// `HealthCheckRequest.service` (default "").
    #[serde(default)]
    pub service: Option<String>,
}

/// `healthCheck.passive`: outlier detection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    pub interval: Option<String>,
    /// First ejection time; doubles with each repeated ejection.
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// At most this share of a backend's endpoints is ejected at once.
    #[serde(default)]
    pub max_ejection_percent: Option<u32>,
    /// Latency outliers.
    #[serde(default)]
    pub latency: Option<LatencyOutlier>,
}

/// `healthCheck.passive.latency`: eject endpoints far slower than their peers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyOutlier {
    /// An endpoint is an outlier when its latency exceeds this multiple of the median's.
    pub threshold: f64,
    /// Requests an endpoint needs in the interval before it is judged.
    #[serde(default)]
    pub min_requests: Option<u32>,
}

/// `circuitBreaker`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorRateBreaker {
    /// Error share (0..1) that opens the breaker.
    pub threshold: f64,
    /// Requests in the window before the share counts.
    #[serde(default)]
    pub min_requests: Option<u32>,
    /// Sliding window.
    #[serde(default)]
    pub window: Option<String>,
    /// How long the breaker stays open before probing.
    #[serde(default)]
    pub open_for: Option<String>,
    /// Probe requests allowed while half-open.
    #[serde(default)]
    pub half_open_requests: Option<u32>,
}

/// `retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryOn {
    /// `connect-failure`, `reset`, `retriable-status-codes`, `5xx`, `gateway-error`.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// Codes for `retriable-status-codes`.
    #[serde(default)]
    pub http_status_codes: Vec<u16>,
}

/// `retry.perRetry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerRetry {
    /// Timeout of each attempt.
    #[serde(default)]
    pub timeout: Option<String>,
    /// Exponential, jittered backoff.
    #[serde(default)]
    pub back_off: Option<BackOff>,
}

/// `retry.perRetry.backOff`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackOff {
    /// First pause.
    #[serde(default)]
    pub base_interval: Option<String>,
    /// Longest pause.
    #[serde(default)]
    pub max_interval: Option<String>,
}

/// `retry.budget`: retries may add at most `percent` of the requests, plus a floor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    /// Retries as a share of requests (percent).
    pub percent: u32,
    /// Retries always allowed per second.
    #[serde(default)]
    pub min_retries_per_second: Option<u32>,
}

/// `timeout`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTimeout {
    /// Connect timeout.
    #[serde(default)]
    pub connect_timeout: Option<String>,
}

/// `timeout.http`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTimeout {
    /// Idle pooled connections are closed after this.
    #[serde(default)]
    pub connection_idle_timeout: Option<String>,
    /// Connections are closed after this age (0s = no limit).
    #[serde(default)]
    pub max_connection_duration: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the resilience issue, verbatim.
    const EXAMPLE: &str = r#"
apiVersion: portcullis.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: shop, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: shop}]
  loadBalancer:
    type: PeakEWMA
    consistentHash: {type: Header, header: {name: x-user}}
    slowStart: {window: 30s}
  healthCheck:
    active: {type: HTTP, interval: 2s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 2,
             http: {path: /healthz, expectedStatuses: [200]}}
    passive: {consecutive5XxErrors: 5, consecutiveGatewayErrors: 3, interval: 5s,
              baseEjectionTime: 30s, maxEjectionPercent: 50,
              latency: {threshold: 3.0, minRequests: 20}}
  circuitBreaker:
    maxConnections: 1024
    maxPendingRequests: 1024
    maxParallelRequests: 1024
    errorRate: {threshold: 0.5, minRequests: 20, window: 10s, openFor: 5s, halfOpenRequests: 3}
  retry:
    numRetries: 2
    retryOn: {triggers: [connect-failure, reset, retriable-status-codes], httpStatusCodes: [503]}
    perRetry: {timeout: 1s, backOff: {baseInterval: 25ms, maxInterval: 250ms}}
    budget: {percent: 20, minRetriesPerSecond: 10}
  timeout: {tcp: {connectTimeout: 1s}, http: {connectionIdleTimeout: 60s, maxConnectionDuration: 0s}}
"#;

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
