//! A BackendTrafficPolicy's `status.ancestors` (GEP-713): the Gateways of ours under its
//! targets, each with the policy's conditions. Written after the routes are compiled (a
//! Service's ancestors are the Gateways of the routes using it), in a full compile and after
//! every incremental step.

use std::collections::BTreeSet;

use model::BackendTrafficPolicy;
use model::Store;
use model::policy::PolicyTargetRef;

use super::{KIND, Target, TrafficPolicies, target_of};
use crate::CompileOptions;
use crate::ancestors::{BackendUse, backend_uses, gateway_ancestor, route_gateways};
use crate::backend_tls::TargetKind;
use crate::listener::Listeners;
use crate::problems::FieldPath;
use crate::status::StatusReport;

impl TrafficPolicies {
    /// Writes every policy's status: its conditions, on the object and on each ancestor
    /// (GEP-713), and its field-level problems. The ancestors are the Gateways of ours under
    /// its targets: a targeted Gateway (one listener when `sectionName` names it), a targeted
    /// route's parent Gateways, the Gateways whose routes use a targeted Service (port) or
    /// `Backend`. A policy whose targets are under no Gateway of ours has no ancestor: only
    /// `/status` and `portcullis check` show its conditions.
    pub(crate) fn report(
        &self,
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        status: &mut StatusReport,
    ) {
        let backend_targeted = self.reports.iter().any(|report| {
            report
                .targets
                .iter()
                .any(|t| matches!(t, Target::Service { .. } | Target::Backend { .. }))
        });
        // Every route's backendRefs, walked once and only when some policy needs them.
        let uses = if backend_targeted {
            backend_uses(store, listeners)
        } else {
            Vec::new()
        };
        for report in &self.reports {
            let mut ancestors = BTreeSet::new();
            for target in &report.targets {
                ancestors_of(store, listeners, &uses, target, &mut ancestors);
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

/// The targets of a policy that exist, whatever its validity and whether it holds them: where
/// its ancestors come from. A Service named with a port it does not have counts as the whole
/// Service.
pub(super) fn ancestor_targets(
    store: &Store,
    namespace: &str,
    name: &str,
    policy: &BackendTrafficPolicy,
) -> Vec<Target> {
    let list = FieldPath::object(KIND, namespace, name).field("spec.targetRefs");
    let mut targets = Vec::new();
    for (index, reference) in policy.spec.target_refs.iter().enumerate() {
        let found = match target_of(store, namespace, &list.index(index), reference) {
            Ok(target) => Some(target),
            // A port the Service does not have: the Gateways using the Service show why the
            // policy does nothing there.
            Err(_) => whole_service(store, namespace, reference),
        };
        if let Some(target) = found
            && !targets.contains(&target)
        {
            targets.push(target);
        }
    }
    targets
}

/// The whole Service a `targetRefs` entry names, when it is a Service that exists (whatever
/// its `sectionName`).
fn whole_service(store: &Store, namespace: &str, reference: &PolicyTargetRef) -> Option<Target> {
    let is_service = (reference.group.as_str(), reference.kind.as_str()) == ("", "Service");
    let key = model::key(namespace, &reference.name);
    (is_service && store.services.contains_key(&key)).then_some(Target::Service {
        namespace: key.0,
        name: key.1,
        port: None,
    })
}

/// Adds the Gateways of ours (with a listener name when the target names one) under one
/// target to `ancestors`. `uses`: every backendRef of the routes of ours.
fn ancestors_of(
    store: &Store,
    listeners: &Listeners,
    uses: &[BackendUse],
    target: &Target,
    ancestors: &mut BTreeSet<(model::NamespacedName, Option<String>)>,
) {
    let (kind, namespace, name, section) = match target {
        Target::Gateway {
            namespace,
            name,
            listener,
        } => {
            let gateway = (namespace.clone(), name.clone());
            if listeners.by_gateway.contains_key(&gateway) {
                ancestors.insert((gateway, listener.clone()));
            }
            return;
        }
        Target::Route {
            kind,
            namespace,
            name,
            ..
        } => {
            let gateways = route_gateways(store, listeners, kind, namespace, name);
            ancestors.extend(gateways.into_iter().map(|gateway| (gateway, None)));
            return;
        }
        Target::Service {
            namespace,
            name,
            port,
        } => (TargetKind::Service, namespace, name, port.as_deref()),
        Target::Backend { namespace, name } => (TargetKind::Backend, namespace, name, None),
    };
    for usage in uses
        .iter()
        .filter(|u| u.is_of(kind, namespace, name, section))
    {
        ancestors.extend(usage.gateways.iter().map(|g| (g.clone(), None)));
    }
}
