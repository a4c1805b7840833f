//! Target `hpack_decode`: the HPACK decoder of our HTTP/2 server (`hpack::Decoder`), which
//! reads every header block a client sends.
//!
//! The first input byte picks `max_list_size` (0: 64 bytes, else the byte times 256); the rest
//! is cut at [`SEPARATOR`] into at most [`MAX_BLOCKS`] header blocks, decoded in order by one
//! decoder (so later blocks refer to the dynamic table earlier ones filled), until one fails.
//! The checks:
//!
//! - decoding never panics, and gives the same results twice (a second decoder, same blocks);
//! - the fields of a block that decoded `Complete` add up to at most `max_list_size`;
//! - the list budget only hides fields: a decoder without a limit fails on the same block with
//!   the same error, and otherwise yields a list of which the limited decoder's is exactly the
//!   longest prefix within `max_list_size` (`Complete` when that is all of it). So a block
//!   over the budget still keeps the dynamic table in step for the blocks after it;
//! - every field keeps the crate's contract: a regular field's name is a lowercase token (RFC
//!   9110 §5.1, as `http::HeaderName::from_bytes` checks it), a pseudo or regular value has no
//!   controls but HTAB, no DEL, no leading or trailing SP or HTAB; a malformed field's size
//!   counts the 32 octets of overhead;
//! - the regular fields of a `Complete` block, written again by `hpack::Encoder` (static table
//!   only), decode with a fresh decoder to the same names, values and sensitivity.

use bytes::Bytes;
use hpack::{Decoded, Decoder, DecoderError, Encoder, Field, Pseudo};
use http::{HeaderName, HeaderValue};

/// Cuts the input into header blocks. Any four octets could occur in a block; these are rare
/// ones (indexed references to entries 126, 109, 122 and 78 of a very full dynamic table).
pub const SEPARATOR: &[u8] = b"\xfe\xed\xfa\xce";

/// Most header blocks decoded per input.
const MAX_BLOCKS: usize = 4;

/// The SETTINGS_HEADER_TABLE_SIZE the decoders advertise (the server's, the protocol's default).
const TABLE_SIZE: usize = 4096;

/// RFC 7541 §4.1 overhead counted in every field's size.
const ENTRY_OVERHEAD: usize = 32;

/// A decoded field, comparable (sensitivity included). Shares the decoder's buffers: a
/// block of references to one large entry costs no copies.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Pseudo(Pseudo, Bytes),
    Regular {
        name: HeaderName,
        value: HeaderValue,
        is_sensitive: bool,
    },
    Malformed,
}

/// A field as the sink got it, with its RFC 7541 size.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sunk {
    seen: Seen,
    size: usize,
}

impl Sunk {
    fn of(field: &Field) -> Sunk {
        let seen = match field {
            Field::Pseudo(pseudo, value) => Seen::Pseudo(*pseudo, value.clone()),
            Field::Regular(name, value) => Seen::Regular {
                name: name.clone(),
                value: value.clone(),
                is_sensitive: value.is_sensitive(),
            },
            Field::Malformed { .. } => Seen::Malformed,
        };
        Sunk {
            seen,
            size: field.size(),
        }
    }
}

/// One block's result and the fields its sink got.
#[derive(Debug, PartialEq, Eq)]
struct BlockOutcome {
    result: Result<Decoded, DecoderError>,
    fields: Vec<Sunk>,
}

/// Decodes the blocks of `data[1..]` under the budget `data[0]` picks and checks the
/// invariants above.
///
/// # Panics
/// When an invariant does not hold (or the decoder or encoder panics).
pub fn hpack_decode(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let max_list_size = if selector == 0 {
        64
    } else {
        usize::from(selector) * 256
    };
    let blocks = split_blocks(rest);
    let limited = decode_blocks(&blocks, max_list_size);
    assert_eq!(
        limited,
        decode_blocks(&blocks, max_list_size),
        "two decoders disagree on the same blocks"
    );
    let unlimited = decode_blocks(&blocks, usize::MAX);
    assert_eq!(
        limited.len(),
        unlimited.len(),
        "one decoder stopped earlier"
    );
    for (index, (outcome, reference)) in limited.iter().zip(&unlimited).enumerate() {
        check_budget(index, outcome, reference, max_list_size);
        reference.fields.iter().for_each(check_field);
        if outcome.result == Ok(Decoded::Complete) {
            check_round_trip(index, &outcome.fields);
        }
    }
}

/// `data` cut at every [`SEPARATOR`], at most [`MAX_BLOCKS`] pieces (the last keeps the rest).
fn split_blocks(mut data: &[u8]) -> Vec<Bytes> {
    let mut blocks = Vec::new();
    while blocks.len() + 1 < MAX_BLOCKS {
        let Some(at) = data
            .windows(SEPARATOR.len())
            .position(|window| window == SEPARATOR)
        else {
            break;
        };
        blocks.push(Bytes::copy_from_slice(&data[..at]));
        data = &data[at + SEPARATOR.len()..];
    }
    blocks.push(Bytes::copy_from_slice(data));
    blocks
}

/// The blocks through one decoder, up to and with the first error.
fn decode_blocks(blocks: &[Bytes], max_list_size: usize) -> Vec<BlockOutcome> {
    let mut decoder = Decoder::new(TABLE_SIZE);
    let mut outcomes = Vec::new();
    for block in blocks {
        let mut fields = Vec::new();
        let result = decoder.decode(block, max_list_size, |field| fields.push(Sunk::of(&field)));
        let failed = result.is_err();
        outcomes.push(BlockOutcome { result, fields });
        if failed {
            break;
        }
    }
    outcomes
}

/// The limited decoder's block against the unlimited one's: same error, or the longest
/// prefix of its fields within the budget.
fn check_budget(index: usize, outcome: &BlockOutcome, reference: &BlockOutcome, max: usize) {
    let result = match (&outcome.result, &reference.result) {
        (Err(limited), Err(unlimited)) => {
            assert_eq!(
                limited, unlimited,
                "block {index}: the budget changed the error"
            );
            return;
        }
        (Ok(limited), Ok(unlimited)) => {
            assert_eq!(
                *unlimited,
                Decoded::Complete,
                "block {index}: no limit, too large"
            );
            *limited
        }
        (limited, unlimited) => {
            panic!("block {index}: {limited:?} with a budget of {max}, {unlimited:?} without")
        }
    };
    let mut used = 0usize;
    let within = reference
        .fields
        .iter()
        .take_while(|field| {
            used = used.saturating_add(field.size);
            used <= max
        })
        .count();
    assert_eq!(
        outcome.fields,
        reference.fields[..within],
        "block {index}: the sink under a budget of {max} did not get the fields within it"
    );
    let expected = if within == reference.fields.len() {
        Decoded::Complete
    } else {
        Decoded::TooLarge
    };
    assert_eq!(result, expected, "block {index} under a budget of {max}");
    if result == Decoded::Complete {
        let total: usize = outcome.fields.iter().map(|field| field.size).sum();
        assert!(
            total <= max,
            "block {index}: Complete with {total} > {max} bytes"
        );
    }
}

/// What the crate promises of every field it hands out.
fn check_field(field: &Sunk) {
    match &field.seen {
        Seen::Pseudo(pseudo, value) => {
            check_value(value);
            assert_eq!(
                field.size,
                pseudo.as_str().len() + value.len() + ENTRY_OVERHEAD
            );
        }
        Seen::Regular { name, value, .. } => {
            // RFC 9110 §5.1: a field name is a token, which `HeaderName::from_bytes` checks;
            // HTTP/2 wants it lowercase (RFC 9113 §8.2.1). The gateway forwards it as it is,
            // HTTP/1.1 upstream too.
            let name = name.as_str();
            assert!(
                HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && !name.bytes().any(|b| b.is_ascii_uppercase()),
                "regular field name {name:?} is not a lowercase token"
            );
            check_value(value.as_bytes());
            assert_eq!(field.size, name.len() + value.len() + ENTRY_OVERHEAD);
        }
        Seen::Malformed => assert!(field.size >= ENTRY_OVERHEAD, "size {}", field.size),
    }
}

/// RFC 9113 §8.2.1: no controls but HTAB, no DEL, no surrounding SP or HTAB.
fn check_value(value: &[u8]) {
    let is_whitespace = |b: &u8| matches!(b, b' ' | b'\t');
    assert!(
        value
            .iter()
            .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t'),
        "control octet in value {value:?}"
    );
    assert!(
        !value.first().is_some_and(is_whitespace) && !value.last().is_some_and(is_whitespace),
        "surrounding whitespace in value {value:?}"
    );
}

/// The block's regular fields through the encoder and a fresh decoder come back the same.
fn check_round_trip(index: usize, fields: &[Sunk]) {
    let regular: Vec<&Sunk> = fields
        .iter()
        .filter(|field| matches!(field.seen, Seen::Regular { .. }))
        .collect();
    let encoder = Encoder::new();
    let mut block = Vec::new();
    for field in &regular {
        if let Seen::Regular { name, value, .. } = &field.seen {
            encoder.encode_field(name, value, &mut block);
        }
    }
    let mut again = Vec::new();
    let result = Decoder::new(TABLE_SIZE).decode(&Bytes::from(block), usize::MAX, |field| {
        again.push(Sunk::of(&field));
    });
    assert_eq!(
        result,
        Ok(Decoded::Complete),
        "block {index}: re-encoded fields do not decode"
    );
    let again: Vec<&Sunk> = again.iter().collect();
    assert_eq!(
        again, regular,
        "block {index}: re-encoded fields decode differently"
    );
}

#[cfg(test)]
mod tests;
