//! Every way a header block is refused (a connection error COMPRESSION_ERROR for the caller).

use super::{
    Decoder, DecoderError, decode, decode_with_budget, indexed, literal_indexed_name,
    literal_new_name, raw_string, size_update,
};

fn refusal(decoder: &mut Decoder, block: &[u8]) -> DecoderError {
    match decode_with_budget(decoder, block, usize::MAX) {
        Ok(decoded) => panic!("block {block:02x?} was accepted: {decoded:?}"),
        Err(error) => error,
    }
}

#[test]
fn index_zero_is_refused() {
    let mut decoder = Decoder::new(4096);
    assert_eq!(
        refusal(&mut decoder, &[0x80]),
        DecoderError::InvalidIndex { index: 0 }
    );
}

#[test]
fn index_past_an_empty_dynamic_table_is_refused() {
    let mut decoder = Decoder::new(4096);
    assert!(decode(&mut decoder, &indexed(61)).is_ok());
    assert_eq!(
        refusal(&mut decoder, &indexed(62)),
        DecoderError::InvalidIndex { index: 62 }
    );
}

#[test]
fn index_past_the_dynamic_table_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [literal_new_name(0x40, b"x-a", b"1"), indexed(62)].concat();
    assert!(decode(&mut decoder, &block).is_ok());
    assert_eq!(
        refusal(&mut decoder, &indexed(63)),
        DecoderError::InvalidIndex { index: 63 }
    );
}

#[test]
fn huge_index_is_refused_without_panicking() {
    let mut decoder = Decoder::new(4096);
    let index = u32::MAX as usize;
    assert_eq!(
        refusal(&mut decoder, &indexed(index)),
        DecoderError::InvalidIndex { index }
    );
}

#[test]
fn literal_name_index_past_the_tables_is_refused() {
    for pattern in [0x40, 0x00, 0x10] {
        let mut decoder = Decoder::new(4096);
        assert_eq!(
            refusal(&mut decoder, &literal_indexed_name(pattern, 62, b"v")),
            DecoderError::InvalidIndex { index: 62 },
            "pattern {pattern:#04x}"
        );
    }
}

#[test]
fn size_update_after_a_field_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [indexed(2), size_update(100)].concat();
    assert_eq!(
        refusal(&mut decoder, &block),
        DecoderError::SizeUpdateAfterField
    );
}

#[test]
fn size_update_after_a_literal_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [literal_new_name(0x00, b"x-a", b"1"), size_update(0)].concat();
    assert_eq!(
        refusal(&mut decoder, &block),
        DecoderError::SizeUpdateAfterField
    );
}

#[test]
fn size_update_above_the_advertised_size_is_refused() {
    let mut decoder = Decoder::new(100);
    assert_eq!(
        refusal(&mut decoder, &size_update(101)),
        DecoderError::SizeUpdateTooLarge {
            size: 101,
            max: 100
        }
    );
    let mut decoder = Decoder::new(100);
    assert!(decode(&mut decoder, &size_update(100)).is_ok());
}

#[test]
fn overflowing_index_is_refused() {
    let mut decoder = Decoder::new(4096);
    // 127 + (2^28 - 1) + 15 * 2^28 = 2^32 + 126.
    let block = [0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(refusal(&mut decoder, &block), DecoderError::IntegerOverflow);
}

#[test]
fn overflowing_string_length_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_eq!(refusal(&mut decoder, &block), DecoderError::IntegerOverflow);
}

#[test]
fn overflowing_size_update_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [0x3f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    assert_eq!(refusal(&mut decoder, &block), DecoderError::IntegerOverflow);
}

#[test]
fn truncated_integer_is_refused() {
    let mut decoder = Decoder::new(4096);
    assert_eq!(refusal(&mut decoder, &[0xff]), DecoderError::UnexpectedEnd);
    assert_eq!(
        refusal(&mut decoder, &[0xff, 0x80]),
        DecoderError::UnexpectedEnd
    );
}

#[test]
fn truncated_string_is_refused() {
    let mut decoder = Decoder::new(4096);
    // A name announced as 10 octets with only 3 present.
    let block = [0x00, 0x0a, b'a', b'b', b'c'];
    assert_eq!(refusal(&mut decoder, &block), DecoderError::UnexpectedEnd);
}

#[test]
fn literal_missing_its_value_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [vec![0x40], raw_string(b"x-a")].concat();
    assert_eq!(refusal(&mut decoder, &block), DecoderError::UnexpectedEnd);
    let mut decoder = Decoder::new(4096);
    assert_eq!(
        refusal(&mut decoder, &[0x0f, 0x10]),
        DecoderError::UnexpectedEnd
    );
}

/// A Huffman string literal from packed octets.
fn huffman_literal(code: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | u8::try_from(code.len()).expect("short test strings")];
    out.extend_from_slice(code);
    out
}

#[test]
fn huffman_eos_in_a_value_is_refused() {
    let mut decoder = Decoder::new(4096);
    let block = [vec![0x00], raw_string(b"x-a"), huffman_literal(&[0xff; 4])].concat();
    assert_eq!(refusal(&mut decoder, &block), DecoderError::HuffmanEos);
}

#[test]
fn huffman_padding_too_long_in_a_name_is_refused() {
    let mut decoder = Decoder::new(4096);
    // '&' fills one octet; a second octet of ones is 8 bits of padding.
    let block = [vec![0x40], huffman_literal(&[0xf8, 0xff]), raw_string(b"v")].concat();
    assert_eq!(
        refusal(&mut decoder, &block),
        DecoderError::HuffmanPaddingTooLong
    );
}

#[test]
fn huffman_padding_not_eos_is_refused() {
    let mut decoder = Decoder::new(4096);
    // 'a' (00011) then padding 000.
    let block = [vec![0x0f, 0x10], huffman_literal(&[0x18])].concat();
    assert_eq!(
        refusal(&mut decoder, &block),
        DecoderError::HuffmanPaddingNotEos
    );
}

#[test]
fn huffman_errors_count_after_the_list_budget_is_spent() {
    // Fields past the budget are not built, but they are still checked.
    let mut decoder = Decoder::new(4096);
    let block = [
        literal_new_name(0x00, b"x-a", b"1"),
        vec![0x00],
        raw_string(b"x-b"),
        huffman_literal(&[0x18]),
    ]
    .concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 10),
        Err(DecoderError::HuffmanPaddingNotEos)
    );
    let mut decoder = Decoder::new(4096);
    let block = [
        literal_new_name(0x00, b"x-a", b"1"),
        vec![0x00],
        huffman_literal(&[0xf8, 0xff]),
        raw_string(b"v"),
    ]
    .concat();
    assert_eq!(
        decode_with_budget(&mut decoder, &block, 10),
        Err(DecoderError::HuffmanPaddingTooLong)
    );
}

#[test]
fn errors_display_what_went_wrong() {
    let error = DecoderError::SizeUpdateTooLarge {
        size: 5000,
        max: 4096,
    };
    assert_eq!(
        error.to_string(),
        "HPACK dynamic table size update to 5000 above the advertised 4096"
    );
    assert_eq!(
        DecoderError::InvalidIndex { index: 0 }.to_string(),
        "HPACK index 0 is not in the tables"
    );
}

#[test]
fn arbitrary_octets_are_decoded_or_refused_without_panicking() {
    // A deterministic stand-in for the fuzzer: random blocks, and valid blocks with one octet
    // changed, each decoded twice on one decoder so the second pass meets the table the first left.
    let mut state: u64 = 0x5eed_1234_abcd_0042;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let valid_blocks = [
        super::hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"),
        super::hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        super::hex("4803 3330 37c1 c0bf"),
    ];
    let mut outcomes = [0usize; 2];
    for round in 0..20_000 {
        let mut decoder = Decoder::new(256);
        let block: Vec<u8> = if round % 2 == 0 {
            let length = (next() % 48) as usize;
            (0..length).map(|_| next() as u8).collect()
        } else {
            let mut block = valid_blocks[round % valid_blocks.len()].to_vec();
            let at = (next() as usize) % block.len();
            block[at] = next() as u8;
            block
        };
        for _ in 0..2 {
            match decode_with_budget(&mut decoder, &block, 200) {
                Ok(_) => outcomes[0] += 1,
                Err(_) => outcomes[1] += 1,
            }
        }
    }
    // Both outcomes occur, so the inputs reach past the first octet.
    assert!(outcomes[0] > 1000 && outcomes[1] > 1000, "{outcomes:?}");
}
