use super::*;
use crate::matching::prefix_elements;

/// Trie with entry `i` for `prefixes[i]`, inserted longest first as the table does.
fn trie(prefixes: &[&str]) -> PrefixTrie {
    let mut trie = PrefixTrie::default();
    for (entry, prefix) in prefixes.iter().enumerate() {
        let elements = prefix_elements(prefix).expect("test prefixes start with /");
        trie.insert(elements, entry);
    }
    trie
}

/// Every entry covering `path`, in the order `find` offers them.
fn offered(trie: &PrefixTrie, path: &str) -> Vec<usize> {
    let mut seen = Vec::new();
    trie.find(path, |entry| {
        seen.push(entry);
        false
    });
    seen
}

#[test]
fn deepest_prefix_is_offered_first() {
    let trie = trie(&["/", "/a", "/a/b", "/a/b/c"]);
    assert_eq!(offered(&trie, "/a/b/c/d"), [3, 2, 1, 0]);
    assert_eq!(offered(&trie, "/a/b"), [2, 1, 0]);
    assert_eq!(offered(&trie, "/a/bc"), [1, 0]);
}

#[test]
fn prefix_matches_on_segment_boundary() {
    let trie = trie(&["/abc"]);
    assert_eq!(offered(&trie, "/abc"), [0]);
    assert_eq!(offered(&trie, "/abc/"), [0]);
    assert_eq!(offered(&trie, "/abc/def"), [0]);
    assert!(offered(&trie, "/abcd").is_empty());
}

#[test]
fn prefix_trailing_slash_equivalent() {
    let trie = trie(&["/abc/"]);
    assert_eq!(offered(&trie, "/abc"), [0]);
    assert_eq!(offered(&trie, "/abc/x"), [0]);
}

#[test]
fn empty_segments_are_elements() {
    let trie = trie(&["/a//b", "//"]);
    assert_eq!(offered(&trie, "/a//b/c"), [0]);
    assert!(offered(&trie, "/a/b").is_empty());
    assert_eq!(offered(&trie, "//x"), [1]);
    assert_eq!(offered(&trie, "/"), [1]);
}

#[test]
fn path_without_leading_slash_is_covered_only_by_root() {
    let trie = trie(&["/", "/a"]);
    assert_eq!(offered(&trie, "*"), [0]);
}

#[test]
fn find_stops_at_first_accepted() {
    let trie = trie(&["/a", "/a"]);
    assert_eq!(trie.find("/a/x", |entry| entry == 1), Some(1));
    assert_eq!(trie.find("/a/x", |_| false), None);
}

#[test]
fn wide_node_switches_to_hash_map_and_keeps_entries() {
    let prefixes: Vec<String> = (0..3 * MAX_LINEAR_CHILDREN)
        .map(|i| format!("/s{i}/x"))
        .collect();
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let trie = trie(&prefixes);
    assert!(matches!(trie.root.children, Children::Many(_)));
    for (entry, prefix) in prefixes.iter().enumerate() {
        assert_eq!(offered(&trie, &format!("{prefix}/y")), [entry]);
    }
}
