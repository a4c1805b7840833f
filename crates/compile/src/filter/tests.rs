//! Filter lists through the whole `compile`: every bad filter of a rule is reported.

use crate::ConditionStatus;
use crate::tests::{compile_yaml, lookup, object, parent_condition};

fn route_with_filters(filters: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\n\
         spec:\n  parentRefs: [{{name: gw, sectionName: http}}]\n  rules:\n  - backendRefs: [{{name: web, port: 8080}}]\n    filters:\n{filters}\n"
    )
}

#[test]
fn every_bad_filter_of_a_rule_is_reported() {
    let compiled = compile_yaml(&route_with_filters(
        "    - {type: RequestHeaderModifier}\n\
         \x20   - {type: RequestRedirect, requestRedirect: {statusCode: 200}}\n\
         \x20   - {type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-ok, value: ok}]}}",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    let missing = "HTTPRoute infra/r rules[0].filters[0]: type RequestHeaderModifier needs the requestHeaderModifier field";
    let status_code = "HTTPRoute infra/r rules[0].filters[1].requestRedirect.statusCode: 200 is not 301, 302, 303, 307 or 308";
    assert_eq!(
        status.problems,
        vec![missing.to_owned(), status_code.to_owned()]
    );
    // The rule is dropped as before: with no other rule, the route is not accepted.
    let accepted = parent_condition(status, "Accepted");
    assert_eq!(accepted.status, ConditionStatus::False);
    assert_eq!(accepted.reason, "UnsupportedValue");
    assert_eq!(
        accepted.message,
        format!("no valid rule: {missing}; {status_code}")
    );
    assert_eq!(lookup(&compiled, "127.0.0.9:80", "h", "/"), None);
}

#[test]
fn a_dropped_rule_does_not_resolve_mirrors_after_its_first_bad_filter() {
    let compiled = compile_yaml(&route_with_filters(
        "    - {type: ExtensionRef, extensionRef: {group: example.com, kind: Auth, name: a}}\n\
         \x20   - {type: RequestMirror, requestMirror: {backendRef: {name: missing, port: 8080}, percent: 101}}\n\
         \x20   - {type: RequestMirror, requestMirror: {backendRef: {name: missing, port: 8080}}}",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    // The second mirror is checked (its percent is wrong), the third is valid: neither backendRef
    // is resolved, so no ResolvedRefs problem is added for a rule that is dropped anyway.
    assert_eq!(
        status.problems,
        vec![
            "HTTPRoute infra/r rules[0].filters[0]: ExtensionRef example.com/Auth a is not supported: the only extension filter kind is portcullis.dev/Composition".to_owned(),
            "HTTPRoute infra/r rules[0].filters[1].requestMirror.percent: 101 is not between 0 and 100".to_owned(),
        ]
    );
    assert_eq!(
        parent_condition(status, "ResolvedRefs").status,
        ConditionStatus::True
    );
}

#[test]
fn redirect_and_rewrite_together_are_reported_with_the_other_problems() {
    let compiled = compile_yaml(&route_with_filters(
        "    - {type: RequestRedirect, requestRedirect: {scheme: https}}\n\
         \x20   - {type: URLRewrite, urlRewrite: {hostname: a.example.com}}\n\
         \x20   - {type: CORS, cors: {maxAge: 0}}",
    ));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(
        status.problems,
        vec![
            "HTTPRoute infra/r rules[0].filters[2].cors.maxAge: 0 must be at least 1 (seconds)".to_owned(),
            "HTTPRoute infra/r rules[0].filters: RequestRedirect and URLRewrite cannot be used together".to_owned(),
        ]
    );
}
