//! The header list budget: past `max_list_size` the sink sees nothing more, the result is
//! `TooLarge`, and the dynamic table still follows every insertion.

use super::{
    Decoded, Decoder, decode, decode_with_budget, indexed, literal_indexed_name, literal_new_name,
    table_of, valid,
};

#[test]
fn fields_within_the_budget_are_complete() {
    let mut decoder = Decoder::new(4096);
    // Two fields of 3 + 1 + 32 = 36 octets: 72 exactly fits.
    let block = [
        literal_new_name(0x00, b"x-a", b"1"),
        literal_new_name(0x00, b"x-b", b"2"),
    ]
    .concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 72),
        Ok((
            Decoded::Complete,
            vec![valid("x-a", "1"), valid("x-b", "2")]
        ))
    );
}

#[test]
fn sink_stops_at_the_field_that_crosses_the_budget() {
    let mut decoder = Decoder::new(4096);
    let block = [
        literal_new_name(0x00, b"x-a", b"1"),
        literal_new_name(0x00, b"x-b", b"2"),
        indexed(2),
    ]
    .concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 71),
        Ok((Decoded::TooLarge, vec![valid("x-a", "1")]))
    );
}

#[test]
fn too_large_block_keeps_the_table_in_step() {
    let mut decoder = Decoder::new(4096);
    // The budget is spent by the first field; the next two are inserted all the same.
    let block = [
        literal_new_name(0x00, b"x-big", &[b'b'; 100]),
        literal_new_name(0x40, b"x-a", b"after"),
        literal_indexed_name(0x40, 62, b"again"),
        literal_new_name(0x00, b"x-skipped", b"not built"),
    ]
    .concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 64),
        Ok((Decoded::TooLarge, Vec::new()))
    );
    assert_eq!(
        table_of(&decoder),
        (vec![valid("x-a", "again"), valid("x-a", "after")], 2 * 40)
    );
    // The next block refers to the entries added after the limit was hit.
    assert_eq!(
        decode(&mut decoder, &[indexed(62), indexed(63)].concat()),
        Ok(vec![valid("x-a", "again"), valid("x-a", "after")])
    );
}

#[test]
fn too_large_holds_for_indexed_fields() {
    let mut decoder = Decoder::new(4096);
    // :method GET is 42 octets; two of them exceed 80.
    let block = [indexed(2), indexed(2), indexed(2)].concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 80),
        Ok((Decoded::TooLarge, vec![valid(":method", "GET")]))
    );
    // The budget is per block: the next block starts afresh.
    assert_eq!(
        decode_with_budget(&mut decoder, &indexed(2), 80),
        Ok((Decoded::Complete, vec![valid(":method", "GET")]))
    );
}
