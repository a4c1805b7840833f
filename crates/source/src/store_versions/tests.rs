use model::parse::parse_documents;
use model::{Object, ObjectKey};

use super::*;
use crate::changed_kinds::changed_kinds;

fn services(names: &[&str]) -> Vec<Object> {
    let text: String = names
        .iter()
        .map(|name| format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n"))
        .collect();
    parse_documents(&text).expect("valid").objects
}

fn names(store: &Store) -> Vec<String> {
    store
        .services
        .keys()
        .map(|(_, name)| name.to_string())
        .collect()
}

fn add(objects: Vec<Object>) -> Vec<StoreEdit> {
    objects
        .into_iter()
        .map(|object| (object.key(), Some(object)))
        .collect()
}

/// Services `s0` to `s39`: enough that catching up a spare costs less than a copy.
fn forty_services() -> Vec<Object> {
    let names: Vec<String> = (0..40).map(|i| format!("s{i}")).collect();
    services(&names.iter().map(String::as_str).collect::<Vec<_>>())
}

fn removal(name: &str) -> StoreEdit {
    (ObjectKey::new(model::Kind::Service, "default", name), None)
}

#[test]
fn each_version_has_every_edit_so_far_whether_reused_or_copied() {
    let mut versions = StoreVersions::default();
    let first = versions.next(&Arc::new(Store::new()), add(forty_services()));
    assert_eq!(first.services.len(), 40);

    let second = versions.next(&first, add(services(&["extra"])));
    assert_eq!(second.services.len(), 41);
    assert!(changed_kinds(&first, &second).contains(&model::Kind::Service));

    // Nobody but `versions` holds the first store now: it is caught up and reused.
    let first_address = Arc::as_ptr(&first);
    drop(first);
    let third = versions.next(&second, vec![removal("s0")]);
    assert_eq!(
        Arc::as_ptr(&third),
        first_address,
        "the spare store is reused"
    );
    let mut expected = names(&second);
    expected.retain(|name| name != "s0");
    assert_eq!(names(&third), expected);

    // The second store is still held here: the fourth is a copy, and still right.
    let fourth = versions.next(&third, vec![removal("s1")]);
    assert_ne!(Arc::as_ptr(&fourth), Arc::as_ptr(&second));
    expected.retain(|name| name != "s1");
    assert_eq!(names(&fourth), expected);
    assert_eq!(names(&second).len(), 41, "a published store never changes");
}

#[test]
fn a_forgotten_spare_is_let_go_and_the_next_store_is_still_right() {
    let mut versions = StoreVersions::default();
    let first = versions.next(&Arc::new(Store::new()), add(forty_services()));
    let second = versions.next(&first, add(services(&["extra"])));
    let spare = Arc::downgrade(&first);
    drop(first);
    assert!(spare.upgrade().is_some(), "kept as the spare");
    versions.forget_spare();
    assert!(spare.upgrade().is_none(), "let go");
    let third = versions.next(&second, vec![removal("s0")]);
    let mut expected = names(&second);
    expected.retain(|name| name != "s0");
    assert_eq!(names(&third), expected);
}

#[test]
fn a_first_store_built_in_one_go_holds_what_inserting_would() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: web}\nspec: {controllerName: portcullis.dev/gateway-controller}\n---\napiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {name: web, namespace: shop}\nspec:\n  endpoints: [{ip: 127.0.0.1, port: 80}]\n";
    let objects = parse_documents(text).expect("valid").objects;
    let mut inserted = Store::new();
    for object in &objects {
        inserted.insert(object.clone());
    }
    let mut versions = StoreVersions::default();
    let mut edits = add(objects);
    edits.push(removal("absent"));
    let built = versions.next(&Arc::new(Store::new()), edits);
    assert_eq!(built.len(), inserted.len());
    assert!(changed_kinds(&inserted, &built).is_empty());
}
