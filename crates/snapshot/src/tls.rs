//! TLS material of HTTPS sockets: certificates by SNI, and the rustls server config.
//!
//! Built by `compile` (pure: parsing PEM and assembling a config does no I/O) and used by the
//! proxy's accept loop for each new connection, so a certificate change applies to the next
//! handshake without rebinding the socket.

use std::fmt;
use std::sync::Arc;

use router::HostMap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS side of one HTTPS socket.
#[derive(Clone)]
pub struct SocketTls {
    /// Server config (certificate resolver by SNI, ALPN `h2` and `http/1.1`).
    pub config: Arc<ServerConfig>,
}

impl fmt::Debug for SocketTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTls").finish_non_exhaustive()
    }
}

impl SocketTls {
    /// Builds the TLS side of a socket from its listeners' certificates, by listener hostname.
    pub fn new(certificates: HostMap<Arc<CertifiedKey>>) -> Result<SocketTls, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver { certificates }));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(SocketTls {
            config: Arc::new(config),
        })
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
