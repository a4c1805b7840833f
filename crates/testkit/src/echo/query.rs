//! Reads query parameters the way Go's `url.ParseQuery` and `Request.FormValue` do.

/// Returns the first value of `key` in the raw query string `query` (the part after `?`), percent-decoded with
/// `+` as a space.
///
/// Like Go, pairs are split on `&`, a pair without `=` has an empty value, and a pair whose escapes are invalid
/// is skipped rather than failing the whole query.
pub(crate) fn first_query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(raw_key)?, unescape(raw_value)?))
        })
        .find(|(candidate, _)| candidate == key)
        .map(|(_, value)| value)
}

/// Decodes `%XX` escapes and `+`; `None` for a malformed escape or for bytes that are not UTF-8.
fn unescape(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let high = hex_value(*bytes.get(index + 1)?)?;
                let low = hex_value(*bytes.get(index + 2)?)?;
                decoded.push(high << 4 | low);
                index += 2;
            }
            other => decoded.push(other),
        }
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// The value of one hexadecimal digit.
fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
