use model::parse::parse_documents;

use super::*;

const OBJECTS: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: web}\nspec: {controllerName: portcullis.dev/gateway-controller}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {name: web, namespace: shop}\nspec:\n  endpoints: [{ip: 127.0.0.1, port: 80}]\n";

fn objects() -> Vec<Object> {
    parse_documents(OBJECTS).expect("valid").objects
}

#[test]
fn stored_finds_and_remove_removes_each_object_by_its_key() {
    let objects = objects();
    let mut store = Store::new();
    for object in &objects {
        store.insert(object.clone());
    }
    let mut key = objects[1].key();
    let _ = stored(&store, &mut key);
    assert_eq!(key, objects[1].key(), "the key is given back whole");
    for object in &objects {
        let found = stored(&store, &mut object.key()).expect("stored");
        assert!(is_same(&found, object), "{}", object.key());
    }
    for object in &objects {
        remove(&mut store, &object.key());
        assert!(stored(&store, &mut object.key()).is_none());
    }
    assert!(store.is_empty());
}

#[test]
fn has_key_agrees_with_the_key() {
    let objects = objects();
    for object in &objects {
        for other in &objects {
            assert_eq!(
                has_key(object, &other.key()),
                object.key() == other.key(),
                "{} vs {}",
                object.key(),
                other.key()
            );
        }
    }
}

#[test]
fn equal_values_in_different_arcs_are_equal_but_not_the_same() {
    let (first, second) = (objects(), objects());
    for (a, b) in first.iter().zip(&second) {
        assert!(!is_same(a, b));
        assert!(is_equal(a, b));
        assert!(is_same(a, &a.clone()));
    }
    // The two Services differ in namespace only; a Service is never a Namespace.
    assert!(!is_equal(&first[1], &first[2]));
    assert!(!is_equal(&first[0], &first[1]));
}
