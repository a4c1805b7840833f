use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use model::{Kind, ObjectKey, Store};

use super::*;
use crate::FileReport;
use crate::changed_kinds::changed_kinds;
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

fn key(name: &str) -> model::NamespacedName {
    model::key("shop", name)
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

#[test]
fn editing_one_document_of_a_300_document_file_keeps_the_other_objects() {
    let dir = TestDir::new();
    let text: String = (0..300)
        .map(|index| format!("---\n{}", backend(&format!("b{index}"), 1)))
        .collect();
    let path = dir.write("a.yaml", &text);
    let mut source = FileSource::load(dir.path()).expect("load");
    let before = source.current();

    let edited = text.replace(
        "name: b150, namespace: shop}\nspec:\n  endpoints: [{ip: 127.0.0.1, port: 1}]",
        "name: b150, namespace: shop}\nspec:\n  endpoints: [{ip: 127.0.0.1, port: 2}]",
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).expect("write");
    let after = source.rescan().expect("changed");

    assert_eq!(after.changed_kinds, BTreeSet::from([Kind::Backend]));
    assert_eq!(after.store.backends.len(), 300);
    for (key, object) in &before.store.backends {
        let same = Arc::ptr_eq(object, &after.store.backends[key]);
        assert_eq!(same, key.1 != "b150", "{key:?}");
    }
    assert_eq!(report_for(&after, &path).objects, 300);
}

#[test]
fn touching_a_file_publishes_nothing() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|file| file.set_modified(std::time::SystemTime::now()))
        .expect("touch");
    assert!(source.rescan().is_none());
}

#[test]
fn a_deferred_file_is_left_until_its_writer_is_done() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");
    dir.write("a.yaml", &backend("two", 1));
    let deferred = Changes {
        deferred: HashSet::from([path.clone()]),
        ..Changes::default()
    };
    assert!(source.rescan_with(&deferred).is_none());
    assert!(source.current().store.backends.contains_key(&key("one")));

    let update = source.rescan().expect("read now");
    assert!(update.store.backends.contains_key(&key("two")));
}

#[test]
fn events_naming_only_known_files_rescan_those_without_listing_the_tree() {
    let dir = TestDir::new();
    let a = dir.write("a.yaml", &backend("one", 1));
    let b = dir.write("b.yaml", &backend("two", 2));
    let mut source = FileSource::load(dir.path()).expect("load");
    let named = |paths: &[&PathBuf]| Changes {
        named: paths.iter().map(|path| (*path).clone()).collect(),
        ..Changes::default()
    };

    // A save of a known file is read; a file that no event named is not seen yet.
    dir.write("a.yaml", &backend("three", 3));
    dir.write("c.yaml", &backend("four", 4));
    let update = source.rescan_with(&named(&[&a])).expect("a changed");
    assert!(update.store.backends.contains_key(&key("three")));
    assert!(!update.store.backends.contains_key(&key("four")));

    // A known file that is gone is dropped.
    std::fs::remove_file(&b).expect("remove b");
    let update = source.rescan_with(&named(&[&b])).expect("b removed");
    assert!(!update.store.backends.contains_key(&key("two")));
    assert!(!update.store.backends.contains_key(&key("four")));

    // A path not read before (a new file, a directory) lists the tree: c is found.
    let d = dir.write("d.yaml", &backend("five", 5));
    let update = source.rescan_with(&named(&[&d])).expect("d and c are new");
    assert!(update.store.backends.contains_key(&key("four")));
    assert!(update.store.backends.contains_key(&key("five")));
    assert!(update.store.backends.contains_key(&key("three")));
}

#[test]
fn files_are_read_when_changed_named_stale_or_all_are_asked_for() {
    let dir = TestDir::new();
    let a = dir.write("a.yaml", &backend("one", 1));
    let b = dir.write("b.yaml", &backend("two", 2));
    let mut source = FileSource::load(dir.path()).expect("load");
    let to_read = |source: &FileSource, changes: &Changes| {
        let listing = config_files(dir.path()).expect("list");
        source
            .files_to_read(listing, changes)
            .into_iter()
            .map(|(path, _)| path.to_path_buf())
            .collect::<Vec<_>>()
    };
    // Just written: stale, so read again whatever their metadata.
    assert_eq!(
        to_read(&source, &Changes::default()),
        vec![a.clone(), b.clone()]
    );

    for state in source.files.values_mut() {
        state.mark_fresh();
    }
    assert!(to_read(&source, &Changes::default()).is_empty());
    let named = Changes {
        named: HashSet::from([b.clone()]),
        ..Changes::default()
    };
    assert_eq!(to_read(&source, &named), vec![b.clone()]);
    let everything = Changes {
        everything: true,
        deferred: HashSet::from([a.clone()]),
        ..Changes::default()
    };
    assert_eq!(to_read(&source, &everything), vec![b.clone()]);

    dir.write("a.yaml", &backend("three", 33));
    assert_eq!(to_read(&source, &Changes::default()), vec![a]);
}

#[test]
fn a_rescan_says_whether_it_read_a_file() {
    let dir = TestDir::new();
    dir.write("a.yaml", &backend("one", 1));
    let mut source = FileSource::load(dir.path()).expect("load");
    // Just written: read again, with nothing to publish.
    assert!(source.rescan().is_none());
    assert!(source.last_rescan_read());

    for state in source.files.values_mut() {
        state.mark_fresh();
    }
    assert!(source.rescan().is_none());
    assert!(!source.last_rescan_read(), "nothing changed: only listed");

    dir.write("a.yaml", &backend("one", 2));
    assert!(source.rescan().is_some());
    assert!(source.last_rescan_read());
}

/// The file source's results computed the way it did before it kept state between rescans:
/// every file parsed whole, merged in path order from scratch.
#[derive(Default)]
struct Reference {
    /// Each file's last good objects and skipped kinds.
    last_good: BTreeMap<PathBuf, (Vec<Object>, Vec<String>)>,
}

impl Reference {
    fn scan(&mut self, root: &Path) -> (Store, Vec<FileReport>) {
        let paths: Vec<PathBuf> = config_files(root)
            .expect("list")
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        self.last_good.retain(|path, _| paths.contains(path));
        let mut store = Store::new();
        let mut owners: HashMap<ObjectKey, PathBuf> = HashMap::new();
        let mut reports = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("UTF-8");
            let error = match model::parse::parse_documents(&text) {
                Ok(parsed) => {
                    self.last_good
                        .insert(path.clone(), (parsed.objects, parsed.skipped));
                    None
                }
                Err(error) => Some(error.to_string()),
            };
            let (objects, skipped) = self.last_good.get(&path).cloned().unwrap_or_default();
            let mut warnings = Vec::new();
            for object in &objects {
                if let Some(earlier) = owners.insert(object.key(), path.clone()) {
                    warnings.push(duplicate(&object.key(), &earlier, &path));
                }
                store.insert(object.clone());
            }
            reports.push(FileReport {
                path,
                objects: objects.len(),
                skipped,
                error,
                warnings,
            });
        }
        (store, reports)
    }
}

fn duplicate(key: &ObjectKey, earlier: &Path, later: &Path) -> String {
    if earlier == later {
        format!("{key} is defined more than once in this file; the later document wins")
    } else {
        format!(
            "{key} also defined in {}; the later file wins",
            earlier.display()
        )
    }
}

#[test]
fn incremental_rescans_agree_with_merging_every_file_from_scratch() {
    let dir = TestDir::new();
    // Enough text to be read and parsed on several threads.
    for file in 0..30 {
        let text: String = (0..40)
            .map(|index| {
                format!(
                    "---\n{}",
                    endpoint_slice(&format!("bulk-{file}-{index}"), "10.0.0.1")
                )
            })
            .collect();
        dir.write(&format!("bulk/{file:02}.yaml"), &text);
    }
    let steps: Vec<Vec<(&str, Option<String>)>> = vec![
        vec![
            (
                "a.yaml",
                Some(format!("{}---\n{}", backend("one", 1), backend("two", 2))),
            ),
            ("b.yaml", Some(backend("one", 3))),
            (
                "c.yaml",
                Some(format!(
                    "{}---\n{}---\n{}",
                    service("web"),
                    backend("two", 4),
                    backend("two", 5)
                )),
            ),
        ],
        // b drops `one`: a's comes back.
        vec![("b.yaml", Some(service("other")))],
        // c defines `one` too, after a: c wins, with a warning naming a.
        vec![(
            "c.yaml",
            Some(format!("{}---\n{}", backend("one", 6), backend("two", 4))),
        )],
        // a no longer parses (keeps its last good objects); a file before it appears.
        vec![
            ("a.yaml", Some("apiVersion: [unclosed\n".to_owned())),
            ("0.yaml", Some(backend("two", 7))),
        ],
        // c is deleted, a is fixed with different objects, one bulk document changes.
        vec![
            ("c.yaml", None),
            (
                "a.yaml",
                Some(format!("{}---\n{}", backend("one", 8), service("web"))),
            ),
            (
                "bulk/07.yaml",
                Some(
                    (0..40)
                        .map(|index| {
                            let address = if index == 20 { "10.9.9.9" } else { "10.0.0.1" };
                            format!(
                                "---\n{}",
                                endpoint_slice(&format!("bulk-7-{index}"), address)
                            )
                        })
                        .collect(),
                ),
            ),
        ],
        // A bulk file repeats a slice of another bulk file; 0.yaml goes.
        vec![
            ("bulk/29.yaml", Some(endpoint_slice("bulk-3-3", "10.1.1.1"))),
            ("0.yaml", None),
        ],
    ];

    let mut reference = Reference::default();
    let mut source: Option<FileSource> = None;
    let mut previous: Option<Arc<SourceUpdate>> = None;
    for (step, edits) in steps.into_iter().enumerate() {
        for (name, text) in edits {
            match text {
                Some(text) => {
                    dir.write(name, &text);
                }
                None => std::fs::remove_file(dir.path().join(name)).expect("remove"),
            }
        }
        let update = match &mut source {
            None => {
                let loaded = FileSource::load(dir.path()).expect("load");
                let update = loaded.current();
                source = Some(loaded);
                update
            }
            Some(source) => source.rescan().expect("every step changes something"),
        };
        let (store, reports) = reference.scan(dir.path());
        assert!(
            changed_kinds(&store, &update.store).is_empty(),
            "step {step}: the stores differ in {:?}",
            changed_kinds(&store, &update.store)
        );
        assert_eq!(update.files, reports, "step {step}");
        if let Some(previous) = &previous {
            assert_eq!(
                update.changed_kinds,
                changed_kinds(&previous.store, &update.store),
                "step {step}"
            );
            let mut named: Vec<ObjectKey> = update
                .changed
                .as_deref()
                .expect("a rescan names what changed")
                .to_vec();
            named.sort();
            assert_eq!(
                named,
                model::diff::changed_object_keys(&previous.store, &update.store),
                "step {step}"
            );
        } else {
            assert!(update.changed.is_none(), "the first load names nothing");
        }
        previous = Some(update);
    }
}
