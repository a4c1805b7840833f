//! Dynamic table behaviour through the decoder: eviction (RFC 7541 §4.4) and size updates
//! (§4.3, §6.3).

use super::{
    Decoder, DecoderError, Seen, decode, indexed, literal_indexed_name, literal_new_name,
    size_update, table_of, valid,
};

/// A field of exactly 50 octets by RFC size: 3-octet name, 15-octet value.
fn fifty(tag: u8) -> (Vec<u8>, Seen) {
    let value = [tag; 15];
    let text = String::from_utf8(value.to_vec()).expect("ASCII tag");
    (literal_new_name(0x40, b"x-a", &value), valid("x-a", &text))
}

#[test]
fn table_starts_at_the_advertised_size_and_evicts_the_oldest() {
    let mut decoder = Decoder::new(100);
    let (a, seen_a) = fifty(b'a');
    let (b, seen_b) = fifty(b'b');
    let (c, seen_c) = fifty(b'c');
    assert!(decode(&mut decoder, &[a, b].concat()).is_ok());
    assert_eq!(table_of(&decoder), (vec![seen_b.clone(), seen_a], 100));
    assert!(decode(&mut decoder, &c).is_ok());
    assert_eq!(
        table_of(&decoder),
        (vec![seen_c.clone(), seen_b.clone()], 100)
    );
    assert_eq!(
        decode(&mut decoder, &[indexed(62), indexed(63)].concat()),
        Ok(vec![seen_c, seen_b])
    );
    assert_eq!(
        decode(&mut decoder, &indexed(64)),
        Err(DecoderError::InvalidIndex { index: 64 })
    );
}

#[test]
fn entry_larger_than_the_table_empties_it_and_is_not_added() {
    let mut decoder = Decoder::new(100);
    let (a, _) = fifty(b'a');
    // 3 + 66 + 32 = 101 octets.
    let large = literal_new_name(0x40, b"x-b", &[b'v'; 66]);
    let fields = decode(&mut decoder, &[a, large].concat()).expect("valid block");
    assert_eq!(fields.len(), 2, "the large field is still delivered");
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
    assert_eq!(
        decode(&mut decoder, &indexed(62)),
        Err(DecoderError::InvalidIndex { index: 62 })
    );
}

#[test]
fn entry_of_exactly_the_table_size_fits() {
    let mut decoder = Decoder::new(100);
    let exact = literal_new_name(0x40, b"x-b", &[b'v'; 65]);
    assert!(decode(&mut decoder, &exact).is_ok());
    assert_eq!(table_of(&decoder).1, 100);
}

#[test]
fn literal_may_name_the_entry_its_insertion_evicts() {
    // RFC 7541 §4.4: the name is taken before the referenced entry is evicted.
    let mut decoder = Decoder::new(100);
    let (a, _) = fifty(b'a');
    assert!(decode(&mut decoder, &a).is_ok());
    // 3 + 65 + 32 = 100: the new entry needs the whole table.
    let block = literal_indexed_name(0x40, 62, &[b'z'; 65]);
    let expected = valid("x-a", &"z".repeat(65));
    assert_eq!(decode(&mut decoder, &block), Ok(vec![expected.clone()]));
    assert_eq!(table_of(&decoder), (vec![expected], 100));
}

#[test]
fn size_update_evicts_down_to_the_new_size() {
    let mut decoder = Decoder::new(4096);
    let (a, _) = fifty(b'a');
    let (b, seen_b) = fifty(b'b');
    assert!(decode(&mut decoder, &[a, b].concat()).is_ok());
    assert_eq!(decode(&mut decoder, &size_update(50)), Ok(Vec::new()));
    assert_eq!(table_of(&decoder), (vec![seen_b.clone()], 50));
    // The smaller size now bounds inserts too.
    let (c, seen_c) = fifty(b'c');
    assert!(decode(&mut decoder, &c).is_ok());
    assert_eq!(table_of(&decoder), (vec![seen_c], 50));
}

#[test]
fn size_update_to_zero_empties_the_table() {
    let mut decoder = Decoder::new(4096);
    let (a, _) = fifty(b'a');
    assert!(decode(&mut decoder, &a).is_ok());
    let block = [size_update(0), indexed(2)].concat();
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![valid(":method", "GET")])
    );
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
    // Nothing fits a zero-sized table.
    let (b, _) = fifty(b'b');
    assert!(decode(&mut decoder, &b).is_ok());
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
}

#[test]
fn several_size_updates_at_the_block_start_are_allowed() {
    // §4.2: the encoder may signal a smaller minimum, then the final size.
    let mut decoder = Decoder::new(4096);
    let (a, _) = fifty(b'a');
    let (b, seen_b) = fifty(b'b');
    assert!(decode(&mut decoder, &a).is_ok());
    let block = [size_update(0), size_update(4096), b].concat();
    assert_eq!(decode(&mut decoder, &block), Ok(vec![seen_b.clone()]));
    assert_eq!(table_of(&decoder), (vec![seen_b], 50));
}
