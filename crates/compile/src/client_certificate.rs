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
use model::gateway_api::Gateway;
use snapshot::backend::tls::ClientCertificate;

use crate::backend_ref::{BackendRefSpec, Referrer, reference_granted};
use crate::listener::Listeners;
use crate::status::{Condition, StatusReport};

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
    let gateways: BTreeMap<(String, String), Vec<usize>> = listeners
        .by_gateway
        .iter()
        .map(|(key, slots)| (key.clone(), slots.clone()))
        .collect();
    for ((namespace, name), slots) in gateways {
        let Some(gateway) = store.gateways.get(&(namespace.clone(), name.clone())) else {
            continue;
        };
        let label = format!("Gateway {namespace}/{name}");
        let condition = match resolve(store, &namespace, gateway) {
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
            Some(Err((reason, message))) => {
                Condition::no("ResolvedRefs", reason, format!("{label} {message}"))
            }
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
/// `ResolvedRefs` reason and a message naming the field.
fn resolve(
    store: &Store,
    namespace: &str,
    gateway: &Gateway,
) -> Option<Result<ClientCertificate, (&'static str, String)>> {
    let reference = gateway
        .spec
        .tls
        .as_ref()?
        .backend
        .as_ref()?
        .client_certificate_ref
        .as_ref()?;
    let invalid = |message: String| ("InvalidClientCertificateRef", format!("{FIELD}: {message}"));
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        let group = if group.is_empty() { "core" } else { group };
        return Some(Err(invalid(format!(
            "{group}/{kind} is not supported (core Secret is)"
        ))));
    }
    let secret_namespace = reference.namespace.as_deref().unwrap_or(namespace);
    let target = format!("Secret {secret_namespace}/{}", reference.name);
    if secret_namespace != namespace {
        let referrer = Referrer {
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
            return Some(Err((
                "RefNotPermitted",
                format!(
                    "{FIELD}: {target} is in another namespace and no ReferenceGrant in {secret_namespace} allows it"
                ),
            )));
        }
    }
    let key = (secret_namespace.to_owned(), reference.name.clone());
    let Some(secret) = store.secrets.get(&key) else {
        return Some(Err(invalid(format!("{target} not found"))));
    };
    let value = |name: &str| -> Option<Vec<u8>> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(name))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(name))
                    .map(|s| s.clone().into_bytes())
            })
    };
    let (Some(certificate), Some(key)) = (value("tls.crt"), value("tls.key")) else {
        return Some(Err(invalid(format!("{target} needs tls.crt and tls.key"))));
    };
    Some(
        snapshot::tls::certified_key(&certificate, &key)
            .map(|key| ClientCertificate {
                id: target.as_str().into(),
                key,
            })
            .map_err(|e| invalid(format!("{target}: {e}"))),
    )
}
