use super::*;

#[test]
fn same_bytes_same_hash_and_different_bytes_differ() {
    let hasher = ContentHasher::new();
    assert_eq!(
        hasher.hash(b"kind: Service\n"),
        hasher.hash(b"kind: Service\n")
    );
    assert_ne!(
        hasher.hash(b"kind: Service\n"),
        hasher.hash(b"kind: Service \n")
    );
    assert_ne!(hasher.hash(b""), hasher.hash(b"\0"));
    let halves = hasher.hash(b"kind: Service\n");
    assert_ne!(halves.0, halves.1, "the two halves are not one word twice");
    // Long inputs take XXH3's other paths (over 240 bytes: the striped loop).
    let long = "kind: Service\n".repeat(1_000);
    let mut edited = long.clone().into_bytes();
    edited[7_000] ^= 1;
    assert_eq!(hasher.hash(long.as_bytes()), hasher.hash(long.as_bytes()));
    assert_ne!(hasher.hash(long.as_bytes()), hasher.hash(&edited));
}

#[test]
fn each_hasher_has_its_own_secret() {
    let (one, other) = (ContentHasher::new(), ContentHasher::new());
    assert_ne!(one.hash(b"kind: Service\n"), other.hash(b"kind: Service\n"));
}

#[test]
fn a_combined_hash_depends_on_order_and_cut() {
    let hasher = ContentHasher::new();
    let (a, b) = (hasher.hash(b"a"), hasher.hash(b"b"));
    assert_eq!(hasher.combine([a, b].iter()), hasher.combine([a, b].iter()));
    assert_ne!(hasher.combine([a, b].iter()), hasher.combine([b, a].iter()));
    assert_ne!(hasher.combine([a].iter()), hasher.combine([a, a].iter()));
}

#[test]
fn content_hash_maps_find_their_keys() {
    let hasher = ContentHasher::new();
    let mut map = ContentHashMap::default();
    for index in 0..1_000_u32 {
        map.insert(hasher.hash(&index.to_le_bytes()), index);
    }
    for index in 0..1_000_u32 {
        assert_eq!(map.get(&hasher.hash(&index.to_le_bytes())), Some(&index));
    }
}
