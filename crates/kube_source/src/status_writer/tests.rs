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

/// The status side of one route edit at 1,000 and 5,000 routes, before and after the writer
/// followed changes: a full report plus a pass over every object (what each applied update
/// cost before), against the step's partial change plus a pass over the dirty objects. The
/// compile itself (the same in both) and the writes (I/O) are left out. A probe, not a test:
/// it asserts nothing about time (`cargo test -p kube_source --release -- --ignored
/// --nocapture route_edit_status_cost`).
#[test]
#[ignore = "timing probe: prints numbers, run by hand with --ignored --nocapture"]
fn route_edit_status_cost() {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Instant;

    use compile::{CompileOptions, Compiler, DEFAULT_CONTROLLER_NAME, StatusChange};
    use model::Store;

    use super::desired::{Owner, desired};
    use super::pending::{Handed, Known};

    // An edit bumps the generation, as the API server does: the route's status changes
    // (`observedGeneration`), and only its.
    fn route(index: usize, host: &str, generation: u32) -> String {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{index}, namespace: shop, generation: {generation}}}\nspec:\n  parentRefs: [{{name: gw}}]\n  hostnames: [{host}]\n  rules: [{{backendRefs: [{{name: cart, port: 80}}]}}]\n---\n"
        )
    }
    let owner = Owner {
        controller_name: DEFAULT_CONTROLLER_NAME,
        service_addresses: None,
    };
    for routes in [1_000, 5_000] {
        let mut documents = String::from(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: portcullis}\nspec: {controllerName: portcullis.dev/gateway-controller}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\nspec:\n  gatewayClassName: portcullis\n  listeners: [{name: http, protocol: HTTP, port: 8080}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\nspec: {ports: [{name: http, port: 80}]}\n---\n",
        );
        for index in 0..routes {
            documents.push_str(&route(index, &format!("r{index}.example"), 1));
        }
        let mut store = Store::new();
        for object in model::parse_documents(&documents).expect("valid").objects {
            store.insert(object);
        }
        let old = Arc::new(store);
        let mut compiler = Compiler::build(&old, CompileOptions::default());
        // What the writer wrote for every object (so that only the edit differs).
        let mut written = BTreeMap::new();
        for status in &compiler.status().objects {
            if let Some((key, value)) = desired(status, &old, &owner) {
                written.insert(key, value);
            }
        }
        let mut known = Known::default();
        let mut handed = Handed::default();
        handed.add(StatusChange::Full(compiler.status()), Arc::clone(&old));
        known.take(handed);
        known.dirty.clear();

        let mut new = (*old).clone();
        for object in model::parse_documents(&route(7, "edited.example", 2))
            .expect("valid")
            .objects
        {
            new.insert(object);
        }
        let new = Arc::new(new);
        let step = compiler.update(&old, &new, 2);
        assert!(!step.full, "a route edit is incremental");

        let started = Instant::now();
        let report = compiler.status();
        let mut differing = 0;
        for status in &report.objects {
            if let Some((key, value)) = desired(status, &new, &owner)
                && written.get(&key) != Some(&value)
            {
                differing += 1;
            }
        }
        let before = started.elapsed();

        let started = Instant::now();
        let mut handed = Handed::default();
        handed.add(
            StatusChange::Partial {
                statuses: step.statuses,
                recompiled: step.recompiled,
            },
            Arc::clone(&new),
        );
        known.take(handed);
        let mut dirty_differing = 0;
        for key in std::mem::take(&mut known.dirty) {
            let Some(status) = known.statuses.get(&key) else {
                continue;
            };
            if let Some((key, value)) = desired(status, &new, &owner)
                && written.get(&key) != Some(&value)
            {
                dirty_differing += 1;
            }
        }
        let after = started.elapsed();
        assert_eq!(
            differing, dirty_differing,
            "both find the same changed statuses"
        );
        println!(
            "{routes} routes, one route edited: full report + pass over every object {before:?}; partial change + dirty objects {after:?} ({differing} status to write)"
        );
    }
}

#[test]
fn a_wake_up_for_any_reason_reports_leadership_and_address_changes_that_came_with_it() {
    use super::{News, Seen};
    let news = |became_leader, addresses_changed| News {
        became_leader,
        addresses_changed,
    };
    let cluster_ip = Some(Some(vec![
        json!({"type": "IPAddress", "value": "10.0.0.1"}),
    ]));
    let balancer = Some(Some(vec![
        json!({"type": "IPAddress", "value": "203.0.113.7"}),
    ]));
    let mut seen = Seen::default();
    // The first look: not leader yet, the Service not listed yet.
    assert_eq!(seen.note(false, &Some(None)), news(false, true));
    assert_eq!(seen.note(false, &Some(None)), news(false, false));
    // The Lease taken and the Service listed in the same wake-up: both reported.
    assert_eq!(seen.note(true, &cluster_ip), news(true, true));
    assert_eq!(seen.note(true, &cluster_ip), news(false, false));
    // A load balancer assigned while a route change woke the writer.
    assert_eq!(seen.note(true, &balancer), news(false, true));
    // The Lease lost, then taken again: compared with the API server again.
    assert_eq!(seen.note(false, &balancer), news(false, false));
    assert_eq!(seen.note(true, &balancer), news(true, false));
    // Without --gateway-service the addresses never change after the first look.
    let mut without = Seen::default();
    assert_eq!(without.note(true, &None), news(true, true));
    assert_eq!(without.note(true, &None), news(false, false));
}
