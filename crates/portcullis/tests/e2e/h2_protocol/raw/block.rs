//! HPACK request header blocks (RFC 7541) for the raw client: pseudo-header fields as
//! hand-written literals with a static-table name (§6.2.2), regular fields through the `hpack`
//! crate's [`hpack::Encoder`], dynamic-table inserts and references, and literals of any bytes
//! for blocks no encoder would write.

use http::{HeaderName, HeaderValue};

use crate::fixture::running::HOST;

/// An HPACK request header block (RFC 7541), built field by field.
#[derive(Clone, Default)]
pub(in crate::h2_protocol) struct Block(Vec<u8>);

/// Static-table indices (RFC 7541 Appendix A) of the request pseudo-header fields.
mod static_index {
    pub(in crate::h2_protocol) const AUTHORITY: usize = 1;
    pub(in crate::h2_protocol) const METHOD: usize = 2;
    pub(in crate::h2_protocol) const PATH: usize = 4;
    pub(in crate::h2_protocol) const SCHEME: usize = 6;
}

impl Block {
    /// `:method`, `:scheme: http`, `:authority: HOST` and `:path`, as literals.
    pub(in crate::h2_protocol) fn request(method: &str, path: &str) -> Block {
        Block::default()
            .pseudo(static_index::METHOD, method)
            .pseudo(static_index::SCHEME, "http")
            .pseudo(static_index::AUTHORITY, HOST)
            .pseudo(static_index::PATH, path)
    }

    /// A request without `:path`.
    pub(in crate::h2_protocol) fn request_without_path(method: &str) -> Block {
        Block::default()
            .pseudo(static_index::METHOD, method)
            .pseudo(static_index::SCHEME, "http")
            .pseudo(static_index::AUTHORITY, HOST)
    }

    /// `:path`, wherever the test puts it.
    pub(in crate::h2_protocol) fn path(self, value: &str) -> Block {
        self.pseudo(static_index::PATH, value)
    }

    /// A literal without indexing whose name is static-table entry `name_index` (§6.2.2).
    fn pseudo(mut self, name_index: usize, value: &str) -> Block {
        put_integer(&mut self.0, name_index, 4, 0x00);
        put_string(&mut self.0, value.as_bytes());
        self
    }

    /// A regular field through the `hpack` crate's encoder (never indexed).
    pub(in crate::h2_protocol) fn field(mut self, name: &str, value: &str) -> Block {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("test field names are valid");
        let value = HeaderValue::from_str(value).expect("test field values are valid");
        hpack::Encoder::new().encode_field(&name, &value, &mut self.0);
        self
    }

    /// A literal with incremental indexing and a new name (§6.2.1): the gateway's decoder
    /// adds it to its dynamic table, where [`Block::indexed`] can refer to it later.
    pub(in crate::h2_protocol) fn indexed_new(mut self, name: &str, value: &str) -> Block {
        self.0.push(0x40);
        put_string(&mut self.0, name.as_bytes());
        put_string(&mut self.0, value.as_bytes());
        self
    }

    /// An indexed field (§6.1): entry `index` of the static or dynamic table (62 is the
    /// dynamic table's newest entry).
    pub(in crate::h2_protocol) fn indexed(mut self, index: usize) -> Block {
        put_integer(&mut self.0, index, 7, 0x80);
        self
    }

    /// A literal without indexing with a new name (§6.2.2), any bytes at all.
    pub(in crate::h2_protocol) fn literal(mut self, name: &[u8], value: &[u8]) -> Block {
        self.0.push(0x00);
        put_string(&mut self.0, name);
        put_string(&mut self.0, value);
        self
    }

    pub(in crate::h2_protocol) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// An HPACK integer with an `prefix_bits`-bit prefix after the bits of `first` (§5.1).
fn put_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u32, first: u8) {
    let limit = (1usize << prefix_bits) - 1;
    if value < limit {
        out.push(first | value as u8);
        return;
    }
    out.push(first | limit as u8);
    let mut rest = value - limit;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A string literal without Huffman coding (§5.2).
fn put_string(out: &mut Vec<u8>, octets: &[u8]) {
    put_integer(out, octets.len(), 7, 0x00);
    out.extend_from_slice(octets);
}
