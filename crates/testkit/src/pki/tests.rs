//! The certificates verify the way the tests using them rely on, checked with rustls's own verifiers.

use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;

use super::{Certificate, CertificateAuthority, ca_config_map_yaml};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(anchor: CertificateDer<'static>) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots
        .add(anchor)
        .expect("a generated certificate is a valid trust anchor");
    Arc::new(roots)
}

/// Whether a server verifier trusting `anchor` accepts `certificate` for `name`.
fn server_accepts(anchor: CertificateDer<'static>, certificate: &Certificate, name: &str) -> bool {
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(anchor), provider())
            .build()
            .expect("verifier builds");
    let name = ServerName::try_from(name.to_owned()).expect("valid name");
    verifier
        .verify_server_cert(
            certificate.certificate_der(),
            &[],
            &name,
            &[],
            UnixTime::now(),
        )
        .is_ok()
}

/// Whether a client verifier trusting `ca` accepts `certificate`.
fn client_accepted(ca: &CertificateAuthority, certificate: &Certificate) -> bool {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(ca.certificate_der()), provider())
            .build()
            .expect("verifier builds");
    verifier
        .verify_client_cert(certificate.certificate_der(), &[], UnixTime::now())
        .is_ok()
}

#[test]
fn issued_leaves_verify_against_their_ca_for_their_names_only() {
    let ca = CertificateAuthority::new("test CA").expect("CA");
    let other = CertificateAuthority::new("other CA").expect("CA");
    let leaf = ca
        .issue(
            &["abc.example.com", "*.wild.example.com"],
            &["spiffe://abc.example.com/backend"],
        )
        .expect("leaf");
    assert!(server_accepts(
        ca.certificate_der(),
        &leaf,
        "abc.example.com"
    ));
    assert!(server_accepts(
        ca.certificate_der(),
        &leaf,
        "x.wild.example.com"
    ));
    assert!(!server_accepts(
        ca.certificate_der(),
        &leaf,
        "other.example.com"
    ));
    assert!(!server_accepts(
        other.certificate_der(),
        &leaf,
        "abc.example.com"
    ));
    // Without an extended key usage a leaf serves as a client certificate too.
    assert!(client_accepted(&ca, &leaf));
    assert!(!client_accepted(&other, &leaf));
}

#[test]
fn client_certificates_are_for_clients_only() {
    let ca = CertificateAuthority::new("client CA").expect("CA");
    let client = ca
        .issue_client("alice.example.com")
        .expect("client certificate");
    assert!(client_accepted(&ca, &client));
    assert!(!server_accepts(
        ca.certificate_der(),
        &client,
        "alice.example.com"
    ));
}

#[test]
fn self_signed_certificates_are_their_own_anchor_and_keys_match() {
    let certificate = Certificate::self_signed(&["a.example.com"]).expect("certificate");
    assert!(server_accepts(
        certificate.certificate_der().clone(),
        &certificate,
        "a.example.com"
    ));
    // rustls refuses a key that does not belong to the certificate.
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("default versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.certificate_der().clone()],
            certificate.key_der(),
        )
        .expect("the key matches the certificate");
    // Names a hostname verifier would refuse are kept as written, as the conformance Secrets need.
    Certificate::self_signed(&["*", "*.org"]).expect("wildcard-only names");
}

#[test]
fn pem_and_der_are_the_same_certificate() {
    let ca = CertificateAuthority::new("test CA").expect("CA");
    let leaf = ca.issue(&["a.example.com"], &[]).expect("leaf");
    let parsed =
        CertificateDer::from_pem_slice(leaf.certificate_pem().as_bytes()).expect("PEM parses");
    assert_eq!(&parsed, leaf.certificate_der());
    let parsed =
        CertificateDer::from_pem_slice(ca.certificate_pem().as_bytes()).expect("PEM parses");
    assert_eq!(parsed, ca.certificate_der());
    assert!(leaf.key_pem().starts_with("-----BEGIN PRIVATE KEY-----"));
}

#[test]
fn secret_and_config_map_carry_the_pem_as_block_scalars() {
    let certificate = Certificate::self_signed(&["a.example.com"]).expect("certificate");
    let yaml = certificate.secret_yaml("web", "cert-a");
    assert!(
        yaml.starts_with(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: cert-a, namespace: web}\n"
        )
    );
    assert!(yaml.contains("type: kubernetes.io/tls\n"));
    assert!(yaml.contains("  tls.crt: |\n    -----BEGIN CERTIFICATE-----\n"));
    assert!(yaml.contains("  tls.key: |\n    -----BEGIN PRIVATE KEY-----\n"));
    assert!(
        !yaml.lines().any(|line| line == "---"),
        "no document separators"
    );

    let object = certificate.secret_object("web", "cert-a");
    assert_eq!(object["type"], "kubernetes.io/tls");
    assert_eq!(object["metadata"]["namespace"], "web");
    assert_eq!(
        object["stringData"]["tls.crt"],
        certificate.certificate_pem()
    );
    assert_eq!(object["stringData"]["tls.key"], certificate.key_pem());

    let ca = CertificateAuthority::new("test CA").expect("CA");
    let yaml = ca_config_map_yaml("web", "ca", &ca.certificate_pem());
    assert!(
        yaml.starts_with("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: web}\n")
    );
    assert!(yaml.contains("data:\n  ca.crt: |\n    -----BEGIN CERTIFICATE-----\n"));
    assert!(yaml.ends_with("-----END CERTIFICATE-----\n"));
}
