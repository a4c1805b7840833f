//! BackendTLSPolicy: targets, trust anchors, failing closed, conflicts, ancestors; and the
//! Gateway's backend client certificate. Certificates are made by rcgen; the PEM helpers are
//! shared with the frontend validation tests.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};
use model::{Store, parse_documents};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use router::RequestView;
use rustls::pki_types::pem::PemObject;
use snapshot::{BackendTarget, RuleAction};

use crate::tests::{compile_yaml, object, parent_condition};
use crate::{CompileOptions, Compiled, compile};

/// A self-signed CA certificate, PEM.
pub(crate) fn ca_pem() -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let key = KeyPair::generate().expect("key");
    params.self_signed(&key).expect("CA").pem()
}

/// A self-signed leaf certificate and its key, PEM.
pub(crate) fn leaf_pem(name: &str) -> (String, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).expect("leaf");
    (cert.pem(), signing_key.serialize_pem())
}

/// `text` indented for a YAML block scalar under a two-space key.
pub(crate) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A ConfigMap holding `pem` as `ca.crt`.
pub(crate) fn ca_config_map(namespace: &str, name: &str, pem: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata:\n  ca.crt: |\n{}\n",
        indent(pem)
    )
}

/// A kubernetes.io/tls Secret.
pub(crate) fn tls_secret(namespace: &str, name: &str, host: &str) -> String {
    let (certificate, key) = leaf_pem(host);
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}\n  tls.key: |\n{}\n",
        indent(&certificate),
        indent(&key)
    )
}

const ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
";

fn policy(name: &str, created: &str, section: Option<&str>, validation: &str) -> String {
    let section = section.map_or_else(String::new, |s| format!(", sectionName: {s}"));
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: {name}, namespace: infra, creationTimestamp: \"{created}\"}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: web{section}}}]\n  validation:\n{validation}\n"
    )
}

fn ca_validation(config_map: &str, hostname: &str) -> String {
    format!(
        "    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: {config_map}}}]\n    hostname: {hostname}"
    )
}

fn backend<'a>(compiled: &'a Compiled, id: &str) -> Option<&'a snapshot::backend::CompiledBackend> {
    compiled
        .snapshot
        .backends
        .iter()
        .find(|b| b.id.as_str() == id)
}

fn tls_view(compiled: &Compiled, id: &str) -> serde_json::Value {
    let spec = backend(compiled, id).expect("backend compiled");
    serde_json::to_value(spec.tls.as_ref().expect("backend has TLS")).expect("serialises")
}

fn ancestor_condition<'a>(
    compiled: &'a Compiled,
    policy: &str,
    kind: &str,
) -> &'a crate::Condition {
    let status = object(compiled, "BackendTLSPolicy", "infra", policy);
    assert_eq!(status.ancestors.len(), 1, "{:?}", status.ancestors);
    assert_eq!(status.ancestors[0].ancestor_ref.name, "gw");
    status.ancestors[0]
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("ancestor condition")
}

/// The target of the route's only rule for a request on the HTTP listener.
fn rule_target(compiled: &Compiled) -> &BackendTarget {
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let listener = compiled.snapshot.sockets[&socket]
        .listeners
        .most_specific("h")
        .expect("listener");
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::GET,
        host: "h",
        path: "/",
        query: None,
        headers: &headers,
    };
    let hit = listener.table.find(&view).expect("rule matches");
    let RuleAction::Forward(choice) = &hit.target.action else {
        panic!("forward rule")
    };
    &choice.candidates[0].target
}

#[test]
fn policy_gives_the_targeted_service_port_tls() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            Some("http"),
            &format!(
                "{}\n    subjectAltNames: [{{type: URI, uri: \"spiffe://web.example.com/id\"}}]",
                ca_validation("ca", "web.example.com")
            )
        ),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    assert!(
        compiled.status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    let view = tls_view(&compiled, "Service infra/web:8080");
    assert_eq!(view["serverName"], "web.example.com");
    assert_eq!(view["trust"], "1 CA certificate(s)");
    assert_eq!(view["alpn"], "http/1.1");
    assert_eq!(
        view["subjectAltNames"][0]["Uri"],
        "spiffe://web.example.com/id"
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "Accepted"
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    assert_eq!(
        parent_condition(object(&compiled, "HTTPRoute", "infra", "r"), "ResolvedRefs").reason,
        "ResolvedRefs"
    );
}

#[test]
fn missing_config_map_fails_closed() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("missing", "web.example.com")
        )
    ));
    let accepted = ancestor_condition(&compiled, "p", "Accepted");
    assert_eq!(accepted.reason, "NoValidCACertificate");
    let resolved = ancestor_condition(&compiled, "p", "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCACertificateRef");
    assert!(
        resolved.message.contains(
            "BackendTLSPolicy infra/p spec.validation.caCertificateRefs[0]: ConfigMap infra/missing not found"
        ),
        "{}",
        resolved.message
    );
    // The backend is never built, so never contacted: its share of traffic answers 500.
    assert!(backend(&compiled, "Service infra/web:8080").is_none());
    assert!(matches!(rule_target(&compiled), BackendTarget::Invalid(d) if d.status == 500));
    let route = parent_condition(object(&compiled, "HTTPRoute", "infra", "r"), "ResolvedRefs");
    assert_eq!(route.reason, "InvalidBackendTLSPolicy");
    assert!(
        route.message.contains("BackendTLSPolicy infra/p"),
        "{}",
        route.message
    );
}

#[test]
fn bad_pem_is_an_invalid_ca_certificate_ref() {
    let config_map = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: infra}\ndata: {ca.crt: not a certificate}\n";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{config_map}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "web.example.com")
        )
    ));
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "NoValidCACertificate"
    );
    let resolved = ancestor_condition(&compiled, "p", "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCACertificateRef");
    assert!(resolved.message.contains("ca.crt"), "{}", resolved.message);
    assert!(matches!(rule_target(&compiled), BackendTarget::Invalid(_)));
}

#[test]
fn a_leaf_certificate_is_not_a_ca_certificate() {
    let (leaf, _) = leaf_pem("leaf.example.com");
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "web.example.com")
        ),
        ca_config_map("infra", "ca", &leaf)
    ));
    // rustls takes any parseable certificate as a trust anchor; what matters is that the
    // policy applies and verification happens at handshake time.
    assert!(backend(&compiled, "Service infra/web:8080").is_some_and(|b| b.tls.is_some()));
}

#[test]
fn unsupported_ca_kind_is_invalid_kind() {
    let validation = "    caCertificateRefs: [{group: example.com, kind: Vault, name: ca}]\n    hostname: web.example.com";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy("p", "2024-01-01T00:00:00Z", None, validation)
    ));
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "NoValidCACertificate"
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "ResolvedRefs").reason,
        "InvalidKind"
    );
}

#[test]
fn one_valid_reference_is_enough_but_the_others_are_reported() {
    let validation = "    caCertificateRefs:\n    - {group: \"\", kind: ConfigMap, name: ca}\n    - {group: \"\", kind: ConfigMap, name: missing}\n    hostname: web.example.com";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy("p", "2024-01-01T00:00:00Z", None, validation),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "Accepted"
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "ResolvedRefs").reason,
        "InvalidCACertificateRef"
    );
    assert!(backend(&compiled, "Service infra/web:8080").is_some_and(|b| b.tls.is_some()));
}

#[test]
fn conflicting_policies_oldest_wins() {
    let pem = ca_pem();
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}{}",
        // Alphabetically first, but newer: loses.
        policy(
            "a-newer",
            "2024-06-01T00:00:00Z",
            None,
            &ca_validation("ca", "newer.example.com")
        ),
        policy(
            "b-older",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "older.example.com")
        ),
        ca_config_map("infra", "ca", &pem)
    ));
    assert_eq!(
        ancestor_condition(&compiled, "b-older", "Accepted").reason,
        "Accepted"
    );
    let conflicted = ancestor_condition(&compiled, "a-newer", "Accepted");
    assert_eq!(conflicted.reason, "Conflicted");
    assert!(
        conflicted.message.contains("infra/b-older"),
        "{}",
        conflicted.message
    );
    assert_eq!(
        tls_view(&compiled, "Service infra/web:8080")["serverName"],
        "older.example.com"
    );
    assert!(
        compiled
            .status
            .problems()
            .iter()
            .any(|p| p.contains("a-newer") && p.contains("Conflicted")),
        "{:?}",
        compiled.status.problems()
    );
}

#[test]
fn equal_age_conflicts_go_to_the_first_name() {
    let pem = ca_pem();
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}{}",
        policy(
            "b",
            "2024-01-01T00:00:00Z",
            Some("http"),
            &ca_validation("ca", "b.example.com")
        ),
        policy(
            "a",
            "2024-01-01T00:00:00Z",
            Some("http"),
            &ca_validation("ca", "a.example.com")
        ),
        ca_config_map("infra", "ca", &pem)
    ));
    assert_eq!(
        ancestor_condition(&compiled, "b", "Accepted").reason,
        "Conflicted"
    );
    assert_eq!(
        tls_view(&compiled, "Service infra/web:8080")["serverName"],
        "a.example.com"
    );
}

#[test]
fn a_port_policy_beats_a_whole_service_policy_without_conflict() {
    let pem = ca_pem();
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}{}",
        policy(
            "whole",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "whole.example.com")
        ),
        policy(
            "port",
            "2024-06-01T00:00:00Z",
            Some("http"),
            &ca_validation("ca", "port.example.com")
        ),
        ca_config_map("infra", "ca", &pem)
    ));
    assert_eq!(
        ancestor_condition(&compiled, "whole", "Accepted").reason,
        "Accepted"
    );
    assert_eq!(
        ancestor_condition(&compiled, "port", "Accepted").reason,
        "Accepted"
    );
    assert_eq!(
        tls_view(&compiled, "Service infra/web:8080")["serverName"],
        "port.example.com"
    );
}

#[test]
fn unknown_section_or_service_is_target_not_found() {
    let pem = ca_pem();
    let missing = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: gone, namespace: infra}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: gone}]\n  validation:\n    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]\n    hostname: web.example.com\n";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{missing}{}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            Some("nope"),
            &ca_validation("ca", "web.example.com")
        ),
        ca_config_map("infra", "ca", &pem)
    ));
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "TargetNotFound"
    );
    // A policy on nothing our routes use has no ancestor; `check` still sees the problem.
    assert!(
        object(&compiled, "BackendTLSPolicy", "infra", "gone")
            .ancestors
            .is_empty()
    );
    assert!(!object(&compiled, "BackendTLSPolicy", "infra", "gone").is_healthy());
    // Neither applies: the backend stays cleartext.
    assert!(backend(&compiled, "Service infra/web:8080").is_some_and(|b| b.tls.is_none()));
}

#[test]
fn invalid_validation_settings_are_not_accepted() {
    let pem = ca_pem();
    let cases = [
        (
            "    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]\n    wellKnownCACertificates: System\n    hostname: web.example.com",
            "not both",
        ),
        ("    hostname: web.example.com", "is required"),
        (
            "    wellKnownCACertificates: Mine\n    hostname: web.example.com",
            "\"Mine\" is not supported",
        ),
        (
            "    caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]\n    hostname: web.example.com\n    subjectAltNames: [{type: Hostname}]",
            "subjectAltNames[0]: type Hostname needs hostname",
        ),
    ];
    for (validation, expected) in cases {
        let compiled = compile_yaml(&format!(
            "{ROUTE}{}{}",
            policy("p", "2024-01-01T00:00:00Z", None, validation),
            ca_config_map("infra", "ca", &pem)
        ));
        let accepted = ancestor_condition(&compiled, "p", "Accepted");
        assert_eq!(accepted.reason, "Invalid", "{validation}");
        assert!(accepted.message.contains(expected), "{}", accepted.message);
        // Invalid but winning: the backend is not contacted in cleartext.
        assert!(
            matches!(rule_target(&compiled), BackendTarget::Invalid(_)),
            "{validation}"
        );
    }
}

fn compile_with_system_roots(extra: &str, roots: Option<Arc<rustls::RootCertStore>>) -> Compiled {
    let mut store = Store::new();
    for text in [crate::tests::BASE, extra] {
        for object in parse_documents(text).expect("fixture parses").objects {
            store.insert(object);
        }
    }
    let options = CompileOptions {
        system_roots: roots,
        ..CompileOptions::default()
    };
    compile(&store, &options)
}

#[test]
fn system_trust_needs_roots_loaded_at_startup() {
    let validation = "    wellKnownCACertificates: System\n    hostname: web.example.com";
    let yaml = format!(
        "{ROUTE}{}",
        policy("p", "2024-01-01T00:00:00Z", None, validation)
    );
    let without = compile_with_system_roots(&yaml, None);
    assert_eq!(
        ancestor_condition(&without, "p", "Accepted").reason,
        "Invalid"
    );

    let mut roots = rustls::RootCertStore::empty();
    let der = <rustls::pki_types::CertificateDer<'static> as PemObject>::from_pem_slice(
        ca_pem().as_bytes(),
    );
    roots.add(der.expect("PEM")).expect("trust anchor");
    let with = compile_with_system_roots(&yaml, Some(Arc::new(roots)));
    assert_eq!(
        ancestor_condition(&with, "p", "Accepted").reason,
        "Accepted"
    );
    assert_eq!(tls_view(&with, "Service infra/web:8080")["trust"], "System");
}

#[test]
fn grpc_twin_keeps_tls_and_offers_h2() {
    let grpc = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g, namespace: infra}\nspec:\n  parentRefs: [{name: gw, sectionName: http}]\n  hostnames: [grpc.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]\n";
    let compiled = compile_yaml(&format!(
        "{grpc}{}{}",
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "web.example.com")
        ),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    let view = tls_view(&compiled, "Service infra/web:8080 (h2c)");
    assert_eq!(view["alpn"], "h2");
    assert_eq!(view["serverName"], "web.example.com");
}

#[test]
fn a_backend_object_can_be_targeted() {
    let yaml = format!(
        "---
apiVersion: portcullis.dev/v1alpha1
kind: Backend
metadata: {{name: direct, namespace: infra}}
spec: {{endpoints: [{{ip: 10.0.0.5, port: 8443}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: infra}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  rules: [{{backendRefs: [{{group: portcullis.dev, kind: Backend, name: direct}}]}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: p, namespace: infra}}
spec:
  targetRefs: [{{group: portcullis.dev, kind: Backend, name: direct}}]
  validation:
{}
{}",
        ca_validation("ca", "direct.example.com"),
        ca_config_map("infra", "ca", &ca_pem())
    );
    let compiled = compile_yaml(&yaml);
    assert!(
        compiled.status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    assert_eq!(
        tls_view(&compiled, "Backend infra/direct")["serverName"],
        "direct.example.com"
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "Accepted"
    );
}

// --- The Gateway's backend client certificate (GEP-3155) ---

fn gateway_with_client_certificate(reference: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.9}}]
  tls: {{backend: {{clientCertificateRef: {reference}}}}}
  listeners:
  - {{name: http, port: 80, protocol: HTTP}}
"
    )
}

fn gateway_condition<'a>(compiled: &'a Compiled, kind: &str) -> &'a crate::Condition {
    object(compiled, "Gateway", "infra", "gw")
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("gateway condition")
}

fn listener_client_certificate(compiled: &Compiled) -> Option<String> {
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let listener = compiled.snapshot.sockets[&socket]
        .listeners
        .most_specific("h")
        .expect("listener");
    listener
        .backend_client_certificate
        .as_ref()
        .map(|c| c.id.to_string())
}

#[test]
fn client_certificate_goes_to_the_gateway_listeners_and_every_tls_backend() {
    let compiled = compile_yaml(&format!(
        "{}{}{ROUTE}{}{}",
        gateway_with_client_certificate("{name: client}"),
        tls_secret("infra", "client", "gateway.example.com"),
        policy(
            "p",
            "2024-01-01T00:00:00Z",
            None,
            &ca_validation("ca", "web.example.com")
        ),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    assert_eq!(
        gateway_condition(&compiled, "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    assert_eq!(
        listener_client_certificate(&compiled).as_deref(),
        Some("Secret infra/client")
    );
    assert_eq!(
        tls_view(&compiled, "Service infra/web:8080")["clientCertificates"][0],
        "Secret infra/client"
    );
}

#[test]
fn missing_client_certificate_secret_is_invalid_client_certificate_ref() {
    let compiled = compile_yaml(&gateway_with_client_certificate("{name: missing}"));
    let resolved = gateway_condition(&compiled, "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidClientCertificateRef");
    assert!(
        resolved
            .message
            .contains("spec.tls.backend.clientCertificateRef: Secret infra/missing not found"),
        "{}",
        resolved.message
    );
    // The Gateway itself keeps working.
    assert_eq!(gateway_condition(&compiled, "Accepted").reason, "Accepted");
    assert_eq!(listener_client_certificate(&compiled), None);
}

#[test]
fn malformed_or_foreign_kind_client_certificate_is_invalid() {
    let bad = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: infra}\nstringData: {tls.crt: not-pem, tls.key: not-pem}\n";
    let compiled = compile_yaml(&format!(
        "{}{bad}",
        gateway_with_client_certificate("{name: bad}")
    ));
    assert_eq!(
        gateway_condition(&compiled, "ResolvedRefs").reason,
        "InvalidClientCertificateRef"
    );
    let compiled = compile_yaml(&gateway_with_client_certificate(
        "{group: example.com, kind: Vault, name: client}",
    ));
    assert_eq!(
        gateway_condition(&compiled, "ResolvedRefs").reason,
        "InvalidClientCertificateRef"
    );
}

#[test]
fn client_certificate_in_another_namespace_needs_a_reference_grant() {
    let secret = tls_secret("certs", "client", "gateway.example.com");
    let gateway = gateway_with_client_certificate("{name: client, namespace: certs}");
    let compiled = compile_yaml(&format!("{gateway}{secret}"));
    assert_eq!(
        gateway_condition(&compiled, "ResolvedRefs").reason,
        "RefNotPermitted"
    );
    assert_eq!(listener_client_certificate(&compiled), None);

    let grant = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: certs}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]\n  to: [{group: \"\", kind: Secret}]\n";
    let compiled = compile_yaml(&format!("{gateway}{secret}{grant}"));
    assert_eq!(
        gateway_condition(&compiled, "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    assert_eq!(
        listener_client_certificate(&compiled).as_deref(),
        Some("Secret certs/client")
    );
}

/// Gateway API v1.6 lists filter backends (`requestMirror`, `externalAuth`) among
/// BackendTLSPolicy's extended uses: a Service reached only as a mirror gets the policy's TLS,
/// and the policy reports the Gateway of the mirroring route as its ancestor.
#[test]
fn a_mirror_backend_gets_tls_and_makes_the_gateway_an_ancestor() {
    let compiled = compile_yaml(&format!(
        "---
apiVersion: v1
kind: Service
metadata: {{name: audit, namespace: infra}}
spec: {{ports: [{{name: http, port: 8080}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: infra}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  rules:
  - filters: [{{type: RequestMirror, requestMirror: {{backendRef: {{name: audit, port: 8080}}}}}}]
    backendRefs: [{{name: web, port: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: p, namespace: infra}}
spec:
  targetRefs: [{{group: \"\", kind: Service, name: audit}}]
  validation:
{}
{}",
        ca_validation("ca", "audit.example.com"),
        ca_config_map("infra", "ca", &ca_pem())
    ));
    assert!(
        compiled.status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    let view = tls_view(&compiled, "Service infra/audit:8080");
    assert_eq!(view["serverName"], "audit.example.com");
    assert!(
        backend(&compiled, "Service infra/web:8080")
            .expect("rule backend")
            .tls
            .is_none()
    );
    assert_eq!(
        ancestor_condition(&compiled, "p", "Accepted").reason,
        "Accepted"
    );
}
