//! Gateway API status conditions, computed by `compile` for every object we own.
//!
//! The shapes mirror what Kubernetes would show in `.status` (GatewayClass and Gateway
//! conditions, per-listener status, per-parent route status), so `/status`, `portcullis check`
//! and the Kubernetes status writer (`kube_source`) all read the same thing; [`StatusChange`]
//! tells that writer what an update changed.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

/// One status condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// Condition type (`Accepted`, `ResolvedRefs`, `Programmed`, `Conflicted`, ...).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `True` or `False`.
    pub status: ConditionStatus,
    /// CamelCase reason from the Gateway API spec.
    pub reason: &'static str,
    /// Human-readable detail; names the object and field on failures. Borrowed when fixed
    /// text ("route is attached"): every route holds a few conditions, mostly those.
    pub message: Cow<'static, str>,
}

/// Condition truth value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
}

impl Condition {
    /// A `True` condition.
    pub fn yes(
        kind: &'static str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Condition {
        Condition {
            kind,
            status: ConditionStatus::True,
            reason,
            message: message.into(),
        }
    }

    /// A `False` condition.
    pub fn no(
        kind: &'static str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Condition {
        Condition {
            kind,
            status: ConditionStatus::False,
            reason,
            message: message.into(),
        }
    }

    /// Whether this condition signals a problem: a positive-polarity condition (`Accepted`,
    /// `ResolvedRefs`, `Programmed`) that is False, or a negative-polarity one (`Conflicted`,
    /// `PartiallyInvalid`) that is True.
    pub fn is_unhealthy(&self) -> bool {
        let negative = matches!(self.kind, "Conflicted" | "PartiallyInvalid");
        (self.status == ConditionStatus::True) == negative
    }
}

/// Status of one listener of a Gateway.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// Routes attached to it.
    pub attached_routes: u32,
    /// Route kinds it accepts.
    pub supported_kinds: Vec<RouteKind>,
    /// Its conditions.
    pub conditions: Vec<Condition>,
}

/// A route group/kind pair in `supportedKinds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteKind {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// The parentRef a route status entry is about, normalised (defaults filled in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// Group (`gateway.networking.k8s.io`; borrowed when it is that, as nearly always).
    pub group: Cow<'static, str>,
    /// Kind (`Gateway`; borrowed when it is `Gateway` or `ListenerSet`).
    pub kind: Cow<'static, str>,
    /// Namespace of the parent.
    pub namespace: model::Name,
    /// Name of the parent.
    pub name: model::Name,
    /// Listener name, when the ref names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Listener port, when the ref names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Status of a route towards one parent.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parent.
    pub parent_ref: ParentReference,
    /// Our controller name (shared).
    pub controller_name: Arc<str>,
    /// Conditions towards that parent.
    pub conditions: Vec<Condition>,
}

/// Status of a policy towards one ancestor (for BackendTLSPolicy: a Gateway whose routes use
/// a backend the policy targets), as `status.ancestors[]` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    /// The ancestor.
    pub ancestor_ref: ParentReference,
    /// Our controller name (shared).
    pub controller_name: Arc<str>,
    /// Conditions of the policy towards that ancestor.
    pub conditions: Vec<Condition>,
}

/// Status of one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Kind as Kubernetes spells it.
    pub kind: &'static str,
    /// Namespace ("" for cluster-scoped kinds).
    #[serde(skip_serializing_if = "model::Name::is_empty")]
    pub namespace: model::Name,
    /// Name.
    pub name: model::Name,
    /// Object-level conditions (GatewayClass, Gateway).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// GatewayClasses we accept: the features we support ([`crate::SUPPORTED_FEATURES`]).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub supported_features: &'static [&'static str],
    /// Gateway addresses in use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Gateway listener statuses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<ListenerStatus>,
    /// Gateways: how many ListenerSets are attached (accepted), GEP-1713.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_listener_sets: Option<u32>,
    /// Route statuses, one per parentRef.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<RouteParentStatus>,
    /// Policy statuses, one per ancestor.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<PolicyAncestorStatus>,
    /// Field-level problems, one line each, naming object and field:
    /// `HTTPRoute shop/web rules[1].backendRefs[0]: Service shop/missing-svc not found (BackendNotFound)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl ObjectStatus {
    /// An empty status for an object.
    pub fn new(kind: &'static str, namespace: &str, name: &str) -> ObjectStatus {
        ObjectStatus {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            conditions: Vec::new(),
            supported_features: &[],
            addresses: Vec::new(),
            listeners: Vec::new(),
            attached_listener_sets: None,
            parents: Vec::new(),
            ancestors: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// `Kind ns/name` (or `Kind name`).
    pub fn label(&self) -> String {
        if self.namespace.is_empty() {
            format!("{} {}", self.kind, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// Every condition of this object with where it sits (`""`, `listener http`,
    /// `parent Gateway ns/gw`, `ancestor Gateway ns/gw`).
    pub fn all_conditions(&self) -> Vec<(String, &Condition)> {
        let mut all: Vec<(String, &Condition)> =
            self.conditions.iter().map(|c| (String::new(), c)).collect();
        for listener in &self.listeners {
            let at = format!("listener {}", listener.name);
            all.extend(listener.conditions.iter().map(|c| (at.clone(), c)));
        }
        for parent in &self.parents {
            let p = &parent.parent_ref;
            let mut at = format!("parent {} {}/{}", p.kind, p.namespace, p.name);
            if let Some(section) = &p.section_name {
                at.push_str(&format!(" sectionName={section}"));
            }
            if let Some(port) = p.port {
                at.push_str(&format!(" port={port}"));
            }
            all.extend(parent.conditions.iter().map(|c| (at.clone(), c)));
        }
        for ancestor in &self.ancestors {
            let a = &ancestor.ancestor_ref;
            let at = format!("ancestor {} {}/{}", a.kind, a.namespace, a.name);
            all.extend(ancestor.conditions.iter().map(|c| (at.clone(), c)));
        }
        all
    }

    /// Whether no condition signals a problem and no field-level problem was found.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty() && self.all_conditions().iter().all(|(_, c)| !c.is_unhealthy())
    }
}

/// Status of every object compile looked at, in a stable order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StatusReport {
    /// Per-object statuses.
    pub objects: Vec<ObjectStatus>,
}

impl StatusReport {
    /// Whether every object is healthy.
    pub fn is_healthy(&self) -> bool {
        self.objects.iter().all(ObjectStatus::is_healthy)
    }

    /// Every field-level problem, one line each, followed by unhealthy conditions of objects
    /// that have no field-level problem (`Gateway a/b listener x: Programmed=False (Invalid): ...`).
    pub fn problems(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for object in &self.objects {
            if !object.problems.is_empty() {
                lines.extend(object.problems.iter().cloned());
                continue;
            }
            for (at, condition) in object.all_conditions() {
                if condition.is_unhealthy() {
                    let at = if at.is_empty() {
                        String::new()
                    } else {
                        format!(" {at}")
                    };
                    lines.push(format!(
                        "{}{at}: {}={:?} ({}): {}",
                        object.label(),
                        condition.kind,
                        condition.status,
                        condition.reason,
                        condition.message
                    ));
                }
            }
        }
        lines
    }
}

/// What may have changed in the status since the previous compile, for consumers that follow
/// it (the Kubernetes status writer) at the cost of the change rather than of the whole config.
#[derive(Clone, Debug)]
pub enum StatusChange {
    /// Everything was compiled: the status of every object (what is not in it has none).
    Full(StatusReport),
    /// An incremental step ([`crate::Step`]): the statuses it may have changed, and the
    /// objects it compiled again (`Kind namespace/name`); those of them without a status in
    /// `statuses` are gone (deleted, or no longer ours). Every other object's status is as
    /// before.
    Partial {
        /// Statuses that may have changed.
        statuses: Vec<ObjectStatus>,
        /// Objects compiled again, as [`crate::Step::recompiled`] names them.
        recompiled: Vec<String>,
    },
}

impl StatusChange {
    /// Whether it changes nothing (an incremental step that compiled nothing).
    pub fn is_empty(&self) -> bool {
        match self {
            StatusChange::Full(_) => false,
            StatusChange::Partial {
                statuses,
                recompiled,
            } => statuses.is_empty() && recompiled.is_empty(),
        }
    }
}
