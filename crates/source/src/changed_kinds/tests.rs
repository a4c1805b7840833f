use model::parse_documents;

use super::*;

fn store(text: &str) -> Store {
    let mut store = Store::new();
    for object in parse_documents(text).expect("valid YAML").objects {
        store.insert(object);
    }
    store
}

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n";
const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n";

#[test]
fn equal_stores_change_nothing() {
    assert!(changed_kinds(&store(SERVICE), &store(SERVICE)).is_empty());
}

#[test]
fn added_removed_and_modified_objects_are_changes() {
    let both = format!("{SERVICE}---\n{NAMESPACE}");
    assert_eq!(
        changed_kinds(&store(SERVICE), &store(&both)),
        BTreeSet::from([Kind::Namespace])
    );
    assert_eq!(
        changed_kinds(&store(&both), &store(SERVICE)),
        BTreeSet::from([Kind::Namespace])
    );
    let labelled = "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {a: b}}\n";
    assert_eq!(
        changed_kinds(&store(SERVICE), &store(labelled)),
        BTreeSet::from([Kind::Service])
    );
}

#[test]
fn a_renamed_object_is_a_change() {
    let renamed = "apiVersion: v1\nkind: Service\nmetadata: {name: api}\n";
    assert_eq!(
        changed_kinds(&store(SERVICE), &store(renamed)),
        BTreeSet::from([Kind::Service])
    );
}
