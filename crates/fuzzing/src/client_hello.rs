//! Target `client_hello`: the TLS ClientHello scanner that reads SNI for passthrough routing
//! (`proxy::fuzzing::client_hello_scan`).
//!
//! Checks that it never panics, that a server name it returns is a plausible DNS name
//! (non-empty, at most 255 bytes, lowercase ASCII letters, digits, `-`, `.` and `_`), and that
//! its verdict is final: the proxy calls it again after every read, so for any prefix of the
//! input the answer must be "need more bytes" or exactly the answer for the whole input.

use proxy::fuzzing::client_hello_scan;

/// Longest server name the scanner may return (a 253-byte DNS name plus a trailing dot).
const MAX_SERVER_NAME: usize = 255;

/// Prefixes checked per input besides the first [`SHORT_PREFIXES`]: enough to cut inside record
/// headers, handshake headers and extensions of a real ClientHello, few enough to keep the
/// target fast on inputs of several kilobytes.
const SPREAD_PREFIXES: usize = 48;

/// Every prefix shorter than this is checked (record and handshake headers; the empty prefix
/// must always be incomplete).
const SHORT_PREFIXES: usize = 16;

/// Scans `data` as the first bytes of a connection and checks the invariants above.
///
/// # Panics
/// When an invariant does not hold (or the scanner itself panics).
pub fn client_hello(data: &[u8]) {
    let whole = client_hello_scan(data);
    if let Ok(Some(Some(name))) = &whole {
        assert!(
            !name.is_empty() && name.len() <= MAX_SERVER_NAME,
            "server name of {} bytes",
            name.len()
        );
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(b, b'-' | b'.' | b'_')),
            "server name {name:?} is not a lowercase DNS name"
        );
    }
    for cut in prefix_cuts(data.len()) {
        let partial = client_hello_scan(&data[..cut]);
        assert!(
            partial == Ok(None) || partial == whole,
            "prefix of {cut} bytes gives {partial:?}, the whole {} bytes give {whole:?}",
            data.len()
        );
    }
}

/// Lengths of the proper prefixes to check: all short ones, then an even spread, then the
/// longest.
fn prefix_cuts(len: usize) -> impl Iterator<Item = usize> {
    let short = 0..len.min(SHORT_PREFIXES);
    let step = (len / SPREAD_PREFIXES).max(1);
    let spread = (SHORT_PREFIXES..len).step_by(step);
    let last = len.checked_sub(1).filter(|&cut| cut >= SHORT_PREFIXES);
    short.chain(spread).chain(last)
}
