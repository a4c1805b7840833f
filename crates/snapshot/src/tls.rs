//! TLS material of HTTPS sockets: certificates by SNI, client certificate validation
//! (`Gateway.spec.tls.frontend`, GEP-91), the handshake settings (oldest TLS version, ALPN
//! protocols: ClientTrafficPolicy `tls`), and the rustls server configs.
//!
//! Built by `compile` (pure: parsing PEM and assembling a config does no I/O) and used by the
//! proxy's accept loop for each new connection, so a certificate change applies to the next
//! handshake without rebinding the socket. When the listeners of one socket validate client
//! certificates differently (listeners of several Gateways merged on one port), the
//! ClientHello's SNI picks the listener, and so the config, before the handshake goes on.

use std::fmt;
use std::sync::Arc;

use router::HostMap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, Error, RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

/// The oldest TLS version a socket accepts (ClientTrafficPolicy `tls.minVersion`). rustls
/// implements nothing older than TLS 1.2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MinTlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl MinTlsVersion {
    /// `1.2` or `1.3`, as the policy spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MinTlsVersion::Tls12 => "1.2",
            MinTlsVersion::Tls13 => "1.3",
        }
    }
}

/// An application protocol a socket agrees to by ALPN (RFC 7301).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlpnProtocol {
    /// `h2`: HTTP/2 over TLS.
    Http2,
    /// `http/1.1`.
    Http11,
}

impl AlpnProtocol {
    /// The protocol's ALPN identifier (`h2`, `http/1.1`).
    pub fn as_str(self) -> &'static str {
        match self {
            AlpnProtocol::Http2 => "h2",
            AlpnProtocol::Http11 => "http/1.1",
        }
    }
}

/// How a socket's handshakes go: the versions it accepts and the protocols it offers by ALPN,
/// in preference order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HandshakeSettings {
    /// The oldest version accepted.
    pub min_version: MinTlsVersion,
    /// ALPN protocols, most preferred first. A client offering none of them gets no ALPN
    /// protocol and speaks HTTP/1.1.
    pub alpn: Vec<AlpnProtocol>,
}

impl Default for HandshakeSettings {
    /// TLS 1.2 and 1.3; ALPN `h2`, then `http/1.1`.
    fn default() -> HandshakeSettings {
        HandshakeSettings {
            min_version: MinTlsVersion::Tls12,
            alpn: vec![AlpnProtocol::Http2, AlpnProtocol::Http11],
        }
    }
}

/// The TLS side of one HTTPS socket.
#[derive(Clone)]
pub struct SocketTls {
    /// Server config (certificate resolver by SNI, the handshake settings' versions and ALPN
    /// protocols), without client certificate validation.
    pub config: Arc<ServerConfig>,
    /// The config of each listener hostname when some listener of the socket validates client
    /// certificates; empty when none does (then `config` serves every handshake).
    by_listener: HostMap<Arc<ServerConfig>>,
    /// What every config of the socket was built with.
    handshake: HandshakeSettings,
}

impl fmt::Debug for SocketTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTls").finish_non_exhaustive()
    }
}

impl SocketTls {
    /// Builds the TLS side of a socket from its listeners' certificates, by listener hostname.
    pub fn new(certificates: HostMap<Arc<CertifiedKey>>) -> Result<SocketTls, String> {
        SocketTls::with_client_validation(certificates, HostMap::new())
    }

    /// Builds the TLS side of a socket whose listeners may validate client certificates:
    /// `validation` holds, by listener hostname, each listener's validation (`None`: none). A
    /// listener missing from `validation` validates nothing.
    pub fn with_client_validation(
        certificates: HostMap<Arc<CertifiedKey>>,
        validation: HostMap<Option<Arc<ClientValidation>>>,
    ) -> Result<SocketTls, String> {
        SocketTls::with_handshake(certificates, validation, HandshakeSettings::default())
    }

    /// Like [`SocketTls::with_client_validation`], with the socket's handshake settings: every
    /// config of the socket accepts `handshake.min_version` and newer and offers
    /// `handshake.alpn`.
    pub fn with_handshake(
        certificates: HostMap<Arc<CertifiedKey>>,
        validation: HostMap<Option<Arc<ClientValidation>>>,
        handshake: HandshakeSettings,
    ) -> Result<SocketTls, String> {
        let resolver = Arc::new(SniResolver { certificates });
        let config = server_config(&resolver, None, &handshake)?;
        let mut by_listener = HostMap::new();
        if validation.iter().any(|(_, v)| v.is_some()) {
            // One config per distinct validation: listeners sharing one share sessions too.
            let mut built: Vec<(Arc<ClientValidation>, Arc<ServerConfig>)> = Vec::new();
            for (pattern, wanted) in validation.iter() {
                let listener_config = match wanted {
                    None => Arc::clone(&config),
                    Some(wanted) => match built.iter().find(|(v, _)| Arc::ptr_eq(v, wanted)) {
                        Some((_, config)) => Arc::clone(config),
                        None => {
                            let verifier = Arc::clone(&wanted.verifier);
                            let config = server_config(&resolver, Some(verifier), &handshake)?;
                            built.push((Arc::clone(wanted), Arc::clone(&config)));
                            config
                        }
                    },
                };
                by_listener.entry_or_insert_with(pattern, || listener_config);
            }
        }
        Ok(SocketTls {
            config,
            by_listener,
            handshake,
        })
    }

    /// The handshake settings the socket's configs were built with.
    pub fn handshake(&self) -> &HandshakeSettings {
        &self.handshake
    }

    /// Whether the handshake config depends on the SNI (some listener validates client
    /// certificates). The proxy then reads the ClientHello before choosing, and a request may
    /// only reach the listener its connection's SNI selected.
    pub fn selects_by_sni(&self) -> bool {
        !self.by_listener.is_empty()
    }

    /// The config for a handshake whose ClientHello carries `sni`: that of the most specific
    /// listener hostname matching it (without SNI: the listener without hostname).
    pub fn config_for(&self, sni: Option<&str>) -> Arc<ServerConfig> {
        self.by_listener
            .most_specific(sni.unwrap_or(""))
            .map_or_else(|| Arc::clone(&self.config), Arc::clone)
    }
}

/// The versions accepted from `min_version` on, newest first (rustls' order).
static TLS12_AND_NEWER: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn server_config(
    resolver: &Arc<SniResolver>,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    handshake: &HandshakeSettings,
) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions = match handshake.min_version {
        MinTlsVersion::Tls12 => TLS12_AND_NEWER,
        MinTlsVersion::Tls13 => TLS13_ONLY,
    };
    let builder = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_cert_resolver(Arc::clone(resolver) as Arc<dyn ResolvesServerCert>);
    config.alpn_protocols = handshake
        .alpn
        .iter()
        .map(|protocol| protocol.as_str().as_bytes().to_vec())
        .collect();
    Ok(Arc::new(config))
}

/// `validation.mode` of `Gateway.spec.tls.frontend` (GEP-91).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientValidationMode {
    /// Only clients presenting a certificate signed by one of the CAs complete the handshake.
    AllowValidOnly,
    /// A certificate is requested, but a missing or invalid one is accepted: authorising the
    /// client is left to the backend.
    AllowInsecureFallback,
}

/// Client certificate validation of HTTPS listeners: the CA certificates that may sign a
/// client's certificate and what to do when the check fails.
pub struct ClientValidation {
    verifier: Arc<dyn ClientCertVerifier>,
    mode: ClientValidationMode,
}

impl fmt::Debug for ClientValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientValidation")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl ClientValidation {
    /// Builds the validation from CA certificates (DER). Errors when none is usable as a trust
    /// anchor.
    pub fn new(
        ca_certificates: Vec<CertificateDer<'static>>,
        mode: ClientValidationMode,
    ) -> Result<ClientValidation, String> {
        let mut roots = RootCertStore::empty();
        for (index, certificate) in ca_certificates.into_iter().enumerate() {
            roots
                .add(certificate)
                .map_err(|e| format!("CA certificate {index} is not a usable trust anchor: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier: Arc<dyn ClientCertVerifier> = match mode {
            ClientValidationMode::AllowValidOnly => builder
                .build()
                .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?,
            ClientValidationMode::AllowInsecureFallback => Arc::new(InsecureFallback {
                inner: builder
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("cannot build the client certificate verifier: {e}"))?,
            }),
        };
        Ok(ClientValidation { verifier, mode })
    }

    /// The mode.
    pub fn mode(&self) -> ClientValidationMode {
        self.mode
    }
}

/// `AllowInsecureFallback`: asks for a certificate and checks it, but lets the handshake go on
/// whatever the outcome (GEP-91: "accept connections even if the client certificate is not
/// presented or fails verification").
#[derive(Debug)]
struct InsecureFallback {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for InsecureFallback {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        // The outcome is deliberately ignored: this mode accepts invalid certificates.
        let _ = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let _ = self.inner.verify_tls12_signature(message, cert, dss);
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let _ = self.inner.verify_tls13_signature(message, cert, dss);
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Picks the certificate of the most specific listener hostname matching the SNI (exact, then
/// the longest wildcard, then the listener without hostname). Without SNI (a client connecting
/// by IP) only a listener without hostname can answer.
#[derive(Debug)]
struct SniResolver {
    certificates: HostMap<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or("");
        self.certificates.most_specific(name).cloned()
    }
}

/// Parses a PEM certificate chain and private key (a `kubernetes.io/tls` Secret's `tls.crt` and
/// `tls.key`) into a signing certificate; checks that the key matches the certificate.
pub fn certified_key(certificate_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(certificate_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| format!("tls.key is not a PEM private key: {e}"))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| format!("tls.key does not fit tls.crt: {e}"))?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests;
