use model::{Kind, ObjectKey, Store};

use super::overlay;

fn store(documents: &str) -> Store {
    let mut store = Store::new();
    for object in model::parse_documents(documents)
        .expect("valid YAML")
        .objects
    {
        store.insert(object);
    }
    store
}

#[test]
fn a_local_object_replaces_the_cluster_object_of_the_same_key() {
    let cluster = store(
        "apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\nspec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: pay, namespace: shop}\nspec: {ports: [{port: 80}]}\n",
    );
    let local = store(
        "apiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\nspec: {ports: [{port: 8080}]}\n",
    );
    let merged = overlay(&cluster, &local);
    assert_eq!(merged.services.len(), 2);
    let Some(model::Object::Service(cart)) =
        merged.get(&ObjectKey::new(Kind::Service, "shop", "cart"))
    else {
        panic!("cart is missing");
    };
    let ports = cart
        .spec
        .as_ref()
        .and_then(|spec| spec.ports.as_ref())
        .expect("ports");
    assert_eq!(ports[0].port, 8080, "the file wins");
}
