//! The HPACK encoder of responses: static table only, raw strings, no state.
//!
//! Owns how a response's `:status` and fields are written. It never inserts into the dynamic
//! table, so the peer's `SETTINGS_HEADER_TABLE_SIZE` never matters and no size update is ever
//! sent, and every block decodes on its own. It writes no Huffman strings: that trades a few
//! bytes on the wire for fewer instructions per response. It does not filter fields: leaving
//! out connection-specific fields (RFC 9113 §8.2.2) is the caller's job.

use http::{HeaderName, HeaderValue, StatusCode};

use crate::integer;
use crate::static_table::{self, ACCEPT_ENCODING_GZIP_DEFLATE, STATUS_NAME};

/// §6.1 indexed field: pattern `1`, 7-bit index.
const INDEXED: u8 = 0x80;

/// §6.2.2 literal without indexing: pattern `0000`, 4-bit name index.
const WITHOUT_INDEXING: u8 = 0x00;

/// §6.2.3 literal never indexed: pattern `0001`, 4-bit name index.
const NEVER_INDEXED: u8 = 0x10;

/// Writes header blocks for responses. Stateless: one may serve every connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Encoder {
    /// Keeps construction to `new` and `default`, should state ever be needed.
    _stateless: (),
}

impl Encoder {
    /// An encoder (it holds nothing).
    pub fn new() -> Encoder {
        Encoder { _stateless: () }
    }

    /// `:status` — indexed when the static table has the code (200, 204, 206, 304, 400, 404, 500),
    /// else literal without indexing with the indexed name :status.
    pub fn encode_status(&self, status: StatusCode, dst: &mut Vec<u8>) {
        if let Some(index) = static_table::status_index(status.as_u16()) {
            integer::encode(index, 7, INDEXED, dst);
            return;
        }
        integer::encode(STATUS_NAME, 4, WITHOUT_INDEXING, dst);
        write_raw_string(status.as_str().as_bytes(), dst);
    }

    /// One regular field: literal without indexing (with the static table's name index when the
    /// name is there), or — when `value.is_sensitive()` — literal never indexed (RFC 7541 §6.2.3),
    /// so intermediaries that re-encode must not index it either. Fully indexed when the static
    /// table has the exact pair: for regular fields only `accept-encoding: gzip, deflate`.
    pub fn encode_field(&self, name: &HeaderName, value: &HeaderValue, dst: &mut Vec<u8>) {
        let name_index = static_table::name_index(name);
        let pattern = if value.is_sensitive() {
            NEVER_INDEXED
        } else if name_index == Some(ACCEPT_ENCODING_GZIP_DEFLATE) && value == "gzip, deflate" {
            integer::encode(ACCEPT_ENCODING_GZIP_DEFLATE, 7, INDEXED, dst);
            return;
        } else {
            WITHOUT_INDEXING
        };
        match name_index {
            Some(index) => integer::encode(index, 4, pattern, dst),
            None => {
                dst.push(pattern);
                write_raw_string(name.as_str().as_bytes(), dst);
            }
        }
        write_raw_string(value.as_bytes(), dst);
    }
}

/// Appends a string literal without Huffman coding (RFC 7541 §5.2, H bit 0).
fn write_raw_string(octets: &[u8], dst: &mut Vec<u8>) {
    integer::encode(octets.len(), 7, 0x00, dst);
    dst.extend_from_slice(octets);
}

#[cfg(test)]
mod tests;
