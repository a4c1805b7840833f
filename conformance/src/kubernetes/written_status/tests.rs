//! The comparison of written status with `check`'s report.

use serde_json::json;

use super::{canonical, differences, stale_generation};

fn id(kind: &str, name: &str) -> (String, String, String) {
    (kind.to_owned(), "ns".to_owned(), name.to_owned())
}

fn route_status(reason: &str, controller: &str, generation: i64) -> serde_json::Value {
    json!({"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "ns", "name": "gw",
                      "sectionName": null},
        "controllerName": controller,
        "conditions": [
            {"type": "ResolvedRefs", "status": "True", "reason": reason, "message": "m",
             "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Accepted", "status": "True", "reason": "Accepted", "message": "m",
             "observedGeneration": generation, "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ],
    }]})
}

#[test]
fn equal_status_in_another_order_and_with_timestamps_has_no_difference() {
    let expected = vec![(
        id("HTTPRoute", "r"),
        canonical(&route_status("ResolvedRefs", super::CONTROLLER_NAME, 0)),
    )];
    let mut written = route_status("ResolvedRefs", super::CONTROLLER_NAME, 3);
    written["parents"][0]["conditions"]
        .as_array_mut()
        .expect("the test status has conditions")
        .reverse();
    // Another controller's entry is not compared.
    written["parents"]
        .as_array_mut()
        .expect("the test status has parents")
        .push(route_status("X", "example.com/other", 1)["parents"][0].clone());
    let stored = vec![(
        id("HTTPRoute", "r"),
        json!({"metadata": {"generation": 3}, "status": written}),
    )];
    assert_eq!(differences(&expected, &stored), Vec::new());
}

#[test]
fn a_different_reason_is_a_difference() {
    let expected = vec![(
        id("HTTPRoute", "r"),
        canonical(&route_status("BackendNotFound", super::CONTROLLER_NAME, 0)),
    )];
    let stored = vec![(
        id("HTTPRoute", "r"),
        json!({"metadata": {"generation": 1}, "status": route_status("ResolvedRefs", super::CONTROLLER_NAME, 1)}),
    )];
    let found = differences(&expected, &stored);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].1.starts_with("HTTPRoute ns/r: parents:"),
        "{found:?}"
    );
}

#[test]
fn a_missing_status_is_a_difference() {
    let expected = vec![(
        id("HTTPRoute", "r"),
        canonical(&route_status("ResolvedRefs", super::CONTROLLER_NAME, 0)),
    )];
    let stored = vec![(id("HTTPRoute", "r"), json!({"metadata": {"generation": 1}}))];
    assert_eq!(differences(&expected, &stored).len(), 1);
}

#[test]
fn a_stale_observed_generation_is_found() {
    let status = route_status("ResolvedRefs", super::CONTROLLER_NAME, 1);
    assert_eq!(stale_generation(&status, &json!(1)), None);
    assert_eq!(stale_generation(&status, &json!(2)), Some(json!(1)));
    let other = route_status("ResolvedRefs", "example.com/other", 1);
    assert_eq!(
        stale_generation(&other, &json!(2)),
        None,
        "only our entries count"
    );
}

#[test]
fn equal_listeners_and_gateway_conditions_have_no_difference() {
    let listener = json!({"name": "http", "attachedRoutes": 2,
        "supportedKinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}],
        "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed", "message": "m"}]});
    let reported = json!({"kind": "Gateway", "name": "gw", "namespace": "ns",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "a"}],
        "listeners": [listener]});
    let mut written = reported.clone();
    written["listeners"][0]["conditions"][0]["observedGeneration"] = json!(2);
    written["conditions"][0]["observedGeneration"] = json!(2);
    let expected = vec![(id("Gateway", "gw"), canonical(&reported))];
    let stored = vec![(
        id("Gateway", "gw"),
        json!({"metadata": {"generation": 2}, "status": written}),
    )];
    assert_eq!(differences(&expected, &stored), Vec::new());

    // One attached route fewer is a difference.
    let mut fewer = stored[0].1.clone();
    fewer["status"]["listeners"][0]["attachedRoutes"] = json!(1);
    let found = differences(&expected, &[(id("Gateway", "gw"), fewer)]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("listeners"), "{found:?}");
}
