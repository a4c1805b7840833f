//! Listener TLS: certificateRefs → Secrets → certificates, with ReferenceGrant for Secrets in
//! other namespaces.

use std::sync::Arc;

use model::Store;
use model::core::Secret;
use rustls::sign::CertifiedKey;

use crate::backend_ref::{BackendRefSpec, Referrer, reference_granted};
use crate::problems::{FieldPath, Problem};

/// One `certificateRefs` entry, from whichever generated listener type carries it.
pub(crate) struct CertificateRef<'a> {
    pub(crate) group: Option<&'a str>,
    pub(crate) kind: Option<&'a str>,
    pub(crate) name: &'a str,
    pub(crate) namespace: Option<&'a str>,
}

/// Resolves the first usable certificate of a listener (`at` is the listener's field path;
/// `owner_kind`/`owner_namespace` the object the listener belongs to, for ReferenceGrants).
/// Only the first certificateRef is served; more are validated but unused (one certificate
/// per listener hostname is what SNI selection needs). The problem carries the listener's
/// `ResolvedRefs` reason.
pub(crate) fn resolve_certificate(
    store: &Store,
    at: &FieldPath,
    owner_kind: &str,
    owner_namespace: &str,
    refs: &[CertificateRef<'_>],
) -> Result<Arc<CertifiedKey>, Problem> {
    let list = at.field("tls.certificateRefs");
    if refs.is_empty() {
        return Err(list
            .problem("an HTTPS listener needs a certificate")
            .because("InvalidCertificateRef"));
    }
    let referrer = Referrer {
        group: model::kind::GATEWAY_GROUP,
        kind: owner_kind,
        namespace: owner_namespace,
    };
    let mut first = None;
    for (index, reference) in refs.iter().enumerate() {
        let certified = certificate_of(store, &list.index(index), &referrer, reference)?;
        first.get_or_insert(certified);
    }
    first.ok_or_else(|| {
        list.problem("no usable certificate")
            .because("InvalidCertificateRef")
    })
}

/// The certificate one `certificateRefs` entry (`at`) names: a core Secret with `tls.crt` and
/// `tls.key`, in the listener owner's namespace or granted by a ReferenceGrant (GEP-709).
fn certificate_of(
    store: &Store,
    at: &FieldPath,
    referrer: &Referrer<'_>,
    reference: &CertificateRef<'_>,
) -> Result<Arc<CertifiedKey>, Problem> {
    let invalid = |message: String| at.problem(message).because("InvalidCertificateRef");
    let group = reference.group.unwrap_or("");
    let kind = reference.kind.unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(invalid(format!(
            "{group}/{kind} is not supported (core Secret is)"
        )));
    }
    let namespace = reference.namespace.unwrap_or(referrer.namespace);
    let target = format!("Secret {namespace}/{}", reference.name);
    if namespace != referrer.namespace {
        let secret = BackendRefSpec {
            group: "",
            kind: "Secret",
            name: reference.name,
            namespace,
            port: None,
        };
        if !reference_granted(store, referrer, &secret) {
            return Err(at
                .problem(format!(
                    "{target} is in another namespace and no ReferenceGrant allows it"
                ))
                .because("RefNotPermitted"));
        }
    }
    let Some(secret) = store.secrets.get(&model::key(namespace, reference.name)) else {
        return Err(invalid(format!("{target} not found")));
    };
    let (Some(certificate), Some(key)) = (
        secret_data(secret, "tls.crt"),
        secret_data(secret, "tls.key"),
    ) else {
        return Err(invalid(format!("{target} needs tls.crt and tls.key")));
    };
    snapshot::tls::certified_key(&certificate, &key).map_err(|e| invalid(format!("{target}: {e}")))
}

/// One key of a Secret, from `data` or else `stringData`.
pub(crate) fn secret_data(secret: &Secret, key: &str) -> Option<Vec<u8>> {
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
}
