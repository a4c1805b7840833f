//! The HPACK decoder (RFC 7541 §3, §6): one complete header block in, fields out, in order.
//!
//! Owns the representations (indexed, the three literals, dynamic table size updates), string
//! literals, the header list size budget and the strictness RFC 7541 asks of a decoder: every
//! error is fatal to the block and, for the caller, to the connection (`COMPRESSION_ERROR`).
//! Fields HTTP/2 forbids but HPACK decodes fine come out as [`Field::Malformed`], so the table
//! stays in step and only the stream fails. It does not join frames or check which fields a
//! request needs; that is the HTTP/2 connection's job.

use std::fmt;

use bytes::Bytes;

use crate::Field;
use crate::huffman::{self, HuffmanError};
use crate::integer;
use crate::table::{DynamicTable, Entry, Name};

/// A header block the decoder refused (RFC 7541 §3.3, §4.2, §5, §6). Any of them is a
/// connection error `COMPRESSION_ERROR` (RFC 9113 §4.3); the decoder's state is then unspecified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecoderError {
    /// An index of 0, or past the end of the static and dynamic tables (§2.3.3).
    InvalidIndex {
        /// The index the block referenced.
        index: usize,
    },
    /// An integer above 2^32 - 1, or with more than five continuation bytes (§5.1).
    IntegerOverflow,
    /// The block ended inside a representation, an integer or a string.
    UnexpectedEnd,
    /// A Huffman-coded string contained the EOS symbol (§5.2).
    HuffmanEos,
    /// A Huffman-coded string ended with more than 7 bits of padding (§5.2).
    HuffmanPaddingTooLong,
    /// A Huffman-coded string's padding was not the leading bits of EOS (§5.2).
    HuffmanPaddingNotEos,
    /// A dynamic table size update after the block's first field (§4.2).
    SizeUpdateAfterField,
    /// A dynamic table size update above the size this endpoint advertised (§6.3).
    SizeUpdateTooLarge {
        /// The size the update asked for.
        size: usize,
        /// The `SETTINGS_HEADER_TABLE_SIZE` this endpoint advertised.
        max: usize,
    },
}

impl fmt::Display for DecoderError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecoderError::InvalidIndex { index } => {
                write!(formatter, "HPACK index {index} is not in the tables")
            }
            DecoderError::IntegerOverflow => formatter.write_str("HPACK integer too large"),
            DecoderError::UnexpectedEnd => formatter.write_str("HPACK header block truncated"),
            DecoderError::HuffmanEos => formatter.write_str("Huffman string contains EOS"),
            DecoderError::HuffmanPaddingTooLong => {
                formatter.write_str("Huffman string padding longer than 7 bits")
            }
            DecoderError::HuffmanPaddingNotEos => {
                formatter.write_str("Huffman string padding is not a prefix of EOS")
            }
            DecoderError::SizeUpdateAfterField => {
                formatter.write_str("HPACK dynamic table size update after a field")
            }
            DecoderError::SizeUpdateTooLarge { size, max } => write!(
                formatter,
                "HPACK dynamic table size update to {size} above the advertised {max}"
            ),
        }
    }
}

impl std::error::Error for DecoderError {}

impl From<HuffmanError> for DecoderError {
    fn from(error: HuffmanError) -> DecoderError {
        match error {
            HuffmanError::Eos => DecoderError::HuffmanEos,
            HuffmanError::PaddingTooLong => DecoderError::HuffmanPaddingTooLong,
            HuffmanError::PaddingNotEos => DecoderError::HuffmanPaddingNotEos,
        }
    }
}

/// How a header block that decoded without error ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decoded {
    /// Every field went to the sink.
    Complete,
    /// The fields' sizes added up past `max_list_size`: the sink saw only those before the one
    /// that crossed it. The dynamic table is in step all the same; the caller refuses the
    /// request (431 semantics, or a stream reset).
    TooLarge,
}

/// The decoding side of one HTTP/2 connection: the dynamic table the peer's encoder fills.
#[derive(Debug)]
pub struct Decoder {
    /// The static table's view and the dynamic table.
    table: DynamicTable,
    /// The `SETTINGS_HEADER_TABLE_SIZE` this endpoint advertised: the largest size update allowed.
    max_table_size: usize,
    /// Where Huffman-coded strings are decoded, reused across fields and blocks.
    scratch: Vec<u8>,
}

/// The running sum of field sizes against `max_list_size`.
struct ListBudget {
    /// The sizes so far.
    used: usize,
    /// The caller's limit.
    max: usize,
    /// Whether `used` went past `max`; it stays so for the rest of the block.
    is_exceeded: bool,
}

impl ListBudget {
    /// Counts a field; whether the sink may have it.
    fn admits(&mut self, size: usize) -> bool {
        if self.is_exceeded {
            return false;
        }
        self.used = self.used.saturating_add(size);
        self.is_exceeded = self.used > self.max;
        !self.is_exceeded
    }
}

/// A string literal's place in the block (RFC 7541 §5.2), not yet decoded.
struct Literal<'block> {
    /// Whether the octets are Huffman-coded (the H bit).
    is_huffman: bool,
    /// Where the octets start in the block.
    start: usize,
    /// The octets as sent.
    octets: &'block [u8],
}

impl<'block> Literal<'block> {
    /// Reads a string literal's header at `*position` and moves past its octets.
    fn read(src: &'block [u8], position: &mut usize) -> Result<Literal<'block>, DecoderError> {
        let is_huffman = src.get(*position).ok_or(DecoderError::UnexpectedEnd)? & 0x80 != 0;
        let length = integer::decode(src, position, 7)?;
        let start = *position;
        let octets = start
            .checked_add(length)
            .and_then(|end| src.get(start..end))
            .ok_or(DecoderError::UnexpectedEnd)?;
        *position = start + octets.len();
        Ok(Literal {
            is_huffman,
            start,
            octets,
        })
    }

    /// Checks a literal whose contents are not needed (a Huffman error is still an error).
    fn validate(&self) -> Result<(), DecoderError> {
        if self.is_huffman {
            huffman::decode(self.octets, |_| ())?;
        }
        Ok(())
    }

    /// The decoded name.
    fn to_name(&self, scratch: &mut Vec<u8>) -> Result<Name, DecoderError> {
        if !self.is_huffman {
            return Ok(Name::parse(self.octets));
        }
        decode_huffman(self.octets, scratch)?;
        Ok(Name::parse(scratch))
    }

    /// The decoded value. A raw value shares the block's buffer unless `is_kept`: a value the
    /// dynamic table keeps is copied, so the table never pins whole header blocks and its
    /// memory stays bounded by its size.
    fn to_value(
        &self,
        block: &Bytes,
        is_kept: bool,
        scratch: &mut Vec<u8>,
    ) -> Result<Bytes, DecoderError> {
        if self.is_huffman {
            decode_huffman(self.octets, scratch)?;
            return Ok(Bytes::copy_from_slice(scratch));
        }
        if is_kept {
            return Ok(Bytes::copy_from_slice(self.octets));
        }
        // `read` checked that these octets are in the block.
        Ok(block.slice(self.start..self.start + self.octets.len()))
    }
}

/// Decodes a Huffman string into `scratch`, replacing its contents.
fn decode_huffman(octets: &[u8], scratch: &mut Vec<u8>) -> Result<(), DecoderError> {
    scratch.clear();
    // No code is shorter than 5 bits, so the output is at most 8/5 of the input.
    scratch.reserve(octets.len() + octets.len() / 2 + octets.len() / 8 + 1);
    huffman::decode(octets, |octet| scratch.push(octet))?;
    Ok(())
}

/// What the first octet of a field representation says (RFC 7541 §6).
enum LiteralKind {
    /// §6.2.1: the field goes into the dynamic table; 6-bit name index.
    IncrementalIndexing,
    /// §6.2.2: 4-bit name index.
    WithoutIndexing,
    /// §6.2.3: 4-bit name index; the value comes out marked sensitive
    /// ([`HeaderValue::is_sensitive`](http::HeaderValue::is_sensitive)), so a proxy that
    /// re-encodes it upstream keeps it out of compression tables (§7.1.3).
    NeverIndexed,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE this endpoint advertised (4,096 by default):
    /// a dynamic table size update above it is a decoding error. The dynamic table starts at that
    /// size (RFC 7541 §4.2). Advertise the protocol's 4,096: a client may encode its first
    /// blocks before it has read a smaller setting, and this decoder would then evict entries
    /// the client still refers to.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_table_size,
            scratch: Vec::new(),
        }
    }

    /// Frees the buffer Huffman-coded strings are decoded into when it holds more than `keep`
    /// bytes: a connection that went quiet after a large field need not keep its size.
    pub fn release_scratch(&mut self, keep: usize) {
        if self.scratch.capacity() > keep {
            self.scratch = Vec::new();
        }
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments already joined), calling `sink`
    /// with every field in order. Any error is a connection error COMPRESSION_ERROR for the caller; after an
    /// error the decoder need not be usable.
    ///
    /// `max_list_size`: when the running sum of field sizes ([`Field::size`]) exceeds it,
    /// decoding still goes on to the end of the block (to keep the table in step) but `sink` is
    /// no longer called and the result is `Ok(Decoded::TooLarge)`; fields not inserted into the
    /// dynamic table are then only validated, not built. Otherwise `Ok(Decoded::Complete)`.
    pub fn decode(
        &mut self,
        block: &Bytes,
        max_list_size: usize,
        mut sink: impl FnMut(Field),
    ) -> Result<Decoded, DecoderError> {
        let src: &[u8] = block;
        let mut position = 0;
        let mut budget = ListBudget {
            used: 0,
            max: max_list_size,
            is_exceeded: false,
        };
        let mut is_at_block_start = true;
        while let Some(&first) = src.get(position) {
            if first & 0x80 != 0 {
                // §6.1 indexed: the hot path of browsers and load generators, one clone.
                let index = integer::decode(src, &mut position, 7)?;
                let entry = self.table.get(index)?;
                if budget.admits(entry.size) {
                    sink(entry.field.clone());
                }
            } else if first & 0xe0 == 0x20 {
                self.update_size(src, &mut position, is_at_block_start)?;
                continue;
            } else {
                let kind = if first & 0x40 != 0 {
                    LiteralKind::IncrementalIndexing
                } else if first & 0x10 != 0 {
                    LiteralKind::NeverIndexed
                } else {
                    LiteralKind::WithoutIndexing
                };
                let decoded = self.literal(block, &mut position, kind, budget.is_exceeded)?;
                if let Some((field, size)) = decoded
                    && budget.admits(size)
                {
                    sink(field);
                }
            }
            is_at_block_start = false;
        }
        Ok(if budget.is_exceeded {
            Decoded::TooLarge
        } else {
            Decoded::Complete
        })
    }

    /// §6.3: a dynamic table size update, allowed only before the block's first field (§4.2).
    fn update_size(
        &mut self,
        src: &[u8],
        position: &mut usize,
        is_at_block_start: bool,
    ) -> Result<(), DecoderError> {
        let size = integer::decode(src, position, 5)?;
        if !is_at_block_start {
            return Err(DecoderError::SizeUpdateAfterField);
        }
        if size > self.max_table_size {
            return Err(DecoderError::SizeUpdateTooLarge {
                size,
                max: self.max_table_size,
            });
        }
        self.table.set_capacity(size);
        Ok(())
    }

    /// §6.2: a literal field. Returns the field and its size, or `None` when the list budget
    /// is already exceeded and the field does not go into the table (then it is only validated).
    fn literal(
        &mut self,
        block: &Bytes,
        position: &mut usize,
        kind: LiteralKind,
        is_budget_exceeded: bool,
    ) -> Result<Option<(Field, usize)>, DecoderError> {
        let src: &[u8] = block;
        let is_indexing = matches!(kind, LiteralKind::IncrementalIndexing);
        let prefix_bits = if is_indexing { 6 } else { 4 };
        let is_needed = is_indexing || !is_budget_exceeded;

        let name_index = integer::decode(src, position, prefix_bits)?;
        let name = if name_index == 0 {
            let literal = Literal::read(src, position)?;
            if is_needed {
                Some(literal.to_name(&mut self.scratch)?)
            } else {
                literal.validate()?;
                None
            }
        } else {
            let entry = self.table.get(name_index)?;
            is_needed.then(|| entry.name.clone())
        };

        let value = Literal::read(src, position)?;
        let Some(name) = name else {
            value.validate()?;
            return Ok(None);
        };
        let value = value.to_value(block, is_indexing, &mut self.scratch)?;
        if !is_indexing {
            let mut field = name.with_value(value);
            if let (LiteralKind::NeverIndexed, Field::Regular(_, value)) = (kind, &mut field) {
                value.set_sensitive(true);
            }
            let size = field.size();
            return Ok(Some((field, size)));
        }
        let entry = Entry::new(name, value);
        let decoded = (entry.field.clone(), entry.size);
        self.table.insert(entry);
        Ok(Some(decoded))
    }

    /// The dynamic table, for tests that check its contents.
    #[cfg(test)]
    pub(crate) fn table(&self) -> &DynamicTable {
        &self.table
    }
}

#[cfg(test)]
mod tests;
