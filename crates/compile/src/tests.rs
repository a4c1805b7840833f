//! Compile tests from YAML fixtures: status reasons, attachment, and the resulting tables.
//! The fixture and the lookup helpers are shared with the per-module tests (`grpc_route`,
//! `listener_set`).

use std::net::SocketAddr;

use http::{HeaderMap, Method};
use model::{Store, parse_documents};
use router::RequestView;
use snapshot::{BackendTarget, RuleAction};

use super::*;

pub(crate) const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portcullis}
spec: {controllerName: portcullis.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {team: web}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: portcullis
  addresses: [{type: IPAddress, value: 127.0.0.9}]
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}
  - {name: apps, port: 8080, protocol: HTTP, hostname: "*.example.com", allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {ports: [{name: http, port: 8080, targetPort: 3000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: infra, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 3000}]
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
- addresses: [10.0.0.2]
  conditions: {ready: false}
"#;

pub(crate) fn compile_yaml(extra: &str) -> Compiled {
    let mut store = Store::new();
    for text in [BASE, extra] {
        for object in parse_documents(text).expect("fixture parses").objects {
            store.insert(object);
        }
    }
    compile(&store, &CompileOptions::default())
}

pub(crate) fn object<'a>(
    compiled: &'a Compiled,
    kind: &str,
    namespace: &str,
    name: &str,
) -> &'a ObjectStatus {
    compiled
        .status
        .objects
        .iter()
        .find(|o| o.kind == kind && o.namespace == namespace && o.name == name)
        .unwrap_or_else(|| panic!("no status for {kind} {namespace}/{name}"))
}

pub(crate) fn parent_condition<'a>(status: &'a ObjectStatus, kind: &str) -> &'a Condition {
    status.parents[0]
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("condition present")
}

fn route(name: &str, namespace: &str, body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n"
    )
}

/// The name of the rule `GET path` with `Host: host` reaches on `socket`, if any.
pub(crate) fn lookup(compiled: &Compiled, socket: &str, host: &str, path: &str) -> Option<String> {
    reach(compiled, socket, host, path).map(|(_, rule)| rule.name.to_string())
}

/// The listener and the rule `GET path` with `Host: host` reaches on `socket`, if any.
pub(crate) fn reach<'a>(
    compiled: &'a Compiled,
    socket: &str,
    host: &str,
    path: &str,
) -> Option<(&'a snapshot::ListenerRoutes, &'a Arc<snapshot::RouteRule>)> {
    let socket: SocketAddr = socket.parse().expect("socket");
    let routes = compiled.snapshot.sockets.get(&socket)?;
    let listener = routes.listeners.most_specific(router::strip_port(host))?;
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::GET,
        host,
        path,
        query: None,
        headers: &headers,
    };
    let hit = listener.table.find(&view)?;
    Some((listener, hit.target))
}

#[test]
fn route_attaches_and_resolves() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw, sectionName: http}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    assert_eq!(
        object(&compiled, "Gateway", "infra", "gw").listeners[0].attached_routes,
        1
    );
    assert_eq!(
        lookup(&compiled, "127.0.0.9:80", "any.host", "/x").as_deref(),
        Some("HTTPRoute infra/r rules[0]")
    );
}

fn store_of(text: &str) -> Store {
    let mut store = Store::new();
    for object in parse_documents(text).expect("parses").objects {
        store.insert(object);
    }
    store
}

#[test]
fn endpoints_follow_slice_port_names_and_readiness() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    let resolved = compiled.endpoints.resolve(&store_of(BASE));
    let targets = &resolved[&snapshot::backend::BackendId::new("Service infra/web:8080")];
    assert_eq!(targets.len(), 1, "the not-ready endpoint is excluded");
    assert_eq!(targets[0].port, 3000);
    assert_eq!(
        targets[0].address,
        snapshot::backend::TargetAddress::Ip("10.0.0.1".parse().expect("ip"))
    );
}

#[test]
fn missing_service_names_object_and_field() {
    let compiled = compile_yaml(&route(
        "web",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs: [{name: web, port: 8080}]\n  - matches: [{path: {type: PathPrefix, value: /missing}}]\n    backendRefs: [{name: missing-svc, port: 80}]",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "web");
    let resolved = parent_condition(status, "ResolvedRefs");
    assert_eq!(resolved.reason, "BackendNotFound");
    assert!(compiled.status.problems().contains(
        &"HTTPRoute infra/web rules[1].backendRefs[0]: Service infra/missing-svc not found (BackendNotFound)".to_owned()
    ));
    // The rule stays and answers 500 for its traffic.
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let listener = compiled.snapshot.sockets[&socket]
        .listeners
        .most_specific("h")
        .expect("listener");
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::GET,
        host: "h",
        path: "/missing",
        query: None,
        headers: &headers,
    };
    let hit = listener.table.find(&view).expect("rule matches");
    let RuleAction::Forward(choice) = &hit.target.action else {
        panic!("forward rule")
    };
    assert!(
        matches!(choice.candidates[0].target, BackendTarget::Invalid(ref d) if d.status == 500)
    );
}

#[test]
fn cross_namespace_ref_needs_reference_grant() {
    let refs = "  parentRefs: [{name: gw, namespace: infra, sectionName: apps}]\n  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: web, namespace: infra, port: 8080}]}]";
    let compiled = compile_yaml(&route("r", "apps", refs));
    let status = object(&compiled, "HTTPRoute", "apps", "r");
    assert_eq!(
        parent_condition(status, "ResolvedRefs").reason,
        "RefNotPermitted"
    );

    let grant = "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: infra}\nspec:\n  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]\n  to: [{group: \"\", kind: Service}]\n";
    let compiled = compile_yaml(&format!("{}{grant}", route("r", "apps", refs)));
    let status = object(&compiled, "HTTPRoute", "apps", "r");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
}

#[test]
fn unknown_backend_kind_is_invalid_kind() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{group: example.com, kind: Bucket, name: b}]}]",
    ));
    assert_eq!(
        parent_condition(object(&compiled, "HTTPRoute", "infra", "r"), "ResolvedRefs").reason,
        "InvalidKind"
    );
}

#[test]
fn listener_namespace_rules_decide_attachment() {
    // The http listener only allows routes from its own namespace.
    let compiled = compile_yaml(&route(
        "r",
        "apps",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: http}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    let accepted = parent_condition(object(&compiled, "HTTPRoute", "apps", "r"), "Accepted");
    assert_eq!(accepted.reason, "NotAllowedByListeners");
    // The apps listener selects namespaces labelled team=web.
    let compiled = compile_yaml(&route(
        "r",
        "apps",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: apps}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    let accepted = parent_condition(object(&compiled, "HTTPRoute", "apps", "r"), "Accepted");
    assert_eq!(accepted.reason, "Accepted");
}

#[test]
fn disjoint_hostnames_do_not_attach() {
    let compiled = compile_yaml(&route(
        "r",
        "apps",
        "  parentRefs: [{name: gw, namespace: infra, sectionName: apps}]\n  hostnames: [foo.other.org]\n  rules: [{backendRefs: [{name: web, namespace: apps, port: 1}]}]",
    ));
    let accepted = parent_condition(object(&compiled, "HTTPRoute", "apps", "r"), "Accepted");
    assert_eq!(accepted.reason, "NoMatchingListenerHostname");
}

#[test]
fn unknown_section_name_is_no_matching_parent() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw, sectionName: nope}]\n  rules: [{}]",
    ));
    assert_eq!(
        parent_condition(object(&compiled, "HTTPRoute", "infra", "r"), "Accepted").reason,
        "NoMatchingParent"
    );
}

#[test]
fn port_in_parent_ref_selects_listener() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw, port: 80}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]",
    ));
    assert!(lookup(&compiled, "127.0.0.9:80", "x", "/").is_some());
    assert_eq!(
        object(&compiled, "Gateway", "infra", "gw").listeners[1].attached_routes,
        0
    );
}

#[test]
fn routes_of_other_controllers_are_ignored() {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: theirs, namespace: infra}\nspec:\n  gatewayClassName: other\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\n";
    let compiled = compile_yaml(&format!(
        "{gateway}{}",
        route(
            "r",
            "infra",
            "  parentRefs: [{name: theirs}]\n  rules: [{}]"
        )
    ));
    assert!(
        compiled
            .status
            .objects
            .iter()
            .all(|o| o.name != "theirs" && o.name != "r")
    );
}

#[test]
fn conflicting_listeners_are_reported() {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: dup, namespace: infra}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{value: 127.0.0.10}]\n  listeners:\n  - {name: a, port: 80, protocol: HTTP, hostname: x.com}\n  - {name: b, port: 80, protocol: HTTP, hostname: x.com}\n  - {name: c, port: 81, protocol: SCTP}\n";
    let compiled = compile_yaml(gateway);
    let status = object(&compiled, "Gateway", "infra", "dup");
    let conflicted = |i: usize| {
        status.listeners[i]
            .conditions
            .iter()
            .any(|c| c.kind == "Conflicted" && c.reason == "HostnameConflict")
    };
    assert!(conflicted(0) && conflicted(1));
    assert!(
        status.listeners[2]
            .conditions
            .iter()
            .any(|c| c.reason == "UnsupportedProtocol")
    );
    assert_eq!(status.conditions[0].reason, "ListenersNotValid");
}

#[test]
fn unsupported_address_type_rejects_gateway() {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: named, namespace: infra}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{type: NamedAddress, value: foo}]\n  listeners: [{name: a, port: 80, protocol: HTTP}]\n";
    let compiled = compile_yaml(gateway);
    let status = object(&compiled, "Gateway", "infra", "named");
    assert_eq!(status.conditions[0].reason, "UnsupportedAddress");
}

#[test]
fn invalid_regex_drops_only_that_rule() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{path: {type: RegularExpression, value: \"/(\"}}]\n  - backendRefs: [{name: web, port: 8080}]",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    let partially = parent_condition(status, "PartiallyInvalid");
    assert!(
        partially.message.contains("rules[0].matches[0].path.value"),
        "{}",
        partially.message
    );
    assert_eq!(
        lookup(&compiled, "127.0.0.9:80", "h", "/x").as_deref(),
        Some("HTTPRoute infra/r rules[1]")
    );
}

#[test]
fn all_zero_weights_answer_500() {
    let compiled = compile_yaml(&route(
        "r",
        "infra",
        "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: web, port: 8080, weight: 0}]}]",
    ));
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
    let hit = listener.table.find(&view).expect("rule");
    assert!(matches!(&hit.target.action, RuleAction::Respond(d) if d.status == 500));
}

#[test]
fn listener_isolation_uses_most_specific_listener() {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: iso, namespace: infra}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{value: 127.0.0.11}]\n  listeners:\n  - {name: wild, port: 80, protocol: HTTP, hostname: \"*.example.com\"}\n  - {name: exact, port: 80, protocol: HTTP, hostname: foo.example.com}\n---\n";
    let routes = format!(
        "{}---\n{}",
        route(
            "wild",
            "infra",
            "  parentRefs: [{name: iso, sectionName: wild}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /wild}}], backendRefs: [{name: web, port: 8080}]}]"
        ),
        route(
            "exact",
            "infra",
            "  parentRefs: [{name: iso, sectionName: exact}]\n  rules: [{matches: [{path: {type: PathPrefix, value: /exact}}], backendRefs: [{name: web, port: 8080}]}]"
        ),
    );
    let compiled = compile_yaml(&format!("{gateway}{routes}"));
    assert!(lookup(&compiled, "127.0.0.11:80", "foo.example.com", "/exact").is_some());
    // foo.example.com belongs to the exact listener only: the wildcard listener's route is
    // not consulted for it.
    assert!(lookup(&compiled, "127.0.0.11:80", "foo.example.com", "/wild").is_none());
    assert!(lookup(&compiled, "127.0.0.11:80", "bar.example.com", "/wild").is_some());
}

fn https_gateway(secret_namespace: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: tls, namespace: infra}}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{{value: 127.0.0.12}}]\n  listeners:\n  - name: https\n    port: 443\n    protocol: HTTPS\n    tls: {{certificateRefs: [{{name: cert, namespace: {secret_namespace}}}]}}\n"
    )
}

fn listener_condition<'a>(status: &'a ObjectStatus, kind: &str) -> &'a Condition {
    status.listeners[0]
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("listener condition")
}

#[test]
fn https_listener_without_its_secret_is_invalid_certificate_ref() {
    let compiled = compile_yaml(&https_gateway("infra"));
    let status = object(&compiled, "Gateway", "infra", "tls");
    let resolved = listener_condition(status, "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCertificateRef");
    assert!(
        resolved
            .message
            .contains("spec.listeners[0].tls.certificateRefs[0]"),
        "{}",
        resolved.message
    );
    let socket: SocketAddr = "127.0.0.12:443".parse().expect("socket");
    assert!(
        !compiled.snapshot.sockets.contains_key(&socket),
        "an unusable HTTPS listener binds nothing"
    );
}

#[test]
fn https_listener_with_a_bad_secret_names_the_problem() {
    let secret = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: infra}\ntype: kubernetes.io/tls\nstringData: {tls.crt: nope, tls.key: nope}\n";
    let compiled = compile_yaml(&format!("{}{secret}", https_gateway("infra")));
    let resolved = listener_condition(object(&compiled, "Gateway", "infra", "tls"), "ResolvedRefs");
    assert_eq!(resolved.reason, "InvalidCertificateRef");
    assert!(resolved.message.contains("tls.crt"), "{}", resolved.message);
}

#[test]
fn https_certificate_in_another_namespace_needs_a_reference_grant() {
    let compiled = compile_yaml(&https_gateway("secrets"));
    let resolved = listener_condition(object(&compiled, "Gateway", "infra", "tls"), "ResolvedRefs");
    assert_eq!(resolved.reason, "RefNotPermitted");
}

/// Gateway API v1.6 made a ReferenceGrant's `spec` required; the generated type already needs it,
/// so a spec-less ReferenceGrant is refused when the file is read, naming the field, and never
/// grants anything.
#[test]
fn reference_grant_without_spec_is_refused() {
    let error = parse_documents(
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: infra}\n",
    )
    .expect_err("spec is required")
    .to_string();
    assert!(error.contains("spec"), "{error}");
}
