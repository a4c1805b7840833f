use std::sync::Arc;

use snapshot::backend::policy::{Balancer, HashKey};

use crate::tests::{compile_yaml, object};
use crate::{Compiled, ObjectStatus};

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: infra}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - name: api\n    matches: [{path: {type: PathPrefix, value: /api}}]\n    backendRefs: [{name: web, port: 8080}]\n  - backendRefs: [{name: web, port: 8080}]\n";

fn policy(name: &str, targets: &str, body: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {{name: {name}, namespace: infra}}\nspec:\n  targetRefs: {targets}\n{body}"
    )
}

fn backend_ids(compiled: &Compiled) -> Vec<String> {
    let mut ids: Vec<String> = compiled
        .snapshot
        .backends
        .iter()
        .map(|b| b.id.to_string())
        .collect();
    ids.sort();
    ids
}

/// The rule `GET h{path}` matches on the test Gateway's listener.
fn rule_for<'a>(compiled: &'a Compiled, path: &str) -> &'a snapshot::RouteRule {
    crate::tests::reach(compiled, "127.0.0.9:80", "h", path)
        .expect("a rule")
        .1
}

fn accepted(status: &ObjectStatus) -> (&str, &str) {
    let condition = status
        .conditions
        .iter()
        .find(|c| c.kind == "Accepted")
        .expect("Accepted");
    (condition.reason, condition.message.as_ref())
}

#[test]
fn service_policy_sets_the_backend_settings() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "lb",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: ConsistentHash, consistentHash: {type: Header, header: {name: x-user}}}\n"
        )
    ));
    assert_eq!(
        backend_ids(&compiled),
        vec!["Service infra/web:8080".to_owned()]
    );
    let backend = &compiled.snapshot.backends[0];
    assert_eq!(
        backend.policy.balancer,
        Balancer::ConsistentHash(HashKey::Header(http::HeaderName::from_static("x-user")))
    );
    let (reason, message) = accepted(object(&compiled, "BackendTrafficPolicy", "infra", "lb"));
    assert_eq!(reason, "Accepted");
    assert!(message.contains("Service infra/web"), "{message}");
}

#[test]
fn route_rule_policy_gives_the_backend_its_own_identity() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "api",
            "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: api}]",
            "  loadBalancer: {type: RoundRobin}\n"
        )
    ));
    assert_eq!(
        backend_ids(&compiled),
        vec![
            "Service infra/web:8080".to_owned(),
            "Service infra/web:8080 [BackendTrafficPolicy infra/api]".to_owned()
        ]
    );
    let scoped = compiled
        .snapshot
        .backends
        .iter()
        .find(|b| b.id.as_str().contains("["))
        .expect("scoped");
    assert_eq!(scoped.policy.balancer, Balancer::RoundRobin);
    let plain = compiled
        .snapshot
        .backends
        .iter()
        .find(|b| !b.id.as_str().contains("["))
        .expect("plain");
    assert_eq!(plain.policy.balancer, Balancer::PeakEwma);
}

#[test]
fn service_policy_is_more_specific_than_route_policy() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy(
            "route",
            "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]",
            "  loadBalancer: {type: RoundRobin}\n"
        ),
        policy(
            "service",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: Random}\n"
        ),
    ));
    assert_eq!(
        backend_ids(&compiled),
        vec!["Service infra/web:8080".to_owned()]
    );
    assert_eq!(
        compiled.snapshot.backends[0].policy.balancer,
        Balancer::Random
    );
}

#[test]
fn older_policy_wins_a_conflict() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy(
            "a-first",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: Random}\n"
        ),
        policy(
            "b-second",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: RoundRobin}\n"
        ),
    ));
    assert_eq!(
        compiled.snapshot.backends[0].policy.balancer,
        Balancer::Random
    );
    assert_eq!(
        accepted(object(
            &compiled,
            "BackendTrafficPolicy",
            "infra",
            "b-second"
        ))
        .0,
        "Conflicted"
    );
}

#[test]
fn invalid_fields_are_named() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "bad",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: Fastest}\n  healthCheck: {passive: {interval: 5 seconds}}\n"
        )
    ));
    let status = object(&compiled, "BackendTrafficPolicy", "infra", "bad");
    assert_eq!(accepted(status).0, "Invalid");
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains("spec.loadBalancer.type")),
        "{:?}",
        status.problems
    );
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains("spec.healthCheck.passive.interval")),
        "{:?}",
        status.problems
    );
    assert!(Arc::ptr_eq(
        &compiled.snapshot.backends[0].policy,
        &compiled.snapshot.backends[0].policy
    ));
    assert_eq!(
        compiled.snapshot.backends[0].policy.balancer,
        Balancer::PeakEwma
    );
}

#[test]
fn missing_target_is_target_not_found() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy("lost", "[{group: \"\", kind: Service, name: nope}]", "")
    ));
    assert_eq!(
        accepted(object(&compiled, "BackendTrafficPolicy", "infra", "lost")).0,
        "TargetNotFound"
    );
}

#[test]
fn policy_retry_applies_to_rules_without_their_own() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "retry",
            "[{group: \"\", kind: Service, name: web}]",
            "  retry:\n    numRetries: 3\n    retryOn: {triggers: [connect-failure, retriable-status-codes], httpStatusCodes: [503]}\n    perRetry: {timeout: 1s, backOff: {baseInterval: 10ms, maxInterval: 100ms}}\n    budget: {percent: 20, minRetriesPerSecond: 5}\n"
        )
    ));
    let rule = rule_for(&compiled, "/x");
    let retry = rule.retry.as_ref().expect("policy retry applies");
    assert_eq!(retry.attempts, 3);
    assert!(retry.triggers.connect_failure && !retry.triggers.reset);
    assert_eq!(retry.triggers.status_codes, vec![503]);
    assert_eq!(
        retry.per_try_timeout,
        Some(std::time::Duration::from_secs(1))
    );
    assert_eq!(retry.budget.as_ref().map(|b| b.percent()), Some(20));
}

#[test]
fn bad_retry_trigger_is_named() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "retry",
            "[{group: \"\", kind: Service, name: web}]",
            "  retry: {retryOn: {triggers: [sometimes]}}\n"
        )
    ));
    let status = object(&compiled, "BackendTrafficPolicy", "infra", "retry");
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains("spec.retry.retryOn.triggers[0]")),
        "{:?}",
        status.problems
    );
}

#[test]
fn httproute_retry_without_backoff_pauses_the_default_backoff() {
    let route = ROUTE.replace(
        "  - backendRefs: [{name: web, port: 8080}]\n",
        "  - backendRefs: [{name: web, port: 8080}]\n    retry: {attempts: 2}\n",
    );
    let compiled = compile_yaml(&route);
    let rule = rule_for(&compiled, "/x");
    let retry = rule.retry.as_ref().expect("HTTPRoute retry");
    assert_eq!(retry.attempts, 2);
    assert_eq!(retry.backoff, snapshot::Backoff::DEFAULT_RETRY);
    assert!(!retry.backoff.base.is_zero());
}

/// A second Gateway of ours, `other`, with a route `r2` using Service `web` there too.
const OTHER_GATEWAY: &str = "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: other, namespace: infra}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{value: 127.0.0.10}]\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r2, namespace: infra}\nspec:\n  parentRefs: [{name: other}]\n  rules: [{backendRefs: [{name: web, port: 8080}]}]\n";

/// The policy's ancestors as `name[/section]: Accepted reason`.
fn ancestors(compiled: &Compiled, name: &str) -> Vec<String> {
    let status = object(compiled, "BackendTrafficPolicy", "infra", name);
    status
        .ancestors
        .iter()
        .map(|ancestor| {
            let reference = &ancestor.ancestor_ref;
            assert_eq!(
                (reference.kind.as_ref(), reference.namespace.as_str()),
                ("Gateway", "infra")
            );
            let accepted = ancestor
                .conditions
                .iter()
                .find(|c| c.kind == "Accepted")
                .expect("Accepted on the ancestor");
            let section = reference
                .section_name
                .as_ref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            format!("{}{section}: {}", reference.name, accepted.reason)
        })
        .collect()
}

#[test]
fn service_policy_ancestors_are_the_gateways_whose_routes_use_it() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{OTHER_GATEWAY}{}{}",
        policy("lb", "[{group: \"\", kind: Service, name: web}]", ""),
        policy(
            "port",
            "[{group: \"\", kind: Service, name: web, sectionName: http}]",
            ""
        ),
    ));
    assert_eq!(
        ancestors(&compiled, "lb"),
        vec!["gw: Accepted", "other: Accepted"]
    );
    assert_eq!(
        ancestors(&compiled, "port"),
        vec!["gw: Accepted", "other: Accepted"]
    );
}

#[test]
fn backend_policy_ancestors_follow_the_routes_using_it() {
    let compiled = compile_yaml(&format!(
        "{}{}",
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {name: ext, namespace: infra}\nspec: {endpoints: [{ip: 10.1.0.1, port: 80}]}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: infra}\nspec:\n  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{group: portcullis.dev, kind: Backend, name: ext}]}]\n",
        policy(
            "ext",
            "[{group: portcullis.dev, kind: Backend, name: ext}]",
            ""
        ),
    ));
    assert_eq!(ancestors(&compiled, "ext"), vec!["gw: Accepted"]);
}

#[test]
fn route_policy_ancestors_are_the_routes_parent_gateways() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{OTHER_GATEWAY}{}{}",
        policy(
            "rule",
            "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: api}]",
            ""
        ),
        policy(
            "route2",
            "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r2}]",
            ""
        ),
    ));
    assert_eq!(ancestors(&compiled, "rule"), vec!["gw: Accepted"]);
    assert_eq!(ancestors(&compiled, "route2"), vec!["other: Accepted"]);
}

#[test]
fn gateway_policy_ancestor_is_the_gateway_or_its_listener() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy(
            "whole",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]",
            ""
        ),
        policy(
            "listener",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}]",
            ""
        ),
    ));
    assert_eq!(ancestors(&compiled, "whole"), vec!["gw: Accepted"]);
    assert_eq!(ancestors(&compiled, "listener"), vec!["gw/http: Accepted"]);
}

#[test]
fn refused_policies_carry_their_reason_on_their_ancestors() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}{}",
        policy(
            "invalid",
            "[{group: \"\", kind: Service, name: web}]",
            "  loadBalancer: {type: Nope}\n"
        ),
        policy_created(
            "old",
            "2020-01-01T00:00:00Z",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]"
        ),
        policy_created(
            "young",
            "2024-01-01T00:00:00Z",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]"
        ),
    ));
    assert_eq!(ancestors(&compiled, "invalid"), vec!["gw: Invalid"]);
    assert_eq!(ancestors(&compiled, "old"), vec!["gw: Accepted"]);
    assert_eq!(ancestors(&compiled, "young"), vec!["gw: Conflicted"]);
}

#[test]
fn policy_under_no_gateway_of_ours_has_no_ancestor_but_keeps_its_conditions() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}{}",
        policy("lost", "[{group: \"\", kind: Service, name: nope}]", ""),
        // A Service no route of ours uses: the policy applies, but under no Gateway.
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: idle, namespace: infra}\nspec: {ports: [{port: 80}]}\n"
            .to_owned()
            + &policy("idle", "[{group: \"\", kind: Service, name: idle}]", ""),
    ));
    for name in ["lost", "idle"] {
        assert!(ancestors(&compiled, name).is_empty(), "{name}");
    }
    let status = object(&compiled, "BackendTrafficPolicy", "infra", "lost");
    assert_eq!(accepted(status).0, "TargetNotFound");
    assert_eq!(
        accepted(object(&compiled, "BackendTrafficPolicy", "infra", "idle")).0,
        "Accepted"
    );
}

fn policy_created(name: &str, created: &str, targets: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {{name: {name}, namespace: infra, creationTimestamp: \"{created}\"}}\nspec:\n  targetRefs: {targets}\n"
    )
}

#[test]
fn policy_on_a_missing_port_shows_why_on_the_gateways_using_the_service() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        policy(
            "port",
            "[{group: \"\", kind: Service, name: web, sectionName: nope}]",
            ""
        ),
    ));
    assert_eq!(ancestors(&compiled, "port"), vec!["gw: TargetNotFound"]);
}
