//! TLS listeners (`protocol: TLS`, GEP-2643): `tls.mode`, the certificate of a `Terminate`
//! listener, and the per-listener table of TLSRoutes by SNI hostname that attachment fills.
//!
//! - `Passthrough`: no certificate (any `certificateRefs` are ignored; the backend owns the
//!   TLS session). The listener routes by the ClientHello's SNI only.
//! - `Terminate` (the default, as for HTTPS): certificates resolve exactly as for an HTTPS
//!   listener (Secrets, ReferenceGrant), and the decrypted stream goes to the backend.
//!
//! A TLS listener accepts TLSRoutes only. Its hostname is optional, as for every listener.
//! It does not validate anything else about the listener (port, hostname, conflicts): that is
//! `gateway::compile_listener`, shared by every protocol.

use std::sync::Arc;

use model::Store;
use model::gateway_api::{GatewayListeners, GatewayListenersTlsMode};
use router::{HostMap, HostPattern};
use rustls::sign::CertifiedKey;
use snapshot::l4::Forward;
use snapshot::tls::SocketTls;
use snapshot::tls_route::{TlsListenerRoutes, TlsMode};

use crate::problems::{FieldPath, Problem};
use crate::tls::{CertificateRef, resolve_certificate};

/// Route kinds a TLS listener accepts.
pub(crate) const TLS_ROUTE_KINDS: &[&str] = &["TLSRoute"];

/// The TLS side of one TLS listener while routes attach.
pub(crate) struct TlsSlot {
    pub(crate) mode: TlsMode,
    /// Routes by effective SNI hostname; the first route to claim a hostname keeps it
    /// (`tls_route` attaches routes oldest first).
    pub(crate) routes: HostMap<Arc<Forward>>,
}

impl TlsSlot {
    /// An empty table for a listener of this mode.
    pub(crate) fn new(mode: TlsMode) -> TlsSlot {
        TlsSlot {
            mode,
            routes: HostMap::new(),
        }
    }

    /// Adds a route for its effective hostnames (`[]` = any SNI, the listener's own
    /// hostname already applied by the intersection). Returns the hostnames another route
    /// already held, which this one does not get.
    pub(crate) fn add(&mut self, hosts: &[String], forward: &Arc<Forward>) -> Vec<String> {
        let patterns: Vec<HostPattern> = if hosts.is_empty() {
            vec![HostPattern::Any]
        } else {
            hosts.iter().map(|h| HostPattern::parse(h)).collect()
        };
        let mut lost = Vec::new();
        for pattern in patterns {
            let held = self
                .routes
                .entry_or_insert_with(&pattern, || Arc::clone(forward));
            if !Arc::ptr_eq(held, forward) {
                lost.push(pattern.to_string());
            }
        }
        lost
    }

    /// The snapshot's view of the listener.
    pub(crate) fn build(self, name: Arc<str>) -> TlsListenerRoutes {
        TlsListenerRoutes {
            name,
            mode: self.mode,
            routes: self.routes,
        }
    }
}

/// `tls.mode` of a TLS listener: `Terminate` unless it says `Passthrough`.
pub(crate) fn mode(spec: &GatewayListeners) -> TlsMode {
    match spec.tls.as_ref().and_then(|tls| tls.mode.as_ref()) {
        Some(GatewayListenersTlsMode::Passthrough) => TlsMode::Passthrough,
        Some(GatewayListenersTlsMode::Terminate) | None => TlsMode::Terminate,
    }
}

/// The certificate of a TLS listener: none for `Passthrough`; for `Terminate`, the first
/// certificateRef, resolved as for HTTPS (`InvalidCertificateRef`, `RefNotPermitted`).
pub(crate) fn certificate(
    store: &Store,
    at: &FieldPath,
    namespace: &str,
    spec: &GatewayListeners,
) -> Result<Option<Arc<CertifiedKey>>, Problem> {
    if mode(spec) == TlsMode::Passthrough {
        return Ok(None);
    }
    let refs: Vec<CertificateRef<'_>> = spec
        .tls
        .iter()
        .flat_map(|tls| tls.certificate_refs.iter().flatten())
        .map(|r| CertificateRef {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
        })
        .collect();
    if refs.is_empty() {
        return Err(at
            .field("tls.certificateRefs")
            .problem("a TLS listener in Terminate mode needs a certificate (or set tls.mode: Passthrough)")
            .because("InvalidCertificateRef"));
    }
    resolve_certificate(store, at, "Gateway", namespace, &refs).map(Some)
}

/// A TLS socket's termination without ALPN: the decrypted stream goes to a TCP backend whose
/// application protocol the gateway does not know, so it must not agree to one (`h2`, say) on
/// the backend's behalf. A client offering ALPN then simply gets none.
pub(crate) fn without_alpn(mut tls: SocketTls) -> SocketTls {
    Arc::make_mut(&mut tls.config).alpn_protocols.clear();
    tls
}
