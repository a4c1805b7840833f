//! GRPCRoute compile tests: attachment, method matches as paths and their precedence, filters,
//! backendRefs (ReferenceGrant, h2c) and invalid rules.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use router::RequestView;
use snapshot::backend::AppProtocol;
use snapshot::{BackendTarget, RuleAction};

use crate::tests::{compile_yaml, object, parent_condition};
use crate::{Compiled, ConditionStatus};

const SERVICE: &str = "pkg.Echo";

fn grpc_route(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n"
    )
}

/// The rule a gRPC call to `path` (with extra `headers`) hits on the BASE Gateway's `http`
/// listener (127.0.0.9:80).
fn call(compiled: &Compiled, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let listener = compiled
        .snapshot
        .sockets
        .get(&socket)?
        .listeners
        .most_specific("grpc.example.com")?;
    let mut map = HeaderMap::new();
    map.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    for (name, value) in headers {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    let view = RequestView {
        method: &Method::POST,
        host: "grpc.example.com",
        path,
        query: None,
        headers: &map,
    };
    listener
        .table
        .find(&view)
        .map(|hit| hit.target.name.to_string())
}

/// The compiled rule a gRPC call to `path` hits on the BASE Gateway's `http` listener.
fn rule_at<'a>(compiled: &'a Compiled, path: &str) -> &'a snapshot::RouteRule {
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let listener = compiled.snapshot.sockets[&socket]
        .listeners
        .most_specific("grpc.example.com")
        .expect("listener");
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::POST,
        host: "grpc.example.com",
        path,
        query: None,
        headers: &headers,
    };
    listener.table.find(&view).expect("rule").target
}

fn rule_name(index: usize) -> String {
    format!("GRPCRoute infra/g rules[{index}]")
}

#[test]
fn grpc_route_attaches_and_resolves() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw, sectionName: http}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    let status = object(&compiled, "GRPCRoute", "infra", "g");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    assert_eq!(
        object(&compiled, "Gateway", "infra", "gw").listeners[0].attached_routes,
        1
    );
    // No match: every gRPC call.
    assert_eq!(call(&compiled, "/any.Service/Any", &[]), Some(rule_name(0)));
}

#[test]
fn method_matches_become_paths_with_spec_precedence() {
    let rules = format!(
        "  parentRefs: [{{name: gw}}]\n  rules:\n\
         \x20 - matches: [{{method: {{service: {SERVICE}, method: Echo}}}}]\n    backendRefs: [{{name: web, port: 8080}}]\n\
         \x20 - matches: [{{method: {{service: {SERVICE}}}}}]\n    backendRefs: [{{name: web, port: 8080}}]\n\
         \x20 - matches: [{{method: {{method: Ping}}}}]\n    backendRefs: [{{name: web, port: 8080}}]\n\
         \x20 - backendRefs: [{{name: web, port: 8080}}]"
    );
    let compiled = compile_yaml(&grpc_route("g", "infra", &rules));
    assert!(
        object(&compiled, "GRPCRoute", "infra", "g").is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    // Exact service and method beats the service-only and no-method rules.
    assert_eq!(call(&compiled, "/pkg.Echo/Echo", &[]), Some(rule_name(0)));
    // Service only: any method of that service, whole path segments only.
    assert_eq!(
        call(&compiled, "/pkg.Echo/EchoTwo", &[]),
        Some(rule_name(1))
    );
    assert_eq!(call(&compiled, "/pkg.EchoX/Echo", &[]), Some(rule_name(3)));
    // Method only: that method of any service.
    assert_eq!(call(&compiled, "/other.Svc/Ping", &[]), Some(rule_name(2)));
    assert_eq!(call(&compiled, "/other.Svc/Pong", &[]), Some(rule_name(3)));
}

#[test]
fn more_header_matches_win_between_equal_methods() {
    let rules = format!(
        "  parentRefs: [{{name: gw}}]\n  rules:\n\
         \x20 - matches: [{{method: {{service: {SERVICE}, method: Echo}}}}]\n    backendRefs: [{{name: web, port: 8080}}]\n\
         \x20 - matches: [{{method: {{service: {SERVICE}, method: Echo}}, headers: [{{name: version, value: two}}, {{name: x-debug, type: RegularExpression, value: \"on|yes\"}}]}}]\n    backendRefs: [{{name: web, port: 8080}}]"
    );
    let compiled = compile_yaml(&grpc_route("g", "infra", &rules));
    assert_eq!(call(&compiled, "/pkg.Echo/Echo", &[]), Some(rule_name(0)));
    assert_eq!(
        call(
            &compiled,
            "/pkg.Echo/Echo",
            &[("version", "two"), ("x-debug", "yes")]
        ),
        Some(rule_name(1))
    );
    assert_eq!(
        call(&compiled, "/pkg.Echo/Echo", &[("version", "two")]),
        Some(rule_name(0))
    );
}

#[test]
fn regular_expression_method_match() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{method: {type: RegularExpression, service: \"pkg\\\\..*\", method: \"Echo(Two)?\"}}]\n    backendRefs: [{name: web, port: 8080}]",
    ));
    assert!(
        object(&compiled, "GRPCRoute", "infra", "g").is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    assert_eq!(
        call(&compiled, "/pkg.Echo/EchoTwo", &[]),
        Some(rule_name(0))
    );
    assert_eq!(call(&compiled, "/pkg.Other/Echo", &[]), Some(rule_name(0)));
    assert_eq!(call(&compiled, "/pkg.Echo/EchoThree", &[]), None);
    assert_eq!(call(&compiled, "/other.Echo/Echo", &[]), None);
}

#[test]
fn invalid_method_match_drops_only_that_rule() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{method: {type: Exact}}]\n    backendRefs: [{name: web, port: 8080}]\n  - matches: [{method: {service: \"bad/service\"}}]\n    backendRefs: [{name: web, port: 8080}]\n  - backendRefs: [{name: web, port: 8080}]",
    ));
    let status = object(&compiled, "GRPCRoute", "infra", "g");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    let partially = parent_condition(status, "PartiallyInvalid");
    assert!(
        partially
            .message
            .contains("GRPCRoute infra/g rules[0].matches[0].method: one or both"),
        "{}",
        partially.message
    );
    assert!(
        partially
            .message
            .contains("rules[1].matches[0].method.service"),
        "{}",
        partially.message
    );
    assert_eq!(call(&compiled, "/pkg.Echo/Echo", &[]), Some(rule_name(2)));
}

#[test]
fn header_modifier_filters_compile_like_httproute() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier: {set: [{name: X-Set, value: one}], add: [{name: X-Add, value: two}], remove: [X-Gone]}\n    - type: ResponseHeaderModifier\n      responseHeaderModifier: {set: [{name: X-Reply, value: three}]}\n    backendRefs: [{name: web, port: 8080}]",
    ));
    assert!(
        object(&compiled, "GRPCRoute", "infra", "g").is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    let rule = rule_at(&compiled, "/pkg.Echo/Echo");
    let request = rule
        .filters
        .request_headers
        .as_ref()
        .expect("request modifier");
    assert_eq!(request.set[0].0.as_str(), "x-set");
    assert_eq!(request.add[0].1, "two");
    assert_eq!(request.remove[0].as_str(), "x-gone");
    let response = rule
        .filters
        .response_headers
        .as_ref()
        .expect("response modifier");
    assert_eq!(response.set[0].1, "three");
}

#[test]
fn extension_ref_filter_is_rejected() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - filters: [{type: ExtensionRef, extensionRef: {group: example.com, kind: Magic, name: m}}]\n    backendRefs: [{name: web, port: 8080}]",
    ));
    let accepted = parent_condition(object(&compiled, "GRPCRoute", "infra", "g"), "Accepted");
    assert_eq!(accepted.status, ConditionStatus::False);
    assert_eq!(accepted.reason, "UnsupportedValue");
    assert!(
        accepted.message.contains("ExtensionRef"),
        "{}",
        accepted.message
    );
}

#[test]
fn cross_namespace_grpc_ref_needs_grant_from_grpcroute() {
    let refs = "  parentRefs: [{name: gw, namespace: infra, sectionName: apps}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, namespace: infra, port: 8080}]}]";
    let grant = |kind: &str| {
        format!(
            "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: g, namespace: infra}}\nspec:\n  from: [{{group: gateway.networking.k8s.io, kind: {kind}, namespace: apps}}]\n  to: [{{group: \"\", kind: Service}}]\n"
        )
    };
    let compiled = compile_yaml(&grpc_route("r", "apps", refs));
    let status = object(&compiled, "GRPCRoute", "apps", "r");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "RefNotPermitted"
    );
    // A grant for HTTPRoutes does not cover GRPCRoutes.
    let compiled = compile_yaml(&format!(
        "{}{}",
        grpc_route("r", "apps", refs),
        grant("HTTPRoute")
    ));
    let status = object(&compiled, "GRPCRoute", "apps", "r");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "RefNotPermitted"
    );
    let compiled = compile_yaml(&format!(
        "{}{}",
        grpc_route("r", "apps", refs),
        grant("GRPCRoute")
    ));
    let status = object(&compiled, "GRPCRoute", "apps", "r");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
}

#[test]
fn grpc_backends_speak_h2c() {
    // The BASE Service `web` has no appProtocol (HTTP/1.1 for HTTPRoutes).
    let http = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: h, namespace: infra}\nspec:\n  parentRefs: [{name: gw}]\n  hostnames: [web.example.com]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]\n---\n";
    let compiled = compile_yaml(&format!(
        "{http}{}",
        grpc_route(
            "g",
            "infra",
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]"
        )
    ));
    let protocol_of = |id: &str| {
        compiled
            .snapshot
            .backends
            .iter()
            .find(|b| b.id.as_str() == id)
            .map(|b| b.protocol)
    };
    assert_eq!(
        protocol_of("Service infra/web:8080"),
        Some(AppProtocol::Http1)
    );
    assert_eq!(
        protocol_of("Service infra/web:8080 (h2c)"),
        Some(AppProtocol::H2c)
    );
    let rule = rule_at(&compiled, "/pkg.Echo/Echo");
    let RuleAction::Forward(choice) = &rule.action else {
        panic!("forward rule")
    };
    let BackendTarget::Backend(index) = choice.candidates[0].target else {
        panic!("resolved backend")
    };
    assert_eq!(compiled.snapshot.backends[index].protocol, AppProtocol::H2c);
}

#[test]
fn grpc_mirror_backends_speak_h2c_too() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 8080}}}]\n    backendRefs:\n    - name: web\n      port: 8080\n      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: web, port: 8080}}}]",
    ));
    let status = object(&compiled, "GRPCRoute", "infra", "g");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    let rule = rule_at(&compiled, "/pkg.Echo/Echo");
    let RuleAction::Forward(choice) = &rule.action else {
        panic!("forward rule")
    };
    let mirrors = rule
        .filters
        .mirrors
        .iter()
        .chain(&choice.candidates[0].filters().mirrors)
        .collect::<Vec<_>>();
    assert_eq!(mirrors.len(), 2);
    for mirror in mirrors {
        assert_eq!(
            compiled.snapshot.backends[mirror.backend].protocol,
            AppProtocol::H2c
        );
    }
}

#[test]
fn named_rule_names_the_compiled_rule() {
    let compiled = compile_yaml(&grpc_route(
        "g",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules: [{name: echo, backendRefs: [{name: web, port: 8080}]}]",
    ));
    assert_eq!(
        call(&compiled, "/pkg.Echo/Echo", &[]).as_deref(),
        Some("GRPCRoute infra/g rules[0] (echo)")
    );
}
