//! The input layout of the target.

use super::*;

#[test]
fn blocks_are_cut_at_the_separator_into_four_at_most() {
    let mut data = Vec::new();
    for block in [&b"a"[..], b"", b"c", b"d", b"e"] {
        data.extend_from_slice(block);
        data.extend_from_slice(SEPARATOR);
    }
    let blocks = split_blocks(&data);
    assert_eq!(blocks.len(), MAX_BLOCKS);
    assert_eq!(&blocks[..3], [&b"a"[..], b"", b"c"]);
    assert_eq!(blocks[3].len(), 2 + 2 * SEPARATOR.len());
    assert_eq!(split_blocks(b"x"), [&b"x"[..]]);
}

#[test]
fn the_rfc_requests_decode_under_a_generous_budget() {
    // RFC 7541 C.3.1 under a budget of 16 * 256 bytes.
    let mut data = vec![16];
    data.extend_from_slice(b"\x82\x86\x84\x41\x0fwww.example.com");
    hpack_decode(&data);
    let outcomes = decode_blocks(&split_blocks(&data[1..]), 4096);
    assert_eq!(outcomes[0].result, Ok(Decoded::Complete));
    assert_eq!(outcomes[0].fields.len(), 4);
}
