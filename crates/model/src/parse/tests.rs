use super::*;
use crate::Store;

const ROUTE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cart}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /cart}}]
    backendRefs: [{name: cart, port: 80, weight: 3}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ignored}
---
apiVersion: portcullis.dev/v1alpha1
kind: Backend
metadata: {name: direct, namespace: shop}
spec:
  endpoints: [{ip: 127.0.0.1, port: 3000, weight: 2}]
---
"#;

#[test]
fn documents_are_typed_and_unknown_kinds_skipped() {
    let parsed = parse_documents(ROUTE).expect("valid YAML");
    assert_eq!(parsed.objects.len(), 2);
    assert_eq!(
        parsed.skipped,
        vec!["apps/v1 Deployment ignored".to_owned()]
    );
    let Object::HttpRoute(route) = &parsed.objects[0] else {
        panic!("not a route")
    };
    let rules = route.spec.rules.as_ref().expect("rules");
    assert_eq!(
        rules[0].backend_refs.as_ref().expect("refs")[0].weight,
        Some(3)
    );
    let Object::Backend(backend) = &parsed.objects[1] else {
        panic!("not a backend")
    };
    assert_eq!(backend.spec.endpoints[0].port, 3000);
}

#[test]
fn missing_namespace_defaults_to_default() {
    let parsed = parse_documents(ROUTE).expect("valid YAML");
    assert_eq!(
        parsed.objects[0].key().to_string(),
        "HTTPRoute default/cart"
    );
    assert_eq!(parsed.objects[1].key().to_string(), "Backend shop/direct");
}

#[test]
fn bad_field_names_object_and_path() {
    let text = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: shop}\nspec:\n  rules:\n  - matches: [{path: {type: Fuzzy, value: /}}]\n";
    let error = parse_documents(text).expect_err("unknown path type");
    let message = error.to_string();
    assert!(message.contains("HTTPRoute shop/web"), "{message}");
    assert!(
        message.contains("spec.rules[0].matches[0].path.type"),
        "{message}"
    );
}

#[test]
fn invalid_yaml_is_an_error() {
    assert!(matches!(parse_documents("a: [b"), Err(ParseError::Yaml(_))));
}

#[test]
fn store_finds_endpoint_slices_by_service_label() {
    let text = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: shop, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: b-1, namespace: shop, labels: {kubernetes.io/service-name: b}}
addressType: IPv4
endpoints: []
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: a-1, namespace: other, labels: {kubernetes.io/service-name: a}}
addressType: IPv4
endpoints: []
"#;
    let mut store = Store::new();
    for object in parse_documents(text).expect("valid").objects {
        store.insert(object);
    }
    let names: Vec<_> = store
        .endpoint_slices_for("shop", "a")
        .map(|s| s.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["a-1".to_owned()]);
    // The index holds the same slices for every Service, in the same order.
    let index = store.endpoint_slices_by_service();
    for (namespace, service) in [("shop", "a"), ("shop", "b"), ("other", "a")] {
        let indexed: Vec<_> = index
            .get(&(namespace, service))
            .into_iter()
            .flatten()
            .map(|s| s.metadata.name.clone())
            .collect();
        let scanned: Vec<_> = store
            .endpoint_slices_for(namespace, service)
            .map(|s| s.metadata.name.clone())
            .collect();
        assert_eq!(indexed, scanned, "{namespace}/{service}");
        assert!(!indexed.is_empty(), "{namespace}/{service} has slices");
    }
    assert_eq!(index.len(), 3, "one entry per Service: {:?}", index.keys());
}

/// `count` EndpointSlices, one document each.
fn endpoint_slices(count: usize) -> String {
    (0..count)
        .map(|index| {
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s-{index}, namespace: shop, labels: {{kubernetes.io/service-name: s}}}}\naddressType: IPv4\nendpoints: [{{addresses: [10.0.{}.{}]}}]\n---\n",
                index / 256 % 256,
                index % 256
            )
        })
        .collect()
}

#[test]
fn five_thousand_documents_parse() {
    // serde-saphyr's default budget stops at 1,024 documents.
    let parsed = parse_documents(&endpoint_slices(5_000)).expect("5,000 documents are allowed");
    assert_eq!(parsed.objects.len(), 5_000);
}

#[test]
fn more_documents_than_the_limit_are_refused_by_name() {
    let text = "---\na: 1\n".repeat(MAX_DOCUMENTS + 1);
    let error = parse_documents(&text).expect_err("over the document limit");
    assert_eq!(
        error,
        ParseError::Limit("file has more than 100000 YAML documents (limit)".to_owned())
    );
}

#[test]
fn alias_bomb_is_refused() {
    // "Billion laughs": each level repeats the previous one ten times, so the last alias would
    // expand to 10^9 scalars.
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*l{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("l{level}: &l{level} [{items}]\n"));
    }
    let error = parse_documents(&text).expect_err("alias bomb");
    assert_eq!(
        error,
        ParseError::Limit(
            "file expands YAML aliases to more than 1000000 copied events (alias expansion \
             limit, which stops alias bombs)"
                .to_owned()
        )
    );
}

#[test]
fn deep_nesting_is_refused_by_name() {
    let text = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let error = parse_documents(&text).expect_err("too deep");
    assert_eq!(
        error,
        ParseError::Limit(
            "file nests YAML mappings and sequences more than 64 levels deep (limit)".to_owned()
        )
    );
}
