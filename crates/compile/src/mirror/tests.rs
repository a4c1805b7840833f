//! RequestMirror compilation through the whole `compile`: resolution, status and shares.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, Method};
use model::{Store, parse_documents};
use router::RequestView;
use snapshot::{MirrorShare, RouteRule};

use crate::{CompileOptions, Compiled, ObjectStatus, compile};

const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portcullis}
spec: {controllerName: portcullis.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: portcullis
  addresses: [{type: IPAddress, value: 127.0.0.9}]
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: infra}
spec: {ports: [{name: http, port: 8080, targetPort: 3000}]}
---
apiVersion: v1
kind: Service
metadata: {name: shadow, namespace: infra}
spec: {ports: [{name: http, port: 8080, targetPort: 3000}]}
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere, namespace: other}
spec: {ports: [{name: http, port: 8080, targetPort: 3000}]}
"#;

fn compile_route(filters: &str) -> Compiled {
    let route = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\n\
         spec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - backendRefs: [{{name: web, port: 8080}}]\n    filters:\n{filters}\n"
    );
    let mut store = Store::new();
    for text in [BASE, route.as_str()] {
        for object in parse_documents(text).expect("fixture parses").objects {
            store.insert(object);
        }
    }
    compile(&store, &CompileOptions::default())
}

fn route_status(compiled: &Compiled) -> &ObjectStatus {
    compiled
        .status
        .objects
        .iter()
        .find(|o| o.kind == "HTTPRoute" && o.name == "r")
        .expect("route status")
}

fn condition(compiled: &Compiled, kind: &str) -> (String, String) {
    let condition = route_status(compiled).parents[0]
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .expect("condition present");
    (
        format!("{:?}", condition.status),
        condition.reason.to_string(),
    )
}

fn rule(compiled: &Compiled) -> Option<Arc<RouteRule>> {
    let socket: SocketAddr = "127.0.0.9:80".parse().expect("socket");
    let routes = compiled.snapshot.sockets.get(&socket)?;
    let listener = routes.listeners.most_specific("any.host")?;
    let headers = HeaderMap::new();
    let view = RequestView {
        method: &Method::GET,
        host: "any.host",
        path: "/",
        query: None,
        headers: &headers,
    };
    listener.table.find(&view).map(|hit| Arc::clone(hit.target))
}

fn backend_name(compiled: &Compiled, index: usize) -> &str {
    compiled.snapshot.backends[index].id.as_str()
}

#[test]
fn mirror_resolves_like_a_backend_ref() {
    let compiled = compile_route(
        "    - type: RequestMirror\n      requestMirror: {backendRef: {name: shadow, port: 8080}}\n\
         \x20   - type: RequestMirror\n      requestMirror: {backendRef: {name: web, port: 8080}, percent: 20}",
    );
    assert!(
        route_status(&compiled).is_healthy(),
        "{:?}",
        compiled.status.problems()
    );
    let rule = rule(&compiled).expect("rule attached");
    let mirrors = &rule.filters.mirrors;
    assert_eq!(mirrors.len(), 2);
    assert_eq!(
        backend_name(&compiled, mirrors[0].backend),
        "Service infra/shadow:8080"
    );
    assert_eq!(mirrors[0].share, MirrorShare::ALL);
    assert_eq!(
        backend_name(&compiled, mirrors[1].backend),
        "Service infra/web:8080"
    );
    assert_eq!(mirrors[1].share, MirrorShare::new(1, 5).expect("valid"));
}

#[test]
fn unresolvable_mirror_is_reported_and_skipped() {
    let compiled = compile_route(
        "    - type: RequestMirror\n      requestMirror: {backendRef: {name: missing, port: 8080}}",
    );
    assert_eq!(
        condition(&compiled, "ResolvedRefs"),
        ("False".into(), "BackendNotFound".into())
    );
    assert_eq!(
        condition(&compiled, "Accepted"),
        ("True".into(), "Accepted".into())
    );
    let problems = compiled.status.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("rules[0].filters[0].requestMirror.backendRef")),
        "{problems:?}"
    );
    let rule = rule(&compiled).expect("the rule still serves");
    assert!(rule.filters.mirrors.is_empty());
}

#[test]
fn cross_namespace_mirror_needs_a_reference_grant() {
    let compiled = compile_route(
        "    - type: RequestMirror\n      requestMirror: {backendRef: {name: elsewhere, namespace: other, port: 8080}}",
    );
    assert_eq!(
        condition(&compiled, "ResolvedRefs"),
        ("False".into(), "RefNotPermitted".into())
    );
    assert!(rule(&compiled).expect("served").filters.mirrors.is_empty());
}

#[test]
fn fraction_is_reduced_and_zero_share_is_dropped() {
    let compiled = compile_route(
        "    - type: RequestMirror\n      requestMirror: {backendRef: {name: shadow, port: 8080}, fraction: {numerator: 25, denominator: 50}}\n\
         \x20   - type: RequestMirror\n      requestMirror: {backendRef: {name: shadow, port: 8080}, percent: 0}",
    );
    let rule = rule(&compiled).expect("served");
    assert_eq!(rule.filters.mirrors.len(), 1);
    assert_eq!(
        rule.filters.mirrors[0].share,
        MirrorShare::new(1, 2).expect("valid")
    );
}

#[test]
fn invalid_shares_invalidate_the_rule() {
    for block in [
        "{backendRef: {name: shadow, port: 8080}, percent: 101}",
        "{backendRef: {name: shadow, port: 8080}, percent: 10, fraction: {numerator: 1}}",
        "{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 3, denominator: 2}}",
        "{backendRef: {name: shadow, port: 8080}, fraction: {numerator: 1, denominator: 0}}",
    ] {
        let compiled = compile_route(&format!(
            "    - type: RequestMirror\n      requestMirror: {block}"
        ));
        assert!(rule(&compiled).is_none(), "{block} should drop the rule");
        let problems = compiled.status.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("rules[0].filters[0].requestMirror")),
            "{block}: {problems:?}"
        );
    }
}

#[test]
fn cors_on_a_backend_ref_is_rejected() {
    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: infra}\n\
                 spec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs:\n    - name: web\n      port: 8080\n      filters: [{type: CORS, cors: {allowOrigins: ['*']}}]\n";
    let mut store = Store::new();
    for text in [BASE, route] {
        for object in parse_documents(text).expect("fixture parses").objects {
            store.insert(object);
        }
    }
    let compiled = compile(&store, &CompileOptions::default());
    assert!(rule(&compiled).is_none());
    assert!(
        compiled
            .status
            .problems()
            .iter()
            .any(|p| p.contains("CORS is only supported on the rule")),
        "{:?}",
        compiled.status.problems()
    );
}

#[test]
fn cors_compiles_on_the_rule() {
    let compiled = compile_route(
        "    - type: CORS\n      cors: {allowOrigins: ['https://*.foo.com'], allowMethods: [GET]}",
    );
    assert!(route_status(&compiled).is_healthy());
    let rule = rule(&compiled).expect("served");
    assert!(rule.filters.cors.is_some());
}
