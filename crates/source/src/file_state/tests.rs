use std::sync::Arc;

use super::*;
use crate::test_dir::TestDir;

fn namespaces(count: usize) -> String {
    (0..count)
        .map(|index| {
            format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{index}}}\n")
        })
        .collect()
}

/// Reads `path` into `state` as a rescan does: parses what [`Text::unparsed`] asks for.
/// Returns how many pieces were parsed and the previous objects if they changed.
fn read_into(
    state: &mut FileState,
    path: &Path,
    hasher: &ContentHasher,
) -> (usize, Option<Vec<Object>>) {
    let reading = Reading::of(path, hasher);
    let mut parsed = ContentHashMap::default();
    let budget = model::parse::FileBudget::new();
    if let Reading::Text(text) = &reading {
        for (piece, hash) in text.unparsed(Some(state)) {
            parsed.insert(hash, Box::new(model::parse::parse_document(piece, &budget)));
        }
    }
    let count = parsed.len();
    let stamp = FileStamp::of(&std::fs::metadata(path).expect("metadata"));
    let old = state.take_reading(path, reading, stamp, SystemTime::now(), &mut parsed);
    (count, old)
}

fn same_arc(a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Namespace(a), Object::Namespace(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

#[test]
fn editing_one_document_of_300_parses_one_and_keeps_the_others() {
    let dir = TestDir::new();
    let text = namespaces(300);
    let path = dir.write("a.yaml", &text);
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    let (parsed, _) = read_into(&mut state, &path, &hasher);
    assert_eq!(parsed, 300);
    let before = state.objects.clone();

    dir.write("a.yaml", &text.replace("name: ns-150}", "name: ns-150b}"));
    let (parsed, old) = read_into(&mut state, &path, &hasher);
    assert_eq!(parsed, 1, "only the edited document is parsed");
    assert!(old.is_some(), "the objects changed");
    assert_eq!(state.objects.len(), 300);
    for (index, (before, after)) in before.iter().zip(&state.objects).enumerate() {
        assert_eq!(
            same_arc(before, after),
            index != 150,
            "document {}",
            index + 1
        );
    }
    assert_eq!(
        state.documents.len(),
        300,
        "the replaced document is forgotten"
    );
}

#[test]
fn the_same_bytes_parse_nothing_and_change_nothing() {
    let dir = TestDir::new();
    let path = dir.write("a.yaml", &namespaces(3));
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    read_into(&mut state, &path, &hasher);
    dir.write("a.yaml", &namespaces(3));
    let (parsed, old) = read_into(&mut state, &path, &hasher);
    assert_eq!((parsed, old.is_none()), (0, true));
}

#[test]
fn a_repeated_document_is_parsed_once_and_both_copies_count() {
    let dir = TestDir::new();
    let document = namespaces(1);
    let path = dir.write("a.yaml", &document.repeat(2));
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    let (parsed, _) = read_into(&mut state, &path, &hasher);
    assert_eq!(parsed, 1);
    assert_eq!(state.objects.len(), 2);
}

#[test]
fn a_bad_document_keeps_the_last_good_objects_and_the_good_documents() {
    let dir = TestDir::new();
    let text = namespaces(10);
    let path = dir.write("a.yaml", &text);
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    read_into(&mut state, &path, &hasher);
    let good = state.objects.clone();

    dir.write("a.yaml", &text.replace("name: ns-4}", "name: [ns-4}"));
    let (parsed, old) = read_into(&mut state, &path, &hasher);
    assert_eq!((parsed, old.is_none()), (1, true));
    let error = state.error.clone().expect("an error");
    assert!(error.starts_with("invalid YAML: "), "{error}");
    assert!(
        error.contains("line 20"),
        "the line within the file: {error}"
    );
    assert!(good.iter().zip(&state.objects).all(|(a, b)| same_arc(a, b)));

    // Fixing it parses the fixed document only; the nine others were kept.
    dir.write("a.yaml", &text);
    let (parsed, old) = read_into(&mut state, &path, &hasher);
    assert_eq!(parsed, 1);
    assert!(old.is_some());
    assert_eq!(state.error, None);
}

#[test]
fn a_file_that_is_not_utf8_is_reported_once() {
    let dir = TestDir::new();
    let path = dir.path().join("a.yaml");
    std::fs::write(&path, b"kind: \xff\n").expect("write");
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    read_into(&mut state, &path, &hasher);
    let error = state.error.clone().expect("an error");
    assert!(error.starts_with("not UTF-8"), "{error}");
    let before = state.outcome();
    read_into(&mut state, &path, &hasher);
    assert_eq!(state.outcome(), before);
}

#[test]
fn random_edits_give_the_objects_of_a_fresh_parse_and_parse_only_new_documents() {
    // A file of namespaces edited at random: a document changed, added, removed, moved or
    // copied, anywhere. After each edit the file's objects are those of parsing the whole text
    // again, and only documents whose text is new were parsed (a copy of a document from the
    // unchanged ends may be parsed once more).
    let dir = TestDir::new();
    let hasher = ContentHasher::new();
    let mut state = FileState::default();
    let document =
        |id: u64| format!("---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{id}}}\n");
    let mut documents: Vec<u64> = (0..40).collect();
    let mut next_id = 40;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut random = move |below: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % u64::try_from(below.max(1)).unwrap_or(1)).unwrap_or(0)
    };
    let text = |documents: &[u64]| documents.iter().map(|id| document(*id)).collect::<String>();
    let path = dir.write("a.yaml", &text(&documents));
    read_into(&mut state, &path, &hasher);
    for step in 0..300 {
        let at = random(documents.len());
        let most_parsed = match random(5) {
            0 if !documents.is_empty() => {
                documents[at] = next_id;
                next_id += 1;
                1
            }
            1 => {
                documents.insert(at, next_id);
                next_id += 1;
                1
            }
            2 if documents.len() > 1 => {
                documents.remove(at);
                0
            }
            3 if !documents.is_empty() => {
                let moved = documents.remove(at);
                documents.insert(random(documents.len() + 1), moved);
                0
            }
            4 if !documents.is_empty() => {
                let copy = documents[at];
                documents.insert(random(documents.len() + 1), copy);
                1
            }
            _ => 0,
        };
        let written = text(&documents);
        dir.write("a.yaml", &written);
        let (parsed, _) = read_into(&mut state, &path, &hasher);
        assert!(parsed <= most_parsed, "step {step}: {parsed} parsed");
        let fresh = model::parse_documents(&written).expect("valid");
        let keys = |objects: &[Object]| objects.iter().map(Object::key).collect::<Vec<_>>();
        assert_eq!(keys(&state.objects), keys(&fresh.objects), "step {step}");
        assert_eq!(state.documents.len(), documents.len(), "step {step}");
    }
}
