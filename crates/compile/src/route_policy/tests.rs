//! SecurityPolicy and RateLimitPolicy: validation, attachment, precedence and status.

use crate::tests::{compile_yaml, object};
use crate::{CompileOptions, Compiled, ObjectStatus, compile};

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: infra}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - name: api\n    matches: [{path: {type: PathPrefix, value: /api}}]\n    backendRefs: [{name: web, port: 8080}]\n  - backendRefs: [{name: web, port: 8080}]\n";

const KEYS: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: keys, namespace: infra}\nstringData: {alice: key-a, bob: key-b}\n";

fn security(name: &str, targets: &str, body: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: {name}, namespace: infra}}\nspec:\n  targetRefs: {targets}\n{body}"
    )
}

fn rate_limit(name: &str, targets: &str, body: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: {{name: {name}, namespace: infra}}\nspec:\n  targetRefs: {targets}\n{body}"
    )
}

const API_KEYS: &str = "  apiKeyAuth: {credentialRefs: [{name: keys}]}\n";
const ROUTE_TARGET: &str = "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]";
const RULE_TARGET: &str =
    "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: api}]";
const GATEWAY_TARGET: &str = "[{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]";

/// The listener and rule `GET h{path}` reaches on the test Gateway's `http` listener.
fn reached<'a>(
    compiled: &'a Compiled,
    path: &str,
) -> (&'a snapshot::ListenerRoutes, &'a snapshot::RouteRule) {
    let (listener, rule) =
        crate::tests::reach(compiled, "127.0.0.9:80", "h", path).expect("a rule");
    (listener, rule)
}

fn security_label(compiled: &Compiled, path: &str) -> Option<String> {
    let (listener, rule) = reached(compiled, path);
    listener.security_of(rule).map(|p| p.label.to_string())
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
fn the_most_specific_attachment_wins() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{KEYS}{}{}{}",
        security("gateway", GATEWAY_TARGET, API_KEYS),
        security("route", ROUTE_TARGET, API_KEYS),
        security("rule", RULE_TARGET, API_KEYS),
    ));
    assert_eq!(
        security_label(&compiled, "/api/x").as_deref(),
        Some("SecurityPolicy infra/rule")
    );
    assert_eq!(
        security_label(&compiled, "/other").as_deref(),
        Some("SecurityPolicy infra/route")
    );
    for name in ["gateway", "route", "rule"] {
        let status = object(&compiled, "SecurityPolicy", "infra", name);
        assert_eq!(accepted(status).0, "Accepted", "{name}: {status:?}");
        assert_eq!(status.ancestors.len(), 1, "{name}: {status:?}");
    }
}

#[test]
fn a_gateway_policy_guards_every_route_of_its_listeners() {
    let compiled = compile_yaml(&format!(
        "{ROUTE}{KEYS}{}",
        security("gateway", GATEWAY_TARGET, API_KEYS)
    ));
    let (listener, rule) = reached(&compiled, "/other");
    assert!(rule.security.is_none());
    let policy = listener.security_of(rule).expect("the Gateway's policy");
    let keys = &policy.api_key.as_ref().expect("api keys").keys;
    let mut clients: Vec<_> = keys
        .iter()
        .map(|k| (&*k.client_id, k.key.as_str()))
        .collect();
    clients.sort();
    assert_eq!(clients, [("alice", "key-a"), ("bob", "key-b")]);
}

#[test]
fn the_older_of_two_policies_on_one_target_wins() {
    let older = security("a-older", ROUTE_TARGET, API_KEYS).replace(
        "namespace: infra}",
        "namespace: infra, creationTimestamp: \"2026-01-01T00:00:00Z\"}",
    );
    let newer = security("b-newer", ROUTE_TARGET, API_KEYS).replace(
        "namespace: infra}",
        "namespace: infra, creationTimestamp: \"2026-02-01T00:00:00Z\"}",
    );
    let compiled = compile_yaml(&format!("{ROUTE}{KEYS}{newer}{older}"));
    assert_eq!(
        security_label(&compiled, "/other").as_deref(),
        Some("SecurityPolicy infra/a-older")
    );
    let (reason, message) = accepted(object(&compiled, "SecurityPolicy", "infra", "b-newer"));
    assert_eq!(reason, "Conflicted");
    assert!(message.contains("a-older"), "{message}");
}

#[test]
fn an_invalid_security_policy_fails_closed_and_names_the_field() {
    let body = "  apiKeyAuth: {credentialRefs: [{name: missing}]}\n  authorization:\n    rules: [{action: Allow, principal: {clientCIDRs: [10.0.0.0/33]}}]\n";
    let compiled = compile_yaml(&format!("{ROUTE}{}", security("bad", ROUTE_TARGET, body)));
    let (listener, rule) = reached(&compiled, "/other");
    let policy = listener.security_of(rule).expect("still attached");
    assert!(policy.invalid, "an invalid policy must refuse, not vanish");
    let status = object(&compiled, "SecurityPolicy", "infra", "bad");
    let (reason, message) = accepted(status);
    assert_eq!(reason, "Invalid");
    assert!(
        message.contains("spec.apiKeyAuth.credentialRefs[0]: Secret infra/missing not found"),
        "{message}"
    );
    assert!(
        message.contains("spec.authorization.rules[0].principal.clientCIDRs[0]"),
        "{message}"
    );
}

#[test]
fn jwt_providers_and_authorization_compile() {
    let body = r#"  jwt:
    providers:
    - name: main
      issuer: https://issuer.example
      audiences: [shop]
      remoteJWKS: {uri: "http://127.0.0.1:9/jwks.json", cacheDuration: 60s}
      claimToHeaders: [{claim: sub, header: x-user}]
  authorization:
    defaultAction: Deny
    rules:
    - action: Allow
      principal: {jwt: {provider: main, claims: [{name: role, values: [admin]}]}}
      methods: [GET]
      paths: [/api]
"#;
    let compiled = compile_yaml(&format!("{ROUTE}{}", security("jwt", ROUTE_TARGET, body)));
    let (listener, rule) = reached(&compiled, "/api");
    let policy = listener.security_of(rule).expect("policy");
    let jwt = policy.jwt.as_ref().expect("jwt");
    assert_eq!(jwt.providers[0].audiences, ["shop"]);
    assert!(matches!(
        &jwt.providers[0].keys,
        snapshot::security::JwksSource::Remote { cache_duration, .. }
            if cache_duration.as_secs() == 60
    ));
    let authz = policy.authorization.as_ref().expect("authorization");
    assert_eq!(authz.rules[0].methods, [http::Method::GET]);

    let unknown_provider = body.replace("provider: main, claims", "provider: other, claims");
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        security("jwt", ROUTE_TARGET, &unknown_provider)
    ));
    let (_, message) = accepted(object(&compiled, "SecurityPolicy", "infra", "jwt"));
    assert!(
        message.contains("principal.jwt.provider: no provider is named \"other\""),
        "{message}"
    );
}

#[test]
fn ext_auth_backends_resolve_into_the_snapshot() {
    let body = "  extAuth:\n    grpc: {backendRefs: [{name: web, port: 8080}]}\n";
    let compiled = compile_yaml(&format!("{ROUTE}{}", security("ext", ROUTE_TARGET, body)));
    let (listener, rule) = reached(&compiled, "/other");
    let ext = listener
        .security_of(rule)
        .and_then(|p| p.ext_auth.as_ref())
        .expect("extAuth");
    let backend = &compiled.snapshot.backends[ext.backend];
    assert_eq!(backend.protocol, snapshot::backend::AppProtocol::H2c);

    let missing = "  extAuth:\n    http: {backendRefs: [{name: nope, port: 80}]}\n";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{}",
        security("ext", ROUTE_TARGET, missing)
    ));
    let (reason, message) = accepted(object(&compiled, "SecurityPolicy", "infra", "ext"));
    assert_eq!(reason, "Invalid");
    assert!(
        message.contains("spec.extAuth.http.backendRefs[0]: Service infra/nope not found"),
        "{message}"
    );
}

#[test]
fn rate_limits_compile_with_stable_rule_ids() {
    let body = "  local:\n    rules:\n    - name: per-user\n      clientSelectors: [{headers: [{name: x-user, type: Distinct}]}]\n      limit: {requests: 10, unit: Second}\n";
    let compiled = compile_yaml(&format!("{ROUTE}{}", rate_limit("rl", RULE_TARGET, body)));
    let (listener, rule) = reached(&compiled, "/api");
    let policy = listener.rate_limit_of(rule).expect("policy");
    assert_eq!(
        &*policy.local[0].id,
        "RateLimitPolicy infra/rl local[0] per-user"
    );
    assert_eq!(policy.local[0].limit.burst, 10);
    let (other_listener, other) = reached(&compiled, "/other");
    assert!(other_listener.rate_limit_of(other).is_none());
}

#[test]
fn global_limits_need_redis() {
    let body = "  global:\n    rules:\n    - limit: {requests: 100, unit: Second}\n";
    let text = format!("{ROUTE}{}", rate_limit("rl", ROUTE_TARGET, body));
    let compiled = compile_yaml(&text);
    let (reason, message) = accepted(object(&compiled, "RateLimitPolicy", "infra", "rl"));
    assert_eq!(reason, "Invalid");
    assert!(
        message.contains("spec.global: global limits need Redis"),
        "{message}"
    );
    let (listener, rule) = reached(&compiled, "/other");
    assert!(
        listener.rate_limit_of(rule).is_none(),
        "an invalid rate limit leaves its targets unlimited"
    );

    let mut store = model::Store::new();
    for text in [crate::tests::BASE, text.as_str()] {
        for object in model::parse_documents(text).expect("parses").objects {
            store.insert(object);
        }
    }
    let options = CompileOptions {
        redis: true,
        ..CompileOptions::default()
    };
    let compiled = compile(&store, &options);
    let (reason, _) = accepted(object(&compiled, "RateLimitPolicy", "infra", "rl"));
    assert_eq!(reason, "Accepted");
    let (listener, rule) = reached(&compiled, "/other");
    let global = listener
        .rate_limit_of(rule)
        .and_then(|p| p.global.as_ref())
        .expect("global");
    assert!(global.fail_open);
    assert_eq!(global.rules[0].limit.requests, 100);
}

#[test]
fn targets_that_do_not_exist_are_reported() {
    let targets = "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r, sectionName: nope}, {group: gateway.networking.k8s.io, kind: Gateway, name: gone}]";
    let compiled = compile_yaml(&format!(
        "{ROUTE}{KEYS}{}",
        security("p", targets, API_KEYS)
    ));
    let (reason, message) = accepted(object(&compiled, "SecurityPolicy", "infra", "p"));
    assert_eq!(reason, "TargetNotFound");
    assert!(message.contains("has no rule named \"nope\""), "{message}");
    assert!(
        message.contains("Gateway infra/gone not found"),
        "{message}"
    );
}

#[test]
fn the_external_auth_filter_compiles_on_rules_only() {
    let route = |filters_at: &str| {
        let filter = "[{type: ExternalAuth, externalAuth: {protocol: HTTP, backendRef: {name: web, port: 8080}, http: {allowedHeaders: [x-token]}, forwardBody: {maxSize: 16}}}]";
        match filters_at {
            "rule" => format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - filters: {filter}\n    backendRefs: [{{name: web, port: 8080}}]\n"
            ),
            _ => format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: infra}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - backendRefs: [{{name: web, port: 8080, filters: {filter}}}]\n"
            ),
        }
    };
    let compiled = compile_yaml(&route("rule"));
    let (_, rule) = reached(&compiled, "/x");
    let ext = rule.filters.external_auth.as_ref().expect("the filter");
    assert!(
        ext.all_headers_to_upstream,
        "no allowedResponseHeaders: every header"
    );
    assert_eq!(ext.headers_to_backend, ["authorization", "x-token"]);
    assert!(
        ext.body
            .is_some_and(|b| b.refuse_larger && b.max_bytes == 16)
    );
    assert!(!ext.fail_open);

    let compiled = compile_yaml(&route("backendRef"));
    let status = object(&compiled, "HTTPRoute", "infra", "r");
    assert!(
        status
            .problems
            .iter()
            .any(|p| p.contains("ExternalAuth is only supported on the rule")),
        "{status:?}"
    );
}
