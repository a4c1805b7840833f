//! Fields HPACK decodes but HTTP/2 forbids (RFC 9113 §8.2.1, §8.3): delivered as
//! `Field::Malformed`, with the dynamic table in step and the block going on.

use super::{
    Decoder, Seen, decode, indexed, literal_indexed_name, literal_new_name, table_of, valid,
};

/// Decodes a lone literal without indexing.
fn single(name: &[u8], value: &[u8]) -> Seen {
    let mut decoder = Decoder::new(4096);
    let fields = decode(&mut decoder, &literal_new_name(0x00, name, value)).expect("valid HPACK");
    assert_eq!(fields.len(), 1);
    fields[0].clone()
}

fn malformed(name: &[u8], value: &[u8]) -> Seen {
    Seen::Malformed(name.len() + value.len() + 32)
}

#[test]
fn uppercase_name_is_malformed_and_stays_in_the_table() {
    let mut decoder = Decoder::new(4096);
    let block = [literal_new_name(0x40, b"X-Upper", b"v"), indexed(2)].concat();
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![Seen::Malformed(40), valid(":method", "GET")])
    );
    assert_eq!(table_of(&decoder), (vec![Seen::Malformed(40)], 40));
    // A reference to it, and a literal reusing its name, are malformed too.
    let block = [indexed(62), literal_indexed_name(0x00, 62, b"wx")].concat();
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![Seen::Malformed(40), Seen::Malformed(41)])
    );
}

#[test]
fn unknown_pseudo_header_is_malformed_and_stays_in_the_table() {
    let mut decoder = Decoder::new(4096);
    let block = [
        literal_new_name(0x40, b":foo", b"bar"),
        literal_new_name(0x40, b":Method", b"GET"),
        literal_new_name(0x40, b"x-ok", b"1"),
    ]
    .concat();
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![
            Seen::Malformed(39),
            Seen::Malformed(42),
            valid("x-ok", "1")
        ])
    );
    assert_eq!(
        decode(
            &mut decoder,
            &[indexed(62), indexed(63), indexed(64)].concat()
        ),
        Ok(vec![
            valid("x-ok", "1"),
            Seen::Malformed(42),
            Seen::Malformed(39)
        ])
    );
}

#[test]
fn empty_name_is_malformed() {
    assert_eq!(single(b"", b"v"), Seen::Malformed(33));
}

#[test]
fn names_with_forbidden_octets_are_malformed() {
    let names: [&[u8]; 12] = [
        b"\"",
        b"x\"y",
        b"x(y",
        b"x{",
        b"x,y",
        b"x y",
        b"x\0",
        b"x:y",
        b"x\x7f",
        b"x\xc3\xa9",
        b"x\ty",
        b"x\r",
    ];
    for name in names {
        assert_eq!(single(name, b"v"), malformed(name, b"v"), "name {name:?}");
    }
}

#[test]
fn every_token_character_makes_a_valid_name() {
    let name = b"!#$%&'*+-.^_`|~09az";
    let text = String::from_utf8(name.to_vec()).expect("ASCII");
    assert_eq!(single(name, b"v"), valid(&text, "v"));
}

#[test]
fn long_uppercase_name_is_malformed() {
    // Past the http crate's 64-octet scratch buffer it takes another path.
    let mut name = vec![b'x'; 80];
    name[70] = b'Q';
    assert_eq!(single(&name, b"v"), malformed(&name, b"v"));
    name[70] = b'q';
    let text = String::from_utf8(name.clone()).expect("ASCII");
    assert_eq!(single(&name, b"v"), valid(&text, "v"));
}

#[test]
fn values_with_controls_are_malformed() {
    let values: [&[u8]; 6] = [b"a\0b", b"a\rb", b"a\nb", b"a\x01b", b"a\x7fb", b"\x1f"];
    for value in values {
        assert_eq!(
            single(b"x-a", value),
            malformed(b"x-a", value),
            "value {value:?}"
        );
    }
}

#[test]
fn values_with_surrounding_whitespace_are_malformed() {
    let values: [&[u8]; 5] = [b" a", b"a ", b"\ta", b"a\t", b" "];
    for value in values {
        assert_eq!(
            single(b"x-a", value),
            malformed(b"x-a", value),
            "value {value:?}"
        );
    }
}

#[test]
fn inner_whitespace_obs_text_and_empty_values_are_valid() {
    assert_eq!(single(b"x-a", b"a b\tc"), valid("x-a", "a b\tc"));
    assert_eq!(
        single(b"x-a", b"caf\xc3\xa9"),
        Seen::Valid("x-a".to_owned(), b"caf\xc3\xa9".to_vec())
    );
    assert_eq!(single(b"x-a", b""), valid("x-a", ""));
}

#[test]
fn pseudo_header_values_get_the_same_checks() {
    assert_eq!(single(b":path", b"/a\nb"), malformed(b":path", b"/a\nb"));
    assert_eq!(
        single(b":authority", b" host"),
        malformed(b":authority", b" host")
    );
    assert_eq!(
        single(b":method", b"GET\0"),
        malformed(b":method", b"GET\0")
    );
    assert_eq!(single(b":authority", b""), valid(":authority", ""));
}

#[test]
fn entry_malformed_by_its_value_lends_a_valid_name() {
    let mut decoder = Decoder::new(4096);
    let block = literal_new_name(0x40, b"x-a", b"bad\0");
    assert_eq!(decode(&mut decoder, &block), Ok(vec![Seen::Malformed(39)]));
    let block = [indexed(62), literal_indexed_name(0x00, 62, b"good")].concat();
    assert_eq!(
        decode(&mut decoder, &block),
        Ok(vec![Seen::Malformed(39), valid("x-a", "good")])
    );
}
