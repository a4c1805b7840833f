use std::collections::BTreeSet;
use std::path::Path;

use model::Kind;

use super::*;
use crate::test_dir::TestDir;

fn backend(name: &str, port: u16) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  endpoints: [{{ip: 127.0.0.1, port: {port}}}]\n"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  ports: [{{name: http, port: 80}}]\n"
    )
}

fn endpoint_slice(name: &str, address: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: shop, labels: {{kubernetes.io/service-name: web}}}}\naddressType: IPv4\nendpoints: [{{addresses: [{address}]}}]\nports: [{{name: http, port: 8080}}]\n"
    )
}

fn key(name: &str) -> (String, String) {
    ("shop".to_owned(), name.to_owned())
}

fn report_for<'a>(update: &'a SourceUpdate, path: &Path) -> &'a FileReport {
    update
        .files
        .iter()
        .find(|report| report.path == path)
        .expect("a report for the file")
}

#[test]
fn loads_every_yaml_file_of_a_directory_in_path_order() {
    let dir = TestDir::new();
    let a = dir.write(
        "a.yaml",
        &format!("{}---\n{}", backend("one", 1), service("web")),
    );
    let b = dir.write("nested/b.yml", &backend("two", 2));
    dir.write("notes.txt", &backend("ignored-text", 3));
    dir.write(".hidden.yaml", &backend("ignored-hidden", 4));
    dir.write(".git/c.yaml", &backend("ignored-dir", 5));

    let source = FileSource::load(dir.path()).expect("load");
    let update = source.current();

    assert_eq!(update.generation, 1);
    assert_eq!(
        update
            .files
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>(),
        vec![a.clone(), b]
    );
    assert_eq!(
        update.store.backends.keys().cloned().collect::<Vec<_>>(),
        vec![key("one"), key("two")]
    );
    assert!(update.store.services.contains_key(&key("web")));
    assert_eq!(report_for(&update, &a).objects, 2);
    assert_eq!(
        update.changed_kinds,
        BTreeSet::from([Kind::Service, Kind::Backend])
    );
}

#[test]
fn skipped_kinds_are_reported() {
    let dir = TestDir::new();
    let path = dir.write(
        "a.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\n---\n{}",
            service("web")
        ),
    );
    let update = FileSource::load(dir.path()).expect("load").current();
    let report = report_for(&update, &path);
    assert_eq!(report.skipped, vec!["apps/v1 Deployment web".to_owned()]);
    assert_eq!(report.objects, 1);
}

#[test]
fn missing_path_is_an_error() {
    let dir = TestDir::new();
    let error = FileSource::load(&dir.path().join("absent")).expect_err("no such path");
    assert!(matches!(error, SourceError::Read { .. }), "{error}");
}

#[test]
fn bad_yaml_keeps_the_last_good_objects_and_reports_the_error() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");

    dir.write("a.yaml", "apiVersion: [unclosed\n");
    let update = source.rescan().expect("the report changed");

    assert!(
        update.store.backends.contains_key(&key("one")),
        "last good object kept"
    );
    let report = report_for(&update, &path);
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("invalid YAML")),
        "{report:?}"
    );
    assert_eq!(report.objects, 1);
    assert!(update.changed_kinds.is_empty());
    assert!(
        source.rescan().is_none(),
        "an unchanged bad file is not reported again"
    );

    dir.write("a.yaml", &backend("two", 2));
    let update = source.rescan().expect("fixed");
    assert_eq!(
        update.store.backends.keys().cloned().collect::<Vec<_>>(),
        vec![key("two")]
    );
    assert_eq!(report_for(&update, &path).error, None);
}

#[test]
fn a_file_that_never_parsed_contributes_nothing() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", "kind: HTTPRoute\n");
    let update = FileSource::load(dir.path()).expect("load").current();
    assert!(update.store.is_empty());
    assert!(report_for(&update, &path).error.is_some());
}

#[test]
fn deleting_a_file_drops_its_objects() {
    let dir = TestDir::new();
    dir.write("a.yaml", &backend("one", 1));
    let b = dir.write("b.yaml", &backend("two", 2));
    let mut source = FileSource::load(dir.path()).expect("load");

    std::fs::remove_file(&b).expect("remove");
    let update = source.rescan().expect("changed");

    assert_eq!(
        update.store.backends.keys().cloned().collect::<Vec<_>>(),
        vec![key("one")]
    );
    assert_eq!(update.files.len(), 1);
    assert_eq!(update.generation, 2);
}

#[test]
fn rescan_without_changes_returns_none() {
    let dir = TestDir::new();
    dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");
    assert!(source.rescan().is_none());
    // Rewriting the same bytes is not a change either.
    dir.write("a.yaml", &backend("one", 1));
    assert!(source.rescan().is_none());
    assert_eq!(source.current().generation, 1);
}

#[test]
fn a_semantically_equal_rewrite_changes_no_kind() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");
    // Different bytes (a comment), same objects: re-parsed, equal by value, nothing published.
    std::fs::write(&path, format!("# comment\n{}", backend("one", 1))).expect("write");
    assert!(source.rescan().is_none());
}

#[test]
fn only_endpoint_slice_is_listed_when_only_an_endpoint_slice_changed() {
    let dir = TestDir::new();
    dir.write(
        "app.yaml",
        &format!("{}---\n{}", service("web"), backend("one", 1)),
    );
    dir.write("endpoints.yaml", &endpoint_slice("web-1", "10.0.0.1"));
    let mut source = FileSource::load(dir.path()).expect("load");
    let before = source.current();

    dir.write("endpoints.yaml", &endpoint_slice("web-1", "10.0.0.2"));
    let update = source.rescan().expect("changed");

    assert_eq!(update.changed_kinds, BTreeSet::from([Kind::EndpointSlice]));
    assert!(Arc::ptr_eq(
        &before.store.services[&key("web")],
        &update.store.services[&key("web")]
    ));
}

#[test]
fn a_later_file_wins_a_duplicate_and_is_warned() {
    let dir = TestDir::new();
    let a = dir.write("a.yaml", &backend("one", 1));
    let b = dir.write("b.yaml", &backend("one", 2));
    let update = FileSource::load(dir.path()).expect("load").current();

    let endpoints = &update.store.backends[&key("one")].spec.endpoints;
    assert_eq!(endpoints[0].port, 2);
    assert!(report_for(&update, &a).warnings.is_empty());
    let warnings = &report_for(&update, &b).warnings;
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with("Backend shop/one also defined in"),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("a.yaml"), "{warnings:?}");
}

#[test]
fn a_single_file_path_is_loaded_whatever_its_extension() {
    let dir = TestDir::new();
    let path = dir.write("gateway.conf", &backend("one", 1));
    dir.write("other.yaml", &backend("two", 2));
    let mut source = FileSource::load(&path).expect("load");
    let update = source.current();
    assert_eq!(
        update.store.backends.keys().cloned().collect::<Vec<_>>(),
        vec![key("one")]
    );

    dir.write("gateway.conf", &backend("three", 3));
    let update = source.rescan().expect("changed");
    assert_eq!(
        update.store.backends.keys().cloned().collect::<Vec<_>>(),
        vec![key("three")]
    );
}

#[test]
fn a_vanished_single_file_keeps_its_objects() {
    let dir = TestDir::new();
    let path = dir.write("gateway.yaml", &backend("one", 1));
    let mut source = FileSource::load(&path).expect("load");
    std::fs::remove_file(&path).expect("remove");
    assert!(source.rescan().is_none());
    assert!(source.current().store.backends.contains_key(&key("one")));
}

#[test]
fn reports_serialize_to_json() {
    let dir = TestDir::new();
    dir.write("a.yaml", &backend("one", 1));
    let update = FileSource::load(dir.path()).expect("load").current();
    let json = serde_json::to_value(&update.files).expect("serialize");
    assert_eq!(json[0]["objects"], 1);
    assert!(json[0]["error"].is_null());
}
