//! HPACK (RFC 7541): the header compression of Portcullis's HTTP/2 server.
//!
//! [`Decoder`] turns one complete header block from a client into [`Field`]s, keeping the
//! dynamic table in step with the client's encoder. [`Encoder`] writes response headers using
//! the static table only, so it has no state and never depends on the client's
//! `SETTINGS_HEADER_TABLE_SIZE`.
//!
//! This crate owns the wire format and the field-level checks of RFC 9113 §8.2.1 (lowercase,
//! valid names; values without controls or surrounding whitespace). It deliberately knows
//! nothing about frames, streams or requests: joining HEADERS and CONTINUATION fragments,
//! checking which pseudo-headers a request carries, connection-specific fields and turning
//! errors into `COMPRESSION_ERROR` or stream resets belong to the HTTP/2 connection in `proxy`.

mod decoder;
mod encoder;
mod huffman;
mod integer;
mod static_table;
mod table;

pub use decoder::{Decoded, Decoder, DecoderError};
pub use encoder::Encoder;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

/// The overhead RFC 7541 §4.1 adds to every field's name and value lengths.
const ENTRY_OVERHEAD: usize = 32;

/// A pseudo-header field a request or response may carry (RFC 9113 §8.3, RFC 8441 :protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pseudo {
    /// `:method`
    Method,
    /// `:scheme`
    Scheme,
    /// `:authority`
    Authority,
    /// `:path`
    Path,
    /// `:protocol` (extended CONNECT, RFC 8441)
    Protocol,
    /// `:status`
    Status,
}

impl Pseudo {
    /// The field name as it appears on the wire, colon included (`":method"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Pseudo::Method => ":method",
            Pseudo::Scheme => ":scheme",
            Pseudo::Authority => ":authority",
            Pseudo::Path => ":path",
            Pseudo::Protocol => ":protocol",
            Pseudo::Status => ":status",
        }
    }

    /// The pseudo-header a name denotes, when the name (colon included) is exactly one of the six.
    fn from_name(name: &[u8]) -> Option<Pseudo> {
        match name {
            b":method" => Some(Pseudo::Method),
            b":scheme" => Some(Pseudo::Scheme),
            b":authority" => Some(Pseudo::Authority),
            b":path" => Some(Pseudo::Path),
            b":protocol" => Some(Pseudo::Protocol),
            b":status" => Some(Pseudo::Status),
            _ => None,
        }
    }
}

/// One decoded field.
#[derive(Clone, Debug)]
pub enum Field {
    /// A pseudo-header with its raw value bytes; the caller parses them. The value passed the same
    /// checks as a regular value (no controls other than HTAB, no leading or trailing SP/HTAB);
    /// it may be empty.
    Pseudo(Pseudo, Bytes),
    /// A regular field: a valid lowercase name and a valid value.
    Regular(HeaderName, HeaderValue),
    /// Decoded correctly (the dynamic table stays in step with the peer) but no HTTP/2 message may carry it:
    /// a name with uppercase letters or with bytes a field name cannot have (RFC 9113 §8.2.1), an empty name,
    /// an unknown pseudo-header (name starting with ':' that is not one of the six), or a value HTTP's
    /// `HeaderValue` refuses (NUL, CR, LF and other controls except HTAB; also a value with leading/trailing
    /// SP or HTAB, RFC 9113 §8.2.1). The caller treats the stream as malformed (stream error PROTOCOL_ERROR),
    /// the connection goes on.
    Malformed {
        /// The RFC 7541 §4.1 size of the field as decoded.
        size: usize,
    },
}

impl Field {
    /// RFC 7541 §4.1 size: name length + value length + 32 (for Malformed, the size of what was decoded).
    pub fn size(&self) -> usize {
        match self {
            Field::Pseudo(pseudo, value) => pseudo.as_str().len() + value.len() + ENTRY_OVERHEAD,
            Field::Regular(name, value) => name.as_str().len() + value.len() + ENTRY_OVERHEAD,
            Field::Malformed { size } => *size,
        }
    }
}
