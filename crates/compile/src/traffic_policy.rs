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
//!
//! Status: the conditions are computed here, with the policies; `status.ancestors` (the
//! Gateways under the targets) wait for the routes (`status`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use model::BackendTrafficPolicy;
use model::Store;
use model::policy::{BackendTrafficPolicySpec, PolicyTargetRef};
use snapshot::backend::policy::{
    ActiveHealth, BackendPolicy, Balancer, ConcurrencyLimits, ErrorRateSettings, HashKey,
    LatencyOutlierSettings, OutlierDetection, Probe, ProxyProtocolVersion,
};

use snapshot::RetryPolicy;

use crate::duration;
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ObjectStatus};

/// The kind, as status and labels spell it.
const KIND: &str = "BackendTrafficPolicy";

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
        namespace: model::Name,
        name: model::Name,
        port: Option<String>,
    },
    Backend {
        namespace: model::Name,
        name: model::Name,
    },
    Route {
        kind: String,
        namespace: model::Name,
        name: model::Name,
        rule: Option<String>,
    },
    Gateway {
        namespace: model::Name,
        name: model::Name,
        listener: Option<String>,
    },
}

/// Every valid BackendTrafficPolicy, by target, and every policy's status before its
/// ancestors (which follow the routes: [`TrafficPolicies::report`]).
#[derive(Debug, Default)]
pub(crate) struct TrafficPolicies {
    by_target: HashMap<Target, Arc<AppliedPolicy>>,
    /// Oldest first.
    reports: Vec<PolicyReport>,
}

/// One policy's object-level status and the targets its ancestors come from.
#[derive(Debug)]
struct PolicyReport {
    status: ObjectStatus,
    /// The targets that exist (claimed, lost to an older policy, or named by an invalid
    /// policy): each is under the Gateways its status is written to.
    targets: Vec<Target>,
}

impl TrafficPolicies {
    /// Validates every policy, resolves its targets and computes its conditions. Policies are
    /// taken oldest first (creation time, then namespace/name): the older of two policies on
    /// one target wins it.
    pub(crate) fn compile(store: &Store) -> TrafficPolicies {
        let mut policies = TrafficPolicies::default();
        let mut ordered: Vec<_> = store.backend_traffic_policies.iter().collect();
        ordered.sort_by_key(|((namespace, name), policy)| {
            (created(policy), namespace.clone(), name.clone())
        });
        for ((namespace, name), policy) in ordered {
            let object = policies.compile_policy(store, namespace, name, policy);
            let targets = status::ancestor_targets(store, namespace, name, policy);
            policies.reports.push(PolicyReport {
                status: object,
                targets,
            });
        }
        policies
    }

    /// One policy: its settings validated, then its targets claimed. Returns its status.
    fn compile_policy(
        &mut self,
        store: &Store,
        namespace: &str,
        name: &str,
        policy: &BackendTrafficPolicy,
    ) -> ObjectStatus {
        let path = FieldPath::object(KIND, namespace, name);
        let mut object = ObjectStatus::new(KIND, namespace, name);
        // `retry` is checked once the rest of the spec is valid, so its problems show only
        // after the others are fixed.
        let compiled = compile_spec(&path, &policy.spec).and_then(|backend| {
            retry::compile_retry(&path, policy.spec.retry.as_ref()).map(|retry| (backend, retry))
        });
        match compiled {
            Err(problems) => {
                object
                    .conditions
                    .push(Condition::no("Accepted", "Invalid", problems.join()));
                object.problems = problems.lines();
            }
            Ok((backend, retry)) => {
                let applied = Arc::new(AppliedPolicy {
                    label: path.to_string().into(),
                    backend: Arc::new(backend),
                    retry,
                    order: (created(policy), format!("{namespace}/{name}")),
                });
                self.attach(
                    store,
                    namespace,
                    &path,
                    &policy.spec.target_refs,
                    &applied,
                    &mut object,
                );
            }
        }
        object
    }

    /// Claims each target a valid policy names, unless an older policy holds it, and records
    /// the policy's `Accepted` (and `Conflicted`) conditions.
    fn attach(
        &mut self,
        store: &Store,
        namespace: &str,
        policy: &FieldPath,
        refs: &[PolicyTargetRef],
        applied: &Arc<AppliedPolicy>,
        object: &mut ObjectStatus,
    ) {
        let mut attached = Vec::new();
        let mut not_found = Problems::default();
        let mut conflicts = Problems::default();
        let list = policy.field("spec.targetRefs");
        if refs.is_empty() {
            not_found.report(list.problem("at least one target is required"));
        }
        for (index, reference) in refs.iter().enumerate() {
            let at = list.index(index);
            let Some(target) = not_found.ok(target_of(store, namespace, &at, reference)) else {
                continue;
            };
            let describe = format!("{} {namespace}/{}", reference.kind, reference.name);
            match self.by_target.get(&target) {
                Some(existing) if existing.order <= applied.order => {
                    conflicts.report(at.problem(format!(
                        "{describe} already has {}, which is older",
                        existing.label
                    )));
                }
                _ => {
                    self.by_target.insert(target, Arc::clone(applied));
                    attached.push(describe);
                }
            }
        }
        object.problems.extend(not_found.lines());
        object.problems.extend(conflicts.lines());
        object
            .conditions
            .extend(attachment_conditions(&attached, &not_found, &conflicts));
    }

    /// The policy of a Service port: its port's, else the whole Service's.
    pub(crate) fn for_service(
        &self,
        namespace: &str,
        name: &str,
        port: &str,
    ) -> Option<&Arc<AppliedPolicy>> {
        let target = |port: Option<String>| Target::Service {
            namespace: namespace.into(),
            name: name.into(),
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
            namespace: namespace.into(),
            name: name.into(),
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
            namespace: namespace.into(),
            name: name.into(),
            rule: rule.map(str::to_owned),
        };
        let mut candidates = Vec::new();
        if rule.is_some() {
            candidates.push(route(rule));
        }
        candidates.push(route(None));
        if let Some((gateway_namespace, gateway_name, listener)) = gateway {
            let gateway = |listener: Option<&str>| Target::Gateway {
                namespace: gateway_namespace.into(),
                name: gateway_name.into(),
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

/// `metadata.creationTimestamp` in unix seconds: the age that decides conflicts.
fn created(policy: &BackendTrafficPolicy) -> Option<i64> {
    policy
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
}

/// `Accepted` (and `Conflicted`) of a valid policy (every policy kind of ours). GEP-713: a policy
/// that attaches to at least one target is accepted; one that attaches nowhere is not, and says why (lost conflicts
/// first, else the targets that are missing).
pub(crate) fn attachment_conditions(
    attached: &[String],
    not_found: &Problems,
    conflicts: &Problems,
) -> Vec<Condition> {
    if attached.is_empty() {
        let (reason, message) = if conflicts.is_empty() {
            ("TargetNotFound", not_found.join())
        } else {
            ("Conflicted", conflicts.join())
        };
        return vec![Condition::no("Accepted", reason, message)];
    }
    let mut conditions = vec![Condition::yes(
        "Accepted",
        "Accepted",
        format!("applies to {}", attached.join(", ")),
    )];
    if !conflicts.is_empty() {
        conditions.push(Condition::yes("Conflicted", "Conflicted", conflicts.join()));
    }
    conditions
}

/// The target one `targetRefs` entry (`at`) names, if it exists: a Service (port by
/// `sectionName`), a `Backend`, an HTTPRoute/GRPCRoute (rule by `sectionName`) or a Gateway
/// (listener by `sectionName`), in the policy's namespace.
fn target_of(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    reference: &PolicyTargetRef,
) -> Result<Target, Problem> {
    let section = reference.section_name.clone();
    let (policy_namespace, name) = model::key(namespace, &reference.name);
    let target = match (reference.group.as_str(), reference.kind.as_str()) {
        ("", "Service") => Target::Service {
            namespace: policy_namespace,
            name,
            port: section,
        },
        (model::kind::PORTCULLIS_GROUP, "Backend") => Target::Backend {
            namespace: policy_namespace,
            name,
        },
        (model::kind::GATEWAY_GROUP, kind @ ("HTTPRoute" | "GRPCRoute")) => Target::Route {
            kind: kind.to_owned(),
            namespace: policy_namespace,
            name,
            rule: section,
        },
        (model::kind::GATEWAY_GROUP, "Gateway") => Target::Gateway {
            namespace: policy_namespace,
            name,
            listener: section,
        },
        (group, kind) => {
            return Err(at.problem(format!(
                "{group}/{kind} is not a supported target (Gateway, HTTPRoute, GRPCRoute, core Service, portcullis.dev Backend)"
            )));
        }
    };
    check_target(store, namespace, at, reference, &target)?;
    Ok(target)
}

/// Whether the target exists in the policy's namespace and, for a Service port, whether the
/// Service has a port of that name. The rules and listeners `sectionName` names on routes and
/// Gateways are not checked.
fn check_target(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    reference: &PolicyTargetRef,
    target: &Target,
) -> Result<(), Problem> {
    let key = model::key(namespace, &reference.name);
    let exists = match target {
        Target::Service { .. } => store.services.contains_key(&key),
        Target::Backend { .. } => store.backends.contains_key(&key),
        Target::Route { kind, .. } if kind == "HTTPRoute" => store.http_routes.contains_key(&key),
        Target::Route { .. } => store.grpc_routes.contains_key(&key),
        Target::Gateway { .. } => store.gateways.contains_key(&key),
    };
    if !exists {
        return Err(at.problem(format!(
            "{} {namespace}/{} not found",
            reference.kind, reference.name
        )));
    }
    if let Target::Service {
        port: Some(port), ..
    } = target
        && !service_has_port(store, &key, port)
    {
        return Err(at.problem(format!(
            "Service {namespace}/{} has no port named {port:?}",
            reference.name
        )));
    }
    Ok(())
}

/// Whether a Service (known to exist) has a port of this name.
fn service_has_port(store: &Store, key: &model::NamespacedName, port: &str) -> bool {
    store
        .services
        .get(key)
        .and_then(|service| service.spec.as_ref())
        .and_then(|spec| spec.ports.as_ref())
        .into_iter()
        .flatten()
        .any(|p| p.name.as_deref() == Some(port))
}

/// Validates a spec into backend settings; every problem is reported with its field path.
/// `policy` is the policy's path.
fn compile_spec(
    policy: &FieldPath,
    spec: &BackendTrafficPolicySpec,
) -> Result<BackendPolicy, Problems> {
    let at = policy.field("spec");
    let mut problems = Problems::default();
    let mut backend = BackendPolicy::default();
    // Phase 1: every duration (GEP-2257). The Accepted message has always listed duration
    // problems first, in field order, before those of the sections below.
    let durations = Durations::parse(&at, spec, &backend, &mut problems);
    // Phase 2: each section in field order; a section that is not set keeps the defaults.
    if let Some(balancer) = &spec.load_balancer {
        backend.balancer = load_balancer(&at.field("loadBalancer"), balancer, &mut problems);
        backend.slow_start = durations.slow_start.filter(|d| !d.is_zero());
    }
    let health = spec.health_check.as_ref();
    if let (Some(active), Some((interval, timeout))) =
        (health.and_then(|h| h.active.as_ref()), durations.active)
    {
        let at = at.field("healthCheck.active");
        backend.active_health = active_health(&at, active, interval, timeout, &mut problems);
    }
    if let (Some(passive), Some((interval, base))) =
        (health.and_then(|h| h.passive.as_ref()), durations.passive)
    {
        let at = at.field("healthCheck.passive");
        backend.outlier = Some(outlier_detection(
            &at,
            passive,
            interval,
            base,
            &mut problems,
        ));
    }
    if let Some(breaker) = &spec.circuit_breaker {
        backend.limits = ConcurrencyLimits {
            max_connections: breaker.max_connections,
            max_pending_requests: breaker.max_pending_requests,
            max_parallel_requests: breaker.max_parallel_requests,
        };
        if let (Some(rate), Some((window, open_for))) = (&breaker.error_rate, durations.error_rate)
        {
            let at = at.field("circuitBreaker.errorRate");
            backend.error_rate = Some(error_rate_breaker(
                &at,
                rate,
                window,
                open_for,
                &mut problems,
            ));
        }
    }
    if let Some(connect) = durations.connect {
        backend.connect_timeout = connect;
    }
    if let Some((idle, max_age)) = durations.http {
        backend.idle_timeout = idle;
        backend.max_connection_duration = Some(max_age).filter(|d| !d.is_zero());
    }
    if let Some(proxy) = &spec.proxy_protocol {
        backend.proxy_protocol = match proxy.version.as_str() {
            "V1" => Some(ProxyProtocolVersion::V1),
            "V2" => Some(ProxyProtocolVersion::V2),
            other => {
                problems.report(at.field("proxyProtocol.version").problem(format!(
                    "{other:?} is not a PROXY protocol version (V1, V2)"
                )));
                None
            }
        };
    }
    problems.or_value(backend)
}

/// Every duration of a spec, parsed with its default; `None` where its section is not set.
struct Durations {
    /// `loadBalancer.slowStart.window`.
    slow_start: Option<Duration>,
    /// `healthCheck.active`: interval (5 s) and timeout (1 s).
    active: Option<(Duration, Duration)>,
    /// `healthCheck.passive`: interval (10 s) and baseEjectionTime (30 s).
    passive: Option<(Duration, Duration)>,
    /// `circuitBreaker.errorRate`: window (10 s) and openFor (5 s).
    error_rate: Option<(Duration, Duration)>,
    /// `timeout.tcp.connectTimeout`.
    connect: Option<Duration>,
    /// `timeout.http`: connectionIdleTimeout and maxConnectionDuration (0: unlimited).
    http: Option<(Duration, Duration)>,
}

impl Durations {
    /// Parses them in field order (`at` is the spec's path); an invalid one is reported and
    /// takes its default. `defaults` gives the connection timeouts' defaults.
    fn parse(
        at: &FieldPath,
        spec: &BackendTrafficPolicySpec,
        defaults: &BackendPolicy,
        problems: &mut Problems,
    ) -> Durations {
        let mut spec_fields = DurationFields::new(at, problems);
        let secs = Duration::from_secs;
        let health = spec.health_check.as_ref();
        let breaker = spec.circuit_breaker.as_ref();
        let timeout = spec.timeout.as_ref();
        // Struct fields are evaluated in the order written, which is the spec's field order.
        Durations {
            slow_start: spec
                .load_balancer
                .as_ref()
                .and_then(|b| b.slow_start.as_ref())
                .map(|s| {
                    let mut fields = spec_fields.below("loadBalancer.slowStart");
                    fields.parse("window", Some(&s.window), Duration::ZERO)
                }),
            active: health.and_then(|h| h.active.as_ref()).map(|a| {
                let mut fields = spec_fields.below("healthCheck.active");
                let interval = fields.parse("interval", a.interval.as_ref(), secs(5));
                (
                    interval,
                    fields.parse("timeout", a.timeout.as_ref(), secs(1)),
                )
            }),
            passive: health.and_then(|h| h.passive.as_ref()).map(|p| {
                let mut fields = spec_fields.below("healthCheck.passive");
                let interval = fields.parse("interval", p.interval.as_ref(), secs(10));
                let base = p.base_ejection_time.as_ref();
                (interval, fields.parse("baseEjectionTime", base, secs(30)))
            }),
            error_rate: breaker.and_then(|c| c.error_rate.as_ref()).map(|e| {
                let mut fields = spec_fields.below("circuitBreaker.errorRate");
                let window = fields.parse("window", e.window.as_ref(), secs(10));
                (
                    window,
                    fields.parse("openFor", e.open_for.as_ref(), secs(5)),
                )
            }),
            connect: timeout.and_then(|t| t.tcp.as_ref()).map(|t| {
                let mut fields = spec_fields.below("timeout.tcp");
                fields.parse(
                    "connectTimeout",
                    t.connect_timeout.as_ref(),
                    defaults.connect_timeout,
                )
            }),
            http: timeout.and_then(|t| t.http.as_ref()).map(|h| {
                let mut fields = spec_fields.below("timeout.http");
                let idle = h.connection_idle_timeout.as_ref();
                let idle = fields.parse("connectionIdleTimeout", idle, defaults.idle_timeout);
                let max_age = h.max_connection_duration.as_ref();
                (
                    idle,
                    fields.parse("maxConnectionDuration", max_age, Duration::ZERO),
                )
            }),
        }
    }
}

/// Duration fields below one path (GEP-2257): an invalid one is reported there and takes its
/// default, so the rest of the section is still checked.
pub(super) struct DurationFields<'a> {
    at: FieldPath,
    problems: &'a mut Problems,
}

impl DurationFields<'_> {
    /// The duration fields below `at`.
    pub(super) fn new<'a>(at: &FieldPath, problems: &'a mut Problems) -> DurationFields<'a> {
        DurationFields {
            at: at.clone(),
            problems,
        }
    }

    /// The fields of a section below this path, reported to the same problems.
    fn below(&mut self, section: &str) -> DurationFields<'_> {
        DurationFields {
            at: self.at.field(section),
            problems: self.problems,
        }
    }

    /// `field` (below this path) parsed, or `default` when it is not set or not valid.
    pub(super) fn parse(
        &mut self,
        field: &str,
        value: Option<&String>,
        default: Duration,
    ) -> Duration {
        match value {
            None => default,
            Some(text) => duration::parse(text).unwrap_or_else(|e| {
                self.problems.report(self.at.field(field).problem(e));
                default
            }),
        }
    }
}

/// `loadBalancer.type` (`at` is `loadBalancer`): PeakEWMA by default. An invalid type is
/// reported and leaves the default.
fn load_balancer(
    at: &FieldPath,
    spec: &model::policy::LoadBalancer,
    problems: &mut Problems,
) -> Balancer {
    match spec.kind.as_deref().unwrap_or("PeakEWMA") {
        "PeakEWMA" => Balancer::PeakEwma,
        "RoundRobin" => Balancer::RoundRobin,
        "Random" => Balancer::Random,
        "LeastRequest" => Balancer::LeastRequest,
        "ConsistentHash" => problems
            .ok(hash_key(
                &at.field("consistentHash"),
                spec.consistent_hash.as_ref(),
            ))
            .map_or(Balancer::PeakEwma, Balancer::ConsistentHash),
        other => {
            problems.report(at.field("type").problem(format!(
                "{other:?} is not PeakEWMA, RoundRobin, Random, LeastRequest or ConsistentHash"
            )));
            Balancer::PeakEwma
        }
    }
}

/// `loadBalancer.consistentHash` (`at`): what a request is hashed on.
fn hash_key(
    at: &FieldPath,
    spec: Option<&model::policy::ConsistentHash>,
) -> Result<HashKey, Problem> {
    let spec = spec.ok_or_else(|| at.problem("required for type ConsistentHash"))?;
    match spec.kind.as_str() {
        "Header" => {
            let name = spec
                .header
                .as_ref()
                .ok_or_else(|| at.field("header").problem("required for type Header"))?;
            HeaderName::from_bytes(name.name.as_bytes())
                .map(HashKey::Header)
                .map_err(|_| {
                    at.field("header.name")
                        .problem(format!("{:?} is not a header name", name.name))
                })
        }
        "SourceIP" => Ok(HashKey::SourceIp),
        "Cookie" => {
            let cookie = spec
                .cookie
                .as_ref()
                .ok_or_else(|| at.field("cookie").problem("required for type Cookie"))?;
            let ttl = match &cookie.ttl {
                None => None,
                Some(text) => {
                    Some(duration::parse(text).map_err(|e| at.field("cookie.ttl").problem(e))?)
                }
            };
            Ok(HashKey::Cookie {
                name: cookie.name.clone(),
                ttl,
            })
        }
        other => Err(at
            .field("type")
            .problem(format!("{other:?} is not Header, SourceIP or Cookie"))),
    }
}

/// `healthCheck.active` (`at`): the probe and its timing. `None` when the probe is invalid
/// (reported).
fn active_health(
    at: &FieldPath,
    spec: &model::policy::ActiveHealthCheck,
    interval: Duration,
    timeout: Duration,
    problems: &mut Problems,
) -> Option<ActiveHealth> {
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
                problems.report(
                    at.field("http.path")
                        .problem("an HTTP check needs a path starting with \"/\""),
                );
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
            problems.report(
                at.field("type")
                    .problem(format!("{other:?} is not HTTP, TCP or GRPC")),
            );
            None
        }
    };
    // A probe still running when the next one is due would overlap it.
    if timeout > interval {
        problems.report(at.field("timeout").sentence("must not exceed interval"));
    }
    probe.map(|probe| ActiveHealth {
        probe,
        interval,
        timeout,
        unhealthy_threshold: spec.unhealthy_threshold.unwrap_or(3).max(1),
        healthy_threshold: spec.healthy_threshold.unwrap_or(2).max(1),
    })
}

/// `healthCheck.passive` (`at`): outlier detection on consecutive errors and latency.
fn outlier_detection(
    at: &FieldPath,
    spec: &model::policy::PassiveHealthCheck,
    interval: Duration,
    base_ejection_time: Duration,
    problems: &mut Problems,
) -> OutlierDetection {
    let percent = spec.max_ejection_percent.unwrap_or(10);
    if percent > 100 {
        problems.report(
            at.field("maxEjectionPercent")
                .problem(format!("{percent} is over 100")),
        );
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
        problems.report(
            at.field("latency.threshold")
                .sentence("must be greater than 1"),
        );
    }
    OutlierDetection {
        consecutive_5xx: spec.consecutive_5xx_errors.filter(|n| *n > 0),
        consecutive_gateway_errors: spec.consecutive_gateway_errors.filter(|n| *n > 0),
        interval,
        base_ejection_time,
        max_ejection_percent: percent.min(100),
        latency,
    }
}

/// `circuitBreaker.errorRate` (`at`): the share of failed requests that opens the breaker.
fn error_rate_breaker(
    at: &FieldPath,
    spec: &model::policy::ErrorRateBreaker,
    window: Duration,
    open_for: Duration,
    problems: &mut Problems,
) -> ErrorRateSettings {
    if spec.threshold.is_nan() || spec.threshold <= 0.0 || spec.threshold > 1.0 {
        problems.report(at.field("threshold").sentence("must be in (0, 1]"));
    }
    ErrorRateSettings {
        threshold: spec.threshold,
        min_requests: spec.min_requests.unwrap_or(20).max(1),
        window,
        open_for,
        half_open_requests: spec.half_open_requests.unwrap_or(3).max(1),
    }
}

mod retry;
mod status;
#[cfg(test)]
mod tests;
