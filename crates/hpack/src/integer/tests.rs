//! Integer representation tests: RFC 7541 Appendix C.1, round trips and the decoding limits.

use super::{decode, encode};
use crate::decoder::DecoderError;

fn encoded(value: usize, prefix_bits: u32, flags: u8) -> Vec<u8> {
    let mut dst = Vec::new();
    encode(value, prefix_bits, flags, &mut dst);
    dst
}

fn decoded(src: &[u8], prefix_bits: u32) -> Result<(usize, usize), DecoderError> {
    let mut position = 0;
    let value = decode(src, &mut position, prefix_bits)?;
    Ok((value, position))
}

#[test]
fn rfc_c_1_1_ten_fits_a_five_bit_prefix() {
    assert_eq!(encoded(10, 5, 0), [0x0a]);
    assert_eq!(decoded(&[0x0a], 5), Ok((10, 1)));
}

#[test]
fn rfc_c_1_2_1337_with_a_five_bit_prefix() {
    assert_eq!(encoded(1337, 5, 0), [0x1f, 0x9a, 0x0a]);
    assert_eq!(decoded(&[0x1f, 0x9a, 0x0a], 5), Ok((1337, 3)));
}

#[test]
fn rfc_c_1_3_forty_two_at_an_octet_boundary() {
    assert_eq!(encoded(42, 8, 0), [0x2a]);
    assert_eq!(decoded(&[0x2a], 8), Ok((42, 1)));
}

#[test]
fn flags_above_the_prefix_are_kept_and_ignored() {
    assert_eq!(encoded(3, 6, 0x40), [0x43]);
    assert_eq!(encoded(63, 6, 0x40), [0x7f, 0x00]);
    // The decoder reads only the prefix bits.
    assert_eq!(decoded(&[0xc3], 6), Ok((3, 1)));
}

#[test]
fn values_round_trip_for_every_prefix() {
    let mut values: Vec<usize> = (0..=300).collect();
    values.extend([
        1 << 7,
        1 << 14,
        (1 << 14) - 1,
        1 << 21,
        1 << 28,
        u32::MAX as usize,
    ]);
    for prefix_bits in 1..=8 {
        for &value in &values {
            let bytes = encoded(value, prefix_bits, 0);
            assert_eq!(
                decoded(&bytes, prefix_bits),
                Ok((value, bytes.len())),
                "value {value}, prefix {prefix_bits}"
            );
        }
    }
}

#[test]
fn decoding_stops_after_the_integer() {
    let src = [0x00, 0x1f, 0x9a, 0x0a, 0xff];
    let mut position = 1;
    assert_eq!(decode(&src, &mut position, 5), Ok(1337));
    assert_eq!(position, 4);
}

#[test]
fn largest_accepted_value_is_u32_max() {
    let bytes = encoded(u32::MAX as usize, 7, 0);
    assert_eq!(decoded(&bytes, 7), Ok((u32::MAX as usize, bytes.len())));
}

#[test]
fn value_above_u32_max_overflows() {
    let bytes = encoded(u32::MAX as usize + 1, 7, 0);
    assert_eq!(decoded(&bytes, 7), Err(DecoderError::IntegerOverflow));
}

#[test]
fn sixth_continuation_byte_overflows_even_when_zero() {
    // Five zero-padding continuation bytes are tolerated; a sixth is refused.
    assert_eq!(
        decoded(&[0x7f, 0x80, 0x80, 0x80, 0x80, 0x00], 7),
        Ok((127, 6))
    );
    assert_eq!(
        decoded(&[0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 7),
        Err(DecoderError::IntegerOverflow)
    );
}

#[test]
fn truncated_integer_is_an_unexpected_end() {
    assert_eq!(decoded(&[], 7), Err(DecoderError::UnexpectedEnd));
    assert_eq!(decoded(&[0x7f], 7), Err(DecoderError::UnexpectedEnd));
    assert_eq!(decoded(&[0x1f, 0x9a], 5), Err(DecoderError::UnexpectedEnd));
}
