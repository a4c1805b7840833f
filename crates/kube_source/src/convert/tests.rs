use super::*;
use kube::api::ObjectMeta;
use model::Kind;

fn resource(kind: &str, api_version: &str) -> ApiResource {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: kind.to_owned(),
        plural: String::new(),
    }
}

fn dynamic(namespace: &str, name: &str, data: Value) -> DynamicObject {
    DynamicObject {
        types: None,
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            resource_version: Some("42".to_owned()),
            generation: Some(3),
            ..ObjectMeta::default()
        },
        data,
    }
}

#[test]
fn status_and_resource_version_do_not_make_an_object_differ() {
    let route = resource("HTTPRoute", "gateway.networking.k8s.io/v1");
    let spec = serde_json::json!({"spec": {"parentRefs": [{"name": "gw"}]}});
    let mut with_status = spec.clone();
    with_status["status"] = serde_json::json!({"parents": []});
    let first = to_object(&route, dynamic("shop", "cart", spec)).expect("valid route");
    let mut later = dynamic("shop", "cart", with_status);
    later.metadata.resource_version = Some("43".to_owned());
    let second = to_object(&route, later).expect("valid route");
    assert_eq!(first.kind(), Kind::HttpRoute);
    assert_eq!(first, second);
    assert_eq!(first.metadata().generation, Some(3));
}

#[test]
fn an_invalid_object_is_named_with_its_field() {
    let slice = resource("EndpointSlice", "discovery.k8s.io/v1");
    let error = to_object(
        &slice,
        dynamic("shop", "cart-1", serde_json::json!({"addressType": 4})),
    )
    .expect_err("addressType must be a string");
    assert!(
        error.starts_with("EndpointSlice shop/cart-1: addressType"),
        "{error}"
    );
}
