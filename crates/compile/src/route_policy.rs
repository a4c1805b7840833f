//! `SecurityPolicy` and `RateLimitPolicy`: validation (`security_policy`, `rate_limit_policy`),
//! attachment through `spec.targetRefs`, precedence, and status.
//!
//! Both kinds attach to what a request passes through on its way to a rule: a Gateway (a
//! listener by `sectionName`), an HTTPRoute or GRPCRoute (a rule by `sectionName`). The most
//! specific attachment wins, whole (no field merging):
//! 1. the rule (`sectionName` = the rule's `name`), then the whole route: compiled into the
//!    rule ([`snapshot::RouteRule::security`]);
//! 2. the listener, then the whole Gateway: compiled into the listener's table
//!    ([`snapshot::ListenerRoutes::security`]); a ListenerSet's listeners get their parent
//!    Gateway's. A route attached to two Gateways gets each Gateway's policy on its
//!    listeners.
//!
//! Two policies of one kind on the same target: the older wins (creation time, then
//! namespace/name); the other is `Conflicted` there. A policy that does not validate applies
//! nowhere (`Accepted: False`, `Invalid`), and the requests it would have guarded are
//! answered 500 rather than let through: a broken SecurityPolicy must fail closed. That is
//! done by attaching a policy that denies everything ([`fail_closed_policy`]) to its targets
//! when no older valid policy holds them.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::Store;
use model::policy::PolicyTargetRef;
use snapshot::rate_limit::RateLimitPolicy;
use snapshot::security::SecurityPolicy;

use crate::CompileOptions;
use crate::ancestors::{gateway_ancestor, route_gateways};
use crate::backend_ref::BackendTable;
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ObjectStatus, StatusReport};
use crate::traffic_policy::attachment_conditions;
use crate::{rate_limit_policy, security_policy};

/// Where a policy attaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    Route {
        kind: &'static str,
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

/// The policies of one kind, by target, with the age that decides conflicts.
#[derive(Debug, PartialEq)]
struct Attached<T> {
    by_target: HashMap<Target, (Arc<T>, Order)>,
}

impl<T> Default for Attached<T> {
    fn default() -> Attached<T> {
        Attached {
            by_target: HashMap::new(),
        }
    }
}

impl<T> Attached<T> {
    /// The policy of the first candidate target that has one.
    fn first(&self, candidates: &[Target]) -> Option<Arc<T>> {
        candidates
            .iter()
            .find_map(|target| self.by_target.get(target))
            .map(|(policy, _)| Arc::clone(policy))
    }
}

/// Creation time, then `namespace/name`: the older wins.
type Order = (Option<i64>, String);

/// One policy's status and the targets its ancestors come from.
#[derive(Debug, PartialEq)]
struct PolicyReport {
    status: ObjectStatus,
    targets: Vec<Target>,
}

/// Every SecurityPolicy and RateLimitPolicy, validated and attached.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RoutePolicies {
    security: Attached<SecurityPolicy>,
    rate_limit: Attached<RateLimitPolicy>,
    reports: Vec<PolicyReport>,
}

/// The policies that apply at one place.
#[derive(Debug, Default, Clone)]
pub(crate) struct AppliedRoutePolicies {
    pub(crate) security: Option<Arc<SecurityPolicy>>,
    pub(crate) rate_limit: Option<Arc<RateLimitPolicy>>,
}

impl RoutePolicies {
    /// Validates every policy and claims its targets, oldest first. The backends external
    /// authorization names are resolved into `backends`.
    pub(crate) fn compile(
        store: &Store,
        options: &CompileOptions,
        backends: &mut BackendTable,
    ) -> RoutePolicies {
        let mut policies = RoutePolicies::default();
        let mut security: Vec<_> = store.security_policies.iter().collect();
        security.sort_by_key(|((ns, name), p)| (created(&p.metadata), ns.clone(), name.clone()));
        for ((namespace, name), policy) in security {
            let path = FieldPath::object("SecurityPolicy", namespace, name);
            let order = (created(&policy.metadata), format!("{namespace}/{name}"));
            let compiled =
                security_policy::compile(store, backends, namespace, &path, &policy.spec)
                    .map(Arc::new)
                    .map_err(|problems| {
                        let refused = Arc::new(security_policy::refusing(&path));
                        (problems, Some(refused))
                    });
            let claim = Claim {
                kind: "SecurityPolicy",
                namespace,
                name,
                path: &path,
                refs: &policy.spec.target_refs,
                order,
            };
            let report = claim.apply(store, compiled, &mut policies.security);
            policies.reports.push(report);
        }
        let mut rate_limits: Vec<_> = store.rate_limit_policies.iter().collect();
        rate_limits.sort_by_key(|((ns, name), p)| (created(&p.metadata), ns.clone(), name.clone()));
        for ((namespace, name), policy) in rate_limits {
            let path = FieldPath::object("RateLimitPolicy", namespace, name);
            let order = (created(&policy.metadata), format!("{namespace}/{name}"));
            // An invalid rate limit does not block traffic: its targets go unlimited (the
            // status says why), as without the policy.
            let compiled = rate_limit_policy::compile(options, namespace, &path, &policy.spec)
                .map(Arc::new)
                .map_err(|problems| (problems, None));
            let claim = Claim {
                kind: "RateLimitPolicy",
                namespace,
                name,
                path: &path,
                refs: &policy.spec.target_refs,
                order,
            };
            let report = claim.apply(store, compiled, &mut policies.rate_limit);
            policies.reports.push(report);
        }
        policies
    }

    /// The policies of one rule of a route: the rule's (by name), else the route's.
    pub(crate) fn for_rule(
        &self,
        kind: &'static str,
        namespace: &str,
        name: &str,
        rule: Option<&str>,
    ) -> AppliedRoutePolicies {
        let target = |rule: Option<&str>| Target::Route {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            rule: rule.map(str::to_owned),
        };
        let mut candidates = Vec::with_capacity(2);
        if rule.is_some() {
            candidates.push(target(rule));
        }
        candidates.push(target(None));
        self.find(&candidates)
    }

    /// The policies of one Gateway listener: the listener's, else the Gateway's.
    pub(crate) fn for_listener(
        &self,
        namespace: &str,
        gateway: &str,
        listener: Option<&str>,
    ) -> AppliedRoutePolicies {
        let target = |listener: Option<&str>| Target::Gateway {
            namespace: namespace.into(),
            name: gateway.into(),
            listener: listener.map(str::to_owned),
        };
        let mut candidates = Vec::with_capacity(2);
        if listener.is_some() {
            candidates.push(target(listener));
        }
        candidates.push(target(None));
        self.find(&candidates)
    }

    fn find(&self, candidates: &[Target]) -> AppliedRoutePolicies {
        AppliedRoutePolicies {
            security: self.security.first(candidates),
            rate_limit: self.rate_limit.first(candidates),
        }
    }

    /// `(namespace, name)` of every route and Gateway a policy targets.
    pub(crate) fn targets(store: &Store) -> impl Iterator<Item = model::NamespacedName> + '_ {
        let security = store.security_policies.iter().flat_map(|((ns, _), p)| {
            let refs = p.spec.target_refs.iter();
            refs.map(move |t| (ns.clone(), t.name.as_str().into()))
        });
        let rate_limits = store.rate_limit_policies.iter().flat_map(|((ns, _), p)| {
            let refs = p.spec.target_refs.iter();
            refs.map(move |t| (ns.clone(), t.name.as_str().into()))
        });
        security.chain(rate_limits)
    }

    /// Writes every policy's status with its ancestors (GEP-713): a targeted Gateway (one
    /// listener when `sectionName` names it) or a targeted route's parent Gateways of ours.
    pub(crate) fn report(
        &self,
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        status: &mut StatusReport,
    ) {
        for report in &self.reports {
            let mut ancestors = BTreeSet::new();
            for target in &report.targets {
                match target {
                    Target::Gateway {
                        namespace,
                        name,
                        listener,
                    } => {
                        let gateway = (namespace.clone(), name.clone());
                        if listeners.by_gateway.contains_key(&gateway) {
                            ancestors.insert((gateway, listener.clone()));
                        }
                    }
                    Target::Route {
                        kind,
                        namespace,
                        name,
                        ..
                    } => {
                        let gateways = route_gateways(store, listeners, kind, namespace, name);
                        ancestors.extend(gateways.into_iter().map(|g| (g, None)));
                    }
                }
            }
            let mut object = report.status.clone();
            object.ancestors = ancestors
                .into_iter()
                .map(|(gateway, section)| {
                    let conditions = report.status.conditions.clone();
                    gateway_ancestor(gateway, section, &options.controller_name, conditions)
                })
                .collect();
            status.objects.push(object);
        }
    }
}

/// One policy claiming its targets.
struct Claim<'a> {
    kind: &'static str,
    namespace: &'a str,
    name: &'a str,
    path: &'a FieldPath,
    refs: &'a [PolicyTargetRef],
    order: Order,
}

/// A compiled policy, or its problems and what its targets get instead (`None`: nothing).
type Compiled<T> = Result<Arc<T>, (Problems, Option<Arc<T>>)>;

impl Claim<'_> {
    /// Claims the targets of the policy that are not held by an older one; returns its status
    /// and its targets.
    fn apply<T>(
        self,
        store: &Store,
        compiled: Compiled<T>,
        attached: &mut Attached<T>,
    ) -> PolicyReport {
        let mut status = ObjectStatus::new(self.kind, self.namespace, self.name);
        let list = self.path.field("spec.targetRefs");
        let mut targets = Vec::new();
        let mut not_found = Problems::default();
        if self.refs.is_empty() {
            not_found.report(list.problem("at least one target is required"));
        }
        let mut positions = Vec::new();
        for (index, reference) in self.refs.iter().enumerate() {
            let at = list.index(index);
            if let Some(target) = not_found.ok(target_of(store, self.namespace, &at, reference))
                && !targets.contains(&target)
            {
                targets.push(target);
                positions.push(index);
            }
        }
        let (policy, valid) = match compiled {
            Ok(policy) => (Some(policy), true),
            Err((problems, instead)) => {
                status
                    .conditions
                    .push(Condition::no("Accepted", "Invalid", problems.join()));
                status.problems = problems.lines();
                (instead, false)
            }
        };
        let mut conflicts = Problems::default();
        let mut held = Vec::new();
        for (target, &index) in targets.iter().zip(&positions) {
            match attached.by_target.get(target) {
                Some((_, existing)) if *existing <= self.order => {
                    conflicts.report(list.index(index).problem(format!(
                        "{} is already the target of the older {} {}",
                        describe(target),
                        self.kind,
                        existing.1
                    )));
                }
                _ => {
                    if let Some(policy) = &policy {
                        attached
                            .by_target
                            .insert(target.clone(), (Arc::clone(policy), self.order.clone()));
                    }
                    held.push(describe(target));
                }
            }
        }
        status.problems.extend(not_found.lines());
        status.problems.extend(conflicts.lines());
        if valid {
            status
                .conditions
                .extend(attachment_conditions(&held, &not_found, &conflicts));
        }
        PolicyReport { status, targets }
    }
}

/// `metadata.creationTimestamp` in unix seconds.
fn created(meta: &model::core::ObjectMeta) -> Option<i64> {
    meta.creation_timestamp.as_ref().map(|t| t.0.as_second())
}

/// `HTTPRoute ns/name rule x`, `Gateway ns/name listener y`.
fn describe(target: &Target) -> String {
    match target {
        Target::Route {
            kind,
            namespace,
            name,
            rule,
        } => match rule {
            Some(rule) => format!("{kind} {namespace}/{name} rule {rule}"),
            None => format!("{kind} {namespace}/{name}"),
        },
        Target::Gateway {
            namespace,
            name,
            listener,
        } => match listener {
            Some(listener) => format!("Gateway {namespace}/{name} listener {listener}"),
            None => format!("Gateway {namespace}/{name}"),
        },
    }
}

/// The target one `targetRefs` entry names, if it exists in the policy's namespace: a
/// Gateway (and the listener `sectionName` names) or an HTTPRoute/GRPCRoute (and the rule).
fn target_of(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    reference: &PolicyTargetRef,
) -> Result<Target, Problem> {
    let key = model::key(namespace, &reference.name);
    let section = reference.section_name.clone();
    let missing = || {
        at.problem(format!(
            "{} {namespace}/{} not found",
            reference.kind, reference.name
        ))
    };
    match (reference.group.as_str(), reference.kind.as_str()) {
        (model::kind::GATEWAY_GROUP, "Gateway") => {
            let gateway = store.gateways.get(&key).ok_or_else(missing)?;
            if let Some(listener) = &section
                && !gateway.spec.listeners.iter().any(|l| &l.name == listener)
            {
                return Err(at.field("sectionName").problem(format!(
                    "Gateway {namespace}/{} has no listener {listener:?}",
                    reference.name
                )));
            }
            Ok(Target::Gateway {
                namespace: key.0,
                name: key.1,
                listener: section,
            })
        }
        (model::kind::GATEWAY_GROUP, kind @ ("HTTPRoute" | "GRPCRoute")) => {
            let rule_names: Vec<Option<&str>> = if kind == "HTTPRoute" {
                let route = store.http_routes.get(&key).ok_or_else(missing)?;
                route.spec.rules.iter().flatten().map(|r| r.name.as_deref()).collect()
            } else {
                let route = store.grpc_routes.get(&key).ok_or_else(missing)?;
                route.spec.rules.iter().flatten().map(|r| r.name.as_deref()).collect()
            };
            if let Some(rule) = &section
                && !rule_names.contains(&Some(rule.as_str()))
            {
                return Err(at.field("sectionName").problem(format!(
                    "{kind} {namespace}/{} has no rule named {rule:?}",
                    reference.name
                )));
            }
            Ok(Target::Route {
                kind: if kind == "HTTPRoute" { "HTTPRoute" } else { "GRPCRoute" },
                namespace: key.0,
                name: key.1,
                rule: section,
            })
        }
        (group, kind) => Err(at.problem(format!(
            "{group}/{kind} is not a supported target (gateway.networking.k8s.io Gateway, HTTPRoute or GRPCRoute)"
        ))),
    }
}

#[cfg(test)]
mod tests;
