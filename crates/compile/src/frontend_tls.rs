//! Client certificate validation on HTTPS listeners (`Gateway.spec.tls.frontend`, GEP-91):
//! which validation each HTTPS listener gets (`perPort` for its port, else `default`), CA
//! reference resolution, and the listener conditions the spec asks for.
//!
//! - A valid validation goes to the listener's socket ([`snapshot::tls::ClientValidation`]),
//!   where rustls asks for and checks client certificates during the handshake.
//! - Some `caCertificateRefs` invalid: `ResolvedRefs=False` (`InvalidCACertificateRef`,
//!   `InvalidCACertificateKind` or `RefNotPermitted`), the valid ones are used.
//! - All invalid: also `Accepted=False` (`NoValidCACertificate`) and the listener stops serving,
//!   so no client gets in without the validation it asked for.
//!
//! HTTP listeners are never affected. The HTTPS listeners of the Gateway's ListenerSets get
//! the Gateway's validation too: they serve on its addresses, often on the same port.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::Store;
use model::gateway_api::{
    Gateway, GatewayTlsFrontendDefaultValidationMode, GatewayTlsFrontendPerPortTlsValidationMode,
};
use snapshot::Scheme;
use snapshot::tls::{ClientValidation, ClientValidationMode};

use crate::backend_ref::{BackendRefSpec, Referrer, reference_granted};
use crate::ca_certificate::{CaCertificateRef, resolve_ca_certificates};
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ConditionStatus, StatusReport};

/// The `caCertificateRefs` of a `default` or `perPort` validation block (generated types of
/// their own with the same fields), namespaces defaulted to the Gateway's.
macro_rules! ca_refs {
    ($validation:expr, $namespace:expr) => {
        $validation
            .ca_certificate_refs
            .iter()
            .map(|r| CaCertificateRef {
                group: &r.group,
                kind: &r.kind,
                name: &r.name,
                namespace: r.namespace.as_deref().unwrap_or($namespace),
            })
            .collect()
    };
}

/// One `validation` block, from `default` or a `perPort` entry, with defaults applied.
struct ValidationSpec<'a> {
    /// Field path: `Gateway ns/name spec.tls.frontend.default.validation`.
    at: FieldPath,
    refs: Vec<CaCertificateRef<'a>>,
    mode: ClientValidationMode,
}

/// What resolving one validation block gave: the validation (`None` when no CA reference is
/// usable) and the problems of the references that are not, with their `ResolvedRefs`
/// reasons.
struct Resolution {
    validation: Option<Arc<ClientValidation>>,
    problems: Problems,
}

/// Resolves the frontend validation of every Gateway of ours and applies it to their HTTPS
/// listener slots (and those of their ListenerSets), updating listener conditions.
pub(crate) fn validate_frontend_clients(
    store: &Store,
    listeners: &mut Listeners,
    status: &mut StatusReport,
) {
    let gateways: BTreeMap<model::NamespacedName, Vec<usize>> = listeners
        .by_gateway
        .iter()
        .map(|(key, slots)| (key.clone(), slots.clone()))
        .collect();
    for ((namespace, name), mut slots) in gateways {
        let Some(gateway) = store.gateways.get(&(namespace.clone(), name.clone())) else {
            continue;
        };
        if gateway
            .spec
            .tls
            .as_ref()
            .and_then(|t| t.frontend.as_ref())
            .is_none()
        {
            continue;
        }
        slots.extend(listeners.listener_set_slots(store, &namespace, &name));
        // Resolved once per validation block (by port; `None` = default), not per listener.
        let mut resolved: BTreeMap<Option<u16>, Option<Resolution>> = BTreeMap::new();
        for slot in slots {
            if listeners.slots[slot].scheme != Scheme::Https {
                continue;
            }
            let port = listeners.slots[slot].port;
            let key = per_port_index(gateway, port).map(|_| port);
            let resolution = resolved.entry(key).or_insert_with(|| {
                validation_spec(&namespace, &name, gateway, port)
                    .map(|spec| resolve(store, &namespace, &spec))
            });
            if let Some(resolution) = resolution {
                apply(listeners, status, slot, resolution);
            }
        }
    }
}

fn per_port_index(gateway: &Gateway, port: u16) -> Option<usize> {
    let frontend = gateway.spec.tls.as_ref()?.frontend.as_ref()?;
    frontend
        .per_port
        .as_ref()?
        .iter()
        .position(|p| p.port == i32::from(port))
}

/// The validation block that applies to HTTPS listeners on `port`: the `perPort` entry for
/// the port (even one without validation: it overrides the default), else `default`.
fn validation_spec<'a>(
    namespace: &'a str,
    name: &str,
    gateway: &'a Gateway,
    port: u16,
) -> Option<ValidationSpec<'a>> {
    let frontend = gateway.spec.tls.as_ref()?.frontend.as_ref()?;
    let at = FieldPath::object("Gateway", namespace, name).field("spec.tls.frontend");
    if let Some(index) = per_port_index(gateway, port) {
        let validation = frontend
            .per_port
            .as_ref()?
            .get(index)?
            .tls
            .validation
            .as_ref()?;
        let mode = match validation.mode {
            Some(GatewayTlsFrontendPerPortTlsValidationMode::AllowInsecureFallback) => {
                ClientValidationMode::AllowInsecureFallback
            }
            Some(GatewayTlsFrontendPerPortTlsValidationMode::AllowValidOnly) | None => {
                ClientValidationMode::AllowValidOnly
            }
        };
        return Some(ValidationSpec {
            at: at.field("perPort").index(index).field("tls.validation"),
            refs: ca_refs!(validation, namespace),
            mode,
        });
    }
    let validation = frontend.default.validation.as_ref()?;
    let mode = match validation.mode {
        Some(GatewayTlsFrontendDefaultValidationMode::AllowInsecureFallback) => {
            ClientValidationMode::AllowInsecureFallback
        }
        Some(GatewayTlsFrontendDefaultValidationMode::AllowValidOnly) | None => {
            ClientValidationMode::AllowValidOnly
        }
    };
    Some(ValidationSpec {
        at: at.field("default.validation"),
        refs: ca_refs!(validation, namespace),
        mode,
    })
}

/// Resolves one validation block's CA references (in the Gateway's namespace, or granted by a
/// ReferenceGrant) into a client validation.
fn resolve(store: &Store, gateway_namespace: &str, spec: &ValidationSpec<'_>) -> Resolution {
    let mut certificates = Vec::new();
    let mut problems = Problems::default();
    let list = spec.at.field("caCertificateRefs");
    if spec.refs.is_empty() {
        problems.report(
            list.problem("at least one reference is needed")
                .because("InvalidCACertificateRef"),
        );
    }
    for (index, reference) in spec.refs.iter().enumerate() {
        let at = list.index(index);
        let granted = problems.ok(check_grant(store, gateway_namespace, &at, reference));
        let found = granted.and_then(|()| {
            problems.ok(resolve_ca_certificates(
                store,
                &at,
                reference,
                "InvalidCACertificateKind",
            ))
        });
        certificates.extend(found.into_iter().flatten());
    }
    let validation = if certificates.is_empty() {
        None
    } else {
        let validation = ClientValidation::new(certificates, spec.mode)
            .map_err(|message| spec.at.problem(message).because("InvalidCACertificateRef"));
        problems.ok(validation).map(Arc::new)
    };
    Resolution {
        validation,
        problems,
    }
}

/// GEP-91: a CA reference to another namespace needs a ReferenceGrant there.
fn check_grant(
    store: &Store,
    gateway_namespace: &str,
    at: &FieldPath,
    reference: &CaCertificateRef<'_>,
) -> Result<(), Problem> {
    if reference.namespace == gateway_namespace {
        return Ok(());
    }
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: "Gateway",
        namespace: gateway_namespace,
    };
    let target = BackendRefSpec {
        group: reference.group,
        kind: reference.kind,
        name: reference.name,
        namespace: reference.namespace,
        port: None,
    };
    if reference_granted(store, &referrer, &target) {
        return Ok(());
    }
    Err(at
        .problem(format!(
            "{} {}/{} is in another namespace and no ReferenceGrant allows it",
            reference.kind, reference.namespace, reference.name
        ))
        .because("RefNotPermitted"))
}

/// Records the outcome on one listener: its conditions, and either the validation or the end
/// of its service.
fn apply(
    listeners: &mut Listeners,
    status: &mut StatusReport,
    slot: usize,
    resolution: &Resolution,
) {
    let (object, listener) = listeners.slots[slot].status_at;
    let Some(listener_status) = status
        .objects
        .get_mut(object)
        .and_then(|o| o.listeners.get_mut(listener))
    else {
        return;
    };
    let conditions = &mut listener_status.conditions;
    if let Some(first) = resolution.problems.first() {
        let all = resolution.problems.join();
        // A listener whose certificateRefs already failed keeps that reason; the CA
        // problems are added to its message.
        let existing = conditions
            .iter_mut()
            .find(|c| c.kind == "ResolvedRefs" && c.status == ConditionStatus::False);
        match existing {
            Some(condition) => {
                condition.message = format!("{}; {all}", condition.message).into();
            }
            None => {
                conditions.retain(|c| c.kind != "ResolvedRefs");
                let reason = first.reason_or("InvalidCACertificateRef");
                conditions.push(Condition::no("ResolvedRefs", reason, all));
            }
        }
    }
    match &resolution.validation {
        Some(validation) => {
            listeners
                .frontend_validation
                .insert(slot, Arc::clone(validation));
        }
        None => {
            let message = "no valid CA certificate to validate clients with; see ResolvedRefs";
            conditions.retain(|c| c.kind != "Accepted" && c.kind != "Programmed");
            conditions.push(Condition::no("Accepted", "NoValidCACertificate", message));
            conditions.push(Condition::no("Programmed", "Invalid", message));
            let was_usable = listeners.slots[slot].usable;
            listeners.slots[slot].usable = false;
            if was_usable {
                owner_lost_listener(listeners, status, object);
            }
        }
    }
}

/// The owner (Gateway or ListenerSet) of a listener that just stopped serving: its `Accepted`
/// reason becomes `ListenersNotValid`, and when none of its listeners serves any more it is
/// neither Accepted nor Programmed.
fn owner_lost_listener(listeners: &Listeners, status: &mut StatusReport, object: usize) {
    let any_usable = listeners
        .slots
        .iter()
        .any(|s| s.status_at.0 == object && s.usable);
    let Some(owner) = status.objects.get_mut(object) else {
        return;
    };
    let path = FieldPath::object(owner.kind, &owner.namespace, &owner.name);
    let none_valid = path.problem("no listener is valid; see their conditions");
    for condition in &mut owner.conditions {
        match condition.kind {
            "Accepted" => {
                condition.reason = "ListenersNotValid";
                if any_usable {
                    let some_invalid =
                        path.problem("some listeners are not valid; see their conditions");
                    condition.message = some_invalid.to_string().into();
                } else {
                    condition.status = ConditionStatus::False;
                    condition.message = none_valid.to_string().into();
                }
            }
            "Programmed" if !any_usable => {
                condition.status = ConditionStatus::False;
                condition.reason = "Invalid";
                condition.message = none_valid.to_string().into();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
