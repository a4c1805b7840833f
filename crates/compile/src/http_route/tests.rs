//! HTTPRoute rule tests: `retry` validation as the Gateway API v1.6 CRD does it (standalone mode
//! has no API server to refuse a bad value before compile sees it).

use crate::ConditionStatus;
use crate::tests::{compile_yaml, object, parent_condition};

/// An HTTPRoute in `infra` on the BASE Gateway's `http` listener whose first rule carries
/// `retry` (flow-style YAML) and a second, valid rule.
fn route_with_retry(retry: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw, sectionName: http}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /retried}}}}]\n    retry: {retry}\n    backendRefs: [{{name: web, port: 8080}}]\n  - backendRefs: [{{name: web, port: 8080}}]\n"
    )
}

/// The `PartiallyInvalid` message of route `infra/r`, or `None` when the route is healthy.
fn partially_invalid(retry: &str) -> Option<String> {
    let compiled = compile_yaml(&route_with_retry(retry));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    assert_eq!(parent_condition(status, "Accepted").reason, "Accepted");
    status.parents[0]
        .conditions
        .iter()
        .find(|c| c.kind == "PartiallyInvalid" && c.status == ConditionStatus::True)
        .map(|c| c.message.to_string())
}

#[test]
fn retry_attempts_zero_is_refused_since_v1_6() {
    let message = partially_invalid("{attempts: 0, codes: [503]}").expect("rule dropped");
    assert!(
        message.contains(
            "HTTPRoute infra/r rules[0].retry.attempts: 0 must be at least 1 (leave retry out for no retries)"
        ),
        "{message}"
    );
}

#[test]
fn retry_attempts_negative_is_refused() {
    let message = partially_invalid("{attempts: -2}").expect("rule dropped");
    assert!(
        message.contains("rules[0].retry.attempts: -2 must be at least 1"),
        "{message}"
    );
}

#[test]
fn retry_codes_are_a_set() {
    let message = partially_invalid("{attempts: 2, codes: [500, 503, 500]}").expect("rule dropped");
    assert!(
        message.contains(
            "HTTPRoute infra/r rules[0].retry.codes[2]: 500 is already listed at codes[0]; codes is a set"
        ),
        "{message}"
    );
}

#[test]
fn retry_codes_outside_4xx_5xx_are_refused() {
    let message = partially_invalid("{codes: [302]}").expect("rule dropped");
    assert!(
        message.contains("rules[0].retry.codes[0]: 302 is not a 4xx or 5xx status"),
        "{message}"
    );
}

#[test]
fn valid_retry_keeps_the_rule_with_its_attempts() {
    assert_eq!(
        partially_invalid("{attempts: 1, codes: [500, 502], backoff: 10ms}"),
        None
    );
    assert_eq!(partially_invalid("{}"), None, "every field is optional");
}
