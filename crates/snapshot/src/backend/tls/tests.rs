//! Backend certificate verification (hostname vs subjectAltNames) and client certificate
//! variants, with certificates made by rcgen.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::PrivateKeyDer;

use super::*;

struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn authority(name: &str) -> Authority {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("key generation");
    Authority {
        issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
    }
}

fn leaf(authority: &Authority, dns: &[&str], uris: &[&str]) -> (CertificateDer<'static>, KeyPair) {
    let mut params = CertificateParams::new(
        dns.iter()
            .map(|name| (*name).to_owned())
            .collect::<Vec<_>>(),
    )
    .expect("valid DNS names");
    for uri in uris {
        params
            .subject_alt_names
            .push(SanType::URI((*uri).try_into().expect("ASCII URI")));
    }
    let key = KeyPair::generate().expect("key generation");
    let certificate = params
        .signed_by(&key, &authority.issuer)
        .expect("signed leaf");
    (certificate.der().clone(), key)
}

fn settings(
    authority: &Authority,
    server_name: &str,
    sans: Vec<SubjectAltName>,
) -> UpstreamTlsSettings {
    UpstreamTlsSettings {
        server_name: server_name.to_owned(),
        trust: TrustAnchors::Certificates(vec![authority.issuer.der().clone()]),
        subject_alt_names: sans,
    }
}

fn verify(
    settings: &UpstreamTlsSettings,
    certificate: &CertificateDer<'static>,
) -> Result<(), Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = server_verifier(settings, &provider).expect("verifier builds");
    let name = ServerName::try_from(settings.server_name.clone()).expect("valid name");
    verifier
        .verify_server_cert(certificate, &[], &name, &[], UnixTime::now())
        .map(|_| ())
}

#[test]
fn hostname_is_verified_without_subject_alt_names() {
    let ca = authority("ca");
    let (certificate, _) = leaf(&ca, &["abc.example.com"], &[]);
    verify(&settings(&ca, "abc.example.com", Vec::new()), &certificate).expect("name matches");
    let mismatch = verify(
        &settings(&ca, "other.example.com", Vec::new()),
        &certificate,
    );
    assert!(mismatch.is_err(), "{mismatch:?}");
}

#[test]
fn certificate_from_another_authority_is_rejected() {
    let ca = authority("ca");
    let other = authority("other");
    let (certificate, _) = leaf(&other, &["abc.example.com"], &[]);
    let error = verify(&settings(&ca, "abc.example.com", Vec::new()), &certificate)
        .expect_err("unknown issuer");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
    let with_sans = settings(
        &ca,
        "abc.example.com",
        vec![SubjectAltName::Hostname("abc.example.com".to_owned())],
    );
    assert!(verify(&with_sans, &certificate).is_err());
}

#[test]
fn subject_alt_names_are_verified_instead_of_the_hostname() {
    let ca = authority("ca");
    let (certificate, _) = leaf(
        &ca,
        &["abc.example.com"],
        &["spiffe://abc.example.com/test-identity"],
    );
    // The hostname (SNI) matches nothing in the certificate; the URI SAN does.
    let uri = settings(
        &ca,
        "sni-only.example.com",
        vec![SubjectAltName::Uri(
            "spiffe://abc.example.com/test-identity".to_owned(),
        )],
    );
    verify(&uri, &certificate).expect("URI SAN matches");
    let hostname = settings(
        &ca,
        "sni-only.example.com",
        vec![
            SubjectAltName::Uri("spiffe://def.example.com/test-identity".to_owned()),
            SubjectAltName::Hostname("abc.example.com".to_owned()),
        ],
    );
    verify(&hostname, &certificate).expect("one of the SANs matches");
}

#[test]
fn subject_alt_names_exclude_the_hostname() {
    let ca = authority("ca");
    let (certificate, _) = leaf(&ca, &["abc.example.com"], &[]);
    // The hostname matches the certificate, but with SANs set it is not used for
    // authentication (GEP-1897).
    let mismatch = settings(
        &ca,
        "abc.example.com",
        vec![
            SubjectAltName::Hostname("def.example.com".to_owned()),
            SubjectAltName::Uri("spiffe://abc.example.com/test-identity".to_owned()),
        ],
    );
    let error = verify(&mismatch, &certificate).expect_err("no SAN matches");
    assert!(
        error.to_string().contains("def.example.com"),
        "the error names the wanted SANs: {error}"
    );
}

#[test]
fn invalid_settings_are_errors() {
    let ca = authority("ca");
    let bad_name = UpstreamTls::new(
        settings(&ca, "not a host", Vec::new()),
        &[],
        AppProtocol::Http1,
    );
    assert!(bad_name.is_err());
    let no_roots = UpstreamTlsSettings {
        trust: TrustAnchors::Certificates(Vec::new()),
        ..settings(&ca, "abc.example.com", Vec::new())
    };
    assert!(UpstreamTls::new(no_roots, &[], AppProtocol::Http1).is_err());
}

fn client(id: &str, authority: &Authority) -> Arc<ClientCertificate> {
    let (certificate, key) = leaf(authority, &["client.example.com"], &[]);
    let key = PrivateKeyDer::try_from(key.serialize_der()).expect("PKCS#8 key");
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = CertifiedKey::from_der(vec![certificate], key, &provider).expect("matching key");
    Arc::new(ClientCertificate {
        id: id.into(),
        key: Arc::new(key),
    })
}

#[test]
fn each_client_certificate_gets_its_own_config() {
    let ca = authority("ca");
    let a = client("Secret infra/a", &ca);
    let b = client("Secret infra/b", &ca);
    let tls = UpstreamTls::new(
        settings(&ca, "abc.example.com", Vec::new()),
        &[Arc::clone(&a), Arc::clone(&b), Arc::clone(&a)],
        AppProtocol::Http1,
    )
    .expect("valid settings");
    assert_eq!(
        tls.variant_count(),
        3,
        "none, a, b (the duplicate a is skipped)"
    );
    assert_eq!(tls.variant(None), 0);
    assert_eq!(tls.variant(Some(&a)), 1);
    assert_eq!(tls.variant(Some(&b)), 2);
    let unknown = client("Secret infra/c", &ca);
    assert_eq!(
        tls.variant(Some(&unknown)),
        0,
        "unknown certificates present none"
    );
    assert!(!tls.config(0).client_auth_cert_resolver.has_certs());
    assert!(tls.config(1).client_auth_cert_resolver.has_certs());
    assert_eq!(tls.config(1).alpn_protocols, vec![b"http/1.1".to_vec()]);
    let h2 = tls.for_protocol(AppProtocol::H2c).expect("same settings");
    assert_eq!(h2.config(2).alpn_protocols, vec![b"h2".to_vec()]);
    assert_eq!(h2.variant(Some(&b)), 2);
}

#[test]
fn equality_follows_settings_and_client_certificates() {
    let ca = authority("ca");
    let a = client("Secret infra/a", &ca);
    let build = |name: &str, clients: &[Arc<ClientCertificate>]| {
        UpstreamTls::new(settings(&ca, name, Vec::new()), clients, AppProtocol::Http1)
            .expect("valid settings")
    };
    assert_eq!(build("abc.example.com", &[]), build("abc.example.com", &[]));
    assert_ne!(build("abc.example.com", &[]), build("def.example.com", &[]));
    assert_ne!(
        build("abc.example.com", &[]),
        build("abc.example.com", &[Arc::clone(&a)])
    );
    // The same Secret name with a new certificate is a different identity.
    let renewed = client("Secret infra/a", &ca);
    assert_ne!(
        build("abc.example.com", &[a]),
        build("abc.example.com", &[renewed])
    );
}
