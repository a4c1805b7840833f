//! Frontend client certificate validation (GEP-91): which listeners get it, CA reference
//! problems and the listener conditions they set.

use std::net::SocketAddr;

use crate::Compiled;
use crate::backend_tls::tests::{ca_config_map, ca_pem, tls_secret};
use crate::status::{Condition, ConditionStatus, ObjectStatus};
use crate::tests::{compile_yaml, object};

/// A Gateway with an HTTPS listener on 443, another on 8443, and an HTTP one on 80.
fn gateway(frontend: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: mtls, namespace: infra}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.20}}]
  tls:
    frontend:
{frontend}
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
  - {{name: https, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{{name: server}}]}}}}
  - {{name: other, port: 8443, protocol: HTTPS, tls: {{certificateRefs: [{{name: server}}]}}}}
{}",
        tls_secret("infra", "server", "example.org")
    )
}

fn default_validation(refs: &str, mode: &str) -> String {
    format!("      default:\n        validation: {{caCertificateRefs: [{refs}]{mode}}}")
}

const CA_REF: &str = "{group: \"\", kind: ConfigMap, name: ca}";

fn listener_condition<'a>(status: &'a ObjectStatus, listener: &str, kind: &str) -> &'a Condition {
    status
        .listeners
        .iter()
        .find(|l| l.name == listener)
        .expect("listener status")
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("listener condition")
}

fn socket(compiled: &Compiled, port: u16) -> Option<&snapshot::SocketRoutes> {
    let address = SocketAddr::from(([127, 0, 0, 20], port));
    compiled.snapshot.sockets.get(&address).map(AsRef::as_ref)
}

fn validates_clients(compiled: &Compiled, port: u16) -> bool {
    socket(compiled, port)
        .and_then(|s| s.tls.as_ref())
        .expect("HTTPS socket")
        .selects_by_sni()
}

#[test]
fn default_validation_applies_to_every_https_listener() {
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(&default_validation(CA_REF, "")),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    assert!(
        compiled.status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    assert!(validates_clients(&compiled, 443));
    assert!(validates_clients(&compiled, 8443));
    assert!(socket(&compiled, 80).is_some_and(|s| s.tls.is_none()));
}

#[test]
fn per_port_validation_overrides_the_default() {
    let frontend = format!(
        "{}\n      perPort:\n      - port: 8443\n        tls: {{validation: {{caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: missing}}]}}}}",
        default_validation(CA_REF, ", mode: AllowInsecureFallback")
    );
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(&frontend),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    let status = object(&compiled, "Gateway", "infra", "mtls");
    // 443 uses the valid default; 8443's own validation is broken, and only 8443 says so.
    assert_eq!(
        listener_condition(status, "https", "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    assert!(validates_clients(&compiled, 443));
    let resolved = listener_condition(status, "other", "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCACertificateRef");
    assert!(
        resolved
            .message
            .contains("spec.tls.frontend.perPort[0].tls.validation.caCertificateRefs[0]"),
        "{}",
        resolved.message
    );
    assert_eq!(
        listener_condition(status, "other", "Accepted").reason,
        "NoValidCACertificate"
    );
    assert!(
        socket(&compiled, 8443).is_none(),
        "the listener stops serving"
    );
    // The HTTP listener is not affected.
    assert_eq!(
        listener_condition(status, "http", "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    let accepted = status
        .conditions
        .iter()
        .find(|c| c.kind == "Accepted")
        .expect("Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::True, "ListenersNotValid")
    );
}

#[test]
fn missing_config_map_invalidates_https_listeners_only() {
    let compiled = compile_yaml(&gateway(&default_validation(CA_REF, "")));
    let status = object(&compiled, "Gateway", "infra", "mtls");
    for listener in ["https", "other"] {
        let resolved = listener_condition(status, listener, "ResolvedRefs");
        assert_eq!(resolved.reason, "InvalidCACertificateRef");
        assert!(
            resolved.message.contains("ConfigMap infra/ca not found"),
            "{}",
            resolved.message
        );
        let programmed = listener_condition(status, listener, "Programmed");
        assert_eq!(programmed.status, ConditionStatus::False);
    }
    assert!(socket(&compiled, 443).is_none());
    assert_eq!(
        listener_condition(status, "http", "Accepted").reason,
        "Accepted"
    );
    assert!(socket(&compiled, 80).is_some());
}

#[test]
fn bad_pem_is_an_invalid_ca_certificate_ref() {
    let config_map = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: infra}\ndata: {ca.crt: garbage}\n";
    let compiled = compile_yaml(&format!(
        "{}{config_map}",
        gateway(&default_validation(CA_REF, ""))
    ));
    let status = object(&compiled, "Gateway", "infra", "mtls");
    let resolved = listener_condition(status, "https", "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCACertificateRef");
    assert!(resolved.message.contains("ca.crt"), "{}", resolved.message);
}

#[test]
fn unsupported_kind_is_invalid_ca_certificate_kind() {
    let compiled = compile_yaml(&gateway(&default_validation(
        "{group: example.com, kind: Vault, name: ca}",
        "",
    )));
    let status = object(&compiled, "Gateway", "infra", "mtls");
    assert_eq!(
        listener_condition(status, "https", "ResolvedRefs").reason,
        "InvalidCACertificateKind"
    );
}

#[test]
fn cross_namespace_ca_needs_a_reference_grant() {
    let reference = "{group: \"\", kind: ConfigMap, name: ca, namespace: pki}";
    let base = format!(
        "{}{}",
        gateway(&default_validation(reference, "")),
        ca_config_map("pki", "ca", &ca_pem())
    );
    let compiled = compile_yaml(&base);
    let status = object(&compiled, "Gateway", "infra", "mtls");
    assert_eq!(
        listener_condition(status, "https", "ResolvedRefs").reason,
        "RefNotPermitted"
    );
    assert!(socket(&compiled, 443).is_none());

    let grant = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: pki}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]\n  to: [{group: \"\", kind: ConfigMap, name: ca}]\n";
    let compiled = compile_yaml(&format!("{base}{grant}"));
    assert!(
        compiled.status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    assert!(validates_clients(&compiled, 443));
}

#[test]
fn one_valid_reference_keeps_the_listener_serving() {
    let refs = format!("{CA_REF}, {{group: \"\", kind: ConfigMap, name: missing}}");
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(&default_validation(&refs, "")),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    let status = object(&compiled, "Gateway", "infra", "mtls");
    assert_eq!(
        listener_condition(status, "https", "ResolvedRefs").reason,
        "InvalidCACertificateRef"
    );
    assert_eq!(
        listener_condition(status, "https", "Accepted").reason,
        "Accepted"
    );
    assert!(validates_clients(&compiled, 443));
}
