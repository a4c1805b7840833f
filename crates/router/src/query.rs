//! Query-string reading for `HTTPQueryParamMatch`: find a parameter, compare its decoded value.
//!
//! Decoding follows `application/x-www-form-urlencoded` (WHATWG URL standard, section 5.1): `+`
//! is a space and `%XX` is a byte; a `%` not followed by two hex digits stays literal. Names and
//! values are decoded lazily, byte by byte, so comparing against an exact string never
//! allocates. It does not parse or validate the rest of the URI.

use std::borrow::Cow;

#[cfg(test)]
mod tests;

/// The raw (still encoded) value of the first parameter whose decoded name equals `name`.
///
/// Only the first occurrence counts. `HTTPQueryParamMatch` leaves repeated request parameters
/// implementation-specific; first-wins is what Envoy and most frameworks do, and it keeps the
/// scan short. A parameter without `=` has the empty value.
pub(crate) fn first_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            decoded_eq(raw_name, name).then_some(raw_value)
        })
}

/// Whether `raw`, once decoded, is byte for byte equal to `expected`. Never allocates.
pub(crate) fn decoded_eq(raw: &str, expected: &str) -> bool {
    // Decoding never lengthens, so a raw text shorter than expected cannot be equal.
    raw.len() >= expected.len() && Decoded::new(raw).eq(expected.bytes())
}

/// `raw` decoded, borrowed when it contains nothing to decode; `None` if the decoded bytes are
/// not UTF-8 (such a value matches no regular expression).
pub(crate) fn decode(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(raw));
    }
    String::from_utf8(Decoded::new(raw).collect())
        .ok()
        .map(Cow::Owned)
}

/// Iterator over the decoded bytes of a form-urlencoded component.
struct Decoded<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a str) -> Self {
        Decoded {
            bytes: raw.as_bytes(),
        }
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        match first {
            b'+' => {
                self.bytes = rest;
                Some(b' ')
            }
            b'%' => match rest {
                [high, low, tail @ ..] => match (hex_value(*high), hex_value(*low)) {
                    (Some(high), Some(low)) => {
                        self.bytes = tail;
                        Some(high << 4 | low)
                    }
                    _ => {
                        self.bytes = rest;
                        Some(b'%')
                    }
                },
                _ => {
                    self.bytes = rest;
                    Some(b'%')
                }
            },
            other => {
                self.bytes = rest;
                Some(other)
            }
        }
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
