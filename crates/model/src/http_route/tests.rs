//! The compact HTTPRoute reads what the generated type reads, field for field, and is smaller.

use serde_json::Value;

use crate::{Object, parse_documents};

/// A route that sets every field the compact type keeps: each filter type on the rule, a
/// backendRef filter, matches, retry, session persistence and timeouts.
const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop, generation: 3}
spec:
  parentRefs: [{name: gw, sectionName: http, port: 80}]
  hostnames: [shop.example]
  rules:
  - name: all
    matches:
    - path: {type: PathPrefix, value: /api}
      method: GET
      headers: [{name: x-a, value: b}]
      queryParams: [{type: RegularExpression, name: q, value: "^x"}]
    filters:
    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value: b}], remove: [c]}}
    - {type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: d, value: e}]}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, fraction: {numerator: 1, denominator: 4}}}
    - {type: URLRewrite, urlRewrite: {hostname: h.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}
    - {type: CORS, cors: {allowOrigins: ["https://a.example"], allowCredentials: true, maxAge: 60}}
    - {type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: auth, port: 9000}, http: {path: /check}}}
    - {type: ExtensionRef, extensionRef: {group: portcullis.dev, kind: Composition, name: page}}
    backendRefs:
    - name: web
      port: 80
      weight: 3
      filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
    retry: {attempts: 2, backoff: 100ms, codes: [503]}
    sessionPersistence: {type: Cookie, sessionName: s, absoluteTimeout: 1h}
    timeouts: {request: 10s, backendRequest: 2s}
status:
  parents: []
"#;

#[test]
fn reads_every_field_the_generated_type_reads() {
    let parsed = parse_documents(ROUTE).expect("a valid route");
    let [Object::HttpRoute(route)] = parsed.objects.as_slice() else {
        panic!("one HTTPRoute, got {:?}", parsed.objects)
    };
    let compact = serde_json::to_value(route.as_ref()).expect("serializable");

    let document: Value = serde_saphyr::from_str(ROUTE).expect("YAML");
    let generated: ::gateway_api::experimental::httproutes::HttpRoute =
        serde_json::from_value(document).expect("the generated type reads the route");
    let mut generated = serde_json::to_value(&generated).expect("serializable");
    let object = generated.as_object_mut().expect("an object");
    // Written by the generated type's serializer, not kept by ours (see the module doc).
    for unkept in ["apiVersion", "kind", "status"] {
        object.remove(unkept);
    }
    // The backendRef's filter is the rule's type here: its JSON is the same.
    assert_eq!(compact, generated);
}

#[test]
fn a_filter_is_a_tenth_of_the_generated_one() {
    let compact = size_of::<crate::gateway_api::HttpRouteRulesFilters>();
    let generated = size_of::<::gateway_api::experimental::httproutes::HttpRouteRulesFilters>();
    assert!(compact * 10 <= generated, "{compact} vs {generated} bytes");
    let rule = size_of::<crate::gateway_api::HttpRouteRules>();
    let generated_rule = size_of::<::gateway_api::experimental::httproutes::HttpRouteRules>();
    assert!(
        rule * 2 <= generated_rule,
        "{rule} vs {generated_rule} bytes"
    );
}

#[test]
fn a_bad_filter_field_is_named_by_its_path() {
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: shop}\nspec:\n  rules:\n  - backendRefs:\n    - name: web\n      filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a}]}}]\n";
    let message = parse_documents(text)
        .expect_err("a header without a value")
        .to_string();
    assert_eq!(
        message,
        "document 1 (HTTPRoute shop/web): spec.rules[0].backendRefs[0].filters[0].requestHeaderModifier.set[0]: missing field `value`"
    );
}
