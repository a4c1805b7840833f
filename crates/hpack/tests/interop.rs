//! Cross-checks against an independent HPACK implementation (`httlib-hpack`): header lists it
//! encodes with Huffman coding, dynamic-table indexing and size updates, over many blocks on
//! one connection, decode to the same fields with ours; and what our encoder writes decodes
//! with its decoder. The header lists come from a deterministic generator, so a failure
//! reproduces.

use bytes::Bytes;
use hpack::{Decoded, Decoder, Encoder, Field};
use httlib_hpack::{Decoder as TheirDecoder, Encoder as TheirEncoder};
use http::{HeaderName, HeaderValue, StatusCode};

/// A name and value as octets.
type Pair = (Vec<u8>, Vec<u8>);

/// xorshift64*: deterministic, good enough to vary header lists.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// A valid field value: visible ASCII and some obs-text, inner spaces, no surrounding
    /// whitespace; now and then long enough for multi-octet string lengths.
    fn value(&mut self) -> Vec<u8> {
        let length = if self.chance(10) {
            self.below(400)
        } else {
            self.below(48)
        };
        let mut value: Vec<u8> = (0..length)
            .map(|_| match self.below(20) {
                0 => b' ',
                1 => 0x80 + self.below(128) as u8,
                _ => 0x21 + self.below(94) as u8,
            })
            .collect();
        for end in [0, length.saturating_sub(1)] {
            if value.get(end) == Some(&b' ') {
                value[end] = b'x';
            }
        }
        value
    }

    /// A valid lowercase field name that is in no table.
    fn name(&mut self) -> Vec<u8> {
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
        let length = 1 + self.below(24);
        let mut name = b"x-".to_vec();
        name.extend((0..length).map(|_| *self.pick(alphabet)));
        name
    }
}

const KNOWN_NAMES: [&str; 16] = [
    ":method",
    ":path",
    ":authority",
    ":scheme",
    "accept",
    "accept-encoding",
    "accept-language",
    "user-agent",
    "cookie",
    "content-type",
    "content-length",
    "cache-control",
    "if-none-match",
    "referer",
    "x-request-id",
    "x-forwarded-for",
];

/// A header list mixing repeated fields (so the encoder finds table matches) and new ones.
fn header_list(generator: &mut Generator, repeated: &mut Vec<Pair>) -> Vec<Pair> {
    let count = 1 + generator.below(20);
    (0..count)
        .map(|_| {
            if !repeated.is_empty() && generator.chance(40) {
                return generator.pick(repeated).clone();
            }
            let name = if generator.chance(60) {
                generator.pick(&KNOWN_NAMES).as_bytes().to_vec()
            } else {
                generator.name()
            };
            let pair = (name, generator.value());
            if generator.chance(30) {
                repeated.push(pair.clone());
            }
            pair
        })
        .collect()
}

/// Our decoder's fields as octet pairs; a malformed field fails the test.
fn decode_ours(decoder: &mut Decoder, block: Vec<u8>) -> Vec<Pair> {
    let mut fields = Vec::new();
    let decoded = decoder.decode(&Bytes::from(block), usize::MAX, |field| match field {
        Field::Pseudo(pseudo, value) => fields.push((pseudo.as_str().into(), value.to_vec())),
        Field::Regular(name, value) => {
            fields.push((name.as_str().into(), value.as_bytes().to_vec()));
        }
        Field::Malformed { size } => panic!("malformed field of {size} octets"),
    });
    assert_eq!(decoded, Ok(Decoded::Complete));
    fields
}

#[test]
fn their_encoder_with_huffman_and_indexing_decodes_with_ours() {
    for seed in 1..=8u64 {
        let mut generator = Generator(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut encoder = TheirEncoder::default();
        let mut decoder = Decoder::new(4096);
        let mut repeated = Vec::new();
        for block_number in 0..150 {
            let mut block = Vec::new();
            if generator.chance(5) {
                let size = *generator.pick(&[0u32, 64, 256, 1024, 4096]);
                encoder
                    .update_max_dynamic_size(size, &mut block)
                    .expect("size update encodes");
            }
            let list = header_list(&mut generator, &mut repeated);
            for (name, value) in &list {
                let mut flags = 0;
                if generator.chance(50) {
                    flags |= TheirEncoder::HUFFMAN_NAME;
                }
                if generator.chance(50) {
                    flags |= TheirEncoder::HUFFMAN_VALUE;
                }
                match generator.below(10) {
                    0..=5 => flags |= TheirEncoder::WITH_INDEXING,
                    6 => flags |= TheirEncoder::NEVER_INDEXED,
                    _ => {}
                }
                if generator.chance(80) {
                    flags |= TheirEncoder::BEST_FORMAT;
                }
                encoder
                    .encode((name.clone(), value.clone(), flags), &mut block)
                    .expect("field encodes");
            }
            assert_eq!(
                decode_ours(&mut decoder, block),
                list,
                "seed {seed}, block {block_number}"
            );
        }
    }
}

#[test]
fn malformed_fields_from_their_encoder_keep_our_table_in_step() {
    let mut generator = Generator(0x1234_5678_9abc_def1);
    let mut encoder = TheirEncoder::default();
    let mut decoder = Decoder::new(4096);
    let flags =
        TheirEncoder::WITH_INDEXING | TheirEncoder::HUFFMAN_NAME | TheirEncoder::BEST_FORMAT;
    for block_number in 0..100 {
        // An uppercase name, an unknown pseudo-header and a value with a NUL, all indexed,
        // each used again by later blocks through the dynamic table.
        let bad: [Pair; 3] = [
            (b"X-Upper".to_vec(), generator.value()),
            (b":unknown".to_vec(), b"v".to_vec()),
            (b"x-nul".to_vec(), b"a\0b".to_vec()),
        ];
        let good = (generator.name(), generator.value());
        let mut block = Vec::new();
        let mut expected = Vec::new();
        for (name, value) in [&bad[block_number % 3], &good] {
            encoder
                .encode((name.clone(), value.clone(), flags), &mut block)
                .expect("field encodes");
            expected.push(name.len() + value.len() + 32);
        }
        let mut sizes = Vec::new();
        let mut goods = Vec::new();
        let decoded = decoder.decode(&Bytes::from(block), usize::MAX, |field| {
            sizes.push(field.size());
            if let Field::Regular(name, value) = &field {
                goods.push((name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()));
            } else {
                assert!(matches!(field, Field::Malformed { .. }), "{field:?}");
            }
        });
        assert_eq!(decoded, Ok(Decoded::Complete));
        assert_eq!(sizes, expected, "block {block_number}");
        assert_eq!(goods, [good], "block {block_number}");
    }
}

#[test]
fn our_encoder_decodes_with_theirs() {
    let mut generator = Generator(0x0bad_5eed_0000_0001);
    let encoder = Encoder::new();
    let mut decoder = TheirDecoder::default();
    for block_number in 0..100 {
        let mut block = Vec::new();
        let code = *generator.pick(&[200u16, 204, 206, 304, 400, 404, 500, 101, 302, 418, 503]);
        encoder.encode_status(
            StatusCode::from_u16(code).expect("valid status"),
            &mut block,
        );
        let mut expected: Vec<(Vec<u8>, Vec<u8>, u8)> =
            vec![(b":status".to_vec(), code.to_string().into_bytes(), 0)];
        let mut repeated = Vec::new();
        for (name, value) in header_list(&mut generator, &mut repeated) {
            if name.starts_with(b":") {
                continue;
            }
            let name = HeaderName::from_bytes(&name).expect("generated names are valid");
            let mut value = HeaderValue::from_bytes(&value).expect("generated values are valid");
            let is_sensitive = generator.chance(20);
            value.set_sensitive(is_sensitive);
            encoder.encode_field(&name, &value, &mut block);
            let flags = if is_sensitive {
                TheirDecoder::NEVER_INDEXED
            } else {
                0
            };
            expected.push((name.as_str().into(), value.as_bytes().to_vec(), flags));
        }
        let mut fields = Vec::new();
        decoder
            .decode(&mut block, &mut fields)
            .expect("their decoder accepts our block");
        assert_eq!(fields, expected, "block {block_number}");
    }
    // We never index, so their table stays empty: a fresh block can reference nothing new.
    let mut probe = vec![0x80 | 62];
    assert!(decoder.decode(&mut probe, &mut Vec::new()).is_err());
}
