//! Authorization rules: first match decides, every condition kind, default action.

use std::net::IpAddr;

use http::{HeaderName, Method};
use serde_json::{Map, Value, json};
use snapshot::security::{
    Action, Authorization, AuthorizationRule, ClaimValues, HeaderValues, JwtPrincipal, Principal,
    SecurityPolicy,
};
use telemetry::Metrics;

use super::{authorize, decide, path_has_prefix};
use crate::{Identity, JwtIdentity};

fn rule(name: &str, action: Action, principal: Principal) -> AuthorizationRule {
    AuthorizationRule {
        name: name.into(),
        action,
        principal,
        methods: Vec::new(),
        paths: Vec::new(),
    }
}

fn rules(default_action: Action, rules: Vec<AuthorizationRule>) -> Authorization {
    Authorization {
        default_action,
        rules,
    }
}

fn request(method: Method, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(())
        .expect("a valid test request")
        .into_parts()
        .0
}

fn get(uri: &str) -> http::request::Parts {
    request(Method::GET, uri, &[])
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("a test address")
}

fn jwt_identity(provider: &str, claims: Value) -> Identity {
    let claims: Map<String, Value> = match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Identity {
        jwt: Some(JwtIdentity {
            provider: provider.into(),
            claims,
        }),
        client: None,
    }
}

fn jwt_rule(claims: Vec<(&str, Vec<&str>)>, scopes: Vec<&str>) -> AuthorizationRule {
    let principal = Principal {
        jwt: Some(JwtPrincipal {
            provider: None,
            claims: claims
                .into_iter()
                .map(|(name, values)| ClaimValues {
                    name: name.into(),
                    values: values.into_iter().map(str::to_owned).collect(),
                })
                .collect(),
            scopes: scopes.into_iter().map(str::to_owned).collect(),
        }),
        ..Principal::default()
    };
    rule("jwt", Action::Allow, principal)
}

fn allows(
    authorization: &Authorization,
    identity: &Identity,
    parts: &http::request::Parts,
) -> bool {
    decide(authorization, identity, parts, ip("10.0.0.1")).0 == Action::Allow
}

#[test]
fn the_first_matching_rule_decides_else_the_default() {
    let internal = Principal {
        client_cidrs: vec!["10.0.0.0/8".parse().expect("cidr")],
        ..Principal::default()
    };
    let table = rules(
        Action::Deny,
        vec![
            rule(
                "block-one",
                Action::Deny,
                Principal {
                    client_cidrs: vec!["10.1.2.3/32".parse().expect("cidr")],
                    ..Principal::default()
                },
            ),
            rule("internal", Action::Allow, internal),
        ],
    );
    let anyone = Identity::default();
    let parts = get("/");
    assert_eq!(
        decide(&table, &anyone, &parts, ip("10.9.9.9")),
        (Action::Allow, Some("internal"))
    );
    assert_eq!(
        decide(&table, &anyone, &parts, ip("10.1.2.3")),
        (Action::Deny, Some("block-one"))
    );
    assert_eq!(
        decide(&table, &anyone, &parts, ip("192.168.1.1")),
        (Action::Deny, None)
    );
    // IPv4-mapped IPv6 (a dual-stack listener) is the IPv4 address.
    assert_eq!(
        decide(&table, &anyone, &parts, ip("::ffff:10.9.9.9")).0,
        Action::Allow
    );
    let open = rules(Action::Allow, Vec::new());
    assert_eq!(
        decide(&open, &anyone, &parts, ip("192.168.1.1")),
        (Action::Allow, None)
    );
}

#[test]
fn ipv6_cidrs_match() {
    let table = rules(
        Action::Deny,
        vec![rule(
            "v6",
            Action::Allow,
            Principal {
                client_cidrs: vec!["2001:db8::/32".parse().expect("cidr")],
                ..Principal::default()
            },
        )],
    );
    let parts = get("/");
    assert_eq!(
        decide(&table, &Identity::default(), &parts, ip("2001:db8::1")).0,
        Action::Allow
    );
    assert_eq!(
        decide(&table, &Identity::default(), &parts, ip("2001:db9::1")).0,
        Action::Deny
    );
}

#[test]
fn claims_match_strings_numbers_booleans_arrays_and_nested_objects() {
    let identity = jwt_identity(
        "main",
        json!({
            "sub": "ana", "level": 3, "ratio": 1.5, "admin": true,
            "groups": ["dev", "ops"], "realm": { "roles": ["reader"], "tier": "gold" },
            "a.b": "dotted",
        }),
    );
    let parts = get("/");
    let matching = [
        ("sub", vec!["bob", "ana"]),
        ("level", vec!["3"]),
        ("ratio", vec!["1.5"]),
        ("admin", vec!["true"]),
        ("groups", vec!["ops"]),
        ("realm.roles", vec!["reader"]),
        ("realm.tier", vec!["gold"]),
        ("a.b", vec!["dotted"]),
    ];
    for (claim, values) in matching {
        let table = rules(
            Action::Deny,
            vec![jwt_rule(vec![(claim, values.clone())], vec![])],
        );
        assert!(allows(&table, &identity, &parts), "{claim} {values:?}");
    }
    let failing = [
        ("sub", vec!["bob"]),
        ("level", vec!["4"]),
        ("admin", vec!["false"]),
        ("groups", vec!["dev,ops"]),
        ("realm", vec!["gold"]),
        ("missing", vec!["x"]),
        ("realm.missing", vec!["x"]),
    ];
    for (claim, values) in failing {
        let table = rules(
            Action::Deny,
            vec![jwt_rule(vec![(claim, values.clone())], vec![])],
        );
        assert!(!allows(&table, &identity, &parts), "{claim} {values:?}");
    }
    // Claims are ANDed.
    let both = rules(
        Action::Deny,
        vec![jwt_rule(
            vec![("sub", vec!["ana"]), ("level", vec!["9"])],
            vec![],
        )],
    );
    assert!(!allows(&both, &identity, &parts));
}

#[test]
fn a_jwt_principal_needs_a_jwt_of_the_named_provider() {
    let parts = get("/");
    let mut wanted = jwt_rule(vec![], vec![]);
    let table = rules(Action::Deny, vec![jwt_rule(vec![], vec![])]);
    assert!(
        !allows(&table, &Identity::default(), &parts),
        "no JWT at all"
    );
    assert!(allows(&table, &jwt_identity("any", json!({})), &parts));
    if let Some(jwt) = &mut wanted.principal.jwt {
        jwt.provider = Some("corp".into());
    }
    let table = rules(Action::Deny, vec![wanted]);
    assert!(allows(&table, &jwt_identity("corp", json!({})), &parts));
    assert!(!allows(&table, &jwt_identity("partner", json!({})), &parts));
}

#[test]
fn scopes_come_from_scope_or_scp_and_all_are_required() {
    let parts = get("/");
    let table = rules(Action::Deny, vec![jwt_rule(vec![], vec!["read", "write"])]);
    let holders = [
        json!({ "scope": "openid read  write" }),
        json!({ "scp": ["write", "read"] }),
        json!({ "scp": "read write" }),
        json!({ "scope": "read", "scp": ["write"] }),
    ];
    for claims in holders {
        assert!(
            allows(&table, &jwt_identity("p", claims.clone()), &parts),
            "{claims}"
        );
    }
    let lacking = [
        json!({ "scope": "read" }),
        json!({ "scope": "readwrite" }),
        json!({ "scp": [["read", "write"]] }),
        json!({ "scope": ["read", "write"] }),
        json!({}),
    ];
    for claims in lacking {
        assert!(
            !allows(&table, &jwt_identity("p", claims.clone()), &parts),
            "{claims}"
        );
    }
}

#[test]
fn headers_clients_methods_and_paths() {
    let principal = Principal {
        headers: vec![HeaderValues {
            name: HeaderName::from_static("x-team"),
            values: vec!["red".into(), "blue".into()],
        }],
        clients: vec!["alpha".into()],
        ..Principal::default()
    };
    let mut allow = rule("team", Action::Allow, principal);
    allow.methods = vec![Method::GET, Method::HEAD];
    allow.paths = vec!["/api/".into(), "/status".into()];
    let table = rules(Action::Deny, vec![allow]);
    let alpha = Identity {
        jwt: None,
        client: Some("alpha".into()),
    };
    let ok = request(
        Method::GET,
        "/api/items?x=1",
        &[("x-team", "green"), ("x-team", "blue")],
    );
    assert!(allows(&table, &alpha, &ok));
    let cases = [
        (
            request(Method::POST, "/api/items", &[("x-team", "red")]),
            "method",
        ),
        (
            request(Method::GET, "/apix", &[("x-team", "red")]),
            "path segment",
        ),
        (request(Method::GET, "/other", &[("x-team", "red")]), "path"),
        (
            request(Method::GET, "/api", &[("x-team", "Red")]),
            "header value is exact",
        ),
        (request(Method::GET, "/status", &[]), "header missing"),
    ];
    for (parts, why) in &cases {
        assert!(!allows(&table, &alpha, parts), "{why}");
    }
    let beta = Identity {
        jwt: None,
        client: Some("beta".into()),
    };
    assert!(!allows(&table, &beta, &ok), "client");
    assert!(!allows(&table, &Identity::default(), &ok), "no client");
    assert!(allows(
        &table,
        &alpha,
        &request(Method::HEAD, "/status/x", &[("x-team", "red")])
    ));
}

#[test]
fn path_prefixes_match_whole_segments() {
    assert!(path_has_prefix("/api", "/api"));
    assert!(path_has_prefix("/api/", "/api"));
    assert!(path_has_prefix("/api/v1", "/api/"));
    assert!(!path_has_prefix("/apiv1", "/api"));
    assert!(!path_has_prefix("/ap", "/api"));
    assert!(path_has_prefix("/anything", "/"));
    assert!(path_has_prefix("/", ""));
}

#[test]
fn authorize_denies_with_403_and_counts() {
    let metrics = Metrics::new();
    let mut policy = SecurityPolicy {
        label: "SecurityPolicy default/p".into(),
        oidc: None,
        jwt: None,
        api_key: None,
        basic: None,
        ext_auth: None,
        authorization: None,
        invalid: false,
    };
    let anyone = Identity::default();
    let parts = get("/");
    assert!(authorize(&policy, &anyone, &parts, ip("10.0.0.1"), &metrics).is_ok());
    assert!(
        !metrics.encode().contains("method=\"authorization\""),
        "no rules, no count"
    );
    policy.authorization = Some(rules(
        Action::Deny,
        vec![rule(
            "internal",
            Action::Allow,
            Principal {
                client_cidrs: vec!["10.0.0.0/8".parse().expect("cidr")],
                ..Principal::default()
            },
        )],
    ));
    assert!(authorize(&policy, &anyone, &parts, ip("10.0.0.1"), &metrics).is_ok());
    let denial = authorize(&policy, &anyone, &parts, ip("8.8.8.8"), &metrics).err();
    let denial = denial.expect("outside the CIDR is denied");
    assert_eq!(
        (denial.status, denial.reason),
        (http::StatusCode::FORBIDDEN, "forbidden")
    );
    let exported = metrics.encode();
    assert!(
        exported.contains("method=\"authorization\",result=\"allowed\"} 1"),
        "{exported}"
    );
    assert!(
        exported.contains("method=\"authorization\",result=\"denied\"} 1"),
        "{exported}"
    );
}
