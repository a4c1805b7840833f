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
    assert_ne!(halves.0, halves.1, "the two hashers have different keys");
}

#[test]
fn a_combined_hash_depends_on_order_and_cut() {
    let hasher = ContentHasher::new();
    let (a, b) = (hasher.hash(b"a"), hasher.hash(b"b"));
    assert_eq!(hasher.combine(&[a, b]), hasher.combine(&[a, b]));
    assert_ne!(hasher.combine(&[a, b]), hasher.combine(&[b, a]));
    assert_ne!(hasher.combine(&[a]), hasher.combine(&[a, a]));
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
