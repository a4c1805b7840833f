//! The Go helpers' matching rules, on status documents shaped like `/status` and the Kubernetes API.

use serde_json::{Value, json};

use super::check;
use crate::cases::StatusAssertion;

/// An assertion from its `cases.json` form.
fn assertion(value: Value) -> StatusAssertion {
    serde_json::from_value(value).expect("a valid assertion")
}

/// A TCPRoute status with one parent entry for `infra/gw` carrying `conditions`.
fn route_status(conditions: Value) -> Value {
    json!({"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra",
                      "name": "gw", "sectionName": "tcp"},
        "controllerName": "portcullis.dev/gateway-controller",
        "conditions": conditions,
    }]})
}

#[test]
fn route_condition_matches_type_status_and_reason() {
    let status = route_status(json!([
        {"type": "Accepted", "status": "True", "reason": "Accepted"},
        {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound"},
    ]));
    let wanted = |reason: &str| {
        assertion(
            json!({"assert": "route_condition", "kind": "TCPRoute", "route": "infra/r",
                         "gateway": "infra/gw",
                         "condition": {"type": "ResolvedRefs", "status": "False", "reason": reason}}),
        )
    };
    assert_eq!(check(&wanted("BackendNotFound"), &status), Ok(()));
    assert!(check(&wanted("RefNotPermitted"), &status).is_err());
    // An empty reason matches any.
    assert_eq!(check(&wanted(""), &status), Ok(()));
}

#[test]
fn route_condition_needs_a_parent_naming_the_gateway() {
    let status =
        route_status(json!([{"type": "Accepted", "status": "True", "reason": "Accepted"}]));
    let other_gateway = assertion(json!({"assert": "route_condition", "kind": "TCPRoute",
        "route": "infra/r", "gateway": "infra/other",
        "condition": {"type": "Accepted", "status": "True", "reason": "Accepted"}}));
    assert!(check(&other_gateway, &status).is_err());
}

#[test]
fn route_parents_ignore_section_name_but_need_our_controller() {
    let parents = assertion(
        json!({"assert": "route_parents", "kind": "TCPRoute", "route": "infra/r",
        "parents": [{"gateway": "infra/gw",
                     "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}),
    );
    let status =
        route_status(json!([{"type": "Accepted", "status": "True", "reason": "Accepted"}]));
    assert_eq!(check(&parents, &status), Ok(()));
    let mut foreign = status.clone();
    foreign["parents"][0]["controllerName"] = json!("example.com/other");
    assert!(check(&parents, &foreign).is_err());
    let mut without_group = status;
    without_group["parents"][0]["parentRef"]
        .as_object_mut()
        .expect("an object")
        .remove("group");
    assert!(
        check(&parents, &without_group).is_err(),
        "the Go helper compares the group"
    );
}

#[test]
fn listeners_must_match_in_number_kinds_counts_and_conditions() {
    let status = json!({"listeners": [{
        "name": "tcp", "attachedRoutes": 2,
        "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "TCPRoute"}],
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
    }]});
    let expect = |attached: u64, kinds: Value| {
        assertion(
            json!({"assert": "listeners", "gateway": "infra/gw", "listeners": [{
            "name": "tcp", "attached_routes": attached, "supported_kinds": kinds,
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}]}]}),
        )
    };
    assert_eq!(check(&expect(2, json!(["TCPRoute"])), &status), Ok(()));
    let wrong_count = check(&expect(1, json!(["TCPRoute"])), &status).expect_err("1 != 2");
    assert!(
        wrong_count.contains("attachedRoutes 2, want 1"),
        "{wrong_count}"
    );
    assert!(check(&expect(2, json!(["UDPRoute"])), &status).is_err());
    let two = assertion(
        json!({"assert": "listeners", "gateway": "infra/gw", "listeners": [
        {"name": "tcp", "attached_routes": 2}, {"name": "other", "attached_routes": 0}]}),
    );
    assert!(
        check(&two, &status).is_err(),
        "exactly the listeners in status"
    );
}

#[test]
fn zero_routes_allows_no_listener_or_one_without_routes() {
    let zero = assertion(json!({"assert": "zero_routes", "gateway": "infra/gw"}));
    assert_eq!(check(&zero, &json!({})), Ok(()));
    assert_eq!(
        check(
            &zero,
            &json!({"listeners": [{"name": "a", "attachedRoutes": 0}]})
        ),
        Ok(())
    );
    assert!(
        check(
            &zero,
            &json!({"listeners": [{"name": "a", "attachedRoutes": 1}]})
        )
        .is_err()
    );
    assert!(
        check(
            &zero,
            &json!({"listeners": [{"name": "a", "attachedRoutes": 0}, {"name": "b", "attachedRoutes": 0}]})
        )
        .is_err()
    );
}

#[test]
fn listener_conditions_hold_for_every_listener() {
    let programmed = assertion(
        json!({"assert": "listener_conditions", "gateway": "infra/gw",
        "conditions": [{"type": "Programmed", "status": "True"}]}),
    );
    let status = json!({"listeners": [
        {"name": "a", "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed"}]},
        {"name": "b", "conditions": [{"type": "Programmed", "status": "False", "reason": "Invalid"}]},
    ]});
    let failure = check(&programmed, &status).expect_err("b is not programmed");
    assert!(failure.contains("\"b\""), "{failure}");
}

#[test]
fn gateway_address_needs_one() {
    let address = assertion(json!({"assert": "gateway_address", "gateway": "infra/gw"}));
    assert!(check(&address, &json!({"addresses": []})).is_err());
    assert_eq!(
        check(&address, &json!({"addresses": ["127.1.0.1"]})),
        Ok(())
    );
}
