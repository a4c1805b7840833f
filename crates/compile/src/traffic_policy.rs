//! `BackendTrafficPolicy` (`portcullis.dev/v1alpha1`): validation, attachment through
//! `spec.targetRefs`, precedence, and status.
//!
//! Precedence (the most specific attachment wins, whole policy, no field merging):
//! 1. a Service port (`sectionName` = port name) or a `Backend`, then the whole Service — the
//!    backend's own settings, shared by every route that uses it;
//! 2. a route rule (`sectionName` = rule name), then the whole HTTPRoute/GRPCRoute;
//! 3. a Gateway listener (`sectionName`), then the whole Gateway (of the route's first parent).
//!
//! A backend reached under a route- or Gateway-level policy gets its own identity
//! (`Service ns/name:port [BackendTrafficPolicy ns/policy]`), so two routes can treat the same
//! Service differently without sharing balancer, health or breaker state. Two policies on the
//! same target: the older wins (creation time, then namespace/name); the other is Conflicted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use model::Store;
use model::policy::{BackendTrafficPolicySpec, PolicyTargetRef};
use snapshot::backend::policy::{
    ActiveHealth, BackendPolicy, Balancer, ConcurrencyLimits, ErrorRateSettings, HashKey,
    LatencyOutlierSettings, OutlierDetection, Probe,
};

use snapshot::{Backoff, RetryBudgetSettings, RetryPolicy, RetryTriggers};

use crate::duration;
use crate::status::{Condition, ObjectStatus, StatusReport};

/// A policy that applies somewhere.
#[derive(Debug)]
pub(crate) struct AppliedPolicy {
    /// `BackendTrafficPolicy ns/name`.
    pub(crate) label: Arc<str>,
    /// Backend settings.
    pub(crate) backend: Arc<BackendPolicy>,
    /// The policy's `retry`, validated; each rule gets its own copy (its budget window is the
    /// rule's own: the proxy keeps one per rule identity).
    retry: Option<RetryPolicy>,
    /// Order for conflicts (older first).
    order: (Option<i64>, String),
}

impl AppliedPolicy {
    /// The retry policy for one route rule: the policy's settings (retries are budgeted per
    /// rule: the proxy gives each rule its own budget window).
    pub(crate) fn retry_policy(&self) -> Option<RetryPolicy> {
        self.retry.clone()
    }
}

/// Where a policy attaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Target {
    Service {
        namespace: String,
        name: String,
        port: Option<String>,
    },
    Backend {
        namespace: String,
        name: String,
    },
    Route {
        kind: String,
        namespace: String,
        name: String,
        rule: Option<String>,
    },
    Gateway {
        namespace: String,
        name: String,
        listener: Option<String>,
    },
}

/// Every valid BackendTrafficPolicy, by target.
#[derive(Debug, Default)]
pub(crate) struct TrafficPolicies {
    by_target: HashMap<Target, Arc<AppliedPolicy>>,
}

impl TrafficPolicies {
    /// Validates every policy, resolves its targets and writes its status.
    pub(crate) fn compile(store: &Store, status: &mut StatusReport) -> TrafficPolicies {
        let mut policies = TrafficPolicies::default();
        let mut ordered: Vec<_> = store.backend_traffic_policies.iter().collect();
        ordered.sort_by_key(|((ns, name), p)| {
            (
                p.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
                ns.clone(),
                name.clone(),
            )
        });
        for ((namespace, name), policy) in ordered {
            let label = format!("BackendTrafficPolicy {namespace}/{name}");
            let mut object = ObjectStatus::new("BackendTrafficPolicy", namespace, name);
            let compiled = compile_spec(&label, &policy.spec).and_then(|backend| {
                compile_retry(&label, policy.spec.retry.as_ref()).map(|retry| (backend, retry))
            });
            match compiled {
                Err(problems) => {
                    object.conditions.push(Condition::no(
                        "Accepted",
                        "Invalid",
                        problems.join("; "),
                    ));
                    object.problems = problems;
                }
                Ok((backend, retry)) => {
                    let applied = Arc::new(AppliedPolicy {
                        label: label.clone().into(),
                        backend: Arc::new(backend),
                        retry,
                        order: (
                            policy
                                .metadata
                                .creation_timestamp
                                .as_ref()
                                .map(|t| t.0.as_second()),
                            format!("{namespace}/{name}"),
                        ),
                    });
                    policies.attach(
                        store,
                        namespace,
                        &label,
                        &policy.spec.target_refs,
                        &applied,
                        &mut object,
                    );
                }
            }
            status.objects.push(object);
        }
        policies
    }

    fn attach(
        &mut self,
        store: &Store,
        namespace: &str,
        label: &str,
        refs: &[PolicyTargetRef],
        applied: &Arc<AppliedPolicy>,
        object: &mut ObjectStatus,
    ) {
        let mut attached = Vec::new();
        let mut problems = Vec::new();
        let mut conflicts = Vec::new();
        if refs.is_empty() {
            problems.push(format!(
                "{label} spec.targetRefs: at least one target is required"
            ));
        }
        for (index, reference) in refs.iter().enumerate() {
            let at = format!("{label} spec.targetRefs[{index}]");
            let target = match target_of(store, namespace, reference) {
                Ok(target) => target,
                Err(message) => {
                    problems.push(format!("{at}: {message}"));
                    continue;
                }
            };
            let describe = format!("{} {namespace}/{}", reference.kind, reference.name);
            match self.by_target.get(&target) {
                Some(existing) if existing.order <= applied.order => {
                    conflicts.push(format!(
                        "{at}: {describe} already has {}, which is older",
                        existing.label
                    ));
                }
                _ => {
                    self.by_target.insert(target, Arc::clone(applied));
                    attached.push(describe);
                }
            }
        }
        object.problems.extend(problems.iter().cloned());
        object.problems.extend(conflicts.iter().cloned());
        if attached.is_empty() {
            let (reason, message) = if conflicts.is_empty() {
                ("TargetNotFound", problems.join("; "))
            } else {
                ("Conflicted", conflicts.join("; "))
            };
            object
                .conditions
                .push(Condition::no("Accepted", reason, message));
        } else {
            object.conditions.push(Condition::yes(
                "Accepted",
                "Accepted",
                format!("applies to {}", attached.join(", ")),
            ));
            if !conflicts.is_empty() {
                object.conditions.push(Condition::yes(
                    "Conflicted",
                    "Conflicted",
                    conflicts.join("; "),
                ));
            }
        }
    }

    /// The policy of a Service port: its port's, else the whole Service's.
    pub(crate) fn for_service(
        &self,
        namespace: &str,
        name: &str,
        port: &str,
    ) -> Option<&Arc<AppliedPolicy>> {
        let target = |port: Option<String>| Target::Service {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            port,
        };
        let named = (!port.is_empty()).then(|| target(Some(port.to_owned())));
        named
            .and_then(|t| self.by_target.get(&t))
            .or_else(|| self.by_target.get(&target(None)))
    }

    /// The policy of a `Backend`.
    pub(crate) fn for_backend(&self, namespace: &str, name: &str) -> Option<&Arc<AppliedPolicy>> {
        self.by_target.get(&Target::Backend {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The route- or Gateway-level policy of one rule: the rule's, the route's, then the first
    /// parent Gateway's (listener, then whole Gateway).
    pub(crate) fn for_rule(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        rule: Option<&str>,
        gateway: Option<(&str, &str, Option<&str>)>,
    ) -> Option<Arc<AppliedPolicy>> {
        let route = |rule: Option<&str>| Target::Route {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            rule: rule.map(str::to_owned),
        };
        let mut candidates = Vec::new();
        if rule.is_some() {
            candidates.push(route(rule));
        }
        candidates.push(route(None));
        if let Some((gateway_namespace, gateway_name, listener)) = gateway {
            let gateway = |listener: Option<&str>| Target::Gateway {
                namespace: gateway_namespace.to_owned(),
                name: gateway_name.to_owned(),
                listener: listener.map(str::to_owned),
            };
            if listener.is_some() {
                candidates.push(gateway(listener));
            }
            candidates.push(gateway(None));
        }
        candidates
            .iter()
            .find_map(|t| self.by_target.get(t))
            .cloned()
    }
}

fn target_of(
    store: &Store,
    namespace: &str,
    reference: &PolicyTargetRef,
) -> Result<Target, String> {
    let key = (namespace.to_owned(), reference.name.clone());
    let section = reference.section_name.clone();
    let missing = || {
        format!(
            "{} {namespace}/{} not found",
            reference.kind, reference.name
        )
    };
    match (reference.group.as_str(), reference.kind.as_str()) {
        ("", "Service") => {
            let service = store.services.get(&key).ok_or_else(missing)?;
            if let Some(port) = &section {
                let has_port = service
                    .spec
                    .as_ref()
                    .and_then(|s| s.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|p| p.name.as_deref() == Some(port.as_str()));
                if !has_port {
                    return Err(format!(
                        "Service {namespace}/{} has no port named {port:?}",
                        reference.name
                    ));
                }
            }
            Ok(Target::Service {
                namespace: key.0,
                name: key.1,
                port: section,
            })
        }
        (model::kind::PORTCULLIS_GROUP, "Backend") => {
            store.backends.get(&key).ok_or_else(missing)?;
            Ok(Target::Backend {
                namespace: key.0,
                name: key.1,
            })
        }
        (model::kind::GATEWAY_GROUP, kind @ ("HTTPRoute" | "GRPCRoute")) => {
            let exists = if kind == "HTTPRoute" {
                store.http_routes.contains_key(&key)
            } else {
                store.grpc_routes.contains_key(&key)
            };
            if !exists {
                return Err(missing());
            }
            Ok(Target::Route {
                kind: kind.to_owned(),
                namespace: key.0,
                name: key.1,
                rule: section,
            })
        }
        (model::kind::GATEWAY_GROUP, "Gateway") => {
            store.gateways.get(&key).ok_or_else(missing)?;
            Ok(Target::Gateway {
                namespace: key.0,
                name: key.1,
                listener: section,
            })
        }
        (group, kind) => Err(format!(
            "{group}/{kind} is not a supported target (Gateway, HTTPRoute, GRPCRoute, core Service, portcullis.dev Backend)"
        )),
    }
}

/// Validates a spec into backend settings; every problem is reported with its field path.
fn compile_spec(
    label: &str,
    spec: &BackendTrafficPolicySpec,
) -> Result<BackendPolicy, Vec<String>> {
    let mut problems = Vec::new();
    let mut policy = BackendPolicy::default();
    let mut time = |field: &str, value: &Option<String>, default: Duration| -> Duration {
        match value {
            None => default,
            Some(text) => duration::parse(text).unwrap_or_else(|e| {
                problems.push(format!("{label} spec.{field}: {e}"));
                default
            }),
        }
    };
    // Durations first (they borrow `problems` mutably through `time`).
    let slow_start = spec
        .load_balancer
        .as_ref()
        .and_then(|b| b.slow_start.as_ref())
        .map(|s| {
            time(
                "loadBalancer.slowStart.window",
                &Some(s.window.clone()),
                Duration::ZERO,
            )
        });
    let active = spec
        .health_check
        .as_ref()
        .and_then(|h| h.active.as_ref())
        .map(|a| {
            (
                time(
                    "healthCheck.active.interval",
                    &a.interval,
                    Duration::from_secs(5),
                ),
                time(
                    "healthCheck.active.timeout",
                    &a.timeout,
                    Duration::from_secs(1),
                ),
            )
        });
    let passive = spec
        .health_check
        .as_ref()
        .and_then(|h| h.passive.as_ref())
        .map(|p| {
            (
                time(
                    "healthCheck.passive.interval",
                    &p.interval,
                    Duration::from_secs(10),
                ),
                time(
                    "healthCheck.passive.baseEjectionTime",
                    &p.base_ejection_time,
                    Duration::from_secs(30),
                ),
            )
        });
    let error_rate_times = spec
        .circuit_breaker
        .as_ref()
        .and_then(|c| c.error_rate.as_ref())
        .map(|e| {
            (
                time(
                    "circuitBreaker.errorRate.window",
                    &e.window,
                    Duration::from_secs(10),
                ),
                time(
                    "circuitBreaker.errorRate.openFor",
                    &e.open_for,
                    Duration::from_secs(5),
                ),
            )
        });
    let connect = spec.timeout.as_ref().and_then(|t| t.tcp.as_ref()).map(|t| {
        time(
            "timeout.tcp.connectTimeout",
            &t.connect_timeout,
            policy.connect_timeout,
        )
    });
    let http_times = spec
        .timeout
        .as_ref()
        .and_then(|t| t.http.as_ref())
        .map(|h| {
            (
                time(
                    "timeout.http.connectionIdleTimeout",
                    &h.connection_idle_timeout,
                    policy.idle_timeout,
                ),
                time(
                    "timeout.http.maxConnectionDuration",
                    &h.max_connection_duration,
                    Duration::ZERO,
                ),
            )
        });

    if let Some(balancer) = &spec.load_balancer {
        policy.balancer = match balancer.kind.as_deref().unwrap_or("PeakEWMA") {
            "PeakEWMA" => Balancer::PeakEwma,
            "RoundRobin" => Balancer::RoundRobin,
            "Random" => Balancer::Random,
            "LeastRequest" => Balancer::LeastRequest,
            "ConsistentHash" => match hash_key(label, balancer.consistent_hash.as_ref()) {
                Ok(key) => Balancer::ConsistentHash(key),
                Err(message) => {
                    problems.push(message);
                    Balancer::PeakEwma
                }
            },
            other => {
                problems.push(format!(
                    "{label} spec.loadBalancer.type: {other:?} is not PeakEWMA, RoundRobin, Random, LeastRequest or ConsistentHash"
                ));
                Balancer::PeakEwma
            }
        };
        policy.slow_start = slow_start.filter(|d| !d.is_zero());
    }
    if let (Some(spec), Some((interval, timeout))) = (
        spec.health_check.as_ref().and_then(|h| h.active.as_ref()),
        active,
    ) {
        let probe = match spec.kind.as_str() {
            "HTTP" => match &spec.http {
                Some(http) if http.path.starts_with('/') => Some(Probe::Http {
                    path: http.path.clone(),
                    expected_statuses: if http.expected_statuses.is_empty() {
                        vec![200]
                    } else {
                        http.expected_statuses.clone()
                    },
                    hostname: http.hostname.clone(),
                }),
                _ => {
                    problems.push(format!("{label} spec.healthCheck.active.http.path: an HTTP check needs a path starting with \"/\""));
                    None
                }
            },
            "TCP" => Some(Probe::Tcp),
            "GRPC" => Some(Probe::Grpc {
                service: spec
                    .grpc
                    .as_ref()
                    .and_then(|g| g.service.clone())
                    .unwrap_or_default(),
            }),
            other => {
                problems.push(format!(
                    "{label} spec.healthCheck.active.type: {other:?} is not HTTP, TCP or GRPC"
                ));
                None
            }
        };
        if timeout > interval {
            problems.push(format!(
                "{label} spec.healthCheck.active.timeout must not exceed interval"
            ));
        }
        policy.active_health = probe.map(|probe| ActiveHealth {
            probe,
            interval,
            timeout,
            unhealthy_threshold: spec.unhealthy_threshold.unwrap_or(3).max(1),
            healthy_threshold: spec.healthy_threshold.unwrap_or(2).max(1),
        });
    }
    if let (Some(spec), Some((interval, base))) = (
        spec.health_check.as_ref().and_then(|h| h.passive.as_ref()),
        passive,
    ) {
        let percent = spec.max_ejection_percent.unwrap_or(10);
        if percent > 100 {
            problems.push(format!(
                "{label} spec.healthCheck.passive.maxEjectionPercent: {percent} is over 100"
            ));
        }
        let latency = spec.latency.as_ref().map(|l| LatencyOutlierSettings {
            threshold: l.threshold,
            min_requests: l.min_requests.unwrap_or(20),
        });
        // `is_nan() || <= 1.0`: NaN thresholds are rejected too.
        if latency
            .as_ref()
            .is_some_and(|l| l.threshold.is_nan() || l.threshold <= 1.0)
        {
            problems.push(format!(
                "{label} spec.healthCheck.passive.latency.threshold must be greater than 1"
            ));
        }
        policy.outlier = Some(OutlierDetection {
            consecutive_5xx: spec.consecutive_5xx_errors.filter(|n| *n > 0),
            consecutive_gateway_errors: spec.consecutive_gateway_errors.filter(|n| *n > 0),
            interval,
            base_ejection_time: base,
            max_ejection_percent: percent.min(100),
            latency,
        });
    }
    if let Some(breaker) = &spec.circuit_breaker {
        policy.limits = ConcurrencyLimits {
            max_connections: breaker.max_connections,
            max_pending_requests: breaker.max_pending_requests,
            max_parallel_requests: breaker.max_parallel_requests,
        };
        if let (Some(rate), Some((window, open_for))) = (&breaker.error_rate, error_rate_times) {
            if rate.threshold.is_nan() || rate.threshold <= 0.0 || rate.threshold > 1.0 {
                problems.push(format!(
                    "{label} spec.circuitBreaker.errorRate.threshold must be in (0, 1]"
                ));
            }
            policy.error_rate = Some(ErrorRateSettings {
                threshold: rate.threshold,
                min_requests: rate.min_requests.unwrap_or(20).max(1),
                window,
                open_for,
                half_open_requests: rate.half_open_requests.unwrap_or(3).max(1),
            });
        }
    }
    if let Some(connect) = connect {
        policy.connect_timeout = connect;
    }
    if let Some((idle, max_age)) = http_times {
        policy.idle_timeout = idle;
        policy.max_connection_duration = Some(max_age).filter(|d| !d.is_zero());
    }
    if problems.is_empty() {
        Ok(policy)
    } else {
        Err(problems)
    }
}

/// `retry`: triggers (`connect-failure`, `reset`, `retriable-status-codes`, `5xx`,
/// `gateway-error`; default connect-failure and reset), `numRetries` (default 2), per-try
/// timeout, exponential backoff (default 25 ms .. 250 ms) and budget.
fn compile_retry(
    label: &str,
    spec: Option<&model::policy::Retry>,
) -> Result<Option<RetryPolicy>, Vec<String>> {
    let Some(spec) = spec else { return Ok(None) };
    let at = format!("{label} spec.retry");
    let mut problems = Vec::new();
    let mut triggers = RetryTriggers {
        connect_failure: false,
        reset: false,
        timeout: false,
        status_codes: Vec::new(),
        gateway_error: false,
        server_error: false,
    };
    let retry_on = spec.retry_on.clone().unwrap_or_default();
    let names: Vec<String> = if retry_on.triggers.is_empty() {
        vec!["connect-failure".to_owned(), "reset".to_owned()]
    } else {
        retry_on.triggers.clone()
    };
    for (index, name) in names.iter().enumerate() {
        match name.as_str() {
            "connect-failure" => triggers.connect_failure = true,
            "reset" => triggers.reset = true,
            "retriable-status-codes" => triggers.status_codes.clone_from(&retry_on.http_status_codes),
            "5xx" => triggers.server_error = true,
            "gateway-error" => triggers.gateway_error = true,
            "timeout" => triggers.timeout = true,
            other => problems.push(format!(
                "{at}.retryOn.triggers[{index}]: {other:?} is not connect-failure, reset, timeout, retriable-status-codes, 5xx or gateway-error"
            )),
        }
    }
    if names.iter().any(|n| n == "retriable-status-codes") && retry_on.http_status_codes.is_empty()
    {
        problems.push(format!(
            "{at}.retryOn.httpStatusCodes: retriable-status-codes needs at least one code"
        ));
    }
    if let Some(code) = retry_on
        .http_status_codes
        .iter()
        .find(|c| !(400..=599).contains(*c))
    {
        problems.push(format!(
            "{at}.retryOn.httpStatusCodes: {code} is not a 4xx or 5xx status"
        ));
    }
    let mut time = |field: &str, value: Option<&String>, default: Duration| match value {
        None => default,
        Some(text) => duration::parse(text).unwrap_or_else(|e| {
            problems.push(format!("{at}.{field}: {e}"));
            default
        }),
    };
    let per_retry = spec.per_retry.clone().unwrap_or_default();
    let per_try_timeout = per_retry
        .timeout
        .as_ref()
        .map(|t| time("perRetry.timeout", Some(t), Duration::ZERO));
    let back_off = per_retry.back_off.clone().unwrap_or_default();
    let base = time(
        "perRetry.backOff.baseInterval",
        back_off.base_interval.as_ref(),
        Duration::from_millis(25),
    );
    let max = time(
        "perRetry.backOff.maxInterval",
        back_off.max_interval.as_ref(),
        Duration::from_millis(250),
    );
    if max < base {
        problems.push(format!(
            "{at}.perRetry.backOff.maxInterval must not be shorter than baseInterval"
        ));
    }
    let budget = spec.budget.as_ref().map(|b| {
        if b.percent == 0 || b.percent > 100 {
            problems.push(format!(
                "{at}.budget.percent: {} is not in 1..=100",
                b.percent
            ));
        }
        RetryBudgetSettings::new(b.percent, b.min_retries_per_second.unwrap_or(10))
    });
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Some(RetryPolicy {
        triggers,
        attempts: spec.num_retries.unwrap_or(2),
        backoff: Backoff { base, max },
        per_try_timeout: per_try_timeout.filter(|t| !t.is_zero()),
        budget,
    }))
}

fn hash_key(label: &str, spec: Option<&model::policy::ConsistentHash>) -> Result<HashKey, String> {
    let at = format!("{label} spec.loadBalancer.consistentHash");
    let spec = spec.ok_or_else(|| format!("{at}: required for type ConsistentHash"))?;
    match spec.kind.as_str() {
        "Header" => {
            let name = spec
                .header
                .as_ref()
                .ok_or_else(|| format!("{at}.header: required for type Header"))?;
            HeaderName::from_bytes(name.name.as_bytes())
                .map(HashKey::Header)
                .map_err(|_| format!("{at}.header.name: {:?} is not a header name", name.name))
        }
        "SourceIP" => Ok(HashKey::SourceIp),
        "Cookie" => {
            let cookie = spec
                .cookie
                .as_ref()
                .ok_or_else(|| format!("{at}.cookie: required for type Cookie"))?;
            let ttl = match &cookie.ttl {
                None => None,
                Some(text) => {
                    Some(duration::parse(text).map_err(|e| format!("{at}.cookie.ttl: {e}"))?)
                }
            };
            Ok(HashKey::Cookie {
                name: cookie.name.clone(),
                ttl,
            })
        }
        other => Err(format!(
            "{at}.type: {other:?} is not Header, SourceIP or Cookie"
        )),
    }
}

#[cfg(test)]
mod tests;
