//! CA certificate references (`caCertificateRefs`): a ConfigMap's (or, implementation-specific,
//! a Secret's) `ca.crt` key → PEM bundle → trust anchors.
//!
//! Shared by BackendTLSPolicy (`backend_tls`: which CAs may sign a backend's certificate) and
//! frontend validation (`frontend_tls`: which CAs may sign a client's). It checks kind,
//! existence and content; who may reference what (namespaces, ReferenceGrants) is the caller's
//! business, since the two differ.

use model::Store;
use model::core::ConfigMap;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::problems::{FieldPath, Problem};
use crate::tls::secret_data;

/// The key holding the PEM bundle, in a ConfigMap as in a Secret.
const CA_KEY: &str = "ca.crt";

/// One CA certificate reference with defaults applied.
pub(crate) struct CaCertificateRef<'a> {
    pub(crate) group: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
    pub(crate) namespace: &'a str,
}

/// The certificates of one reference (`at` is its path). The problem carries the
/// `ResolvedRefs` reason: an unsupported group/kind fails with `kind_reason` (the two APIs
/// name it differently); a missing object, a missing `ca.crt`, or a bundle without usable CA
/// certificates fails with `InvalidCACertificateRef`.
pub(crate) fn resolve_ca_certificates(
    store: &Store,
    at: &FieldPath,
    reference: &CaCertificateRef<'_>,
    kind_reason: &'static str,
) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let invalid = |message: String| at.problem(message).because("InvalidCACertificateRef");
    let key = model::key(reference.namespace, reference.name);
    let target = format!(
        "{} {}/{}",
        reference.kind, reference.namespace, reference.name
    );
    let pem: Option<Vec<u8>> = match (reference.group, reference.kind) {
        ("", "ConfigMap") => {
            let Some(config_map) = store.config_maps.get(&key) else {
                return Err(invalid(format!("{target} not found")));
            };
            config_map_bundle(config_map)
        }
        ("", "Secret") => {
            let Some(secret) = store.secrets.get(&key) else {
                return Err(invalid(format!("{target} not found")));
            };
            secret_data(secret, CA_KEY)
        }
        (group, kind) => {
            let group = if group.is_empty() { "core" } else { group };
            return Err(at
                .problem(format!(
                    "{group}/{kind} is not a supported CA certificate kind (ConfigMap, Secret)"
                ))
                .because(kind_reason));
        }
    };
    let Some(pem) = pem else {
        return Err(invalid(format!("{target} has no {CA_KEY} key")));
    };
    parse_bundle(&pem).map_err(|why| invalid(format!("{target} {CA_KEY}: {why}")))
}

/// A ConfigMap's `ca.crt`, from `data` or else `binaryData`.
fn config_map_bundle(config_map: &ConfigMap) -> Option<Vec<u8>> {
    config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CA_KEY))
        .map(|text| text.clone().into_bytes())
        .or_else(|| {
            config_map
                .binary_data
                .as_ref()
                .and_then(|d| d.get(CA_KEY))
                .map(|bytes| bytes.0.clone())
        })
}

/// Parses a PEM bundle and checks that each certificate can be a trust anchor.
fn parse_bundle(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
    if certificates.is_empty() {
        return Err("holds no PEM certificate".to_owned());
    }
    let mut roots = RootCertStore::empty();
    for (index, certificate) in certificates.iter().enumerate() {
        roots
            .add(certificate.clone())
            .map_err(|e| format!("certificate {index} is not a usable CA certificate: {e}"))?;
    }
    Ok(certificates)
}
