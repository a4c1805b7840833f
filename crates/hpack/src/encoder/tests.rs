//! Encoder tests: the exact octets of each representation, and decoding the output again.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};

use super::Encoder;
use crate::{Decoded, Decoder, Field};

fn status(code: u16) -> Vec<u8> {
    let mut dst = Vec::new();
    let status = StatusCode::from_u16(code).expect("valid test status");
    Encoder::new().encode_status(status, &mut dst);
    dst
}

fn field(name: &'static str, value: HeaderValue) -> Vec<u8> {
    let mut dst = Vec::new();
    Encoder::default().encode_field(&HeaderName::from_static(name), &value, &mut dst);
    dst
}

fn sensitive(value: &'static str) -> HeaderValue {
    let mut value = HeaderValue::from_static(value);
    value.set_sensitive(true);
    value
}

#[test]
fn statuses_in_the_static_table_are_one_octet() {
    let codes = [
        (200, 0x88),
        (204, 0x89),
        (206, 0x8a),
        (304, 0x8b),
        (400, 0x8c),
        (404, 0x8d),
    ];
    for (code, octet) in codes {
        assert_eq!(status(code), [octet], "status {code}");
    }
    assert_eq!(status(500), [0x8e]);
}

#[test]
fn other_statuses_are_literals_with_the_status_name_index() {
    assert_eq!(status(302), [0x08, 0x03, b'3', b'0', b'2']);
    assert_eq!(status(101), [0x08, 0x03, b'1', b'0', b'1']);
    assert_eq!(status(503), [0x08, 0x03, b'5', b'0', b'3']);
}

#[test]
fn static_name_uses_its_index_without_indexing() {
    // content-type is index 31: 4-bit prefix 15, then 16.
    let value = HeaderValue::from_static("text/html");
    let mut expected = vec![0x0f, 0x10, 0x09];
    expected.extend_from_slice(b"text/html");
    assert_eq!(field("content-type", value), expected);
    // age is index 21, content-length 28.
    assert_eq!(
        field("age", HeaderValue::from_static("0")),
        [0x0f, 0x06, 0x01, b'0']
    );
    assert_eq!(
        field("content-length", HeaderValue::from_static("12")),
        [0x0f, 0x0d, 0x02, b'1', b'2']
    );
}

#[test]
fn new_name_is_a_raw_literal() {
    let mut expected = vec![0x00, 0x06];
    expected.extend_from_slice(b"x-test");
    expected.push(0x02);
    expected.extend_from_slice(b"ok");
    assert_eq!(field("x-test", HeaderValue::from_static("ok")), expected);
}

#[test]
fn sensitive_values_are_never_indexed() {
    // authorization is index 23.
    let mut expected = vec![0x1f, 0x08, 0x06];
    expected.extend_from_slice(b"secret");
    assert_eq!(field("authorization", sensitive("secret")), expected);
    let mut expected = vec![0x10, 0x07];
    expected.extend_from_slice(b"x-token");
    expected.push(0x01);
    expected.push(b't');
    assert_eq!(field("x-token", sensitive("t")), expected);
}

#[test]
fn accept_encoding_gzip_deflate_is_fully_indexed() {
    assert_eq!(
        field("accept-encoding", HeaderValue::from_static("gzip, deflate")),
        [0x90]
    );
    let mut other = vec![0x0f, 0x01, 0x04];
    other.extend_from_slice(b"gzip");
    assert_eq!(
        field("accept-encoding", HeaderValue::from_static("gzip")),
        other
    );
    // Sensitivity wins over the exact match.
    let mut never = vec![0x1f, 0x01, 0x0d];
    never.extend_from_slice(b"gzip, deflate");
    assert_eq!(field("accept-encoding", sensitive("gzip, deflate")), never);
}

#[test]
fn long_values_use_multi_octet_lengths() {
    let text = "v".repeat(300);
    let value = HeaderValue::from_str(&text).expect("valid value");
    let encoded = field("x-long", value);
    // 300 = 127 + 173: 0x7f, then 173 = 0xad (0x80 | 45), 1.
    assert_eq!(&encoded[8..11], [0x7f, 0xad, 0x01]);
    assert_eq!(encoded.len(), 1 + 1 + 6 + 3 + 300);
}

#[test]
fn response_round_trips_through_the_decoder_without_touching_its_table() {
    let encoder = Encoder::new();
    let fields = [
        ("content-type", HeaderValue::from_static("application/json")),
        ("content-length", HeaderValue::from_static("1234")),
        ("x-request-id", HeaderValue::from_static("abc-123")),
        ("accept-encoding", HeaderValue::from_static("gzip, deflate")),
        ("set-cookie", sensitive("id=1; HttpOnly")),
        ("server", HeaderValue::from_static("portcullis")),
    ];
    let mut block = Vec::new();
    encoder.encode_status(StatusCode::NOT_FOUND, &mut block);
    encoder.encode_status(StatusCode::IM_A_TEAPOT, &mut block);
    for (name, value) in &fields {
        encoder.encode_field(&HeaderName::from_static(name), value, &mut block);
    }

    let mut decoder = Decoder::new(4096);
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    let decoded = decoder.decode(&Bytes::from(block), usize::MAX, |field| match field {
        Field::Pseudo(pseudo, value) => seen.push((pseudo.as_str().to_owned(), value.to_vec())),
        Field::Regular(name, value) => {
            seen.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
        }
        Field::Malformed { size } => panic!("malformed field of {size} octets"),
    });
    assert_eq!(decoded, Ok(Decoded::Complete));
    let mut expected = vec![
        (":status".to_owned(), b"404".to_vec()),
        (":status".to_owned(), b"418".to_vec()),
    ];
    expected.extend(
        fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec())),
    );
    assert_eq!(seen, expected);
    assert_eq!(decoder.table().entries().count(), 0);
}
