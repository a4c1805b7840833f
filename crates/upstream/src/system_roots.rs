//! The platform's trust anchors, for BackendTLSPolicy `wellKnownCACertificates: System`.
//!
//! Reading them is I/O, so it lives here and not in `snapshot`: the binary loads them once at
//! startup and hands them to `compile`, which stays pure.

use std::sync::Arc;

use rustls::RootCertStore;

/// Loads the platform's trust anchors (`wellKnownCACertificates: System`). I/O: the binary
/// calls it once at startup. Certificates the platform store holds but rustls cannot use are
/// skipped; an empty result is an error.
pub fn load_system_roots() -> Result<Arc<RootCertStore>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(format!("no usable system CA certificate: {why}"));
    }
    Ok(Arc::new(roots))
}
