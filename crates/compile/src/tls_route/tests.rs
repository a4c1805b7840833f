//! TLS listeners and TLSRoute compile tests: listener modes and certificates, supported kinds,
//! attachment and status, SNI hostname intersection and precedence, backendRefs
//! (ReferenceGrant, weights, unresolved refs), protocol conflicts.

use std::net::SocketAddr;

use snapshot::l4::Forward as TlsForward;
use snapshot::tls_route::TlsMode;
use snapshot::{BackendTarget, Scheme, SocketRoutes};

use crate::tests::{compile_yaml, object, parent_condition};
use crate::{Compiled, ConditionStatus, ObjectStatus};

/// A throwaway self-signed P-256 certificate for `*.example.com` and `example.com` (test only).
const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----
MIIBsTCCAVigAwIBAgIUS2J+SKP1Vcjb9t3rH35si72yu2YwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPdGxzLmV4YW1wbGUuY29tMCAXDTI2MTEyMjAwMzk1MVoYDzIx
MjYxMDI5MDAzOTUxWjAaMRgwFgYDVQQDDA90bHMuZXhhbXBsZS5jb20wWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAASPHVepwRTbasAe8sAhpUtVPtTcY4aiGIqDt76k
W7UwZVzb5/m5ziVt5Rzjc5DdBhHeLavLQmKsw6NGvvfuys7to3oweDAdBgNVHQ4E
FgQUWmF75fWTIszwfN9u9E7sFVAZylowHwYDVR0jBBgwFoAUWmF75fWTIszwfN9u
9E7sFVAZylowDwYDVR0TAQH/BAUwAwEB/zAlBgNVHREEHjAcgg0qLmV4YW1wbGUu
Y29tggtleGFtcGxlLmNvbTAKBggqhkjOPQQDAgNHADBEAiArQuKEn3aqf6Wlfymy
HLmwPn/w2jPW5drcfYvkzd63ygIgTw0WlaxfHkX9BLQ5dbRXoCLYizyKzpv/Tdih
/Ho077o=
-----END CERTIFICATE-----
";

/// The private key of [`CERTIFICATE`].
const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg181vBO0fbfCPXeIr
ceJBF+q8X5cjJiegiwcwq9Ir7y6hRANCAASPHVepwRTbasAe8sAhpUtVPtTcY4ai
GIqDt76kW7UwZVzb5/m5ziVt5Rzjc5DdBhHeLavLQmKsw6NGvvfuys7t
-----END PRIVATE KEY-----
";

/// Where the test Gateway `tls` (namespace infra) listens.
const SOCKET: &str = "127.0.0.20:443";

fn secret(name: &str, namespace: &str) -> String {
    let indent = |text: &str| {
        text.lines()
            .map(|line| format!("    {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}\n  tls.key: |\n{}\n---\n",
        indent(CERTIFICATE),
        indent(KEY)
    )
}

/// A Gateway `infra/tls` on [`SOCKET`]'s address with these listeners (YAML list items).
fn gateway(listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: tls, namespace: infra}}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{{value: 127.0.0.20}}]\n  listeners:\n{listeners}\n---\n"
    )
}

const PASSTHROUGH: &str = "  - {name: pass, port: 443, protocol: TLS, tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: All}}}";

fn tls_route(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n---\n"
    )
}

/// A TLSRoute to the BASE fixture's `infra/web:8080` Service for these hostnames.
fn simple_route(name: &str, hostnames: &str) -> String {
    tls_route(
        name,
        "infra",
        &format!(
            "  parentRefs: [{{name: tls}}]\n  hostnames: {hostnames}\n  rules: [{{backendRefs: [{{name: web, port: 8080}}]}}]"
        ),
    )
}

fn socket(compiled: &Compiled) -> &SocketRoutes {
    let socket: SocketAddr = SOCKET.parse().expect("socket");
    compiled
        .snapshot
        .sockets
        .get(&socket)
        .expect("the TLS socket is bound")
}

/// The route a connection with this SNI reaches, with the listener's mode.
fn route_for(compiled: &Compiled, sni: &str) -> Option<(TlsMode, String)> {
    let listener = socket(compiled).tls_listeners.most_specific(sni)?;
    let forward = listener.routes.most_specific(sni)?;
    Some((listener.mode, forward.name.to_string()))
}

fn forward_for<'a>(compiled: &'a Compiled, sni: &str) -> &'a TlsForward {
    socket(compiled)
        .tls_listeners
        .most_specific(sni)
        .and_then(|listener| listener.routes.most_specific(sni))
        .expect("a route for the SNI")
}

fn listener_condition<'a>(
    status: &'a ObjectStatus,
    index: usize,
    kind: &str,
) -> (ConditionStatus, &'a str) {
    let condition = status.listeners[index]
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("listener {index} has no {kind}"));
    (condition.status, condition.reason)
}

#[test]
fn passthrough_listener_needs_no_certificate_and_accepts_only_tls_routes() {
    let compiled = compile_yaml(&gateway(PASSTHROUGH));
    let status = object(&compiled, "Gateway", "infra", "tls");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    let kinds: Vec<&str> = status.listeners[0]
        .supported_kinds
        .iter()
        .map(|k| k.kind.as_str())
        .collect();
    assert_eq!(kinds, ["TLSRoute"]);
    let socket = socket(&compiled);
    assert_eq!(socket.scheme, Scheme::Tls);
    assert!(socket.tls.is_none(), "passthrough terminates nothing");
    assert!(
        socket.listeners.is_empty(),
        "no HTTP listener on a TLS socket"
    );
    assert_eq!(
        socket
            .tls_listeners
            .most_specific("any.host")
            .map(|l| l.mode),
        Some(TlsMode::Passthrough)
    );
}

#[test]
fn terminate_listener_resolves_its_certificate_and_offers_no_alpn() {
    let listeners = "  - {name: term, port: 443, protocol: TLS, tls: {mode: Terminate, certificateRefs: [{name: cert}]}}";
    let compiled = compile_yaml(&format!(
        "{}{}",
        secret("cert", "infra"),
        gateway(listeners)
    ));
    let status = object(&compiled, "Gateway", "infra", "tls");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    let socket = socket(&compiled);
    let tls = socket.tls.as_ref().expect("Terminate listeners terminate");
    assert!(
        tls.config.alpn_protocols.is_empty(),
        "the gateway must not pick an application protocol for a TCP backend"
    );
    assert_eq!(
        socket.tls_listeners.most_specific("x").map(|l| l.mode),
        Some(TlsMode::Terminate)
    );
}

#[test]
fn terminate_is_the_default_mode_and_needs_a_certificate() {
    let listeners = "  - {name: term, port: 443, protocol: TLS}";
    let compiled = compile_yaml(&gateway(listeners));
    let status = object(&compiled, "Gateway", "infra", "tls");
    assert_eq!(
        listener_condition(status, 0, "ResolvedRefs"),
        (ConditionStatus::False, "InvalidCertificateRef")
    );
    let socket: SocketAddr = SOCKET.parse().expect("socket");
    assert!(!compiled.snapshot.sockets.contains_key(&socket));
}

#[test]
fn tls_route_attaches_and_routes_by_sni() {
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(PASSTHROUGH),
        simple_route("r", "[a.example.com]")
    ));
    let status = object(&compiled, "TLSRoute", "infra", "r");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "ResolvedRefs"
    );
    assert_eq!(
        object(&compiled, "Gateway", "infra", "tls").listeners[0].attached_routes,
        1
    );
    assert_eq!(
        route_for(&compiled, "A.Example.com"),
        Some((TlsMode::Passthrough, "TLSRoute infra/r rules[0]".to_owned()))
    );
    assert_eq!(route_for(&compiled, "b.example.com"), None);
    assert_eq!(route_for(&compiled, ""), None, "no SNI, no hostname match");
    let choice = forward_for(&compiled, "a.example.com")
        .backends
        .as_ref()
        .expect("backends");
    assert!(matches!(
        choice.candidates[0].target,
        BackendTarget::Backend(_)
    ));
}

#[test]
fn route_hostnames_intersect_the_listener_hostname() {
    let listeners = "  - {name: pass, port: 443, protocol: TLS, hostname: \"*.example.com\", tls: {mode: Passthrough}}";
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        gateway(listeners),
        simple_route("both", "[a.example.com, a.example.org]"),
        simple_route("outside", "[b.example.org]"),
    ));
    assert!(route_for(&compiled, "a.example.com").is_some());
    assert_eq!(route_for(&compiled, "a.example.org"), None);
    let outside = object(&compiled, "TLSRoute", "infra", "outside");
    assert_eq!(
        parent_condition(outside, "Accepted").reason,
        "NoMatchingListenerHostname"
    );
}

#[test]
fn route_without_hostnames_takes_the_listener_hostname() {
    let listeners = "  - {name: pass, port: 443, protocol: TLS, hostname: \"*.example.com\", tls: {mode: Passthrough}}";
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(listeners),
        simple_route("r", "[]")
    ));
    assert!(route_for(&compiled, "x.example.com").is_some());
    assert_eq!(route_for(&compiled, "x.example.org"), None);
}

#[test]
fn most_specific_route_hostname_wins() {
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        gateway(PASSTHROUGH),
        simple_route("wild", "[\"*.example.com\"]"),
        simple_route("exact", "[a.example.com]"),
    ));
    let name = |sni: &str| route_for(&compiled, sni).map(|(_, name)| name);
    assert_eq!(
        name("a.example.com").as_deref(),
        Some("TLSRoute infra/exact rules[0]")
    );
    assert_eq!(
        name("b.example.com").as_deref(),
        Some("TLSRoute infra/wild rules[0]")
    );
    assert_eq!(
        name("example.com"),
        None,
        "a wildcard never matches the apex"
    );
}

#[test]
fn oldest_route_keeps_a_contested_hostname() {
    let older = tls_route(
        "zz-older",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    )
    .replace(
        "namespace: infra}",
        "namespace: infra, creationTimestamp: \"2020-01-01T00:00:00Z\"}",
    );
    let newer = tls_route(
        "aa-newer",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [a.example.com, b.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    )
    .replace(
        "namespace: infra}",
        "namespace: infra, creationTimestamp: \"2024-01-01T00:00:00Z\"}",
    );
    let compiled = compile_yaml(&format!("{}{newer}{older}", gateway(PASSTHROUGH)));
    let name = |sni: &str| route_for(&compiled, sni).map(|(_, name)| name);
    assert_eq!(
        name("a.example.com").as_deref(),
        Some("TLSRoute infra/zz-older rules[0]")
    );
    assert_eq!(
        name("b.example.com").as_deref(),
        Some("TLSRoute infra/aa-newer rules[0]")
    );
}

#[test]
fn http_route_is_not_allowed_on_a_tls_listener() {
    let http_route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: infra}\nspec:\n  parentRefs: [{name: tls}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]\n---\n";
    let compiled = compile_yaml(&format!("{}{http_route}", gateway(PASSTHROUGH)));
    let status = object(&compiled, "HTTPRoute", "infra", "web");
    assert_eq!(
        parent_condition(status, "Accepted").reason,
        "NotAllowedByListeners"
    );
    assert_eq!(
        object(&compiled, "Gateway", "infra", "tls").listeners[0].attached_routes,
        0
    );
}

#[test]
fn tls_route_is_not_allowed_on_an_http_listener() {
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: gw, sectionName: http}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    );
    let compiled = compile_yaml(&route);
    let status = object(&compiled, "TLSRoute", "infra", "r");
    assert_eq!(
        parent_condition(status, "Accepted").reason,
        "NotAllowedByListeners"
    );
}

#[test]
fn http_route_kind_in_allowed_routes_of_a_tls_listener_is_invalid() {
    let listeners = "  - {name: pass, port: 443, protocol: TLS, tls: {mode: Passthrough}, allowedRoutes: {kinds: [{kind: HTTPRoute}, {kind: TLSRoute}]}}";
    let compiled = compile_yaml(&gateway(listeners));
    let status = object(&compiled, "Gateway", "infra", "tls");
    assert_eq!(
        listener_condition(status, 0, "ResolvedRefs"),
        (ConditionStatus::False, "InvalidRouteKinds")
    );
    let kinds: Vec<&str> = status.listeners[0]
        .supported_kinds
        .iter()
        .map(|k| k.kind.as_str())
        .collect();
    assert_eq!(kinds, ["TLSRoute"]);
}

#[test]
fn tls_and_https_on_one_port_of_a_gateway_conflict() {
    let listeners = format!(
        "{PASSTHROUGH}\n  - {{name: web, port: 443, protocol: HTTPS, hostname: w.example.com, tls: {{certificateRefs: [{{name: cert}}]}}}}"
    );
    let compiled = compile_yaml(&format!(
        "{}{}",
        secret("cert", "infra"),
        gateway(&listeners)
    ));
    let status = object(&compiled, "Gateway", "infra", "tls");
    for index in 0..2 {
        assert_eq!(
            listener_condition(status, index, "Conflicted"),
            (ConditionStatus::True, "ProtocolConflict")
        );
    }
}

#[test]
fn tls_listener_on_another_gateways_http_socket_conflicts() {
    // The BASE Gateway `gw` serves HTTP on 127.0.0.9:80 and is older (processed first).
    let other = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: late, namespace: infra}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{value: 127.0.0.9}]\n  listeners:\n  - {name: pass, port: 80, protocol: TLS, hostname: t.example.com, tls: {mode: Passthrough}}\n";
    let compiled = compile_yaml(other);
    let status = object(&compiled, "Gateway", "infra", "late");
    assert_eq!(
        listener_condition(status, 0, "Conflicted"),
        (ConditionStatus::True, "ProtocolConflict")
    );
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    assert_eq!(compiled.snapshot.sockets[&socket].scheme, Scheme::Http);
}

#[test]
fn passthrough_and_terminate_listeners_share_a_port_by_hostname() {
    let listeners = format!(
        "{}\n  - {{name: term, port: 443, protocol: TLS, hostname: t.example.com, tls: {{certificateRefs: [{{name: cert}}]}}}}",
        PASSTHROUGH.replace("tls: {mode", "hostname: p.example.com, tls: {mode")
    );
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        secret("cert", "infra"),
        gateway(&listeners),
        simple_route("r", "[p.example.com, t.example.com]"),
    ));
    assert!(
        object(&compiled, "Gateway", "infra", "tls").is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    assert_eq!(
        route_for(&compiled, "p.example.com").map(|(mode, _)| mode),
        Some(TlsMode::Passthrough)
    );
    assert_eq!(
        route_for(&compiled, "t.example.com").map(|(mode, _)| mode),
        Some(TlsMode::Terminate)
    );
    assert!(socket(&compiled).tls.is_some());
}

#[test]
fn cross_namespace_backend_needs_a_reference_grant_from_tls_route() {
    let service = "apiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: data}\nspec: {ports: [{port: 5432}]}\n---\n";
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [db.example.com]\n  rules: [{backendRefs: [{name: db, namespace: data, port: 5432}]}]",
    );
    let grant = |from_kind: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: data}}\nspec:\n  from: [{{group: gateway.networking.k8s.io, kind: {from_kind}, namespace: infra}}]\n  to: [{{group: \"\", kind: Service}}]\n---\n"
        )
    };
    let base = format!("{}{service}{route}", gateway(PASSTHROUGH));

    let refused = compile_yaml(&base);
    let status = object(&refused, "TLSRoute", "infra", "r");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "RefNotPermitted"
    );
    let choice = forward_for(&refused, "db.example.com")
        .backends
        .as_ref()
        .expect("an unusable ref keeps its weight");
    assert!(matches!(
        choice.candidates[0].target,
        BackendTarget::Invalid(_)
    ));

    let wrong_kind = compile_yaml(&format!("{base}{}", grant("HTTPRoute")));
    let status = object(&wrong_kind, "TLSRoute", "infra", "r");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "RefNotPermitted"
    );

    let granted = compile_yaml(&format!("{base}{}", grant("TLSRoute")));
    let status = object(&granted, "TLSRoute", "infra", "r");
    assert!(status.is_healthy(), "{:?}", granted.status.problems());
}

#[test]
fn missing_backend_is_backend_not_found() {
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: nowhere, port: 1}]}]",
    );
    let compiled = compile_yaml(&format!("{}{route}", gateway(PASSTHROUGH)));
    let status = object(&compiled, "TLSRoute", "infra", "r");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    let resolved = parent_condition(status, "ResolvedRefs");
    assert_eq!(resolved.reason, "BackendNotFound");
    assert!(
        resolved
            .message
            .contains("TLSRoute infra/r rules[0].backendRefs[0]"),
        "{}",
        resolved.message
    );
}

#[test]
fn weights_are_kept_and_zero_weights_dropped() {
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080, weight: 3}, {group: portcullis.dev, kind: Backend, name: direct, weight: 1}, {name: web, port: 8080, weight: 0}]}]",
    );
    let backend = "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {name: direct, namespace: infra}\nspec: {endpoints: [{ip: 10.1.1.1, port: 5000}]}\n---\n";
    let compiled = compile_yaml(&format!("{}{backend}{route}", gateway(PASSTHROUGH)));
    let choice = forward_for(&compiled, "a.example.com")
        .backends
        .as_ref()
        .expect("backends");
    assert_eq!(choice.total_weight, 4);
    let weights: Vec<u64> = choice.candidates.iter().map(|c| c.weight).collect();
    assert_eq!(weights, [3, 1]);
}

#[test]
fn rules_after_the_first_are_partially_invalid() {
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: tls}]\n  hostnames: [a.example.com]\n  rules:\n  - backendRefs: [{name: web, port: 8080}]\n  - backendRefs: [{name: web, port: 8080}]",
    );
    let compiled = compile_yaml(&format!("{}{route}", gateway(PASSTHROUGH)));
    let status = object(&compiled, "TLSRoute", "infra", "r");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    let partially = parent_condition(status, "PartiallyInvalid");
    assert!(
        partially.message.contains("rules[1]"),
        "{}",
        partially.message
    );
    assert!(route_for(&compiled, "a.example.com").is_some());
}

#[test]
fn section_name_selects_the_tls_listener() {
    let listeners = format!(
        "{PASSTHROUGH}\n  - {{name: other, port: 8443, protocol: TLS, tls: {{mode: Passthrough}}}}"
    );
    let route = tls_route(
        "r",
        "infra",
        "  parentRefs: [{name: tls, sectionName: other}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    );
    let compiled = compile_yaml(&format!("{}{route}", gateway(&listeners)));
    let status = object(&compiled, "Gateway", "infra", "tls");
    assert_eq!(status.listeners[0].attached_routes, 0);
    assert_eq!(status.listeners[1].attached_routes, 1);
    assert_eq!(route_for(&compiled, "a.example.com"), None, "not on :443");
    let other: SocketAddr = "127.0.0.20:8443".parse().expect("socket");
    assert!(
        compiled.snapshot.sockets[&other]
            .tls_listeners
            .most_specific("a.example.com")
            .and_then(|l| l.routes.most_specific("a.example.com"))
            .is_some()
    );
}
