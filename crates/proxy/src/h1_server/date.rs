//! The `Date` header of responses that have none (RFC 9110 §6.6.1: an origin server with a
//! clock sends one; the gateway's own answers are such responses): formatted once a second
//! per thread, not per response.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::HeaderValue;

/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
const LENGTH: usize = 29;

struct Cached {
    second: u64,
    text: [u8; LENGTH],
    /// The same as a header value (HTTP/2 responses), made on first use in its second.
    value: Option<HeaderValue>,
}

thread_local! {
    static CACHED: RefCell<Cached> = const {
        RefCell::new(Cached { second: u64::MAX, text: [0; LENGTH], value: None })
    };
}

/// Runs `use_cached` with this second's date.
fn with_now<R>(use_cached: impl FnOnce(&mut Cached) -> R) -> R {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.second != second {
            let text = httpdate::fmt_http_date(now);
            if text.len() == LENGTH {
                cached.text.copy_from_slice(text.as_bytes());
                cached.second = second;
                cached.value = None;
            }
        }
        use_cached(&mut cached)
    })
}

/// Appends `date: <now>\r\n` to `out`.
pub(crate) fn append_header(out: &mut Vec<u8>) {
    with_now(|cached| {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(&cached.text);
        out.extend_from_slice(b"\r\n");
    });
}

/// This second's date as a header value: a reference to one shared buffer, not a copy.
pub(crate) fn header_value() -> HeaderValue {
    with_now(|cached| {
        cached
            .value
            .get_or_insert_with(|| {
                HeaderValue::from_maybe_shared(Bytes::copy_from_slice(&cached.text))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
            })
            .clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_date_is_an_http_date_of_now() {
        let mut out = Vec::new();
        append_header(&mut out);
        let text = std::str::from_utf8(&out).expect("ascii");
        let value = text
            .strip_prefix("date: ")
            .and_then(|rest| rest.strip_suffix("\r\n"))
            .expect("a date header line");
        let parsed = httpdate::parse_http_date(value).expect("an HTTP date");
        let skew = SystemTime::now()
            .duration_since(parsed)
            .expect("not in the future");
        assert!(skew.as_secs() <= 2, "{value}");
    }

    #[test]
    fn the_header_value_is_the_same_date() {
        let value = header_value();
        let parsed =
            httpdate::parse_http_date(value.to_str().expect("ascii")).expect("an HTTP date");
        let skew = SystemTime::now()
            .duration_since(parsed)
            .expect("not in the future");
        assert!(skew.as_secs() <= 2, "{value:?}");
    }
}
