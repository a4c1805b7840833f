use model::{Store, parse_documents};
use router::{HostPattern, RequestView, decide_precedence};

use super::*;
use crate::{CompileOptions, Compiler};

/// One Gateway on 127.0.0.9 with four listeners: `any` (port 80, no hostname), `shop`
/// (port 80, shop.example.com), `wild` (port 80, *.example.com) and `other` (port 8080).
const FIXTURE: &str = r#"
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
  - {name: any, port: 80, protocol: HTTP}
  - {name: shop, port: 80, protocol: HTTP, hostname: shop.example.com}
  - {name: wild, port: 80, protocol: HTTP, hostname: "*.example.com"}
  - {name: other, port: 8080, protocol: HTTP}
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
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: shop}]
  hostnames: [shop.example.com]
  rules:
  - matches: [{headers: [{name: qa, value: canary-test}]}]
    backendRefs: [{name: web, port: 8080, weight: 3}, {name: missing, port: 80, weight: 1}]
  - backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: Exact, value: /cart}, method: POST}]
    backendRefs: [{name: web, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /q}, queryParams: [{name: v, value: "2"}]}]
    backendRefs: [{name: web, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: generic, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: named, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: any}]
  hostnames: [named.example.org]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: other-port, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: other}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orphan, namespace: infra}
spec:
  parentRefs: [{name: gw, sectionName: nosuch}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
"#;

/// A BackendTrafficPolicy on Service `web` and a RateLimitPolicy on route `shop`.
const POLICIES: &str = r#"
---
apiVersion: portcullis.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: balance, namespace: infra}
spec:
  targetRefs: [{group: "", kind: Service, name: web}]
  loadBalancer: {type: RoundRobin}
---
apiVersion: portcullis.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: limits, namespace: infra}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop}]
  local: {rules: [{clientSelectors: [{headers: [{name: x-user, type: Distinct}]}], limit: {requests: 10, unit: Second}}]}
"#;

fn fixture() -> (Store, Compiler) {
    fixture_with("")
}

fn fixture_with(extra: &str) -> (Store, Compiler) {
    let mut store = Store::new();
    for text in [FIXTURE, extra] {
        for object in parse_documents(text).expect("fixture parses").objects {
            store.insert(object);
        }
    }
    let compiler = Compiler::build(&store, CompileOptions::default());
    (store, compiler)
}

#[test]
fn policies_of_the_rule_and_its_backends_are_named() {
    let (store, compiler) = fixture_with(POLICIES);
    // The fixture's orphan route and missing Service are problems; the policies are not.
    let problems = compiler.status().problems();
    assert!(
        !problems.iter().any(|p| p.contains("Policy")),
        "{problems:?}"
    );
    let request = ExplainRequest::parse("GET", "http://shop.example.com/", &[] as &[&str], None)
        .expect("parses");
    let explanation = compiler.explain(&store, &request).expect("explains");
    let matched = explanation.matched.as_ref().expect("matched");
    assert_eq!(
        matched.policies.rate_limit.as_deref(),
        Some("RateLimitPolicy infra/limits")
    );
    assert_eq!(matched.policies.security, None);
    let Action::Forward { backends } = &matched.action else {
        panic!("forwards");
    };
    assert_eq!(
        backends[0].traffic_policy.as_deref(),
        Some("BackendTrafficPolicy infra/balance")
    );
    let text = explanation.to_string();
    assert!(
        text.contains("policies: RateLimitPolicy infra/limits"),
        "{text}"
    );
    assert!(
        text.contains("BackendTrafficPolicy infra/balance"),
        "{text}"
    );
    // Without the policies, none is named.
    let explanation = explain("GET", "http://shop.example.com/", &[]);
    let matched = explanation.matched.as_ref().expect("matched");
    assert_eq!(matched.policies.rate_limit, None);
}

fn explain(method: &str, url: &str, headers: &[&str]) -> Explanation {
    let (store, compiler) = fixture();
    let request = ExplainRequest::parse(method, url, headers, None).expect("request parses");
    compiler.explain(&store, &request).expect("explains")
}

fn route<'a>(explanation: &'a Explanation, label: &str) -> &'a RouteExplanation {
    explanation
        .routes
        .iter()
        .find(|r| r.route == label)
        .unwrap_or_else(|| panic!("no {label} in {:#?}", explanation.routes))
}

fn rule_match<'a>(explanation: &'a Explanation, label: &str, rule: u32) -> &'a MatchExplanation {
    let route = route(explanation, label);
    let rule = route
        .rules
        .iter()
        .find(|r| r.rule == rule)
        .unwrap_or_else(|| panic!("no rules[{rule}] in {route:#?}"));
    &rule.matches[0]
}

#[test]
fn canary_header_wins_over_the_default_rule_by_header_count() {
    let explanation = explain("GET", "http://shop.example.com/", &["qa: canary-test"]);
    assert_eq!(explanation.outcome, Outcome::Matched);
    let socket = explanation.socket.as_ref().expect("socket");
    assert_eq!(socket.address, "127.0.0.9:80");
    assert_eq!(socket.others, ["127.0.0.9:8080"]);
    let listener = explanation.listener.as_ref().expect("listener");
    assert_eq!(
        (&*listener.namespace, &*listener.gateway, &*listener.name),
        ("infra", "gw", "shop")
    );
    assert_eq!(listener.isolated.len(), 2, "{:?}", listener.isolated);
    let matched = explanation.matched.as_ref().expect("matched");
    assert_eq!(matched.rule_name, "HTTPRoute infra/shop rules[0]");
    assert_eq!(matched.hostname, "shop.example.com");
    assert_eq!(matched.conditions.headers, ["qa Exact canary-test"]);
    assert_eq!(matched.beats.len(), 1);
    assert_eq!(matched.beats[0].criterion, "header_count");
    let Action::Forward { backends } = &matched.action else {
        panic!("forwards");
    };
    assert_eq!(backends[0].percent, 75.0);
    assert_eq!(backends[0].endpoints[0].address, "10.0.0.1");
    assert_eq!(backends[0].endpoints[0].port, 3000);
    assert!(backends[1].invalid.is_some(), "{:?}", backends[1]);
    let default = rule_match(&explanation, "HTTPRoute infra/shop", 1);
    assert_eq!(default.result, RouteResult::Lost);
    let Some(Reason::Precedence {
        winner, criterion, ..
    }) = &default.reason
    else {
        panic!("{default:?}");
    };
    assert_eq!(
        (winner.as_str(), *criterion),
        ("HTTPRoute infra/shop rules[0] match 0", "header_count")
    );
    let text = explanation.to_string();
    assert!(
        text.contains("matched:  HTTPRoute infra/shop rules[0]"),
        "{text}"
    );
    assert!(
        text.contains("more header matches win: 1 against 0"),
        "{text}"
    );
}

#[test]
fn each_condition_kind_is_named() {
    let explanation = explain("GET", "http://shop.example.com/q?v=1", &[]);
    let header = rule_match(&explanation, "HTTPRoute infra/shop", 0);
    assert!(
        matches!(&header.reason, Some(Reason::Header { name, actual, .. }) if name == "qa" && actual.is_empty()),
        "{header:?}"
    );
    let path = rule_match(&explanation, "HTTPRoute infra/shop", 2);
    assert!(
        matches!(&path.reason, Some(Reason::Path { expected, .. }) if expected == "Exact /cart"),
        "{path:?}"
    );
    let query = rule_match(&explanation, "HTTPRoute infra/shop", 3);
    assert!(
        matches!(&query.reason, Some(Reason::Query { name, .. }) if name == "v"),
        "{query:?}"
    );
    let explanation = explain("GET", "http://shop.example.com/cart", &[]);
    let method = rule_match(&explanation, "HTTPRoute infra/shop", 2);
    assert!(
        matches!(&method.reason, Some(Reason::Method { expected, .. }) if expected == "POST"),
        "{method:?}"
    );
    let explanation = explain("GET", "http://shop.example.com/q?v=2", &[]);
    let matched = explanation.matched.as_ref().expect("matched");
    assert_eq!(matched.rule, 3);
    assert_eq!(matched.beats[0].criterion, "path_length");
}

#[test]
fn routes_elsewhere_say_where_they_are() {
    let explanation = explain("GET", "http://shop.example.com/", &[]);
    let generic = route(&explanation, "HTTPRoute infra/generic");
    assert_eq!(generic.result, RouteResult::NotConsidered);
    assert!(
        matches!(&generic.reason, Some(Reason::ListenerIsolation { listener, chosen })
            if listener.contains("listener any") && chosen.contains("listener shop")),
        "{generic:?}"
    );
    let other = route(&explanation, "HTTPRoute infra/other-port");
    assert!(
        matches!(&other.reason, Some(Reason::OtherSocket { listeners }) if listeners[0].contains("127.0.0.9:8080")),
        "{other:?}"
    );
    let orphan = route(&explanation, "HTTPRoute infra/orphan");
    let Some(Reason::NotAttached { conditions }) = &orphan.reason else {
        panic!("{orphan:?}");
    };
    assert!(
        conditions.iter().any(|c| c.contains("NoMatchingParent")),
        "{conditions:?}"
    );
    // On the listener without hostname, the shop listener's route does not see other hosts.
    let explanation = explain("GET", "http://foo.org/", &[]);
    let shop = route(&explanation, "HTTPRoute infra/shop");
    assert!(
        matches!(&shop.reason, Some(Reason::ListenerHostname { listeners }) if listeners[0].contains("listener shop")),
        "{shop:?}"
    );
}

#[test]
fn route_hostnames_decide_and_are_named() {
    let explanation = explain("GET", "http://foo.org/", &[]);
    assert_eq!(
        explanation.matched.as_ref().map(|m| &*m.rule_name),
        Some("HTTPRoute infra/generic rules[0]")
    );
    let named = rule_match(&explanation, "HTTPRoute infra/named", 0);
    assert!(
        matches!(&named.reason, Some(Reason::Hostname { hostnames, .. }) if hostnames == &["named.example.org"]),
        "{named:?}"
    );
    let explanation = explain("GET", "http://named.example.org/", &[]);
    // The winner leads the list (before `generic`, which sorts first by name).
    assert_eq!(explanation.routes[0].route, "HTTPRoute infra/named");
    assert_eq!(
        explanation.matched.as_ref().map(|m| &*m.rule_name),
        Some("HTTPRoute infra/named rules[0]")
    );
    let generic = rule_match(&explanation, "HTTPRoute infra/generic", 0);
    assert!(
        matches!(
            &generic.reason,
            Some(Reason::Precedence {
                criterion: "hostname",
                ..
            })
        ),
        "{generic:?}"
    );
}

#[test]
fn requests_nothing_serves_say_so() {
    let explanation = explain("GET", "https://shop.example.com/", &[]);
    assert_eq!(explanation.outcome, Outcome::NoSocket);
    assert!(explanation.matched.is_none());
    let explanation = explain("GET", "http://shop.example.com:9999/", &[]);
    assert_eq!(explanation.outcome, Outcome::NoSocket);
    let explanation = explain("GET", "http://shop.example.com/%2e%2", &[]);
    assert_eq!(explanation.outcome, Outcome::InvalidPath, "{explanation}");
    let explanation = explain("GET", "http://x.org:8080/", &[]);
    assert_eq!(explanation.outcome, Outcome::Matched);
    let explanation = explain("GET", "http://x.org/", &["host: y.org:8080"]);
    assert_eq!(explanation.request.host, "y.org");
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let (store, compiler) = fixture();
    let parse = |method, url, headers: &[&str], gateway| {
        ExplainRequest::parse(method, url, headers, gateway).map(|_| ())
    };
    assert!(matches!(
        parse("GET", "shop.example.com/", &[], None),
        Err(ExplainError::Url { .. })
    ));
    assert!(matches!(
        parse("GET", "ftp://shop/", &[], None),
        Err(ExplainError::Url { .. })
    ));
    assert!(matches!(
        parse("G T", "http://shop/", &[], None),
        Err(ExplainError::Method(_))
    ));
    assert!(matches!(
        parse("GET", "http://shop/", &["no-colon"], None),
        Err(ExplainError::Header(_))
    ));
    assert!(matches!(
        parse("GET", "http://shop/", &[], Some("gw")),
        Err(ExplainError::GatewayFormat(_))
    ));
    let request = ExplainRequest::parse("GET", "http://shop/", &[] as &[&str], Some("infra/nope"))
        .expect("parses");
    let error = compiler.explain(&store, &request).expect_err("unknown");
    assert!(error.to_string().contains("infra/gw"), "{error}");
    let request = ExplainRequest::parse("GET", "http://shop/", &[] as &[&str], Some("infra/gw"))
        .expect("parses");
    assert!(compiler.explain(&store, &request).is_ok());
}

/// The winner explain names is `find`'s, and the per-match reasons replay the same
/// precedence: the best held match by (route hostname specificity, precedence) is `find`'s.
#[test]
fn explanation_agrees_with_find() {
    let (store, compiler) = fixture();
    let requests: &[(&str, &str, &[&str])] = &[
        ("GET", "http://shop.example.com/", &["qa: canary-test"]),
        ("GET", "http://shop.example.com/", &[]),
        ("POST", "http://shop.example.com/cart", &[]),
        ("GET", "http://shop.example.com/cart", &["qa: canary-test"]),
        ("GET", "http://shop.example.com/q?v=2", &["qa: x"]),
        ("GET", "http://named.example.org/a", &[]),
        ("GET", "http://foo.org/", &[]),
        ("GET", "http://a.example.com/", &[]),
        ("GET", "http://x.org:8080/", &[]),
    ];
    for (method, url, headers) in requests {
        let request = ExplainRequest::parse(method, url, headers, None).expect("parses");
        let explanation = compiler.explain(&store, &request).expect("explains");
        let socket: std::net::SocketAddr = explanation
            .socket
            .as_ref()
            .expect("socket")
            .address
            .parse()
            .expect("address");
        let listener = compiler.snapshot().sockets[&socket]
            .listeners
            .most_specific(&request.host)
            .expect("listener");
        let view = RequestView {
            method: &request.method,
            host: &request.host,
            path: &request.path,
            query: request.query.as_deref(),
            headers: &request.headers,
        };
        let found = listener
            .table
            .find(&view)
            .map(|hit| hit.target.name.to_string());
        let named = explanation.matched.as_ref().map(|m| m.rule_name.clone());
        assert_eq!(named, found, "{method} {url}");
        // Replay: every held match of every hostname bucket, best first.
        let mut held: Vec<(
            &HostPattern,
            &Arc<router::RouteEntry<Arc<snapshot::RouteRule>>>,
        )> = Vec::new();
        for (pattern, routes) in listener.table.hosts() {
            for entry in routes.entries() {
                if pattern.matches(&request.host) && entry.matching().matches(&view) {
                    held.push((pattern, entry));
                }
            }
        }
        held.sort_by(|a, b| {
            evaluate_specificity(a.0)
                .cmp(&evaluate_specificity(b.0))
                .then_with(|| {
                    decide_precedence((a.1.matching(), a.1.order()), (b.1.matching(), b.1.order()))
                        .0
                })
        });
        let replayed = held
            .first()
            .map(|(_, entry)| entry.target().name.to_string());
        assert_eq!(replayed, found, "{method} {url}");
        let won: usize = explanation
            .routes
            .iter()
            .flat_map(|r| &r.rules)
            .flat_map(|r| &r.matches)
            .filter(|m| m.result == RouteResult::Won)
            .count();
        assert_eq!(won, usize::from(found.is_some()), "{method} {url}");
        for lost in explanation
            .routes
            .iter()
            .flat_map(|r| &r.rules)
            .flat_map(|r| &r.matches)
            .filter(|m| m.result == RouteResult::Lost)
        {
            let Some(Reason::Precedence { winner, .. }) = &lost.reason else {
                panic!("{lost:?}");
            };
            let found = found.as_deref().unwrap_or("none");
            assert!(winner.starts_with(found), "{winner} vs {found}");
        }
        let mut held_entries: Vec<*const router::RouteEntry<Arc<snapshot::RouteRule>>> =
            held.iter().map(|(_, entry)| Arc::as_ptr(entry)).collect();
        held_entries.sort();
        held_entries.dedup();
        let explained_held = explanation
            .routes
            .iter()
            .flat_map(|r| &r.rules)
            .flat_map(|r| &r.matches)
            .filter(|m| m.result != RouteResult::NoMatch)
            .count();
        assert_eq!(held_entries.len(), explained_held, "{method} {url}");
    }
}

fn evaluate_specificity(pattern: &HostPattern) -> (u8, std::cmp::Reverse<usize>) {
    match pattern {
        HostPattern::Exact(_) => (0, std::cmp::Reverse(0)),
        HostPattern::Wildcard(suffix) => (1, std::cmp::Reverse(suffix.len())),
        HostPattern::Any => (2, std::cmp::Reverse(0)),
    }
}

#[test]
fn json_field_names_are_stable() {
    let explanation = explain("GET", "http://shop.example.com/", &["qa: canary-test"]);
    let json = serde_json::to_value(&explanation).expect("serializes");
    assert_eq!(json["outcome"], "matched");
    assert_eq!(json["matched"]["rule"], 0);
    assert_eq!(json["matched"]["match"], 0);
    assert_eq!(json["matched"]["action"]["kind"], "forward");
    assert_eq!(json["listener"]["gateway"], "gw");
    let shop = json["routes"]
        .as_array()
        .and_then(|routes| routes.iter().find(|r| r["route"] == "HTTPRoute infra/shop"))
        .expect("shop");
    assert_eq!(
        shop["rules"][1]["matches"][0]["reason"]["kind"],
        "precedence"
    );
    assert_eq!(
        shop["rules"][1]["matches"][0]["reason"]["criterion"],
        "header_count"
    );
}
