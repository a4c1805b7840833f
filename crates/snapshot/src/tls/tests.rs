//! Which server config a handshake gets when listeners validate client certificates.

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use router::HostPattern;

use super::*;

fn listener_certificate(name: &str) -> Arc<CertifiedKey> {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("certificate");
    certified_key(
        cert.pem().as_bytes(),
        signing_key.serialize_pem().as_bytes(),
    )
    .expect("matching key")
}

fn validation(mode: ClientValidationMode) -> Arc<ClientValidation> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let ca = params.self_signed(&key).expect("CA");
    Arc::new(ClientValidation::new(vec![ca.der().clone()], mode).expect("usable CA"))
}

fn socket(validated: Option<Arc<ClientValidation>>) -> SocketTls {
    let mut certificates = HostMap::new();
    let mut validations = HostMap::new();
    for (host, validation) in [("a.example.com", validated), ("b.example.com", None)] {
        let pattern = HostPattern::parse(host);
        certificates.entry_or_insert_with(&pattern, || listener_certificate(host));
        validations.entry_or_insert_with(&pattern, || validation);
    }
    SocketTls::with_client_validation(certificates, validations).expect("config builds")
}

#[test]
fn without_validation_one_config_serves_every_handshake() {
    let tls = socket(None);
    assert!(!tls.selects_by_sni());
    assert!(Arc::ptr_eq(
        &tls.config_for(Some("a.example.com")),
        &tls.config
    ));
}

#[test]
fn the_sni_picks_the_listeners_config() {
    let tls = socket(Some(validation(ClientValidationMode::AllowValidOnly)));
    assert!(tls.selects_by_sni());
    let validating = tls.config_for(Some("a.example.com"));
    assert!(!Arc::ptr_eq(&validating, &tls.config));
    assert!(Arc::ptr_eq(
        &tls.config_for(Some("b.example.com")),
        &tls.config
    ));
    // No SNI and no listener without hostname: the default config, which has no certificate
    // for it anyway.
    assert!(Arc::ptr_eq(&tls.config_for(None), &tls.config));
}

#[test]
fn insecure_fallback_does_not_require_a_certificate() {
    let strict = validation(ClientValidationMode::AllowValidOnly);
    let fallback = validation(ClientValidationMode::AllowInsecureFallback);
    assert!(strict.verifier.client_auth_mandatory());
    assert!(fallback.verifier.offer_client_auth());
    assert!(!fallback.verifier.client_auth_mandatory());
    assert_eq!(fallback.mode(), ClientValidationMode::AllowInsecureFallback);
}

#[test]
fn handshake_settings_shape_every_config_of_the_socket() {
    let default = socket(None);
    assert_eq!(*default.handshake(), HandshakeSettings::default());
    assert_eq!(
        default.config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );

    let mut certificates = HostMap::new();
    let mut validations = HostMap::new();
    let pattern = HostPattern::parse("a.example.com");
    certificates.entry_or_insert_with(&pattern, || listener_certificate("a.example.com"));
    validations.entry_or_insert_with(&pattern, || {
        Some(validation(ClientValidationMode::AllowValidOnly))
    });
    let settings = HandshakeSettings {
        min_version: MinTlsVersion::Tls13,
        alpn: vec![AlpnProtocol::Http11],
    };
    let tls = SocketTls::with_handshake(certificates, validations, settings.clone())
        .expect("config builds");
    assert_eq!(*tls.handshake(), settings);
    // The per-listener config (client validation) is built with the same settings.
    let validating = tls.config_for(Some("a.example.com"));
    assert!(!Arc::ptr_eq(&validating, &tls.config));
    for config in [&tls.config, &validating] {
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
