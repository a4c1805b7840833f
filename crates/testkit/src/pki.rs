//! Throwaway certificates for tests: a certificate authority, the server and client certificates it issues,
//! self-signed certificates, and the Kubernetes objects that carry them to the gateway.
//!
//! Owns key generation (rcgen, ECDSA P-256) and the PEM and DER forms rustls and the gateway read. Every key
//! is generated fresh in memory; nothing is written to disk and nothing here is fit for production. It
//! deliberately builds no TLS client or server configuration: tests choose their own trust and ALPN.
//!
//! The objects are the two shapes the gateway reads certificates from: a `kubernetes.io/tls` Secret
//! (`tls.crt` and `tls.key`, for listeners and for the Gateway's backend client certificate) and a ConfigMap
//! holding a CA bundle as `ca.crt` (for BackendTLSPolicy and frontend client validation). Each comes as block
//! YAML text, for tests that write config files by hand, or as a JSON object.

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

/// A self-signed certificate authority that issues leaf certificates.
///
/// Its certificate is unconstrained (any path length) and may only sign certificates and CRLs. Leaves it
/// issues are signed directly by it, with no intermediate.
#[derive(Debug)]
pub struct CertificateAuthority {
    /// The CA certificate and its signing key.
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// A new CA whose subject is `CN=<common_name>`.
    ///
    /// # Errors
    ///
    /// Fails when key generation or signing fails (not expected on a working crypto provider).
    pub fn new(common_name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)
            .with_context(|| format!("self-signing CA {common_name:?}"))?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM: what a ConfigMap's `ca.crt` holds.
    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER: what a rustls root store or client verifier takes.
    pub fn certificate_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Issues a leaf certificate with these DNS names (an IP address string becomes an IP SAN, and wildcards
    /// such as `*.example.com` are kept as written) and URI SANs (`spiffe://...`).
    ///
    /// The leaf has no extended key usage, so webpki accepts it both as a server and as a client certificate.
    ///
    /// # Errors
    ///
    /// Fails for a name or URI that is not ASCII, or when key generation or signing fails.
    pub fn issue(&self, dns_names: &[&str], uris: &[&str]) -> anyhow::Result<Certificate> {
        let mut params = CertificateParams::new(owned(dns_names))
            .with_context(|| format!("invalid DNS names {dns_names:?}"))?;
        for uri in uris {
            let uri = (*uri)
                .try_into()
                .with_context(|| format!("invalid URI SAN {uri:?}"))?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        self.sign(params)
    }

    /// Issues a client certificate: subject `CN=<common_name>`, the same name as its one DNS SAN, and the
    /// `clientAuth` extended key usage, so it is refused as a server certificate.
    ///
    /// # Errors
    ///
    /// Fails for a name that is not ASCII, or when key generation or signing fails.
    pub fn issue_client(&self, common_name: &str) -> anyhow::Result<Certificate> {
        let mut params = CertificateParams::new(vec![common_name.to_owned()])
            .with_context(|| format!("invalid client name {common_name:?}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    /// Signs `params` with this CA over a fresh key.
    fn sign(&self, params: CertificateParams) -> anyhow::Result<Certificate> {
        let key = KeyPair::generate()?;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .context("signing a leaf certificate")?;
        Ok(Certificate::from_parts(certificate, &key))
    }
}

/// A certificate and its private key, in the forms tests hand to the gateway (PEM) and to rustls (DER).
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate, PEM.
    certificate_pem: String,
    /// The private key, PKCS#8 PEM.
    key_pem: String,
    /// The certificate, DER.
    certificate_der: CertificateDer<'static>,
    /// The private key, PKCS#8 DER.
    key_der: Vec<u8>,
}

impl Certificate {
    /// A self-signed certificate for these DNS names, taken as written (`*`, `*.org` and IP addresses
    /// included), like a Secret made with `openssl req -x509`. It is its own trust anchor: a client trusts it
    /// by adding it to its root store or by pinning it.
    ///
    /// # Errors
    ///
    /// Fails for a name that is not ASCII, or when key generation or signing fails.
    pub fn self_signed(dns_names: &[&str]) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let certificate = CertificateParams::new(owned(dns_names))
            .with_context(|| format!("invalid DNS names {dns_names:?}"))?
            .self_signed(&key)
            .with_context(|| format!("self-signing a certificate for {dns_names:?}"))?;
        Ok(Self::from_parts(certificate, &key))
    }

    /// Collects the encodings of a signed certificate and its key.
    fn from_parts(certificate: rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            certificate_der: certificate.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// The certificate, PEM (`tls.crt`).
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The private key, PKCS#8 PEM (`tls.key`).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The certificate, DER, for a rustls certificate chain, root store or pin.
    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.certificate_der
    }

    /// The private key, DER, for a rustls server or client configuration.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key_der.clone()).into()
    }

    /// A `kubernetes.io/tls` Secret `namespace/name` holding this certificate and key, as one block-YAML
    /// document without `---` separators.
    pub fn secret_yaml(&self, namespace: &str, name: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\n\
             stringData:\n  tls.crt: |\n{}\n  tls.key: |\n{}\n",
            block_scalar(&self.certificate_pem),
            block_scalar(&self.key_pem)
        )
    }

    /// The same Secret as [`Certificate::secret_yaml`], as a JSON object.
    pub fn secret_object(&self, namespace: &str, name: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "stringData": {"tls.crt": self.certificate_pem, "tls.key": self.key_pem},
        })
    }
}

/// A ConfigMap `namespace/name` holding the PEM bundle `ca_pem` as `ca.crt`, as one block-YAML document without
/// `---` separators. Takes PEM rather than a [`CertificateAuthority`] so a bundle of several CAs, or a leaf
/// trusted directly, can be written too.
pub fn ca_config_map_yaml(namespace: &str, name: &str, ca_pem: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata:\n  ca.crt: |\n{}\n",
        block_scalar(ca_pem)
    )
}

/// `text` indented for a YAML literal block scalar under a key at two spaces; no trailing newline.
fn block_scalar(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names as the owned strings rcgen takes.
fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

#[cfg(test)]
mod tests;
