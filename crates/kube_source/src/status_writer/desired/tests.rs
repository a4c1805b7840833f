//! What the writer claims of each object: built from a real compile of a small config.

use std::sync::Arc;

use compile::status::{ParentReference, PolicyAncestorStatus};
use compile::{
    CompileOptions, Compiler, DEFAULT_CONTROLLER_NAME, ObjectStatus, SUPPORTED_FEATURES,
    StatusReport,
};
use model::Store;
use serde_json::{Value, json};

use super::{Owner, claims_nothing, desired, merged_list};

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portcullis}
spec: {controllerName: portcullis.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: pinned, namespace: shop, generation: 3}
spec:
  gatewayClassName: portcullis
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: portcullis
  allowedListeners: {namespaces: {from: Same}}
  listeners: [{name: http, protocol: HTTP, port: 8081}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra, namespace: shop}
spec:
  parentRef: {name: edge}
  listeners: [{name: extra-http, protocol: HTTP, port: 8082}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: cart-tls, namespace: shop}
spec:
  targetRefs: [{group: "", kind: Service, name: cart}]
  validation: {hostname: cart.example, wellKnownCACertificates: System}
"#;

fn compiled() -> (StatusReport, Store) {
    let mut store = Store::new();
    for object in model::parse_documents(CONFIG).expect("valid YAML").objects {
        store.insert(object);
    }
    let options = CompileOptions {
        default_addresses: vec![std::net::IpAddr::from([0, 0, 0, 0])],
        ..CompileOptions::default()
    };
    (Compiler::build(&store, options).status(), store)
}

fn status_of<'a>(report: &'a StatusReport, kind: &str, name: &str) -> &'a ObjectStatus {
    report
        .objects
        .iter()
        .find(|object| object.kind == kind && object.name == name)
        .unwrap_or_else(|| panic!("no status for {kind} {name}"))
}

fn claimed(status: &ObjectStatus, store: &Store, service: Option<&[Value]>) -> Value {
    let owner = Owner {
        controller_name: DEFAULT_CONTROLLER_NAME,
        service_addresses: service,
    };
    desired(status, store, &owner)
        .unwrap_or_else(|| panic!("{} is not ours", status.label()))
        .1
}

#[test]
fn our_gateway_class_lists_every_supported_feature_by_name_in_order() {
    let (report, store) = compiled();
    let class = claimed(
        status_of(&report, "GatewayClass", "portcullis"),
        &store,
        None,
    );
    let names: Vec<&str> = class["supportedFeatures"]
        .as_array()
        .expect("supportedFeatures")
        .iter()
        .map(|feature| feature["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, SUPPORTED_FEATURES);
}

#[test]
fn spec_addresses_win_over_the_gateway_service_which_wins_over_wildcard_binds() {
    let (report, store) = compiled();
    let service = [json!({"type": "IPAddress", "value": "203.0.113.7"})];
    let pinned = status_of(&report, "Gateway", "pinned");
    let edge = status_of(&report, "Gateway", "edge");

    let with_service = claimed(pinned, &store, Some(&service));
    assert_eq!(
        with_service["addresses"],
        json!([{"type": "IPAddress", "value": "127.0.0.1"}])
    );
    assert_eq!(
        with_service["conditions"][0]["observedGeneration"], 3,
        "conditions carry the generation compiled"
    );
    let edge_with_service = claimed(edge, &store, Some(&service));
    assert_eq!(edge_with_service["addresses"], json!(service));
    assert_eq!(edge_with_service["attachedListenerSets"], 1);
    // Without the flag, the wildcard bind address is where we listen, not an address.
    assert!(claimed(edge, &store, None).get("addresses").is_none());
    // With the flag but no address known yet (a Service not found): none either.
    assert!(claimed(edge, &store, Some(&[])).get("addresses").is_none());
}

#[test]
fn a_listener_set_reports_its_conditions_and_listeners() {
    let (report, store) = compiled();
    let set = claimed(status_of(&report, "ListenerSet", "extra"), &store, None);
    let accepted = set["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
        .expect("Accepted");
    assert_eq!(accepted["status"], "True", "{set}");
    assert_eq!(set["listeners"][0]["name"], "extra-http");
    assert_eq!(set["listeners"][0]["attachedRoutes"], 0);
}

#[test]
fn only_our_ancestor_entries_are_claimed_and_none_is_an_empty_claim() {
    let (report, store) = compiled();
    let mut policy = status_of(&report, "BackendTLSPolicy", "cart-tls").clone();
    // No route uses the Service: no ancestor, so an empty claim (ours to remove, if any).
    assert!(policy.ancestors.is_empty());
    assert!(claims_nothing(&claimed(&policy, &store, None)));

    let reference = |name: &str| ParentReference {
        group: "gateway.networking.k8s.io".into(),
        kind: "Gateway".into(),
        namespace: "shop".into(),
        name: name.into(),
        section_name: None,
        port: None,
    };
    policy.ancestors = vec![
        PolicyAncestorStatus {
            ancestor_ref: reference("theirs"),
            controller_name: Arc::from("example.com/other"),
            conditions: Vec::new(),
        },
        PolicyAncestorStatus {
            ancestor_ref: reference("pinned"),
            controller_name: Arc::from(DEFAULT_CONTROLLER_NAME),
            conditions: Vec::new(),
        },
    ];
    let ancestors = claimed(&policy, &store, None)["ancestors"].clone();
    assert_eq!(ancestors.as_array().map(Vec::len), Some(1), "{ancestors}");
    assert_eq!(ancestors[0]["ancestorRef"]["name"], "pinned");
    assert_eq!(ancestors[0]["controllerName"], DEFAULT_CONTROLLER_NAME);
}

#[test]
fn shared_lists_keep_others_entries_first_and_stop_at_the_schema_maximum() {
    let entry = |controller: &str, name: String| json!({"ancestorRef": {"name": name}, "controllerName": controller});
    let current = json!({"ancestors": (0..10)
        .map(|i| entry("example.com/other", format!("theirs-{i}")))
        .chain([entry(DEFAULT_CONTROLLER_NAME, "stale".to_owned())])
        .collect::<Vec<_>>()});
    let ours: Vec<Value> = (0..10)
        .map(|i| entry(DEFAULT_CONTROLLER_NAME, format!("ours-{i}")))
        .collect();
    let merged = merged_list("ancestors", &current, ours.clone(), DEFAULT_CONTROLLER_NAME);
    // GEP-713: at most 16 ancestors; theirs stay, ours fill what is left, our stale entry goes.
    assert_eq!(merged.len(), 16);
    assert_eq!(
        merged[..10],
        current["ancestors"].as_array().expect("list")[..10]
    );
    assert_eq!(merged[10..], ours[..6]);
    let parents = merged_list("parents", &json!({}), ours.clone(), DEFAULT_CONTROLLER_NAME);
    assert_eq!(parents, ours);
}

#[test]
fn a_composition_claims_its_ancestors_with_its_conditions() {
    let extra = "---\napiVersion: portcullis.dev/v1alpha1\nkind: Composition\nmetadata: {name: page, namespace: shop, generation: 2}\nspec:\n  parts: [{name: a, backendRef: {name: cart, port: 80}}]\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: shop}\nspec:\n  parentRefs: [{name: pinned}]\n  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: portcullis.dev, kind: Composition, name: page}}]}]\n";
    let mut store = Store::new();
    for text in [CONFIG, extra] {
        for object in model::parse_documents(text).expect("valid YAML").objects {
            store.insert(object);
        }
    }
    let report = Compiler::build(&store, CompileOptions::default()).status();
    let composition = status_of(&report, "Composition", "page");
    let ancestors = claimed(composition, &store, None)["ancestors"].clone();
    assert_eq!(ancestors.as_array().map(Vec::len), Some(1), "{ancestors}");
    assert_eq!(ancestors[0]["ancestorRef"]["name"], "pinned");
    let conditions = &ancestors[0]["conditions"];
    assert_eq!(conditions[0]["type"], "Accepted");
    assert_eq!(conditions[0]["status"], "True");
    assert_eq!(conditions[0]["observedGeneration"], 2);
    // Service shop/cart does not exist: the part does not resolve, which is not fatal.
    assert_eq!(conditions[1]["type"], "ResolvedRefs");
    assert_eq!(conditions[1]["status"], "False");
    assert_eq!(conditions[1]["reason"], "BackendNotFound");
}
