//! HPACK integers (RFC 7541 §5.1): an N-bit prefix, then 7-bit continuation bytes.
//!
//! Owns both directions and the decoding limit. It does not know what the integer means
//! (index, string length or table size); callers check the value against their own bounds.

use crate::decoder::DecoderError;

/// The most continuation bytes a decoded integer may have: five carry 35 bits, more than any
/// value below [`MAX_VALUE`] needs (longer encodings, even with zero padding, are refused).
const MAX_CONTINUATION_BYTES: u32 = 5;

/// The largest integer the decoder accepts (RFC 7541 §5.1 lets the implementation set a limit).
const MAX_VALUE: u64 = u32::MAX as u64;

/// The mask of the low `prefix_bits` bits of a byte.
const fn prefix_mask(prefix_bits: u32) -> u8 {
    debug_assert!(prefix_bits >= 1 && prefix_bits <= 8);
    u8::MAX >> (8 - prefix_bits)
}

/// Reads the integer whose first byte is at `*position`, using that byte's low `prefix_bits`
/// bits (1 to 8), and moves `*position` past its last byte.
///
/// Errors: [`DecoderError::UnexpectedEnd`] when the input ends inside the integer,
/// [`DecoderError::IntegerOverflow`] above [`MAX_VALUE`] or past [`MAX_CONTINUATION_BYTES`].
#[inline]
pub(crate) fn decode(
    src: &[u8],
    position: &mut usize,
    prefix_bits: u32,
) -> Result<usize, DecoderError> {
    let mask = prefix_mask(prefix_bits);
    let first = *src.get(*position).ok_or(DecoderError::UnexpectedEnd)?;
    *position += 1;
    let prefix = first & mask;
    if prefix < mask {
        return Ok(usize::from(prefix));
    }
    let mut value = u64::from(mask);
    for continuation in 0..MAX_CONTINUATION_BYTES {
        let byte = *src.get(*position).ok_or(DecoderError::UnexpectedEnd)?;
        *position += 1;
        value += u64::from(byte & 0x7f) << (7 * continuation);
        if value > MAX_VALUE {
            return Err(DecoderError::IntegerOverflow);
        }
        if byte & 0x80 == 0 {
            return usize::try_from(value).map_err(|_| DecoderError::IntegerOverflow);
        }
    }
    Err(DecoderError::IntegerOverflow)
}

/// Appends `value` with a `prefix_bits`-bit prefix (1 to 8); `flags` holds the first byte's
/// bits above the prefix (the representation's pattern, RFC 7541 §6) and must not overlap it.
pub(crate) fn encode(value: usize, prefix_bits: u32, flags: u8, dst: &mut Vec<u8>) {
    let mask = prefix_mask(prefix_bits);
    debug_assert_eq!(flags & mask, 0, "the flags leave the prefix bits clear");
    if value < usize::from(mask) {
        // Fits the prefix: value < mask <= 255.
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | mask);
    let mut rest = value - usize::from(mask);
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    // The loop left rest < 0x80.
    dst.push(rest as u8);
}

#[cfg(test)]
mod tests;
