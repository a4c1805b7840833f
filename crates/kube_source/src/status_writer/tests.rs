use serde_json::json;

use super::{stamp, without_timestamps};

#[test]
fn an_unchanged_condition_keeps_its_transition_time_and_a_changed_one_gets_now() {
    let current = json!({"conditions": [
        {"type": "Accepted", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        {"type": "Programmed", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"},
    ]});
    let mut desired = json!({"conditions": [
        {"type": "Accepted", "status": "True"},
        {"type": "Programmed", "status": "True"},
    ]});
    stamp(&mut desired, &current, "2026-12-05T00:00:00Z");
    assert_eq!(
        desired["conditions"][0]["lastTransitionTime"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        desired["conditions"][1]["lastTransitionTime"],
        "2026-12-05T00:00:00Z"
    );
}

#[test]
fn listener_and_parent_conditions_are_matched_by_their_list_key() {
    let parent_ref = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "shop", "name": "gw"});
    let current = json!({
        "listeners": [{"name": "http", "conditions": [
            {"type": "Programmed", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}],
        "parents": [{"parentRef": parent_ref, "controllerName": "portcullis.dev/gateway-controller",
            "conditions": [{"type": "Accepted", "status": "True", "lastTransitionTime": "2026-01-02T00:00:00Z"}]}],
    });
    let mut desired = json!({
        "listeners": [{"name": "http", "conditions": [{"type": "Programmed", "status": "True"}]}],
        "parents": [{"parentRef": parent_ref, "controllerName": "portcullis.dev/gateway-controller",
            "conditions": [{"type": "Accepted", "status": "True"}]}],
    });
    stamp(&mut desired, &current, "2026-12-05T00:00:00Z");
    assert_eq!(
        desired["listeners"][0]["conditions"][0]["lastTransitionTime"],
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        desired["parents"][0]["conditions"][0]["lastTransitionTime"],
        "2026-01-02T00:00:00Z"
    );
    assert_eq!(
        without_timestamps(&desired),
        without_timestamps(&current)
            .as_object()
            .map(|_| {
                let mut expected = current.clone();
                expected["listeners"][0]["conditions"][0]
                    .as_object_mut()
                    .map(|c| c.remove("lastTransitionTime"));
                expected["parents"][0]["conditions"][0]
                    .as_object_mut()
                    .map(|c| c.remove("lastTransitionTime"));
                expected
            })
            .unwrap_or_default()
    );
}
