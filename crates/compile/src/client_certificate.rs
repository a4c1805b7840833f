//! The client certificate a Gateway presents to its backends (`spec.tls.backend
//! .clientCertificateRef`, GEP-3155): Secret resolution, ReferenceGrant, the Gateway's
//! `ResolvedRefs` condition, and which listeners present it.
//!
//! The certificate is used only on connections BackendTLSPolicy already makes TLS; it never
//! turns TLS on by itself. An invalid reference leaves the Gateway Accepted (its listeners
//! work) and its upstream TLS connections present no certificate.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::Store;
use model::gateway_api::{Gateway, GatewayTlsBackendClientCertificateRef};
use snapshot::backend::tls::ClientCertificate;

use crate::backend_ref::{BackendRefSpec, Referrer, reference_granted};
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem};
use crate::status::{Condition, StatusReport};
use crate::tls::secret_data;

const FIELD: &str = "spec.tls.backend.clientCertificateRef";

/// Resolves the client certificate of every Gateway of ours that sets one, records the
/// Gateway's `ResolvedRefs` condition, and assigns the certificate to the listener slots of the
/// Gateway and of its ListenerSets. Returns the distinct certificates (one per Secret), which
/// every backend with TLS builds a config for.
pub(crate) fn resolve_client_certificates(
    store: &Store,
    listeners: &mut Listeners,
    status: &mut StatusReport,
) -> Vec<Arc<ClientCertificate>> {
    let mut certificates: Vec<Arc<ClientCertificate>> = Vec::new();
    // BTreeMap: Gateways in namespace/name order, for a deterministic certificate order.
    let gateways: BTreeMap<model::NamespacedName, Vec<usize>> = listeners
        .by_gateway
        .iter()
        .map(|(key, slots)| (key.clone(), slots.clone()))
        .collect();
    for ((namespace, name), slots) in gateways {
        let Some(gateway) = store.gateways.get(&(namespace.clone(), name.clone())) else {
            continue;
        };
        let at = FieldPath::object("Gateway", &namespace, &name).field(FIELD);
        let condition = match resolve(store, &namespace, &at, gateway) {
            None => continue,
            Some(Ok(certificate)) => {
                let certificate = match certificates.iter().find(|c| ***c == certificate) {
                    Some(known) => Arc::clone(known),
                    None => {
                        let certificate = Arc::new(certificate);
                        certificates.push(Arc::clone(&certificate));
                        certificate
                    }
                };
                let set_slots = listeners.listener_set_slots(store, &namespace, &name);
                for slot in slots.into_iter().chain(set_slots) {
                    listeners
                        .backend_client_certificates
                        .insert(slot, Arc::clone(&certificate));
                }
                Condition::yes(
                    "ResolvedRefs",
                    "ResolvedRefs",
                    format!("{FIELD} resolved ({})", certificate.id),
                )
            }
            Some(Err(problem)) => Condition::no(
                "ResolvedRefs",
                problem.reason_or("InvalidClientCertificateRef"),
                problem.to_string(),
            ),
        };
        if let Some(object) = status
            .objects
            .iter_mut()
            .find(|o| o.kind == "Gateway" && o.namespace == namespace && o.name == name)
        {
            object.conditions.push(condition);
        }
    }
    certificates
}

/// `None` when the Gateway sets no client certificate; otherwise the certificate or the
/// problem (at `at`, the reference's path) with its `ResolvedRefs` reason.
fn resolve(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    gateway: &Gateway,
) -> Option<Result<ClientCertificate, Problem>> {
    let reference = gateway
        .spec
        .tls
        .as_ref()?
        .backend
        .as_ref()?
        .client_certificate_ref
        .as_ref()?;
    Some(client_certificate(store, namespace, at, reference))
}

/// The certificate a `clientCertificateRef` names: a core Secret with `tls.crt` and
/// `tls.key`, in the Gateway's namespace or granted by a ReferenceGrant (GEP-709).
fn client_certificate(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    reference: &GatewayTlsBackendClientCertificateRef,
) -> Result<ClientCertificate, Problem> {
    let invalid = |message: String| at.problem(message).because("InvalidClientCertificateRef");
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        let group = if group.is_empty() { "core" } else { group };
        return Err(invalid(format!(
            "{group}/{kind} is not supported (core Secret is)"
        )));
    }
    let secret_namespace = reference.namespace.as_deref().unwrap_or(namespace);
    let target = format!("Secret {secret_namespace}/{}", reference.name);
    if secret_namespace != namespace {
        let referrer = Referrer {
            group: model::kind::GATEWAY_GROUP,
            kind: "Gateway",
            namespace,
        };
        let spec = BackendRefSpec {
            group: "",
            kind: "Secret",
            name: &reference.name,
            namespace: secret_namespace,
            port: None,
        };
        if !reference_granted(store, &referrer, &spec) {
            return Err(at
                .problem(format!(
                    "{target} is in another namespace and no ReferenceGrant in {secret_namespace} allows it"
                ))
                .because("RefNotPermitted"));
        }
    }
    let key = model::key(secret_namespace, &reference.name);
    let Some(secret) = store.secrets.get(&key) else {
        return Err(invalid(format!("{target} not found")));
    };
    let (Some(certificate), Some(key)) = (
        secret_data(secret, "tls.crt"),
        secret_data(secret, "tls.key"),
    ) else {
        return Err(invalid(format!("{target} needs tls.crt and tls.key")));
    };
    snapshot::tls::certified_key(&certificate, &key)
        .map(|key| ClientCertificate {
            id: target.as_str().into(),
            key,
        })
        .map_err(|e| invalid(format!("{target}: {e}")))
}
