//! Listener TLS: certificateRefs → Secrets → certificates, with ReferenceGrant for Secrets in
//! other namespaces.

use std::sync::Arc;

use model::Store;
use rustls::sign::CertifiedKey;

use crate::backend_ref::{BackendRefSpec, Referrer, reference_granted};

/// One `certificateRefs` entry, from whichever generated listener type carries it.
pub(crate) struct CertificateRef<'a> {
    pub(crate) group: Option<&'a str>,
    pub(crate) kind: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) namespace: Option<&'a str>,
}

/// Why a listener's certificates cannot be used: the listener `ResolvedRefs` reason and a
/// message naming the field.
pub(crate) struct CertificateProblem {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
}

/// Resolves the first usable certificate of a listener (`at` is the listener's field path;
/// `owner_kind`/`owner_namespace` the object the listener belongs to, for ReferenceGrants).
/// Only the first certificateRef is served; more are validated but unused (one certificate
/// per listener hostname is what SNI selection needs).
pub(crate) fn resolve_certificate(
    store: &Store,
    at: &str,
    owner_kind: &str,
    owner_namespace: &str,
    refs: &[CertificateRef<'_>],
) -> Result<Arc<CertifiedKey>, CertificateProblem> {
    let invalid = |message: String| CertificateProblem {
        reason: "InvalidCertificateRef",
        message,
    };
    let mut first = None;
    if refs.is_empty() {
        return Err(invalid(format!(
            "{at}.tls.certificateRefs: an HTTPS listener needs a certificate"
        )));
    }
    for (index, reference) in refs.iter().enumerate() {
        let field = format!("{at}.tls.certificateRefs[{index}]");
        let group = reference.group.unwrap_or("");
        let kind = reference.kind.unwrap_or("Secret");
        if !group.is_empty() || kind != "Secret" {
            return Err(invalid(format!(
                "{field}: {group}/{kind} is not supported (core Secret is)"
            )));
        }
        let namespace = reference.namespace.unwrap_or(owner_namespace);
        if namespace != owner_namespace {
            let referrer = Referrer {
                kind: owner_kind,
                namespace: owner_namespace,
            };
            let target = BackendRefSpec {
                group: "",
                kind: "Secret",
                name: reference.name,
                namespace,
                port: None,
            };
            if !reference_granted(store, &referrer, &target) {
                return Err(CertificateProblem {
                    reason: "RefNotPermitted",
                    message: format!(
                        "{field}: Secret {namespace}/{} is in another namespace and no ReferenceGrant allows it",
                        reference.name
                    ),
                });
            }
        }
        let Some(secret) = store
            .secrets
            .get(&(namespace.to_owned(), reference.name.to_owned()))
        else {
            return Err(invalid(format!(
                "{field}: Secret {namespace}/{} not found",
                reference.name
            )));
        };
        let value = |key: &str| -> Option<Vec<u8>> {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|d| d.get(key))
                        .map(|s| s.clone().into_bytes())
                })
        };
        let (Some(certificate), Some(key)) = (value("tls.crt"), value("tls.key")) else {
            return Err(invalid(format!(
                "{field}: Secret {namespace}/{} needs tls.crt and tls.key",
                reference.name
            )));
        };
        let certified = snapshot::tls::certified_key(&certificate, &key).map_err(|e| {
            invalid(format!(
                "{field}: Secret {namespace}/{}: {e}",
                reference.name
            ))
        })?;
        first.get_or_insert(certified);
    }
    first.ok_or_else(|| invalid(format!("{at}.tls.certificateRefs: no usable certificate")))
}
