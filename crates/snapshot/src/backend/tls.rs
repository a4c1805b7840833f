//! TLS origination settings of a backend (BackendTLSPolicy, GEP-1897) and the client
//! certificates a Gateway presents to backends (`spec.tls.backend`, GEP-3155).
//!
//! [`UpstreamTls`] is immutable data built by `compile`: the server name (SNI, and the name
//! verified unless subjectAltNames are given), the trust anchors, and one rustls `ClientConfig`
//! per client certificate a listener may present. A rustls config is compiled settings like the
//! server configs of `crate::tls`: building it parses nothing from the network and does no I/O.
//! System trust anchors are loaded once at startup (`upstream::system_roots`) and passed in.
//! Connections (the runtime half) are made in `upstream`; this module connects nowhere.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    ResolvesClientCert, WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor,
    verify_server_name,
};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, OtherError, RootCertStore,
    SignatureScheme,
};
use serde::Serialize;

use crate::backend::AppProtocol;

/// The trust store type of [`TrustAnchors::System`] (`upstream::system_roots` loads it).
pub type SystemRoots = RootCertStore;

/// ALPN for HTTP/1.1 backends (WebSocket upgrades included).
const ALPN_HTTP1: &[u8] = b"http/1.1";
/// ALPN for HTTP/2 backends (gRPC, `kubernetes.io/h2c` ports under a policy).
const ALPN_H2: &[u8] = b"h2";

/// Where the certificates that may sign a backend's certificate come from.
#[derive(Clone)]
pub enum TrustAnchors {
    /// CA certificates from `caCertificateRefs` (DER), in reference order.
    Certificates(Vec<CertificateDer<'static>>),
    /// `wellKnownCACertificates: System`: the platform's roots, loaded at startup.
    System(Arc<RootCertStore>),
}

impl PartialEq for TrustAnchors {
    fn eq(&self, other: &TrustAnchors) -> bool {
        match (self, other) {
            (TrustAnchors::Certificates(a), TrustAnchors::Certificates(b)) => a == b,
            // The system store is loaded once per process: every System entry is the same.
            (TrustAnchors::System(_), TrustAnchors::System(_)) => true,
            _ => false,
        }
    }
}

/// One `subjectAltNames` entry: the backend certificate must carry at least one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SubjectAltName {
    /// A DNS name SAN (wildcard certificates match as for SNI).
    Hostname(String),
    /// A URI SAN, compared exactly (SPIFFE IDs, for example).
    Uri(String),
}

/// What a BackendTLSPolicy asks for, before it becomes rustls configs.
#[derive(Clone, PartialEq)]
pub struct UpstreamTlsSettings {
    /// `validation.hostname`: the SNI, and the verified name when `subject_alt_names` is empty.
    pub server_name: String,
    /// Trust anchors.
    pub trust: TrustAnchors,
    /// `validation.subjectAltNames`: when not empty, verified instead of `server_name`.
    pub subject_alt_names: Vec<SubjectAltName>,
}

/// A client certificate a Gateway presents on its upstream TLS connections (GEP-3155).
pub struct ClientCertificate {
    /// `Secret ns/name`: tells listeners' certificates apart, and names it in views.
    pub id: Arc<str>,
    /// The certificate chain and its key.
    pub key: Arc<CertifiedKey>,
}

impl PartialEq for ClientCertificate {
    fn eq(&self, other: &ClientCertificate) -> bool {
        // A new key always comes with a new certificate, so the chain identifies the pair.
        self.id == other.id && self.key.cert == other.key.cert
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The TLS side of one backend: what to verify and which config to handshake with for each
/// client certificate a listener may present.
///
/// Equality compares the settings and the client certificates, not the rustls configs: the
/// registry reuses a backend's pools across reloads only while this stays equal.
pub struct UpstreamTls {
    settings: UpstreamTlsSettings,
    server_name: ServerName<'static>,
    alpn: &'static [u8],
    /// Index 0 presents no client certificate; the others present `client`'s.
    variants: Vec<TlsVariant>,
}

struct TlsVariant {
    client: Option<Arc<ClientCertificate>>,
    config: Arc<ClientConfig>,
}

impl UpstreamTls {
    /// Builds the configs for `settings`: one without a client certificate, and one per entry
    /// of `clients` (the Gateways' backend client certificates; duplicates by id are skipped).
    /// `protocol` picks the ALPN offered: `h2` for HTTP/2 backends, `http/1.1` otherwise.
    ///
    /// Errors name what is wrong (an invalid hostname, a CA certificate rustls rejects, no
    /// usable trust anchor) for the policy's status.
    pub fn new(
        settings: UpstreamTlsSettings,
        clients: &[Arc<ClientCertificate>],
        protocol: AppProtocol,
    ) -> Result<UpstreamTls, String> {
        let server_name = ServerName::try_from(settings.server_name.clone())
            .map_err(|_| format!("{:?} is not a valid hostname", settings.server_name))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = server_verifier(&settings, &provider)?;
        let alpn = match protocol {
            AppProtocol::H2c => ALPN_H2,
            AppProtocol::Http1 | AppProtocol::WebSocket => ALPN_HTTP1,
        };
        let mut variants = vec![TlsVariant {
            client: None,
            config: client_config(&provider, &verifier, None, alpn)?,
        }];
        for client in clients {
            if variants
                .iter()
                .any(|v| v.client.as_ref().is_some_and(|c| c.id == client.id))
            {
                continue;
            }
            variants.push(TlsVariant {
                client: Some(Arc::clone(client)),
                config: client_config(&provider, &verifier, Some(client), alpn)?,
            });
        }
        Ok(UpstreamTls {
            settings,
            server_name,
            alpn,
            variants,
        })
    }

    /// The same settings for another protocol (gRPC's HTTP/2 twin of an HTTP/1.1 backend).
    pub fn for_protocol(&self, protocol: AppProtocol) -> Result<UpstreamTls, String> {
        let clients: Vec<Arc<ClientCertificate>> = self
            .variants
            .iter()
            .filter_map(|v| v.client.clone())
            .collect();
        UpstreamTls::new(self.settings.clone(), &clients, protocol)
    }

    /// The name sent as SNI.
    pub fn server_name(&self) -> &ServerName<'static> {
        &self.server_name
    }

    /// How many configs there are (one per client certificate, plus none).
    pub fn variant_count(&self) -> usize {
        self.variants.len()
    }

    /// The config to handshake with when the listener presents `client` (by id); a certificate
    /// this backend was not built for falls back to presenting none.
    pub fn variant(&self, client: Option<&ClientCertificate>) -> usize {
        let Some(client) = client else {
            return 0;
        };
        self.variants
            .iter()
            .position(|v| v.client.as_ref().is_some_and(|c| c.id == client.id))
            .unwrap_or(0)
    }

    /// The rustls config of a variant (0 when out of range).
    pub fn config(&self, variant: usize) -> &Arc<ClientConfig> {
        &self
            .variants
            .get(variant)
            .unwrap_or(&self.variants[0])
            .config
    }
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &UpstreamTls) -> bool {
        self.settings == other.settings
            && self.alpn == other.alpn
            && self.variants.len() == other.variants.len()
            && self
                .variants
                .iter()
                .zip(&other.variants)
                .all(|(a, b)| a.client == b.client)
    }
}

impl Eq for UpstreamTls {}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("server_name", &self.settings.server_name)
            .field("subject_alt_names", &self.settings.subject_alt_names)
            .finish_non_exhaustive()
    }
}

/// `/config` and `/endpoints` view: names only, no key material.
impl Serialize for UpstreamTls {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct View<'a> {
            server_name: &'a str,
            trust: String,
            subject_alt_names: &'a [SubjectAltName],
            alpn: String,
            client_certificates: Vec<&'a str>,
        }
        let trust = match &self.settings.trust {
            TrustAnchors::Certificates(certificates) => {
                format!("{} CA certificate(s)", certificates.len())
            }
            TrustAnchors::System(_) => "System".to_owned(),
        };
        View {
            server_name: &self.settings.server_name,
            trust,
            subject_alt_names: &self.settings.subject_alt_names,
            alpn: String::from_utf8_lossy(self.alpn).into_owned(),
            client_certificates: self
                .variants
                .iter()
                .filter_map(|v| v.client.as_ref().map(|c| &*c.id))
                .collect(),
        }
        .serialize(serializer)
    }
}

fn server_verifier(
    settings: &UpstreamTlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let roots = match &settings.trust {
        TrustAnchors::System(roots) => Arc::clone(roots),
        TrustAnchors::Certificates(certificates) => {
            let mut roots = RootCertStore::empty();
            for (index, certificate) in certificates.iter().enumerate() {
                roots.add(certificate.clone()).map_err(|e| {
                    format!("CA certificate {index} is not a usable trust anchor: {e}")
                })?;
            }
            Arc::new(roots)
        }
    };
    if roots.is_empty() {
        return Err("no CA certificate to verify the backend with".to_owned());
    }
    if settings.subject_alt_names.is_empty() {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
            .build()
            .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
        return Ok(verifier);
    }
    Ok(Arc::new(SubjectAltNameVerifier {
        roots,
        subject_alt_names: settings.subject_alt_names.clone(),
        algorithms: provider.signature_verification_algorithms,
    }))
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    verifier: &Arc<dyn ServerCertVerifier>,
    client: Option<&Arc<ClientCertificate>>,
    alpn: &[u8],
) -> Result<Arc<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(verifier));
    let mut config = match client {
        Some(client) => {
            builder.with_client_cert_resolver(Arc::new(PresentCertificate(Arc::clone(&client.key))))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Presents one certificate whenever a backend asks for one.
#[derive(Debug)]
struct PresentCertificate(Arc<CertifiedKey>);

impl ResolvesClientCert for PresentCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Verifies the chain against the trust anchors like webpki does for SNI, but checks the
/// policy's subjectAltNames instead of the server name (GEP-1897: with subjectAltNames set,
/// the hostname is used for SNI only, never for authentication).
struct SubjectAltNameVerifier {
    roots: Arc<RootCertStore>,
    subject_alt_names: Vec<SubjectAltName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for SubjectAltNameVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectAltNameVerifier")
            .field("subject_alt_names", &self.subject_alt_names)
            .finish_non_exhaustive()
    }
}

impl SubjectAltNameVerifier {
    fn matches(&self, end_entity: &CertificateDer<'_>, parsed: &ParsedCertificate<'_>) -> bool {
        let uris: Vec<String> = match webpki::EndEntityCert::try_from(end_entity) {
            Ok(certificate) => certificate.valid_uri_names().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        };
        self.subject_alt_names.iter().any(|wanted| match wanted {
            SubjectAltName::Hostname(name) => ServerName::try_from(name.as_str())
                .is_ok_and(|name| verify_server_name(parsed, &name).is_ok()),
            SubjectAltName::Uri(uri) => uris.iter().any(|presented| presented == uri),
        })
    }
}

/// The error a certificate without any wanted SAN fails with: says which names were wanted.
struct NoWantedSubjectAltName(String);

impl fmt::Display for NoWantedSubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate has none of the wanted subjectAltNames: {}",
            self.0
        )
    }
}

// rustls prints the error inside `CertificateError::Other` with `Debug`: make that the message,
// so the client's 503 reads well.
impl fmt::Debug for NoWantedSubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for NoWantedSubjectAltName {}

impl ServerCertVerifier for SubjectAltNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.matches(end_entity, &parsed) {
            return Ok(ServerCertVerified::assertion());
        }
        let wanted: Vec<String> = self
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SubjectAltName::Hostname(name) => name.clone(),
                SubjectAltName::Uri(uri) => uri.clone(),
            })
            .collect();
        Err(Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(NoWantedSubjectAltName(wanted.join(", ")))),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
