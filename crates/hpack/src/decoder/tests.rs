//! Decoder tests: RFC 7541 Appendix C, every refusal, the dynamic table, the list budget and
//! malformed fields. Shared helpers live here; each concern has its own module.

mod errors;
mod list_budget;
mod malformed;
mod rfc_examples;
mod table;

use bytes::Bytes;

use super::{Decoded, Decoder, DecoderError};
use crate::Field;
use crate::table::Entry;

/// A field as the tests compare it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    /// A pseudo or regular field: name and value octets.
    Valid(String, Vec<u8>),
    /// A malformed field of this size.
    Malformed(usize),
}

fn seen(field: &Field) -> Seen {
    match field {
        Field::Pseudo(pseudo, value) => Seen::Valid(pseudo.as_str().to_owned(), value.to_vec()),
        Field::Regular(name, value) => {
            Seen::Valid(name.as_str().to_owned(), value.as_bytes().to_vec())
        }
        Field::Malformed { size } => Seen::Malformed(*size),
    }
}

fn valid(name: &str, value: &str) -> Seen {
    Seen::Valid(name.to_owned(), value.as_bytes().to_vec())
}

/// Parses hex with any spacing, as RFC 7541 prints it.
fn hex(text: &str) -> Bytes {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    assert_eq!(digits.len() % 2, 0, "whole octets in {text:?}");
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).expect("hex digits are ASCII");
            u8::from_str_radix(text, 16).expect("two hex digits")
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Decodes one block with a list budget, collecting the fields.
fn decode_with_budget(
    decoder: &mut Decoder,
    block: &[u8],
    max_list_size: usize,
) -> Result<(Decoded, Vec<Seen>), DecoderError> {
    let mut fields = Vec::new();
    let block = Bytes::copy_from_slice(block);
    let decoded = decoder.decode(&block, max_list_size, |field| fields.push(seen(&field)))?;
    Ok((decoded, fields))
}

/// Decodes one block without a list budget; it must be `Complete`.
fn decode(decoder: &mut Decoder, block: &[u8]) -> Result<Vec<Seen>, DecoderError> {
    let (decoded, fields) = decode_with_budget(decoder, block, usize::MAX)?;
    assert_eq!(decoded, Decoded::Complete);
    Ok(fields)
}

/// The dynamic table, newest first, and its size.
fn table_of(decoder: &Decoder) -> (Vec<Seen>, usize) {
    let entries = decoder
        .table()
        .entries()
        .map(|entry: &Entry| seen(&entry.field))
        .collect();
    (entries, decoder.table().size())
}

/// A string literal without Huffman coding.
fn raw_string(octets: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::integer::encode(octets.len(), 7, 0x00, &mut out);
    out.extend_from_slice(octets);
    out
}

/// A Huffman-coded string literal.
fn huffman_string(octets: &[u8]) -> Vec<u8> {
    let mut code = Vec::new();
    crate::huffman::encode(octets, &mut code);
    let mut out = Vec::new();
    crate::integer::encode(code.len(), 7, 0x80, &mut out);
    out.extend_from_slice(&code);
    out
}

/// A literal with a new name: `pattern` is 0x40 (incremental indexing), 0x00 or 0x10.
fn literal_new_name(pattern: u8, name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![pattern];
    out.extend(raw_string(name));
    out.extend(raw_string(value));
    out
}

/// A literal with an indexed name: `pattern` is 0x40 (6-bit index), 0x00 or 0x10 (4-bit).
fn literal_indexed_name(pattern: u8, index: usize, value: &[u8]) -> Vec<u8> {
    let prefix_bits = if pattern == 0x40 { 6 } else { 4 };
    let mut out = Vec::new();
    crate::integer::encode(index, prefix_bits, pattern, &mut out);
    out.extend(raw_string(value));
    out
}

/// An indexed field.
fn indexed(index: usize) -> Vec<u8> {
    let mut out = Vec::new();
    crate::integer::encode(index, 7, 0x80, &mut out);
    out
}

/// A dynamic table size update.
fn size_update(size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    crate::integer::encode(size, 5, 0x20, &mut out);
    out
}

#[test]
fn field_size_is_name_plus_value_plus_32() {
    let mut decoder = Decoder::new(4096);
    let block = Bytes::from([indexed(2), literal_new_name(0x00, b"x-a", b"bcd")].concat());
    let mut sizes = Vec::new();
    let decoded = decoder.decode(&block, usize::MAX, |field| sizes.push(field.size()));
    assert_eq!(decoded, Ok(Decoded::Complete));
    assert_eq!(sizes, [":method".len() + 3 + 32, 3 + 3 + 32]);
}

#[test]
fn all_six_pseudo_headers_are_recognised() {
    let mut decoder = Decoder::new(4096);
    let names = [
        ":method",
        ":scheme",
        ":authority",
        ":path",
        ":protocol",
        ":status",
    ];
    let block: Vec<u8> = names
        .iter()
        .flat_map(|name| literal_new_name(0x00, name.as_bytes(), b"v"))
        .collect();
    let fields = decode(&mut decoder, &block).expect("valid block");
    let expected: Vec<Seen> = names.iter().map(|name| valid(name, "v")).collect();
    assert_eq!(fields, expected);
}

#[test]
fn huffman_names_and_values_decode() {
    let mut decoder = Decoder::new(4096);
    let mut block = vec![0x40];
    block.extend(huffman_string(b"x-trace"));
    block.extend(huffman_string(b"abc123"));
    block.push(0x00);
    block.extend(huffman_string(b":path"));
    block.extend(huffman_string(b"/a?b=c"));
    block.extend(indexed(62));
    let fields = decode(&mut decoder, &block).expect("valid block");
    assert_eq!(
        fields,
        [
            valid("x-trace", "abc123"),
            valid(":path", "/a?b=c"),
            valid("x-trace", "abc123")
        ]
    );
}

#[test]
fn empty_block_decodes_to_no_fields() {
    let mut decoder = Decoder::new(4096);
    assert_eq!(decode(&mut decoder, &[]), Ok(Vec::new()));
}

#[test]
fn never_indexed_literal_is_delivered_sensitive_and_not_added() {
    let mut decoder = Decoder::new(4096);
    let block = Bytes::from(
        [
            literal_new_name(0x10, b"authorization-token", b"secret"),
            literal_indexed_name(0x10, 23, b"Basic x"),
            literal_new_name(0x00, b"x-plain", b"open"),
        ]
        .concat(),
    );
    let mut fields = Vec::new();
    let decoded = decoder.decode(&block, usize::MAX, |field| {
        if let Field::Regular(name, value) = field {
            fields.push((name.as_str().to_owned(), value.is_sensitive()));
        }
    });
    assert_eq!(decoded, Ok(Decoded::Complete));
    assert_eq!(
        fields,
        [
            ("authorization-token".to_owned(), true),
            ("authorization".to_owned(), true),
            ("x-plain".to_owned(), false),
        ]
    );
    assert_eq!(table_of(&decoder), (Vec::new(), 0));
}

#[test]
fn indexed_references_share_the_stored_value() {
    // An indexed reference clones the stored field: the value octets are not copied again.
    let mut decoder = Decoder::new(4096);
    let first = Bytes::from(literal_new_name(0x40, b"x-long", &[b'v'; 100]));
    let again = Bytes::from([indexed(62), indexed(62)].concat());
    let mut pointers = Vec::new();
    let mut keep = |field: Field| {
        if let Field::Regular(_, value) = field {
            pointers.push(value.as_bytes().as_ptr());
        }
    };
    assert_eq!(
        decoder.decode(&first, usize::MAX, &mut keep),
        Ok(Decoded::Complete)
    );
    assert_eq!(
        decoder.decode(&again, usize::MAX, &mut keep),
        Ok(Decoded::Complete)
    );
    assert_eq!(pointers.len(), 3);
    assert!(pointers.iter().all(|&pointer| pointer == pointers[0]));
}

#[test]
fn raw_values_not_indexed_are_slices_of_the_block() {
    let mut decoder = Decoder::new(4096);
    let block = Bytes::from(literal_new_name(0x00, b"x-a", b"value"));
    let mut value_pointer = None;
    let decoded = decoder.decode(&block, usize::MAX, |field| {
        if let Field::Regular(_, value) = field {
            value_pointer = Some(value.as_bytes().as_ptr());
        }
    });
    assert_eq!(decoded, Ok(Decoded::Complete));
    let expected = block[block.len() - 5..].as_ptr();
    assert_eq!(value_pointer, Some(expected));
}

#[test]
fn indexed_values_are_copied_out_of_the_block() {
    // The dynamic table must not pin the header block's buffer.
    let mut decoder = Decoder::new(4096);
    let block = Bytes::from(literal_new_name(0x40, b"x-a", b"value"));
    assert_eq!(
        decoder.decode(&block, usize::MAX, |_| ()),
        Ok(Decoded::Complete)
    );
    let Some(Entry {
        field: Field::Regular(_, value),
        ..
    }) = decoder.table().entries().next()
    else {
        panic!("the entry was added");
    };
    let block_range = block.as_ptr_range();
    assert!(!block_range.contains(&value.as_bytes().as_ptr()));
}

#[test]
fn a_large_huffman_buffer_is_released_and_decoding_goes_on() {
    let mut decoder = Decoder::new(4096);
    let value = vec![b'a'; 4000];
    let mut block = vec![0x00];
    block.extend(huffman_string(b"x-big"));
    block.extend(huffman_string(&value));
    let block = Bytes::from(block);
    let mut seen = Vec::new();
    assert_eq!(
        decoder.decode(&block, usize::MAX, |field| seen.push(field.size())),
        Ok(Decoded::Complete)
    );
    assert!(decoder.scratch.capacity() >= 4000);
    decoder.release_scratch(1024);
    assert_eq!(decoder.scratch.capacity(), 0);
    assert_eq!(
        decoder.decode(&block, usize::MAX, |field| seen.push(field.size())),
        Ok(Decoded::Complete)
    );
    assert_eq!(seen, [4000 + 5 + 32, 4000 + 5 + 32]);
    // A small buffer stays.
    decoder.release_scratch(usize::MAX);
    assert!(decoder.scratch.capacity() >= 4000);
}
