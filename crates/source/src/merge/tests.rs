use std::path::PathBuf;

use model::parse::parse_documents;

use super::*;

/// Services, one per `name=port`: the port tells the definitions of a name apart.
fn services(list: &str) -> Vec<Object> {
    let text: String = list
        .split_whitespace()
        .map(|service| {
            let (name, port) = service.split_once('=').unwrap_or((service, "80"));
            format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{ports: [{{port: {port}}}]}}\n"
            )
        })
        .collect();
    parse_documents(&text).expect("valid").objects
}

fn file(name: &str) -> Arc<Path> {
    Arc::from(PathBuf::from(name))
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(Kind::Service, "default", name)
}

fn port(object: Option<&Object>) -> Option<i32> {
    match object {
        Some(Object::Service(service)) => service
            .spec
            .as_ref()
            .and_then(|spec| spec.ports.as_ref())
            .map(|ports| ports[0].port),
        _ => None,
    }
}

/// Applies edits to a store, as `store_versions` does.
fn apply(store: &mut Store, edits: Vec<StoreEdit>) {
    for (key, object) in edits {
        match object {
            Some(object) => {
                store.insert(object);
            }
            None => crate::store_entry::remove(store, &key),
        }
    }
}

#[test]
fn the_last_file_wins_and_the_one_before_comes_back() {
    let (a, b) = (file("a.yaml"), file("b.yaml"));
    let mut merge = Merge::default();
    let mut store = Store::new();
    let a_objects = services("web=1 api=1");
    let b_objects = services("web=2");

    let mut touched: HashSet<ObjectKey> = HashSet::new();
    touched.extend(merge.replace_file(&a, &[], &a_objects, false).keys);
    let from_b = merge.replace_file(&b, &[], &b_objects, false);
    assert!(from_b.rewarn, "b defines a key a defines too");
    touched.extend(from_b.keys);
    let (edits, kinds) = merge.store_edits(&store, touched);
    assert_eq!(kinds, BTreeSet::from([Kind::Service]));
    apply(&mut store, edits);
    assert_eq!(port(stored(&store, &mut key("web")).as_ref()), Some(2));
    assert_eq!(
        merge.warnings(&b, &b_objects),
        vec![format!(
            "Service default/web also defined in {}; the later file wins",
            a.display()
        )]
    );
    assert!(merge.warnings(&a, &a_objects).is_empty());

    // b drops web: a's definition is back.
    let dropped = merge.replace_file(&b, &b_objects, &[], true);
    assert_eq!(dropped.keys, vec![key("web")]);
    let (edits, _) = merge.store_edits(&store, dropped.keys.into_iter().collect());
    apply(&mut store, edits);
    assert_eq!(port(stored(&store, &mut key("web")).as_ref()), Some(1));

    // a drops web too: gone.
    let dropped = merge.replace_file(&a, &a_objects, &services("api=1"), false);
    let (edits, _) = merge.store_edits(&store, dropped.keys.into_iter().collect());
    apply(&mut store, edits);
    assert!(stored(&store, &mut key("web")).is_none());
    assert!(
        !merge.definitions.contains_key(&merge.hash(&key("web"))),
        "no empty lists left"
    );
}

#[test]
fn a_file_before_the_winner_marks_the_winner_for_new_warnings() {
    let (a, b) = (file("a.yaml"), file("b.yaml"));
    let mut merge = Merge::default();
    let b_objects = services("web=2");
    merge.replace_file(&b, &[], &b_objects, false);
    let from_a = merge.replace_file(&a, &[], &services("web=1"), false);
    assert_eq!(from_a.followers, vec![Arc::clone(&b)]);
    assert_eq!(merge.warnings(&b, &b_objects).len(), 1);
}

#[test]
fn within_a_file_the_last_document_wins_and_is_warned() {
    let a = file("a.yaml");
    let mut merge = Merge::default();
    let mut store = Store::new();
    let old = services("web=1 api=1 web=3");
    let touched = merge.replace_file(&a, &[], &old, false);
    assert!(touched.rewarn);
    let (edits, _) = merge.store_edits(&store, touched.keys.into_iter().collect());
    apply(&mut store, edits);
    assert_eq!(port(stored(&store, &mut key("web")).as_ref()), Some(3));
    assert_eq!(
        merge.warnings(&a, &old),
        vec!["Service default/web is defined more than once in this file; the later document wins"]
    );

    // Editing the first, losing definition changes nothing in the store.
    let mut new = old.clone();
    new[0] = services("web=9").remove(0);
    let touched = merge.replace_file(&a, &old, &new, true);
    assert_eq!(touched.keys, vec![key("web")]);
    let (edits, kinds) = merge.store_edits(&store, touched.keys.into_iter().collect());
    assert!(edits.is_empty() && kinds.is_empty(), "{edits:?}");
}

#[test]
fn only_the_changed_middle_is_looked_at() {
    let a = file("a.yaml");
    let mut merge = Merge::default();
    let old = services("s1 s2 s3 s4 s5");
    merge.replace_file(&a, &[], &old, false);
    let mut new = old.clone();
    new[2] = services("s3=81").remove(0);
    new.insert(3, services("s9").remove(0));
    let touched = merge.replace_file(&a, &old, &new, false);
    assert_eq!(touched.keys, vec![key("s3"), key("s9")]);
    assert!(!touched.rewarn, "no duplicates: the warnings stay empty");
    assert!(touched.followers.is_empty());
}

#[test]
fn equal_values_keep_the_stored_arc() {
    let a = file("a.yaml");
    let mut merge = Merge::default();
    let mut store = Store::new();
    let old = services("web");
    let touched = merge.replace_file(&a, &[], &old, false);
    let (edits, _) = merge.store_edits(&store, touched.keys.into_iter().collect());
    apply(&mut store, edits);
    let touched = merge.replace_file(&a, &old, &services("web"), false);
    let (edits, kinds) = merge.store_edits(&store, touched.keys.into_iter().collect());
    assert!(edits.is_empty() && kinds.is_empty());
}

#[test]
fn many_changed_objects_find_the_last_definition_of_each_key() {
    let a = file("a.yaml");
    let mut merge = Merge::default();
    let mut store = Store::new();
    // s0..s19, then s3 again: the file's definition of s3 is the last one (port 7).
    let names: Vec<String> = (0..20).map(|i| format!("s{i}=1")).collect();
    let old = services(&format!("{} s3=7", names.join(" ")));
    let touched = merge.replace_file(&a, &[], &old, false);
    assert!(touched.rewarn, "s3 twice");
    let (edits, _) = merge.store_edits(&store, touched.keys.into_iter().collect());
    apply(&mut store, edits);
    assert_eq!(port(stored(&store, &mut key("s3")).as_ref()), Some(7));

    // s2..s16 rewritten (port 2); the start and the end (s17..s19, s3=7) stay the same Arcs.
    let middle: Vec<String> = (2..17).map(|i| format!("s{i}=2")).collect();
    let mut new = old[..2].to_vec();
    new.extend(services(&middle.join(" ")));
    new.extend_from_slice(&old[17..]);
    let touched = merge.replace_file(&a, &old, &new, true);
    assert_eq!(touched.keys.len(), 15);
    let (edits, _) = merge.store_edits(&store, touched.keys.into_iter().collect());
    apply(&mut store, edits);
    assert_eq!(port(stored(&store, &mut key("s3")).as_ref()), Some(7));
    assert_eq!(port(stored(&store, &mut key("s4")).as_ref()), Some(2));
    assert_eq!(port(stored(&store, &mut key("s0")).as_ref()), Some(1));
    assert_eq!(port(stored(&store, &mut key("s19")).as_ref()), Some(1));

    // The file goes: every key goes.
    let touched = merge.replace_file(&a, &new, &[], true);
    let (edits, _) = merge.store_edits(&store, touched.keys.into_iter().collect());
    apply(&mut store, edits);
    assert!(store.is_empty());
    assert!(merge.definitions.is_empty());
}

#[test]
fn loading_every_file_at_once_merges_as_file_by_file() {
    let files = [
        (file("a.yaml"), services("web=1 api=1")),
        (file("b.yaml"), services("web=2 db=2 db=3")),
        (file("c.yaml"), services("api=4")),
    ];
    let mut at_once = Merge::default();
    let (edits, kinds, duplicated) = at_once.load(
        files
            .iter()
            .map(|(path, objects)| (path, objects.as_slice())),
    );
    let mut loaded = Store::new();
    apply(&mut loaded, edits);
    assert_eq!(kinds, BTreeSet::from([Kind::Service]));
    assert_eq!(duplicated, BTreeSet::from([file("b.yaml"), file("c.yaml")]));

    let mut one_by_one = Merge::default();
    let mut keys = HashSet::new();
    for (path, objects) in &files {
        keys.extend(one_by_one.replace_file(path, &[], objects, false).keys);
    }
    let mut merged = Store::new();
    let (edits, _) = one_by_one.store_edits(&merged, keys);
    apply(&mut merged, edits);

    assert!(crate::changed_kinds::changed_kinds(&merged, &loaded).is_empty());
    assert_eq!(port(stored(&loaded, &mut key("web")).as_ref()), Some(2));
    assert_eq!(port(stored(&loaded, &mut key("db")).as_ref()), Some(3));
    assert_eq!(port(stored(&loaded, &mut key("api")).as_ref()), Some(4));
    for (path, objects) in &files {
        assert_eq!(
            at_once.warnings(path, objects),
            one_by_one.warnings(path, objects),
            "{}",
            path.display()
        );
    }
    assert_eq!(at_once.warnings(&files[1].0, &files[1].1).len(), 2);
}
