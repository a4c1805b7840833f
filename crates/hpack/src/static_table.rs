//! The static table of RFC 7541 Appendix A: 61 fixed entries, spec data.
//!
//! Owns the entries as the decoder yields them (built by the compiler, so an indexed static
//! reference clones a constant) and the encoder's lookups from a name or status to an index.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::table::{Entry, Name};
use crate::{ENTRY_OVERHEAD, Field, Pseudo};

/// The entries of indices 1 to 61, in order (`STATIC_ENTRIES[index - 1]`).
pub(crate) static STATIC_ENTRIES: [Entry; 61] = [
    pseudo(Pseudo::Authority, ""),               // 1
    pseudo(Pseudo::Method, "GET"),               // 2
    pseudo(Pseudo::Method, "POST"),              // 3
    pseudo(Pseudo::Path, "/"),                   // 4
    pseudo(Pseudo::Path, "/index.html"),         // 5
    pseudo(Pseudo::Scheme, "http"),              // 6
    pseudo(Pseudo::Scheme, "https"),             // 7
    pseudo(Pseudo::Status, "200"),               // 8
    pseudo(Pseudo::Status, "204"),               // 9
    pseudo(Pseudo::Status, "206"),               // 10
    pseudo(Pseudo::Status, "304"),               // 11
    pseudo(Pseudo::Status, "400"),               // 12
    pseudo(Pseudo::Status, "404"),               // 13
    pseudo(Pseudo::Status, "500"),               // 14
    regular("accept-charset", ""),               // 15
    regular("accept-encoding", "gzip, deflate"), // 16
    regular("accept-language", ""),              // 17
    regular("accept-ranges", ""),                // 18
    regular("accept", ""),                       // 19
    regular("access-control-allow-origin", ""),  // 20
    regular("age", ""),                          // 21
    regular("allow", ""),                        // 22
    regular("authorization", ""),                // 23
    regular("cache-control", ""),                // 24
    regular("content-disposition", ""),          // 25
    regular("content-encoding", ""),             // 26
    regular("content-language", ""),             // 27
    regular("content-length", ""),               // 28
    regular("content-location", ""),             // 29
    regular("content-range", ""),                // 30
    regular("content-type", ""),                 // 31
    regular("cookie", ""),                       // 32
    regular("date", ""),                         // 33
    regular("etag", ""),                         // 34
    regular("expect", ""),                       // 35
    regular("expires", ""),                      // 36
    regular("from", ""),                         // 37
    regular("host", ""),                         // 38
    regular("if-match", ""),                     // 39
    regular("if-modified-since", ""),            // 40
    regular("if-none-match", ""),                // 41
    regular("if-range", ""),                     // 42
    regular("if-unmodified-since", ""),          // 43
    regular("last-modified", ""),                // 44
    regular("link", ""),                         // 45
    regular("location", ""),                     // 46
    regular("max-forwards", ""),                 // 47
    regular("proxy-authenticate", ""),           // 48
    regular("proxy-authorization", ""),          // 49
    regular("range", ""),                        // 50
    regular("referer", ""),                      // 51
    regular("refresh", ""),                      // 52
    regular("retry-after", ""),                  // 53
    regular("server", ""),                       // 54
    regular("set-cookie", ""),                   // 55
    regular("strict-transport-security", ""),    // 56
    regular("transfer-encoding", ""),            // 57
    regular("user-agent", ""),                   // 58
    regular("vary", ""),                         // 59
    regular("via", ""),                          // 60
    regular("www-authenticate", ""),             // 61
];

/// The index of `accept-encoding: gzip, deflate`, the one regular field with a value in the table.
pub(crate) const ACCEPT_ENCODING_GZIP_DEFLATE: usize = 16;

/// The index of the first `:status` entry, a name index for any status.
pub(crate) const STATUS_NAME: usize = 8;

/// A static entry for a pseudo-header.
const fn pseudo(pseudo: Pseudo, value: &'static str) -> Entry {
    Entry {
        field: Field::Pseudo(pseudo, Bytes::from_static(value.as_bytes())),
        name: Name::Pseudo(pseudo),
        size: pseudo.as_str().len() + value.len() + ENTRY_OVERHEAD,
    }
}

/// A static entry for a regular field.
const fn regular(name: &'static str, value: &'static str) -> Entry {
    Entry {
        field: Field::Regular(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ),
        name: Name::Regular(HeaderName::from_static(name)),
        size: name.len() + value.len() + ENTRY_OVERHEAD,
    }
}

/// The index of the static entry whose name is `name` (the regular names are all distinct).
pub(crate) fn name_index(name: &HeaderName) -> Option<usize> {
    let index = match name.as_str() {
        "accept-charset" => 15,
        "accept-encoding" => 16,
        "accept-language" => 17,
        "accept-ranges" => 18,
        "accept" => 19,
        "access-control-allow-origin" => 20,
        "age" => 21,
        "allow" => 22,
        "authorization" => 23,
        "cache-control" => 24,
        "content-disposition" => 25,
        "content-encoding" => 26,
        "content-language" => 27,
        "content-length" => 28,
        "content-location" => 29,
        "content-range" => 30,
        "content-type" => 31,
        "cookie" => 32,
        "date" => 33,
        "etag" => 34,
        "expect" => 35,
        "expires" => 36,
        "from" => 37,
        "host" => 38,
        "if-match" => 39,
        "if-modified-since" => 40,
        "if-none-match" => 41,
        "if-range" => 42,
        "if-unmodified-since" => 43,
        "last-modified" => 44,
        "link" => 45,
        "location" => 46,
        "max-forwards" => 47,
        "proxy-authenticate" => 48,
        "proxy-authorization" => 49,
        "range" => 50,
        "referer" => 51,
        "refresh" => 52,
        "retry-after" => 53,
        "server" => 54,
        "set-cookie" => 55,
        "strict-transport-security" => 56,
        "transfer-encoding" => 57,
        "user-agent" => 58,
        "vary" => 59,
        "via" => 60,
        "www-authenticate" => 61,
        _ => return None,
    };
    Some(index)
}

/// The index of the static entry `:status: code`, for the seven codes the table has.
pub(crate) fn status_index(code: u16) -> Option<usize> {
    let index = match code {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => return None,
    };
    Some(index)
}

#[cfg(test)]
mod tests;
