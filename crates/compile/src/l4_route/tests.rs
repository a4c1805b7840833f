//! TCP and UDP listeners, TCPRoute and UDPRoute compile tests: supported kinds, TCP and UDP
//! sharing a port, protocol conflicts, attachment (the oldest route serves, all count),
//! backendRefs (ReferenceGrant, unresolved refs, weights), extra rules, listener limits.

use std::net::SocketAddr;
use std::time::Duration;

use snapshot::{BackendTarget, Scheme};

use crate::tests::{compile_yaml, object, parent_condition};
use crate::{Compiled, ConditionStatus};

/// A Gateway `infra/l4` on 127.0.0.30 with these listeners (YAML list items).
fn gateway(listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: l4, namespace: infra}}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{{value: 127.0.0.30}}]\n  listeners:\n{listeners}\n---\n"
    )
}

const TCP: &str =
    "  - {name: tcp, port: 5432, protocol: TCP, allowedRoutes: {namespaces: {from: All}}}";
const UDP: &str = "  - {name: udp, port: 5432, protocol: UDP}";

fn route(kind: &str, name: &str, namespace: &str, created: &str, body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2\nkind: {kind}\nmetadata: {{name: {name}, namespace: {namespace}, creationTimestamp: \"{created}\"}}\nspec:\n{body}\n---\n"
    )
}

/// A route of `kind` to the BASE fixture's `infra/web:8080` Service.
fn simple(kind: &str, name: &str, created: &str, section: &str) -> String {
    route(
        kind,
        name,
        "infra",
        created,
        &format!(
            "  parentRefs: [{{name: l4, sectionName: {section}}}]\n  rules: [{{backendRefs: [{{name: web, port: 8080}}]}}]"
        ),
    )
}

fn address() -> SocketAddr {
    "127.0.0.30:5432".parse().expect("address")
}

/// The name of the route serving the TCP listener.
fn tcp_route(compiled: &Compiled) -> Option<String> {
    let socket = compiled.snapshot.sockets.get(&address())?;
    assert_eq!(socket.scheme, Scheme::Tcp);
    let route = socket.tcp.as_ref()?.route.as_ref()?;
    Some(route.name.to_string())
}

/// The name of the route serving the UDP listener.
fn udp_route(compiled: &Compiled) -> Option<String> {
    let socket = compiled.snapshot.udp_sockets.get(&address())?;
    Some(socket.route.as_ref()?.name.to_string())
}

#[test]
fn tcp_and_udp_listeners_share_a_port_and_each_accepts_its_kind() {
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        gateway(&format!("{TCP}\n{UDP}")),
        simple("TCPRoute", "db", "2026-01-01T00:00:00Z", "tcp"),
        simple("UDPRoute", "dns", "2026-01-01T00:00:00Z", "udp"),
    ));
    let gateway = object(&compiled, "Gateway", "infra", "l4");
    assert!(gateway.is_healthy(), "{:?}", compiled.status.problems());
    let kinds = |index: usize| -> Vec<&str> {
        gateway.listeners[index]
            .supported_kinds
            .iter()
            .map(|k| k.kind.as_str())
            .collect()
    };
    assert_eq!(kinds(0), ["TCPRoute"]);
    assert_eq!(kinds(1), ["UDPRoute"]);
    assert_eq!(gateway.listeners[0].attached_routes, 1);
    assert_eq!(gateway.listeners[1].attached_routes, 1);
    for (kind, name) in [("TCPRoute", "db"), ("UDPRoute", "dns")] {
        let status = object(&compiled, kind, "infra", name);
        assert!(
            status.is_healthy(),
            "{kind}: {:?}",
            compiled.status.problems()
        );
        assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    }
    assert_eq!(
        tcp_route(&compiled).as_deref(),
        Some("TCPRoute infra/db rules[0]")
    );
    assert_eq!(
        udp_route(&compiled).as_deref(),
        Some("UDPRoute infra/dns rules[0]")
    );
    // The TCP socket serves no HTTP.
    let socket = compiled
        .snapshot
        .sockets
        .get(&address())
        .expect("tcp socket");
    assert!(socket.listeners.is_empty());
    assert!(socket.tls.is_none());
}

#[test]
fn a_tcp_listener_next_to_an_http_listener_on_its_port_conflicts() {
    let listeners = format!("{TCP}\n  - {{name: web, port: 5432, protocol: HTTP}}");
    let compiled = compile_yaml(&gateway(&listeners));
    let gateway = object(&compiled, "Gateway", "infra", "l4");
    for index in 0..2 {
        let conflicted = gateway.listeners[index]
            .conditions
            .iter()
            .find(|c| c.kind == "Conflicted")
            .expect("Conflicted");
        assert_eq!(
            (conflicted.status, conflicted.reason),
            (ConditionStatus::True, "ProtocolConflict"),
            "listener {index}"
        );
    }
}

#[test]
fn two_tcp_listeners_on_one_port_conflict_whatever_their_hostnames() {
    let listeners = "  - {name: a, port: 5432, protocol: TCP, hostname: a.example.com}\n  - {name: b, port: 5432, protocol: TCP, hostname: b.example.com}";
    let compiled = compile_yaml(&gateway(listeners));
    let gateway = object(&compiled, "Gateway", "infra", "l4");
    let conflicted = gateway.listeners[1]
        .conditions
        .iter()
        .find(|c| c.kind == "Conflicted")
        .expect("Conflicted");
    assert_eq!(conflicted.reason, "HostnameConflict");
}

#[test]
fn the_oldest_route_serves_and_every_route_is_accepted_and_counted() {
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        gateway(TCP),
        simple("TCPRoute", "newer", "2026-02-01T00:00:00Z", "tcp"),
        simple("TCPRoute", "older", "2026-01-01T00:00:00Z", "tcp"),
    ));
    for name in ["newer", "older"] {
        let status = object(&compiled, "TCPRoute", "infra", name);
        assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    }
    let gateway = object(&compiled, "Gateway", "infra", "l4");
    assert_eq!(gateway.listeners[0].attached_routes, 2);
    assert_eq!(
        tcp_route(&compiled).as_deref(),
        Some("TCPRoute infra/older rules[0]")
    );
}

#[test]
fn a_udp_route_is_not_allowed_on_a_tcp_listener() {
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(TCP),
        simple("UDPRoute", "dns", "2026-01-01T00:00:00Z", "tcp"),
    ));
    let status = object(&compiled, "UDPRoute", "infra", "dns");
    let accepted = parent_condition(status, "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::False, "NotAllowedByListeners")
    );
    assert_eq!(tcp_route(&compiled), None);
}

#[test]
fn cross_namespace_backends_need_a_reference_grant() {
    let body = "  parentRefs: [{name: l4, namespace: infra}]\n  rules: [{backendRefs: [{name: web, namespace: infra, port: 8080}]}]";
    let refused = compile_yaml(&format!(
        "{}{}",
        gateway(TCP),
        route("TCPRoute", "db", "apps", "2026-01-01T00:00:00Z", body)
    ));
    let status = object(&refused, "TCPRoute", "apps", "db");
    let resolved = parent_condition(status, "ResolvedRefs");
    assert_eq!(
        (resolved.status, resolved.reason),
        (ConditionStatus::False, "RefNotPermitted")
    );
    // The refused backend keeps its weight: its connections are closed.
    let socket = refused.snapshot.sockets.get(&address()).expect("socket");
    let forward = socket
        .tcp
        .as_ref()
        .and_then(|l| l.route.as_ref())
        .expect("route");
    let choice = forward.backends.as_ref().expect("weighted");
    assert!(matches!(
        choice.candidates[0].target,
        BackendTarget::Invalid(_)
    ));

    let grant = "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: db, namespace: infra}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: TCPRoute, namespace: apps}]\n  to: [{group: \"\", kind: Service}]\n---\n";
    let granted = compile_yaml(&format!(
        "{}{}{grant}",
        gateway(TCP),
        route("TCPRoute", "db", "apps", "2026-01-01T00:00:00Z", body)
    ));
    let status = object(&granted, "TCPRoute", "apps", "db");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").status,
        ConditionStatus::True
    );
}

#[test]
fn a_missing_backend_is_backend_not_found() {
    let body = "  parentRefs: [{name: l4}]\n  rules: [{backendRefs: [{name: nothing, port: 53}]}]";
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(UDP),
        route("UDPRoute", "dns", "infra", "2026-01-01T00:00:00Z", body)
    ));
    let status = object(&compiled, "UDPRoute", "infra", "dns");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "BackendNotFound"
    );
    assert_eq!(
        parent_condition(status, "Accepted").status,
        ConditionStatus::True
    );
}

#[test]
fn rules_after_the_first_are_partially_invalid() {
    let body = "  parentRefs: [{name: l4}]\n  rules:\n  - backendRefs: [{name: web, port: 8080}]\n  - backendRefs: [{name: web, port: 8080}]";
    let compiled = compile_yaml(&format!(
        "{}{}",
        gateway(TCP),
        route("TCPRoute", "db", "infra", "2026-01-01T00:00:00Z", body)
    ));
    let status = object(&compiled, "TCPRoute", "infra", "db");
    let partial = parent_condition(status, "PartiallyInvalid");
    assert_eq!(partial.status, ConditionStatus::True);
    assert!(
        partial.message.contains("TCPRoute infra/db rules[1]"),
        "{}",
        partial.message
    );
}

#[test]
fn udp_limits_come_from_the_listeners_client_traffic_policy() {
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: udp, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: l4, sectionName: udp}]\n  udp: {idleTimeout: 5s, maxFlows: 10, maxDatagramBytes: 512}\n---\n";
    let compiled = compile_yaml(&format!(
        "{}{}{policy}",
        gateway(&format!("{TCP}\n{UDP}")),
        simple("UDPRoute", "dns", "2026-01-01T00:00:00Z", "udp"),
    ));
    let policy_status = object(&compiled, "ClientTrafficPolicy", "infra", "udp");
    assert!(
        policy_status.is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    let socket = compiled.snapshot.udp_sockets.get(&address()).expect("udp");
    assert_eq!(socket.limits.idle_timeout, Duration::from_secs(5));
    assert_eq!(socket.limits.max_flows, 10);
    assert_eq!(socket.limits.max_datagram_bytes, 512);
}

#[test]
fn a_zero_udp_idle_timeout_is_refused_by_field() {
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: udp, namespace: infra}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: l4}]\n  udp: {idleTimeout: 0s}\n---\n";
    let compiled = compile_yaml(&format!("{}{policy}", gateway(UDP)));
    let status = object(&compiled, "ClientTrafficPolicy", "infra", "udp");
    let problems = status.problems.join("\n");
    assert!(
        problems.contains(
            "ClientTrafficPolicy infra/udp spec.udp.idleTimeout: must be greater than 0s"
        ),
        "{problems}"
    );
}

#[test]
fn a_udp_route_takes_the_services_udp_port_of_its_number() {
    let dns = "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: infra}\nspec: {ports: [{name: dns-tcp, port: 53, protocol: TCP}, {name: dns, port: 53, protocol: UDP}]}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: dns-1, namespace: infra, labels: {kubernetes.io/service-name: dns}}\naddressType: IPv4\nports: [{name: dns-tcp, port: 5354, protocol: TCP}, {name: dns, port: 5353, protocol: UDP}]\nendpoints: [{addresses: [10.0.0.53], conditions: {ready: true}}]\n---\n";
    let body = "  parentRefs: [{name: l4, sectionName: udp}]\n  rules: [{backendRefs: [{name: dns, port: 53}]}]";
    let tcp_body = "  parentRefs: [{name: l4, sectionName: tcp}]\n  rules: [{backendRefs: [{name: dns, port: 53}]}]";
    let yaml = format!(
        "{}---\n{dns}{}{}{}",
        crate::tests::BASE,
        gateway(&format!("{TCP}\n{UDP}")),
        route("UDPRoute", "dns", "infra", "2026-01-01T00:00:00Z", body),
        route("TCPRoute", "dns", "infra", "2026-01-01T00:00:00Z", tcp_body),
    );
    let mut store = model::Store::new();
    for object in model::parse_documents(&yaml).expect("parses").objects {
        store.insert(object);
    }
    let compiled = crate::compile(&store, &crate::CompileOptions::default());
    let targets = compiled.endpoints.resolve(&store);
    let port_of = |id: &str| -> Vec<u16> {
        let id = snapshot::backend::BackendId::new(id.to_owned());
        targets
            .get(&id)
            .unwrap_or_else(|| panic!("no backend {id}: {:?}", targets.keys()))
            .iter()
            .map(|t| t.port)
            .collect()
    };
    assert_eq!(port_of("Service infra/dns:53/UDP"), [5353]);
    assert_eq!(port_of("Service infra/dns:53"), [5354]);
}

#[test]
fn a_backend_tls_policy_on_a_tcp_routes_service_names_its_gateway_as_ancestor() {
    let ca = crate::backend_tls::tests::ca_config_map(
        "infra",
        "web-ca",
        &crate::backend_tls::tests::ca_pem(),
    );
    let policy = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {name: web, namespace: infra}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: web}]\n  validation: {caCertificateRefs: [{group: \"\", kind: ConfigMap, name: web-ca}], hostname: web.internal}\n---\n";
    let compiled = compile_yaml(&format!(
        "{}{}{ca}{policy}",
        gateway(TCP),
        simple("TCPRoute", "db", "2026-01-01T00:00:00Z", "tcp"),
    ));
    let status = object(&compiled, "BackendTLSPolicy", "infra", "web");
    let ancestors: Vec<&str> = status
        .ancestors
        .iter()
        .map(|a| a.ancestor_ref.name.as_str())
        .collect();
    assert_eq!(ancestors, ["l4"], "{:?}", compiled.status.problems());
    // And the backend the TCPRoute uses carries the TLS settings the proxy originates with.
    let backend = compiled
        .snapshot
        .backends
        .iter()
        .find(|b| b.id.as_str() == "Service infra/web:8080")
        .expect("backend");
    assert!(backend.tls.is_some());
}
