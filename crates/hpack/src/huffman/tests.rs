//! Huffman tests: the transcribed code table, RFC 7541 Appendix C strings, round trips of
//! every octet and each way a string's end can be wrong.

use super::code_table::{CODES, EOS};
use super::{HuffmanError, decode, encode};

fn decoded(src: &[u8]) -> Result<Vec<u8>, HuffmanError> {
    let mut out = Vec::new();
    decode(src, |octet| out.push(octet))?;
    Ok(out)
}

fn encoded(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(src, &mut out);
    out
}

/// Packs codes most significant bit first, then pads with `padding` (its low `padding_bits`).
fn pack(symbols: &[usize], padding: u8, padding_bits: u32) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    for &symbol in symbols {
        let code = CODES[symbol];
        for shift in (0..u32::from(code.length)).rev() {
            bits.push((code.bits >> shift) & 1 == 1);
        }
    }
    for shift in (0..padding_bits).rev() {
        bits.push((padding >> shift) & 1 == 1);
    }
    assert_eq!(bits.len() % 8, 0, "the test packs whole octets");
    bits.chunks(8)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |octet, &bit| (octet << 1) | u8::from(bit))
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("hex digits are ASCII");
            u8::from_str_radix(text, 16).expect("two hex digits")
        })
        .collect()
}

#[test]
fn code_table_is_a_complete_prefix_code() {
    // Kraft: the 257 codes fill the code space exactly, in units of 2^-30.
    let total: u64 = CODES.iter().map(|code| 1u64 << (30 - code.length)).sum();
    assert_eq!(total, 1 << 30);
}

#[test]
fn code_table_is_canonical() {
    // RFC 7541 Appendix B is canonical: ordered by (length, symbol), each code is the previous
    // plus one, shifted left by the growth in length. A mistyped code breaks the chain.
    let mut order: Vec<usize> = (0..CODES.len()).collect();
    order.sort_by_key(|&symbol| (CODES[symbol].length, symbol));
    let first = CODES[order[0]];
    assert_eq!((first.bits, first.length), (0, 5));
    for pair in order.windows(2) {
        let (previous, next) = (CODES[pair[0]], CODES[pair[1]]);
        let expected = (previous.bits + 1) << (next.length - previous.length);
        assert_eq!(next.bits, expected, "symbol {}", pair[1]);
    }
    assert_eq!((CODES[EOS].bits, CODES[EOS].length), (0x3fff_ffff, 30));
}

#[test]
fn known_codes_from_appendix_b() {
    let code = |symbol: u8| {
        let code = CODES[usize::from(symbol)];
        (code.bits, code.length)
    };
    assert_eq!(code(b'0'), (0x0, 5));
    assert_eq!(code(b'a'), (0x3, 5));
    assert_eq!(code(b' '), (0x14, 6));
    assert_eq!(code(b'&'), (0xf8, 8));
    assert_eq!(code(0), (0x1ff8, 13));
    assert_eq!(code(255), (0x3ff_ffee, 26));
}

#[test]
fn rfc_c_4_strings_decode() {
    let cases = [
        ("f1e3 c2e5 f23a 6ba0 ab90 f4ff", "www.example.com"),
        ("a8eb 1064 9cbf", "no-cache"),
        ("25a8 49e9 5ba9 7d7f", "custom-key"),
        ("25a8 49e9 5bb8 e8b4 bf", "custom-value"),
        ("6402", "302"),
        ("aec3 771a 4b", "private"),
    ];
    for (code, text) in cases {
        assert_eq!(decoded(&hex(code)), Ok(text.as_bytes().to_vec()), "{text}");
        assert_eq!(encoded(text.as_bytes()), hex(code), "{text}");
    }
}

#[test]
fn empty_string_decodes_to_nothing() {
    assert_eq!(decoded(&[]), Ok(Vec::new()));
}

#[test]
fn every_octet_round_trips_alone() {
    for octet in 0..=u8::MAX {
        let code = encoded(&[octet]);
        assert_eq!(decoded(&code), Ok(vec![octet]), "octet {octet}");
    }
}

#[test]
fn all_octets_round_trip_together() {
    let forward: Vec<u8> = (0..=u8::MAX).collect();
    let backward: Vec<u8> = forward.iter().rev().copied().collect();
    let mixed: Vec<u8> = (0..2000u32).map(|i| (i * 37 % 251) as u8).collect();
    for text in [forward, backward, mixed] {
        assert_eq!(decoded(&encoded(&text)), Ok(text));
    }
}

#[test]
fn eos_inside_a_string_is_refused() {
    // EOS between two symbols, then seven padding ones (5 + 30 + 5 + 8 = 48 bits).
    let symbols = [usize::from(b'a'), EOS, usize::from(b'a')];
    assert_eq!(decoded(&pack(&symbols, 0xff, 8)), Err(HuffmanError::Eos));
    // EOS alone, padded with two ones: all 32 bits set.
    assert_eq!(decoded(&[0xff; 4]), Err(HuffmanError::Eos));
}

#[test]
fn eight_bits_of_padding_are_refused() {
    // '&' is exactly one octet; a whole octet of ones after it is too much padding.
    assert_eq!(decoded(&[0xf8]), Ok(b"&".to_vec()));
    assert_eq!(decoded(&[0xf8, 0xff]), Err(HuffmanError::PaddingTooLong));
    // 'a' (5 bits) then 3 + 8 ones.
    assert_eq!(decoded(&[0x1f, 0xff]), Err(HuffmanError::PaddingTooLong));
}

#[test]
fn seven_bits_of_padding_are_accepted() {
    // A 25-bit code leaves exactly seven bits of padding.
    let symbol = CODES
        .iter()
        .position(|code| code.length == 25)
        .expect("Appendix B has 25-bit codes");
    let code = pack(&[symbol], 0x7f, 7);
    assert_eq!(decoded(&code), Ok(vec![symbol as u8]));
}

#[test]
fn padding_with_a_zero_bit_is_refused() {
    // 'a' = 00011, then padding 000 or 110 instead of 111.
    assert_eq!(decoded(&[0x18]), Err(HuffmanError::PaddingNotEos));
    assert_eq!(decoded(&[0x1e]), Err(HuffmanError::PaddingNotEos));
    // For every octet whose code leaves padding, clearing its last bit is refused.
    for octet in 0..=u8::MAX {
        let mut code = encoded(&[octet]);
        if CODES[usize::from(octet)].length.is_multiple_of(8) {
            continue;
        }
        if let Some(last) = code.last_mut() {
            *last &= 0xfe;
        }
        assert_eq!(
            decoded(&code),
            Err(HuffmanError::PaddingNotEos),
            "octet {octet}"
        );
    }
}
